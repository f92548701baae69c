//! SPNEGO (RFC 4178, MS-SPNG) around Kerberos (both OIDs, MS-KRB5 first as Windows sends
//! it) and NTLM, initiator and acceptor; see [`client`] and [`server`] for the legs.
//!
//! With NTLM, the mechListMIC is NTLM's GetMIC over the initiator's MechTypeList DER. Each
//! side's RC4 stream is re-keyed after the MIC it makes or checks (MS-SPNG 3.2.5.1, 3.3.5.1);
//! the sequence numbers go on counting, so the first sealed PDU carries sequence number 1.
//! With Kerberos chosen as the initiator's first mechanism no MIC is needed (RFC 4178 5); one
//! that arrives is a krb5 MIC token and is checked.

pub mod client;
pub mod der;
pub mod server;
pub mod tokens;

pub use client::SpnegoClient;
pub use server::SpnegoServer;

/// DCE/RPC auth_type for SPNEGO (RPC_C_AUTHN_GSS_NEGOTIATE).
pub const AUTH_TYPE_SPNEGO: u8 = 0x09;
