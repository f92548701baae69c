//! `wdsmc demo`: a self-contained tour on loopback. Writes a random file to a temporary folder,
//! serves it from an in-process server on 127.0.0.1, downloads it with several clients at once
//! and checks every copy's SHA-256. Everything is removed afterwards.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use wdsmc::download::{Destination, DownloadOptions, Output, hex};
use wdsmc::server::log::LogSink;
use wdsmc::server::{NamespaceConfig, Server, ServerConfig};
use wdsmc::transport::{InterfaceSpec, Request};

use super::args::DemoArgs;
use super::exit::{self, ExitCode, Failure};
use super::jobs::{self, Job, Plan};
use super::progress::Reporter;
use super::units::format_bytes;

const NAMESPACE: &str = "demo";
const OBJECT: &str = "random.bin";

/// Removes the demo folder however the demo ends.
struct TempFolder(PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn run(args: DemoArgs) -> Result<(), Failure> {
    let mut rng = SmallRng::from_os_rng();
    let folder = TempFolder(std::env::temp_dir().join(format!(
        "wdsmc-demo-{}-{:08x}",
        std::process::id(),
        rng.next_u32()
    )));
    let served = folder.0.join("served");
    let downloads = folder.0.join("downloads");
    for dir in [&served, &downloads] {
        fs::create_dir_all(dir).map_err(|e| {
            Failure::msg(
                ExitCode::Output,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
    }
    let digest = write_random_file(&served.join(OBJECT), args.size, &mut rng)
        .map_err(|e| Failure::msg(ExitCode::Output, format!("cannot write the demo file: {e}")))?;

    let labels: Vec<String> = (1..=args.clients).map(|n| format!("client {n}")).collect();
    // Server lines go through the renderer too, so they print above the bars.
    let reporter = Arc::new(Reporter::new(args.progress, false, 0, &labels));
    let mut config = ServerConfig::new(vec![NamespaceConfig {
        name: NAMESPACE.into(),
        root: served.clone(),
    }]);
    let log_reporter = Arc::clone(&reporter);
    config.log_sink = Some(LogSink(Arc::new(move |line: &str| log_reporter.note(line))));
    config.listen = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.msi_port = 0;
    config.group_range_v4 = (Ipv4Addr::new(239, 255, 77, 0), 24);
    config.port_range = (61_000, 61_999);
    config.ttl = 1;
    let server = Server::start(config).map_err(|e| Failure::new(ExitCode::NetworkSetup, e))?;
    let server_addr = server.msi_addr();
    reporter.note(&format!(
        "wdsmc demo: serving a {} random file as {NAMESPACE}/{OBJECT} on {server_addr}; {} clients download it",
        format_bytes(args.size),
        args.clients
    ));

    let options = DownloadOptions {
        replace_existing: true,
        keep_partial: false,
        sha256: Some(digest),
    };
    let mut jobs = Vec::with_capacity(args.clients as usize);
    for n in 1..=args.clients {
        let target = downloads.join(format!("client-{n}.bin"));
        let output =
            Output::create(Destination::File(target), OBJECT, options.clone()).map_err(|e| {
                Failure::msg(
                    ExitCode::for_download_error(&e),
                    exit::download_message(&e, false),
                )
            })?;
        jobs.push(Job {
            label: labels[n as usize - 1].clone(),
            object: OBJECT.into(),
            output,
        });
    }
    let mut request = Request::new(server_addr.to_string(), NAMESPACE, OBJECT);
    request.interface = Some(InterfaceSpec::Address(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let plan = Plan {
        request,
        trace: None,
    };
    let started = Instant::now();
    let code = jobs::run(jobs, plan, Arc::clone(&reporter));
    server.shutdown();
    if code != ExitCode::Success {
        return Err(Failure::msg(
            code,
            format!("the demo failed (exit status {code})"),
        ));
    }
    reporter.line(&format!(
        "wdsmc demo: {} clients each received {} in {:.1}s;",
        args.clients,
        format_bytes(args.size),
        started.elapsed().as_secs_f64(),
    ));
    reporter.line(&format!(
        "every copy's SHA-256 matched the original, {}…",
        &hex(&digest)[..16]
    ));
    Ok(())
}

fn write_random_file(
    path: &std::path::Path,
    size: u64,
    rng: &mut SmallRng,
) -> std::io::Result<[u8; 32]> {
    let mut file = std::io::BufWriter::new(fs::File::create(path)?);
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        rng.fill_bytes(&mut chunk[..n]);
        file.write_all(&chunk[..n])?;
        hasher.update(&chunk[..n]);
        left -= n as u64;
    }
    file.flush()?;
    Ok(hasher.finalize().into())
}
