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

use messages::flags;

/// DCE/RPC auth_type for raw NTLM (RPC_C_AUTHN_WINNT).
pub const AUTH_TYPE_NTLM: u8 = 0x0a;

/// Flags both ends insist on, the client in the CHALLENGE and the server in the NEGOTIATE
/// and AUTHENTICATE: NTLMv2 session security good enough for PKT_PRIVACY.
const REQUIRED_FLAGS: u32 = flags::UNICODE
    | flags::SIGN
    | flags::SEAL
    | flags::EXTENDED_SESSIONSECURITY
    | flags::NEGOTIATE_128
    | flags::KEY_EXCH;

/// 100 ns ticks since 1601-01-01 UTC (FILETIME), as NTLMv2 timestamps count.
pub fn filetime(t: SystemTime) -> u64 {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    let ticks = |d: std::time::Duration| {
        d.as_secs()
            .saturating_mul(10_000_000)
            .saturating_add(u64::from(d.subsec_nanos() / 100))
    };
    let epoch = EPOCH_DIFF_SECS * 10_000_000;
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => epoch.saturating_add(ticks(d)),
        // Before 1970 (tests pin FILETIME 0 this way); before 1601 is 0.
        Err(e) => epoch.saturating_sub(ticks(e.duration())),
    }
}
