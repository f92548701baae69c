//! wdsmc: a Windows Deployment Services (WDS) multicast client and a compatible reference
//! server, speaking MS-WDSMSI (session initiation over UDP), MS-WDSMT (multicast transport) and
//! MS-WDSMA (multicast application).
//!
//! Layers, each depending only on the ones before it:
//! * [`wire`]: pure packet codecs;
//! * [`proto`]: sans-IO client and server state machines;
//! * [`rpc`]: DCE/RPC (MS-RPCE) PDUs, `WdsRpcMessage` stubs and sans-IO connection machines
//!   for authenticated initiation;
//! * [`transport`]: the session API a program uses to receive an object (owns sockets, clock,
//!   threads);
//! * [`download`]: a download of one object to a file, a folder or a writer, written safely;
//! * [`server`]: the reference server's content provider and session driver;
//! * `sys` (private): batched UDP send and receive, socket setup, positional file I/O: the
//!   one room for platform code and `unsafe`.
//!
//! The `wdsmc` command line is a thin binary over these (behind the default `cli` feature).

pub mod auth;
pub mod diag;
pub mod download;
pub mod proto;
pub mod rpc;
pub mod server;
mod sys;
pub mod transport;
pub mod wire;

#[cfg(test)]
mod test_util;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
