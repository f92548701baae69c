//! MIT credential cache files (the FILE type), format versions 4 (0x0504, what `kinit`
//! writes) and 3 (0x0503) for reading, 4 for writing. Integers are big-endian. Entries
//! whose server realm is `X-CACHECONF:` are configuration, not tickets, and are skipped, as
//! are tickets whose session key type we do not implement.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::crypto::Key;
use super::kdc::Credential;
use super::messages::PrincipalName;
use super::mit_file::{Cursor, read_bounded, utf8};

const CONFIG_REALM: &str = "X-CACHECONF:";

/// Why a credential cache cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CcacheError {
    #[error("credential cache type {kind:?} is not supported; use a FILE: cache")]
    UnsupportedType { kind: String },
    #[error("no credential cache at {path}")]
    Missing { path: String },
    #[error("cannot read the credential cache {path}: {error}")]
    Read { path: String, error: String },
    #[error("cannot write the credential cache {path}: {error}")]
    Write { path: String, error: String },
    #[error("{path} is not a version 3 or 4 credential cache")]
    Version { path: String },
    #[error("credential cache {path} is truncated or malformed at byte {at}")]
    Malformed { path: String, at: usize },
}

/// A credential cache's contents.
#[derive(Debug, Clone)]
pub struct Ccache {
    pub default_client: PrincipalName,
    pub default_realm: String,
    pub credentials: Vec<Credential>,
}

/// The cache `KRB5CCNAME` names, else the platform default (`/tmp/krb5cc_UID` on Unix;
/// Windows keeps tickets in LSA, so there is no default file there).
pub fn default_path() -> Result<Option<PathBuf>, CcacheError> {
    if let Some(name) = std::env::var_os("KRB5CCNAME") {
        let name = name.to_string_lossy().into_owned();
        return resolve(&name).map(Some);
    }
    #[cfg(unix)]
    {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        Ok(Some(PathBuf::from(format!("/tmp/krb5cc_{uid}"))))
    }
    #[cfg(not(unix))]
    {
        Ok(None)
    }
}

/// `FILE:path` or a bare path; other types are refused by name.
pub fn resolve(name: &str) -> Result<PathBuf, CcacheError> {
    match name.split_once(':') {
        Some(("FILE", path)) => Ok(PathBuf::from(path)),
        // A Windows drive letter is not a cache type.
        Some((kind, _)) if kind.len() > 1 && kind.chars().all(|c| c.is_ascii_uppercase()) => {
            Err(CcacheError::UnsupportedType {
                kind: kind.to_string(),
            })
        }
        _ => Ok(PathBuf::from(name)),
    }
}

/// A principal: name type, component count, realm, components.
fn principal(r: &mut Cursor<'_>) -> Option<(PrincipalName, String)> {
    let name_type = r.u32()? as i32;
    let count = r.u32()?;
    if count > 64 {
        return None;
    }
    let realm = utf8(r.u32_counted()?)?;
    let mut components = Vec::new();
    for _ in 0..count {
        components.push(utf8(r.u32_counted()?)?);
    }
    Some((
        PrincipalName {
            name_type,
            components,
        },
        realm,
    ))
}

/// One credential; `None` at a malformed one. The key is `None` for an etype we lack.
/// Version 3 repeats the key's etype.
fn credential(r: &mut Cursor<'_>, v3: bool) -> Option<(Option<Credential>, bool)> {
    let (client, crealm) = principal(r)?;
    let (server, srealm) = principal(r)?;
    let etype = r.u16()?;
    if v3 {
        r.u16()?;
    }
    let key_bytes = r.u32_counted()?;
    let key = Key::from_parts(i32::from(etype as i16), key_bytes).ok();
    let authtime = r.u32()?;
    let starttime = r.u32()?;
    let endtime = r.u32()?;
    let renew_till = r.u32()?;
    let _is_skey = r.u8()?;
    let flags = r.u32()?;
    for _ in 0..r.u32()? {
        r.u16()?;
        r.u32_counted()?;
    }
    for _ in 0..r.u32()? {
        r.u16()?;
        r.u32_counted()?;
    }
    let ticket = r.u32_counted()?.to_vec();
    let _second = r.u32_counted()?;
    let config = srealm == CONFIG_REALM;
    Some((
        key.filter(|_| !config).map(|key| Credential {
            client,
            crealm,
            server,
            srealm,
            key,
            ticket,
            flags,
            authtime: i64::from(authtime),
            starttime: i64::from(if starttime == 0 { authtime } else { starttime }),
            endtime: i64::from(endtime),
            renew_till: i64::from(renew_till),
        }),
        config,
    ))
}

impl Ccache {
    pub fn load(path: &Path) -> Result<Ccache, CcacheError> {
        let name = path.display().to_string();
        let bytes = read_bounded(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CcacheError::Missing { path: name.clone() }
            } else {
                CcacheError::Read {
                    path: name.clone(),
                    error: e.to_string(),
                }
            }
        })?;
        Ccache::parse(&bytes, &name)
    }

    pub fn parse(b: &[u8], name: &str) -> Result<Ccache, CcacheError> {
        let v3 = match b.get(..2) {
            Some([5, 4]) => false,
            Some([5, 3]) => true,
            _ => {
                return Err(CcacheError::Version {
                    path: name.to_string(),
                });
            }
        };
        let mut r = Cursor::new(b, 2);
        let malformed = |at| CcacheError::Malformed {
            path: name.to_string(),
            at,
        };
        if !v3 {
            // The header: tagged fields (e.g. the KDC time offset) we do not need.
            let len = r.u16().ok_or(malformed(2))?;
            r.take(usize::from(len)).ok_or(malformed(4))?;
        }
        let (default_client, default_realm) = principal(&mut r).ok_or(malformed(r.at))?;
        let mut credentials = Vec::new();
        while !r.is_at_end() {
            let at = r.at;
            let (cred, _config) = credential(&mut r, v3).ok_or(malformed(at))?;
            credentials.extend(cred);
        }
        Ok(Ccache {
            default_client,
            default_realm,
            credentials,
        })
    }

    /// The TGT for the default client's realm, if any.
    pub fn tgt(&self) -> Option<&Credential> {
        self.credentials.iter().find(|c| {
            c.client.same_name(&self.default_client)
                && c.crealm == self.default_realm
                && c.is_tgt_for(&self.default_realm)
        })
    }

    /// A ticket for `service` in `realm`, if cached.
    pub fn ticket_for(&self, service: &PrincipalName, realm: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| {
            c.srealm.eq_ignore_ascii_case(realm)
                && c.server.components.len() == service.components.len()
                && c.server
                    .components
                    .iter()
                    .zip(&service.components)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        })
    }

    /// Version 4 encoding.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![0x05, 0x04, 0x00, 0x00]);
        let data = |o: &mut Vec<u8>, d: &[u8]| {
            o.extend_from_slice(&(d.len() as u32).to_be_bytes());
            o.extend_from_slice(d);
        };
        let principal = |o: &mut Vec<u8>, p: &PrincipalName, realm: &str| {
            o.extend_from_slice(&(p.name_type as u32).to_be_bytes());
            o.extend_from_slice(&(p.components.len() as u32).to_be_bytes());
            data(o, realm.as_bytes());
            for c in &p.components {
                data(o, c.as_bytes());
            }
        };
        principal(&mut out, &self.default_client, &self.default_realm);
        for c in &self.credentials {
            principal(&mut out, &c.client, &c.crealm);
            principal(&mut out, &c.server, &c.srealm);
            out.extend_from_slice(&(c.key.etype().number() as u16).to_be_bytes());
            data(&mut out, c.key.bytes());
            for t in [c.authtime, c.starttime, c.endtime, c.renew_till] {
                out.extend_from_slice(&(t.clamp(0, i64::from(u32::MAX)) as u32).to_be_bytes());
            }
            out.push(0);
            out.extend_from_slice(&c.flags.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            data(&mut out, &c.ticket);
            data(&mut out, &[]);
        }
        out
    }

    /// Writes the cache readable by its owner only (a new file replaces an old one).
    pub fn save(&self, path: &Path) -> Result<(), CcacheError> {
        let name = path.display().to_string();
        let err = |e: std::io::Error| CcacheError::Write {
            path: name.clone(),
            error: e.to_string(),
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        std::io::Write::write_all(&mut tmp, &self.encode()).map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::kerberos::crypto::Etype;

    fn cred(server: &[&str], endtime: i64) -> Credential {
        Credential {
            client: PrincipalName::new(1, &["alice"]),
            crealm: "WDSMC.TEST".into(),
            server: PrincipalName::new(2, server),
            srealm: "WDSMC.TEST".into(),
            key: Key::new(Etype::Aes256, &[3; 32]).unwrap(),
            ticket: vec![0x61, 0x00],
            flags: 0x40e1_0000,
            authtime: 1_800_000_000,
            starttime: 1_800_000_000,
            endtime,
            renew_till: 0,
        }
    }

    #[test]
    fn round_trip_and_lookups() {
        let cache = Ccache {
            default_client: PrincipalName::new(1, &["alice"]),
            default_realm: "WDSMC.TEST".into(),
            credentials: vec![
                cred(&["krbtgt", "WDSMC.TEST"], 1_800_036_000),
                cred(&["host", "wds.wdsmc.test"], 1_800_036_000),
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cc");
        cache.save(&path).unwrap();
        let back = Ccache::load(&path).unwrap();
        assert_eq!(back.credentials.len(), 2);
        let tgt = back.tgt().unwrap();
        assert_eq!((tgt.endtime, tgt.flags), (1_800_036_000, 0x40e1_0000));
        assert_eq!(tgt.key.bytes(), &[3; 32]);
        let host = PrincipalName::new(2, &["HOST", "WDS.wdsmc.test"]);
        assert!(back.ticket_for(&host, "wdsmc.test").is_some());
        assert!(matches!(
            Ccache::load(&dir.path().join("none")),
            Err(CcacheError::Missing { .. })
        ));
        let bytes = cache.encode();
        assert!(Ccache::parse(&bytes[..bytes.len() - 1], "cc").is_err());
        assert!(matches!(
            resolve("KEYRING:persistent:0"),
            Err(CcacheError::UnsupportedType { .. })
        ));
        assert_eq!(resolve("FILE:/tmp/x").unwrap(), PathBuf::from("/tmp/x"));
        assert_eq!(
            resolve("C:\\tmp\\cc").unwrap(),
            PathBuf::from("C:\\tmp\\cc")
        );
    }
}
