//! Diagnosis without the command line: [`doctor`] walks the chain from the server's name to
//! multicast data on the interface and names the first link that breaks; [`watch`] observes a
//! session's multicast without taking part in it; [`trace`] reads back a `--trace` file.

pub mod doctor;
pub mod trace;
pub mod watch;
