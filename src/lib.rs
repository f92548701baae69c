//! wdsmc: a Windows Deployment Services (WDS) multicast client and a compatible reference
//! server, speaking MS-WDSMSI (session initiation over UDP), MS-WDSMT (multicast transport) and
//! MS-WDSMA (multicast application).
//!
//! Layers, each depending only on the ones before it:
//! * [`wire`]: pure packet codecs;
//! * [`proto`]: sans-IO client and server state machines;
//! * [`transport`]: the session API a program uses to download an object (owns sockets, clock,
//!   threads);
//! * [`server`]: the reference server's content provider and session driver.

pub mod auth;
pub mod cli;
mod file_at;
mod net;
pub mod proto;
pub mod rpc;
pub mod server;
pub mod transport;
pub mod wire;
