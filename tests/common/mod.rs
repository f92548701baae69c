//! Helpers shared by the loopback integration tests: a reference server on 127.0.0.1 with its
//! own port range and group, and content files.

#![allow(dead_code)]

pub mod memory_download;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod observed;
pub mod peers;
pub mod process;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wdsmc::server::{NamespaceConfig, Server, ServerConfig};

/// Deterministic pseudo-random content of `len` bytes.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Lower-case hex SHA-256 of `data`, as `wdsmc get --sha256` takes it.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Serves namespace `ns` from a new temporary folder. `slot` picks a port range and group
    /// block private to one test, so tests run in parallel without sharing traffic.
    pub fn start(slot: u16, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::new(vec![NamespaceConfig {
            name: "ns".into(),
            root: dir.path().to_path_buf(),
        }]);
        config.listen = IpAddr::V4(Ipv4Addr::LOCALHOST);
        config.msi_port = 0;
        let base = 41000 + slot * 20;
        config.port_range = (base, base + 19);
        config.group_range_v4 = (Ipv4Addr::new(239, 255, 100 + slot as u8, 0), 24);
        config.seed = Some(u64::from(slot));
        configure(&mut config);
        let server = Server::start(config).expect("server starts");
        TestServer { server, dir }
    }

    pub fn put(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub fn addr(&self) -> String {
        self.server.msi_addr().to_string()
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// A file's text; empty while it does not exist yet (a log not yet written).
pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub const SHORT: Duration = Duration::from_secs(10);
