//! MIT keytab files, version 2 (0x0502, big-endian), as `kadmin ktadd`, `ktutil` and
//! Windows' `ktpass` write them: per entry the principal, a timestamp, the key version and
//! the key. Entries of encryption types we do not implement are kept out; holes (negative
//! sizes) are skipped.

use std::path::Path;

use super::crypto::Key;
use super::messages::PrincipalName;
use super::mit_file::{Cursor, read_bounded, utf8};

/// Why a keytab cannot be used. Never shows key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeytabError {
    #[error("cannot read keytab {path}: {error}")]
    Read { path: String, error: String },
    #[error("{path} is not a version 2 keytab (starts with {start:02x?})")]
    Version { path: String, start: Vec<u8> },
    #[error("keytab {path} is truncated or malformed at byte {at}")]
    Malformed { path: String, at: usize },
    #[error("keytab {path} holds no aes128/aes256-cts-hmac-sha1-96 key{}", principal.as_ref().map(|p| format!(" for {p}")).unwrap_or_default())]
    NoUsableKey {
        path: String,
        principal: Option<String>,
    },
}

/// One key.
#[derive(Debug, Clone)]
pub struct KeytabEntry {
    pub principal: PrincipalName,
    pub realm: String,
    pub kvno: u32,
    pub key: Key,
}

/// The usable keys of a keytab.
#[derive(Debug, Clone, Default)]
pub struct Keytab {
    pub entries: Vec<KeytabEntry>,
    /// Entries skipped because their encryption type is not implemented.
    pub skipped: usize,
}

impl Keytab {
    pub fn load(path: &Path) -> Result<Keytab, KeytabError> {
        let name = path.display().to_string();
        let bytes = read_bounded(path).map_err(|e| KeytabError::Read {
            path: name.clone(),
            error: e.to_string(),
        })?;
        Keytab::parse(&bytes, &name)
    }

    pub fn parse(b: &[u8], name: &str) -> Result<Keytab, KeytabError> {
        if b.len() < 2 || b[..2] != [0x05, 0x02] {
            return Err(KeytabError::Version {
                path: name.to_string(),
                start: b.iter().take(2).copied().collect(),
            });
        }
        let malformed = |at| KeytabError::Malformed {
            path: name.to_string(),
            at,
        };
        let mut keytab = Keytab::default();
        let mut r = Cursor::new(b, 2);
        while !r.is_at_end() {
            let start = r.at;
            let size = r.u32().ok_or(malformed(start))? as i32;
            if size == 0 {
                break;
            }
            if size < 0 {
                r.take(size.unsigned_abs() as usize)
                    .ok_or(malformed(start))?;
                continue;
            }
            let body = r.take(size as usize).ok_or(malformed(start))?;
            let entry_at = start + 4;
            let mut e = Cursor::new(body, 0);
            let parsed = (|| {
                let count = e.u16()?;
                let realm = utf8(e.u16_counted()?)?;
                let mut components = Vec::with_capacity(usize::from(count.min(16)));
                for _ in 0..count {
                    components.push(utf8(e.u16_counted()?)?);
                }
                let name_type = e.u32()? as i32;
                let _timestamp = e.u32()?;
                let vno8 = e.u8()?;
                let etype = e.u16()?;
                let key = e.u16_counted()?;
                // A 32-bit kvno follows when the entry has room for it; 0 means "use vno8".
                let kvno = match e.u32() {
                    Some(v) if v != 0 => v,
                    _ => u32::from(vno8),
                };
                Some((
                    PrincipalName {
                        name_type,
                        components,
                    },
                    realm,
                    kvno,
                    i32::from(etype as i16),
                    key,
                ))
            })();
            let (principal, realm, kvno, etype, key) = parsed.ok_or(malformed(entry_at))?;
            match Key::from_parts(etype, key) {
                Ok(key) => keytab.entries.push(KeytabEntry {
                    principal,
                    realm,
                    kvno,
                    key,
                }),
                Err(_) => keytab.skipped += 1,
            }
        }
        if keytab.entries.is_empty() {
            return Err(KeytabError::NoUsableKey {
                path: name.to_string(),
                principal: None,
            });
        }
        Ok(keytab)
    }

    /// The key for a ticket: same principal and realm (ignoring case, as Active Directory
    /// does) and etype; the kvno if the ticket names one, else the highest.
    pub fn find(
        &self,
        principal: &PrincipalName,
        realm: &str,
        etype: i32,
        kvno: Option<u32>,
    ) -> Option<&Key> {
        self.entries
            .iter()
            .filter(|e| {
                e.principal.same_service(principal)
                    && e.realm.eq_ignore_ascii_case(realm)
                    && e.key.etype().number() == etype
                    && kvno.is_none_or(|k| k == e.kvno)
            })
            .max_by_key(|e| e.kvno)
            .map(|e| &e.key)
    }

    /// Whether any key is for `principal` (in `realm`, when given).
    pub fn has(&self, principal: &PrincipalName, realm: Option<&str>) -> bool {
        self.entries.iter().any(|e| {
            e.principal.same_service(principal)
                && realm.is_none_or(|r| r.eq_ignore_ascii_case(&e.realm))
        })
    }

    /// Encodes a version 2 keytab (tests write their own).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0x05, 0x02];
        for e in &self.entries {
            let mut body = Vec::new();
            let counted = |v: &mut Vec<u8>, s: &[u8]| {
                v.extend_from_slice(&(s.len() as u16).to_be_bytes());
                v.extend_from_slice(s);
            };
            body.extend_from_slice(&(e.principal.components.len() as u16).to_be_bytes());
            counted(&mut body, e.realm.as_bytes());
            for c in &e.principal.components {
                counted(&mut body, c.as_bytes());
            }
            body.extend_from_slice(&(e.principal.name_type as u32).to_be_bytes());
            body.extend_from_slice(&0u32.to_be_bytes());
            body.push(e.kvno as u8);
            body.extend_from_slice(&(e.key.etype().number() as u16).to_be_bytes());
            counted(&mut body, e.key.bytes());
            body.extend_from_slice(&e.kvno.to_be_bytes());
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(&body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::kerberos::crypto::Etype;

    #[test]
    fn round_trip_holes_and_unknown_etypes() {
        let host = PrincipalName::new(2, &["host", "wds.example.test"]);
        let kt = Keytab {
            entries: vec![
                KeytabEntry {
                    principal: host.clone(),
                    realm: "EXAMPLE.TEST".into(),
                    kvno: 3,
                    key: Key::new(Etype::Aes256, &[1; 32]).unwrap(),
                },
                KeytabEntry {
                    principal: host.clone(),
                    realm: "EXAMPLE.TEST".into(),
                    kvno: 4,
                    key: Key::new(Etype::Aes256, &[2; 32]).unwrap(),
                },
            ],
            skipped: 0,
        };
        let mut bytes = kt.encode();
        // A hole, then an RC4 entry (etype 23) we skip.
        bytes.extend_from_slice(&(-6i32).to_be_bytes());
        bytes.extend_from_slice(&[0; 6]);
        let mut rc4 = Keytab::default().encode();
        rc4.clear();
        let mut body = Vec::new();
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&2u16.to_be_bytes());
        body.extend_from_slice(b"EX");
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(b"a");
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes());
        body.push(1);
        body.extend_from_slice(&23u16.to_be_bytes());
        body.extend_from_slice(&16u16.to_be_bytes());
        body.extend_from_slice(&[9; 16]);
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
        let back = Keytab::parse(&bytes, "t").unwrap();
        assert_eq!((back.entries.len(), back.skipped), (2, 1));
        assert_eq!(
            back.find(&host, "EXAMPLE.TEST", 18, None).unwrap().bytes(),
            &[2; 32]
        );
        assert_eq!(
            back.find(&host, "EXAMPLE.TEST", 18, Some(3))
                .unwrap()
                .bytes(),
            &[1; 32]
        );
        assert!(back.find(&host, "EXAMPLE.TEST", 17, None).is_none());
        assert!(back.find(&host, "OTHER.TEST", 18, None).is_none());
        // Service principals compare as Active Directory compares them, ignoring case.
        let upper = PrincipalName::new(2, &["HOST", "WDS.Example.Test"]);
        assert!(back.find(&upper, "example.test", 18, None).is_some());
        assert!(back.has(&upper, Some("Example.Test")));
        assert!(back.has(&host, None));
        assert!(Keytab::parse(&bytes[..bytes.len() - 3], "t").is_err());
        assert!(matches!(
            Keytab::parse(&[5, 1, 0, 0], "t"),
            Err(KeytabError::Version { .. })
        ));
        assert!(!format!("{back:?}").contains("[2, 2"));
    }
}
