//! Getting a Kerberos service ticket for an RPC login: the client's principal and realm,
//! the server's service principal, the KDC's address (`--kdc`, DNS SRV, the realm's name),
//! and the AS and TGS exchanges over TCP (4-byte length prefix) or UDP to the KDC, every
//! step bounded by the initiation deadline. The messages themselves are built and checked by
//! the sans-IO [`crate::auth::kerberos::kdc`]; this file only moves bytes and reads the
//! credential cache.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::TryRngCore;

use super::error::{KerberosFailure, NetworkError};
use super::rpc_initiation::Clock;
use super::{KerberosSettings, TransportError};
use crate::auth::Credentials;
use crate::auth::kerberos::KrbError;
use crate::auth::kerberos::ccache::{self, Ccache, CcacheError};
use crate::auth::kerberos::kdc::{self, AsExchange, AsStep, Credential};
use crate::auth::kerberos::messages::{NT_PRINCIPAL, NT_SRV_INST, PrincipalName, error_code};

/// The Kerberos port.
pub const KDC_PORT: u16 = 88;
/// Longest wait for one KDC on one transport.
const PER_KDC: Duration = Duration::from_secs(3);
/// Largest KDC reply read over TCP.
const MAX_REPLY: usize = 1 << 20;
/// A cached ticket this close to its end is not used.
const MIN_LIFE_SECS: i64 = 60;

fn now() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_micros())
}

fn nonce() -> u32 {
    rand::rngs::OsRng.try_next_u32().unwrap_or(0x1234_5678)
}

/// The realm a server's DNS name suggests: its domain, in capitals (`wds01.corp.example`
/// is in `CORP.EXAMPLE`).
fn server_realm(server_host: Option<&str>) -> Option<String> {
    let host = server_host?;
    let (_, domain) = host.split_once('.')?;
    (!domain.is_empty()).then(|| domain.trim_end_matches('.').to_uppercase())
}

/// The client principal and realm of `DOMAIN\NAME`, `NAME@REALM` or `NAME`.
///
/// `NAME@REALM` names the realm; a DNS-style `DOMAIN` (with a dot) is the realm in
/// capitals; a NetBIOS-style one (no dot) or none at all is taken to be the server's realm
/// when the server has a DNS name, else the domain itself in capitals
/// (README#pn-kerberos-realm).
pub(super) fn client_principal(
    credentials: &Credentials,
    server_host: Option<&str>,
) -> Result<(PrincipalName, String), KerberosFailure> {
    let (name, realm) = match credentials.user.rsplit_once('@') {
        Some((name, realm)) if !name.is_empty() && !realm.is_empty() => {
            (name.to_string(), Some(realm.to_uppercase()))
        }
        _ => (credentials.user.clone(), None),
    };
    let domain = credentials.domain.as_str();
    let realm = realm
        .or_else(|| domain.contains('.').then(|| domain.to_uppercase()))
        .or_else(|| server_realm(server_host))
        .or_else(|| (!domain.is_empty()).then(|| domain.to_uppercase()))
        .ok_or_else(|| KerberosFailure::NoRealm {
            user: credentials.user.clone(),
        })?;
    let components: Vec<&str> = name.split('/').collect();
    Ok((PrincipalName::new(NT_PRINCIPAL, &components), realm))
}

use crate::auth::kerberos::parse_principal;

/// The server's service principal: `--spn`, else `host/<name as given>` (README#pn-spn).
pub(super) fn service_principal(
    settings: &KerberosSettings,
    server_host: Option<&str>,
    server: &str,
    client_realm: &str,
) -> Result<(PrincipalName, String), KerberosFailure> {
    if let Some(spn) = &settings.spn {
        let (name, realm) = parse_principal(spn, NT_SRV_INST);
        return Ok((name, realm.unwrap_or_else(|| client_realm.to_string())));
    }
    let host = server_host.ok_or_else(|| KerberosFailure::NoSpn {
        server: server.to_string(),
    })?;
    let host = host.trim_end_matches('.').to_lowercase();
    Ok((
        PrincipalName::new(NT_SRV_INST, &["host", &host]),
        client_realm.to_string(),
    ))
}

/// `HOST[:PORT]`, `[V6]:PORT` or an address, with port 88 by default.
fn resolve_kdc(spec: &str) -> Vec<SocketAddr> {
    let spec = spec.trim();
    if let Ok(a) = spec.parse::<SocketAddr>() {
        return vec![a];
    }
    if let Ok(ip) = spec
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        return vec![SocketAddr::new(ip, KDC_PORT)];
    }
    let with_port = match spec.rsplit_once(':') {
        Some((_, p)) if p.parse::<u16>().is_ok() => spec.to_string(),
        _ => format!("{spec}:{KDC_PORT}"),
    };
    with_port
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default()
}

/// The KDCs of `realm`: `--kdc`, else DNS SRV `_kerberos._tcp.REALM`, else the realm's own
/// name (README#pn-kdc-location).
fn locate(
    realm: &str,
    settings: &KerberosSettings,
    clock: &Clock<'_>,
) -> Result<(Vec<SocketAddr>, String), TransportError> {
    if let Some(kdc) = &settings.kdc {
        let addrs = resolve_kdc(kdc);
        return Ok((addrs, kdc.clone()));
    }
    let deadline = std::time::Instant::now() + clock.remaining()?.min(PER_KDC);
    let mut addrs = Vec::new();
    let mut tried = Vec::new();
    let srv_name = format!("_kerberos._tcp.{realm}");
    for srv in super::dns::lookup_srv(&srv_name, deadline) {
        tried.push(format!("{}:{}", srv.target, srv.port));
        addrs.extend(resolve_kdc(&format!("{}:{}", srv.target, srv.port)));
    }
    if addrs.is_empty() {
        tried.push(format!("SRV {srv_name}: none"));
        let host = realm.to_lowercase();
        tried.push(host.clone());
        addrs = resolve_kdc(&host);
    }
    Ok((addrs, tried.join(", ")))
}

/// Sends one request to the realm's KDCs in turn (TCP, then UDP), returns the first answer.
fn exchange(
    kdcs: &[SocketAddr],
    tried: &str,
    realm: &str,
    request: &[u8],
    clock: &Clock<'_>,
) -> Result<Vec<u8>, TransportError> {
    let mut last = "no address".to_string();
    for &kdc in kdcs {
        match tcp_exchange(kdc, request, clock) {
            Ok(reply) => return Ok(reply),
            Err(e) => last = format!("{kdc} over TCP: {e}"),
        }
        clock.remaining()?;
        match udp_exchange(kdc, request, clock) {
            Ok(reply) if kdc::is_response_too_big(&reply) => {
                last = format!("{kdc}: reply too big for UDP")
            }
            Ok(reply) => return Ok(reply),
            Err(e) => last = format!("{last}; over UDP: {e}"),
        }
        clock.remaining()?;
    }
    Err(NetworkError::KdcUnreachable {
        realm: realm.to_string(),
        tried: tried.to_string(),
        error: last,
    }
    .into())
}

fn tcp_exchange(kdc: SocketAddr, request: &[u8], clock: &Clock<'_>) -> std::io::Result<Vec<u8>> {
    let wait = clock
        .remaining()
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
        .min(PER_KDC);
    let mut s = TcpStream::connect_timeout(&kdc, wait)?;
    s.set_read_timeout(Some(wait))?;
    s.set_write_timeout(Some(wait))?;
    let mut framed = (request.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(request);
    s.write_all(&framed)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_REPLY {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "reply too long",
        ));
    }
    let mut reply = vec![0u8; len];
    s.read_exact(&mut reply)?;
    Ok(reply)
}

fn udp_exchange(kdc: SocketAddr, request: &[u8], clock: &Clock<'_>) -> std::io::Result<Vec<u8>> {
    let wait = clock
        .remaining()
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
        .min(PER_KDC);
    let bind: SocketAddr = if kdc.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(bind)?;
    s.connect(kdc)?;
    s.set_read_timeout(Some(wait))?;
    s.send(request)?;
    let mut buf = vec![0u8; 65536];
    let n = s.recv(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// A KDC's refusal or a reply that does not check, as the error the user sees.
fn kdc_failure(e: KrbError, realm: &str, what: &str) -> TransportError {
    match e {
        KrbError::Refused { code, .. } if code == error_code::KRB_AP_ERR_SKEW => {
            KerberosFailure::ClockSkew { peer: "KDC" }.into()
        }
        KrbError::Refused { code, text } => KerberosFailure::Refused {
            realm: realm.to_string(),
            what: what.to_string(),
            code,
            message: match text {
                Some(t) if !t.is_empty() => {
                    format!("{}: {t}", error_code::describe(code))
                }
                _ => error_code::describe(code).to_string(),
            },
        }
        .into(),
        other => KerberosFailure::Failed(other.to_string()).into(),
    }
}

impl From<KerberosFailure> for TransportError {
    fn from(f: KerberosFailure) -> Self {
        TransportError::AuthFailed(super::AuthFailure::Kerberos(f))
    }
}

/// Whether Negotiate may fall back to NTLM after this: no ticket could be had (no KDC, no
/// principal for the server, the user or the service unknown to the realm), as opposed to
/// a refusal NTLM would meet too (wrong password, disabled account, clock skew).
pub(super) fn kerberos_unavailable(e: &TransportError) -> bool {
    match e {
        TransportError::Network(NetworkError::KdcUnreachable { .. }) => true,
        TransportError::AuthFailed(super::AuthFailure::Kerberos(f)) => match f {
            KerberosFailure::NoSpn { .. }
            | KerberosFailure::NoRealm { .. }
            | KerberosFailure::NoCredentials(_) => true,
            KerberosFailure::Refused { code, .. } => matches!(
                *code,
                error_code::KDC_ERR_C_PRINCIPAL_UNKNOWN
                    | error_code::KDC_ERR_S_PRINCIPAL_UNKNOWN
                    | error_code::KDC_ERR_WRONG_REALM
                    | error_code::KDC_ERR_ETYPE_NOSUPP
            ),
            KerberosFailure::ClockSkew { .. } | KerberosFailure::Failed(_) => false,
        },
        _ => false,
    }
}

/// A service ticket for the server, from a TGT the password gets.
pub(super) fn ticket_with_password(
    credentials: &Credentials,
    settings: &KerberosSettings,
    server: &str,
    server_host: Option<&str>,
    clock: &Clock<'_>,
) -> Result<Credential, TransportError> {
    let (client, realm) = client_principal(credentials, server_host)?;
    let (service, srealm) = service_principal(settings, server_host, server, &realm)?;
    let (kdcs, tried) = locate(&realm, settings, clock)?;
    let who = format!("{client}@{realm}");
    let mut rng = rand::rngs::OsRng.unwrap_err();
    let mut as_ex = AsExchange::new(client, &realm, &credentials.password, nonce());
    let (t, _) = now();
    let mut request = as_ex.start(t);
    let tgt = loop {
        let reply = exchange(&kdcs, &tried, &realm, &request, clock)?;
        let (t, us) = now();
        match as_ex
            .handle(&reply, t, us, &mut rng)
            .map_err(|e| kdc_failure(e, &realm, &format!("the login of {who}")))?
        {
            AsStep::Send(next) => request = next,
            AsStep::Done(tgt) => break *tgt,
        }
    };
    service_ticket(&tgt, &service, &srealm, &kdcs, &tried, clock)
}

fn service_ticket(
    tgt: &Credential,
    service: &PrincipalName,
    srealm: &str,
    kdcs: &[SocketAddr],
    tried: &str,
    clock: &Clock<'_>,
) -> Result<Credential, TransportError> {
    let mut rng = rand::rngs::OsRng.unwrap_err();
    let n = nonce();
    let (t, us) = now();
    let request = kdc::tgs_request(tgt, service, srealm, n, t, us, &mut rng);
    let reply = exchange(kdcs, tried, srealm, &request, clock)?;
    kdc::tgs_reply(tgt, &reply, n, service)
        .map_err(|e| kdc_failure(e, srealm, &format!("a ticket for {service}@{srealm}")))
}

/// A service ticket for the server from the credential cache: a cached one, or one got
/// with the cached TGT.
pub(super) fn ticket_from_cache(
    user: Option<&str>,
    settings: &KerberosSettings,
    server: &str,
    server_host: Option<&str>,
    clock: &Clock<'_>,
) -> Result<Credential, TransportError> {
    let no = |m: String| TransportError::from(KerberosFailure::NoCredentials(m));
    let path = match &settings.ccache {
        Some(p) => p.clone(),
        None => ccache::default_path()
            .map_err(|e| no(e.to_string()))?
            .ok_or_else(|| no("no credential cache: set KRB5CCNAME to a FILE: cache".into()))?,
    };
    let cache = Ccache::load(&path).map_err(|e| match e {
        CcacheError::Missing { path } => no(format!(
            "no credential cache at {path} (run kinit, or give a password)"
        )),
        other => no(other.to_string()),
    })?;
    let client = format!("{}@{}", cache.default_client, cache.default_realm);
    if let Some(user) = user {
        let (name, realm) = parse_principal(user.rsplit('\\').next().unwrap_or(user), NT_PRINCIPAL);
        let realm_ok = realm.is_none_or(|r| r.eq_ignore_ascii_case(&cache.default_realm));
        if !name.same_name(&cache.default_client) || !realm_ok {
            return Err(no(format!(
                "the credential cache {} holds tickets of {client}, not {user}",
                path.display()
            )));
        }
    }
    let (service, srealm) = service_principal(settings, server_host, server, &cache.default_realm)?;
    let (t, _) = now();
    if let Some(c) = cache.ticket_for(&service, &srealm)
        && c.endtime > t + MIN_LIFE_SECS
        && c.starttime <= t + crate::auth::kerberos::gss::MAX_SKEW_SECS
    {
        return Ok(c.clone());
    }
    let tgt = cache.tgt().ok_or_else(|| {
        no(format!(
            "the credential cache {} holds no ticket-granting ticket for {client}",
            path.display()
        ))
    })?;
    if tgt.endtime <= t {
        return Err(no(format!(
            "the ticket-granting ticket of {client} in {} has expired (run kinit)",
            path.display()
        )));
    }
    let (kdcs, tried) = locate(&cache.default_realm, settings, clock)?;
    service_ticket(tgt, &service, &srealm, &kdcs, &tried, clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_and_realms() {
        let c = |d: &str, u: &str| Credentials::new(d, u, "pw");
        let p = |d: &str, u: &str, host: Option<&str>| {
            client_principal(&c(d, u), host).map(|(n, r)| format!("{n}@{r}"))
        };
        assert_eq!(p("", "alice@wdsmc.test", None).unwrap(), "alice@WDSMC.TEST");
        assert_eq!(p("corp.example", "bob", None).unwrap(), "bob@CORP.EXAMPLE");
        assert_eq!(
            p("CORP", "bob", Some("wds01.corp.example.com")).unwrap(),
            "bob@CORP.EXAMPLE.COM"
        );
        assert_eq!(p("CORP", "bob", None).unwrap(), "bob@CORP");
        assert!(p("", "bob", None).is_err());
        let settings = KerberosSettings::default();
        let (spn, realm) =
            service_principal(&settings, Some("WDS01.Corp.Example."), "x", "CORP.EXAMPLE").unwrap();
        assert_eq!(
            (spn.to_string(), realm.as_str()),
            ("host/wds01.corp.example".into(), "CORP.EXAMPLE")
        );
        assert!(service_principal(&settings, None, "10.0.0.5", "R").is_err());
        let given = KerberosSettings {
            spn: Some("RPCSS/wds01@OTHER.REALM".into()),
            ..Default::default()
        };
        let (spn, realm) = service_principal(&given, None, "10.0.0.5", "R").unwrap();
        assert_eq!(
            (spn.to_string(), realm.as_str()),
            ("RPCSS/wds01".into(), "OTHER.REALM")
        );
        assert_eq!(
            resolve_kdc("127.0.0.1"),
            vec!["127.0.0.1:88".parse().unwrap()]
        );
        assert_eq!(resolve_kdc("[::1]:750"), vec!["[::1]:750".parse().unwrap()]);
    }

    #[test]
    fn refusals_map_to_messages_and_fallbacks() {
        let refused = |code| KrbError::Refused { code, text: None };
        let skew = kdc_failure(refused(error_code::KRB_AP_ERR_SKEW), "R", "x");
        assert!(skew.to_string().contains("Kerberos clock skew"), "{skew}");
        assert!(!kerberos_unavailable(&skew));
        let wrong = kdc_failure(
            refused(error_code::KDC_ERR_PREAUTH_FAILED),
            "R",
            "the login of a@R",
        );
        assert!(wrong.to_string().contains("wrong password"), "{wrong}");
        assert!(!kerberos_unavailable(&wrong));
        let unknown = kdc_failure(refused(error_code::KDC_ERR_S_PRINCIPAL_UNKNOWN), "R", "x");
        assert!(kerberos_unavailable(&unknown));
        let down = TransportError::from(NetworkError::KdcUnreachable {
            realm: "R".into(),
            tried: "kdc".into(),
            error: "refused".into(),
        });
        assert!(kerberos_unavailable(&down));
        let no_spn = TransportError::from(KerberosFailure::NoSpn {
            server: "1.2.3.4".into(),
        });
        assert!(kerberos_unavailable(&no_spn));
    }
}
