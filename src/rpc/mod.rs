//! Placeholder for the DCE/RPC module: only the security seam, so the auth layer compiles on
//! its own branch. At merge the real `rpc` module replaces this file.
pub mod security;
