//! NTLM (MS-NLMP), NTLMv2 only: message codecs, key derivation, initiator and acceptor
//! contexts, and connection-oriented session security.

pub mod accounts;
pub mod client;
pub mod keys;
pub mod messages;
pub mod server;
pub mod session;
#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

/// DCE/RPC auth_type for raw NTLM (RPC_C_AUTHN_WINNT).
pub const AUTH_TYPE_NTLM: u8 = 0x0a;

/// 100 ns ticks since 1601-01-01 UTC (FILETIME), as NTLMv2 timestamps count.
pub fn filetime(t: SystemTime) -> u64 {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() + EPOCH_DIFF_SECS)
        .saturating_mul(10_000_000)
        .saturating_add(u64::from(d.subsec_nanos() / 100))
}
