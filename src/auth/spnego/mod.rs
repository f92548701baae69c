//! SPNEGO (RFC 4178, MS-SPNG) with NTLM as the only mechanism we can complete. Kerberos
//! OIDs are recognised in a client's list so a Windows client's Kerberos-first offer is
//! answered with NTLM.
//!
//! The mechListMIC is NTLM's GetMIC over the initiator's MechTypeList DER. Each side's RC4
//! stream is re-keyed after the MIC it makes or checks (MS-SPNG 3.2.5.1, 3.3.5.1); the
//! sequence numbers go on counting, so the first sealed PDU carries sequence number 1.

pub mod client;
pub mod der;
pub mod server;
pub mod tokens;

pub use client::SpnegoClient;
pub use server::SpnegoServer;

/// DCE/RPC auth_type for SPNEGO (RPC_C_AUTHN_GSS_NEGOTIATE).
pub const AUTH_TYPE_SPNEGO: u8 = 0x09;
