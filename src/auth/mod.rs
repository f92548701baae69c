//! Security providers behind the RPC seam ([`crate::rpc::security`]): NTLMv2 and SPNEGO
//! (wrapping NTLM), initiator and acceptor, written for this crate. Sans-IO: randomness and
//! time come from the caller at construction; no sockets, clocks or threads.
//!
//! * client: [`NtlmClient::new`] / [`NtlmClient::anonymous`] (auth_type 0x0A), or the same
//!   wrapped in [`SpnegoClient`] (auth_type 0x09);
//! * server: [`NtlmServer::new`] or [`SpnegoServer::new`] over an [`AccountStore`] such as
//!   [`Accounts::load`].

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
