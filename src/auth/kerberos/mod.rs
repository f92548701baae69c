//! Kerberos V5 (RFC 4120) for DCE/RPC logins, written for this crate: the AES encryption
//! types (RFC 3961/3962), the messages an initiator and an acceptor need, the AS and TGS
//! exchanges (sans-IO: the transport sends and receives), GSS-API krb5 (RFC 4121) in the
//! DCE style of MS-KILE 3.4.5.1 with the wrap tokens MS-KILE 3.4.5.4.1 describes for
//! DCE/RPC, keytab reading and credential cache reading and writing.

pub mod asn1;
pub mod ccache;
pub mod crypto;
pub mod messages;

use messages::error_code;

/// A Kerberos failure. Never carries keys, passwords or tickets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KrbError {
    #[error("malformed Kerberos message: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    /// A KRB-ERROR from the KDC or the acceptor.
    #[error("{} (Kerberos error {code}){}", error_code::describe(*code), text.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
    Refused { code: i32, text: Option<String> },
    /// The exchange went somewhere it must not (wrong nonce, names, times...).
    #[error("{0}")]
    Protocol(&'static str),
}

impl KrbError {
    /// The KRB-ERROR code, if this is one.
    pub fn code(&self) -> Option<i32> {
        match self {
            KrbError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}
pub mod gss;
pub mod kdc;
pub mod keytab;
mod mit_file;

/// A principal written `a/b@REALM` (the realm optional).
pub fn parse_principal(text: &str, name_type: i32) -> (messages::PrincipalName, Option<String>) {
    let (name, realm) = match text.rsplit_once('@') {
        Some((n, r)) if !r.is_empty() => (n, Some(r.to_string())),
        _ => (text, None),
    };
    let components: Vec<&str> = name.split('/').collect();
    (messages::PrincipalName::new(name_type, &components), realm)
}
