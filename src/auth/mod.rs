//! Security providers behind the RPC seam ([`crate::rpc::security`]): NTLMv2, Kerberos
//! (DCE style) and SPNEGO wrapping either, initiator and acceptor, written for this crate.
//! Sans-IO: randomness and time come from the caller; no sockets, clocks or threads (the KDC
//! exchange's messages are built and checked in [`kerberos::kdc`], the transport sends them).
//!
//! * client: [`NtlmClient::new`] / [`NtlmClient::anonymous`] (auth_type 0x0A),
//!   [`kerberos::gss::KerberosClient`] (0x10), or either wrapped in [`SpnegoClient`] (0x09);
//! * server: [`NtlmServer::new`], [`kerberos::gss::KerberosServer`], or [`SpnegoServer`]
//!   over an [`AccountStore`] such as [`Accounts::load`] and/or a keytab.

mod crypto;
pub mod kerberos;
pub mod ntlm;
pub mod spnego;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

pub use ntlm::accounts::{Account, AccountStore, Accounts, AccountsError};
pub use ntlm::client::{Credentials, NtlmClient};
pub use ntlm::server::{NtlmServer, ServerConfig};
pub use ntlm::session::NtlmSession;
pub use ntlm::{AUTH_TYPE_NTLM, filetime};
pub use spnego::{AUTH_TYPE_SPNEGO, SpnegoClient, SpnegoServer};
