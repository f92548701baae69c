//! Pure codecs for the WDS multicast protocols: no I/O, no panics on any input.
//!
//! * [`msi`]: MS-WDSMSI session initiation over UDP (server port 5041).
//! * [`mt`]: MS-WDSMT transport packets (security header, session header, 15 packet types).
//! * [`ma`]: MS-WDSMA application packets carried inside MT packets.
//! * [`block`]: one block of content as the server sends it (an MS-WDSMA DATA packet inside
//!   an MS-WDSMT ODATA or RDATA packet), a writable view for the data path.
//! * [`wdsc`]: MS-WDSC control packets (carried by `WdsRpcMessage`) and the typed
//!   MS-WDSMSI `WDSMC_OP_INITIATE` request and reply.
//!
//! Every decoder borrows from the datagram where it can and never allocates more than the
//! datagram's own length implies: counts are checked against the bytes present before any
//! vector is sized.

pub mod block;
pub mod ma;
pub mod msi;
pub mod mt;
pub mod security;
pub mod wdsc;

pub(crate) mod codec;
mod display;

pub use codec::{DecodeError, DecodeErrorKind};
pub use display::Datagram;
