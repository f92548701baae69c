//! The tests' child processes: `wdsmc serve` from its start to the test's end, and waits with
//! a time limit.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `serve` and the options every loopback `wdsmc serve` of the tests starts with: namespace
/// `namespace` (NAME=FOLDER) on 127.0.0.1, MSI on `msi_port` (0: any free port), session
/// ports `first_port` to `first_port + 9` and groups 239.255.`group`.0/24, TTL 1. Each test
/// gets ports and groups no other test uses.
pub fn loopback_serve_args(
    namespace: &str,
    msi_port: u16,
    first_port: u16,
    group: u16,
) -> Vec<String> {
    [
        "serve",
        "--namespace",
        namespace,
        "--listen",
        "127.0.0.1",
        "--msi-port",
        &msi_port.to_string(),
        "--port-range",
        &format!("{first_port}-{}", first_port + 9),
        "--group-range",
        &format!("239.255.{group}.0/24"),
        "--ttl",
        "1",
    ]
    .map(String::from)
    .into()
}

/// `wdsmc serve` started by a test, its stderr in a log file; killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub log: PathBuf,
    /// Where it serves MSI, and RPC when it has a listener: from its "serving on" line.
    pub msi: SocketAddr,
    pub rpc: Option<SocketAddr>,
}

impl ServeProcess {
    /// Spawns `command` (a `wdsmc serve`, perhaps under `nsenter` or `faketime`) with stdin
    /// and stdout null and stderr into `log`, and waits up to 20 s for its "serving on" line.
    /// Panics, with the log, when it exits or the time runs out first.
    pub fn spawn(command: &mut Command, log: PathBuf) -> ServeProcess {
        Self::spawn_until(command, log, "serving on")
    }

    /// [`spawn`](Self::spawn), returning as soon as a log line holds `needle` instead; the
    /// addresses are those of that line ("serving on" names MSI and RPC, the server's
    /// "server listening on" line MSI only).
    pub fn spawn_until(command: &mut Command, log: PathBuf, needle: &str) -> ServeProcess {
        // Its own process group, so the drop also ends a `wdsmc serve` that a wrapper such as
        // `faketime` forked instead of exec'ing (killing the wrapper alone orphans it).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(command, 0);
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("starting wdsmc serve");
        let mut process = ServeProcess {
            child,
            log,
            msi: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            rpc: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = process.log_text();
            // "wdsmc: serving on MSI-ADDR[ and RPC RPC-ADDR] (Ctrl-C to stop)"
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                let mut addrs = line
                    .split_whitespace()
                    .filter_map(|w| w.parse::<SocketAddr>().ok());
                process.msi = addrs
                    .next()
                    .unwrap_or_else(|| panic!("no MSI address in {line:?}"));
                process.rpc = addrs.next();
                return process;
            }
            if let Some(status) = process.child.try_wait().unwrap() {
                panic!("wdsmc serve exited with {status}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "wdsmc serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        super::read_text(&self.log)
    }

    /// Waits up to `limit` for `needle` in the log; panics with the log when it never shows.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.log_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "server log never showed {needle:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Ok(group) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group `spawn` created
            // for this child; it touches no memory.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `limit` for `child` to exit; kills and reaps it and returns `None` when it
/// does not.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    wait_polling(child, limit, Duration::from_millis(20), || {})
}

/// [`wait_or_kill`] for a child that must finish: panics, naming `what`, past `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    wait_or_kill(child, limit).unwrap_or_else(|| panic!("{what} did not finish within {limit:?}"))
}

/// [`wait_or_kill`], reading the child's peak resident memory ([`vm_hwm_kib`]) every `every`
/// meanwhile; also returns the highest peak read.
pub fn wait_sampling_peak(
    child: &mut Child,
    limit: Duration,
    every: Duration,
) -> (Option<ExitStatus>, i64) {
    let pid = child.id();
    let mut peak = 0;
    let status = wait_polling(child, limit, every, || peak = peak.max(vm_hwm_kib(pid)));
    (status, peak)
}

fn wait_polling(
    child: &mut Child,
    limit: Duration,
    every: Duration,
    mut each_poll: impl FnMut(),
) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        each_poll();
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Process `pid`'s peak resident set (VmHWM) in KiB while it runs; 0 once it is gone or
/// where there is no /proc. (`wait4`'s ru_maxrss is no use here: it includes the forking
/// test process's own peak.)
pub fn vm_hwm_kib(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
