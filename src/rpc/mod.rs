//! DCE/RPC connection-oriented protocol v5.0 (C706, MS-RPCE) for `WdsRpcInterface`:
//! PDU codec, stream framing, the NDR stubs of `WdsRpcMessage` and `ept_map`, and sans-IO
//! client and server connection machines with a security-provider seam.
//!
//! * [`pdu`]: PDUs and constants; [`syntax`]: UUIDs and presentation syntaxes;
//!   [`frame`]: cutting a TCP stream into PDUs;
//! * [`stub`]: `WdsRpcMessage` and endpoint-mapper stubs;
//! * [`security`]: the traits an NTLM / SPNEGO / Kerberos provider implements;
//! * [`client`], [`server`]: connection machines (bytes in, bytes and events out).
//!
//! Everything here is pure: no sockets, clocks, threads or randomness. Ids (call ids,
//! association groups, auth context ids, nonces) come from the caller.
//!
//! `test_support` (a toy shared-secret provider) is compiled for unit tests and, with the
//! `test-support` cargo feature, for property tests and fuzz targets.

pub mod client;
mod fragment;
pub mod frame;
pub mod pdu;
pub mod security;
pub mod server;
pub mod stub;
pub mod syntax;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use fragment::FragmentError;

#[cfg(test)]
mod tests;
