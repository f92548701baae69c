//! Network-namespace testbed for the real binaries: `wdsmc serve` and many `wdsmc get` in
//! separate network namespaces joined by veth pairs to a bridge, with `tc netem` loss, delay,
//! reordering and rate limits on the links towards the clients.
//!
//! Every namespace is created by this test (holder processes from `unshare --net`, so nothing
//! is registered under /run/netns) and dies with its holder; the private addresses
//! 10.77.0.0/24 exist only inside them. Needs root with `ip`, `tc`, `unshare` and `nsenter`;
//! otherwise it prints why and skips.

#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::netns::{Bridge, Netns, missing_tool};
use common::process::{ServeProcess, wait_or_kill};

const BIN: &str = env!("CARGO_BIN_EXE_wdsmc");
const SERVER_IP: &str = "10.77.0.1";
const MSI_PORT: &str = "4011";

/// Bridge namespace plus one namespace per host, each attached by a veth pair.
struct Testbed {
    bridge: Bridge,
    server: Netns,
    clients: Vec<Netns>,
    /// Loss per client link in percent, when nftables stands in for netem.
    losses: std::cell::RefCell<[u32; 4]>,
}

const CLIENT_NAMES: [&str; 4] = ["wdsC1", "wdsC2", "wdsC3", "wdsC4"];

impl Testbed {
    fn new() -> Result<Testbed, String> {
        // Large MTUs keep a block in one frame, so a loss rate is a datagram loss rate.
        let bridge = Bridge::new(65535)?;
        let server = Netns::new("wdsS")?;
        let mut clients = Vec::new();
        for name in CLIENT_NAMES {
            clients.push(Netns::new(name)?);
        }
        let bed = Testbed {
            bridge,
            server,
            clients,
            losses: Default::default(),
        };
        bed.bridge.attach(&bed.server, "p0", SERVER_IP)?;
        for (i, ns) in bed.clients.iter().enumerate() {
            bed.bridge
                .attach(ns, &format!("p{}", i + 1), &format!("10.77.0.{}", 11 + i))?;
        }
        Ok(bed)
    }

    /// Shapes the link towards client namespace `i`: `loss_pct` random loss plus, where the
    /// kernel has netem, 5 ms ± 2 ms delay with reordering on lossy links. Kernels without
    /// netem (CI's has none) get the loss from an nftables `numgen random` rule on the bridge.
    fn shape(&self, i: usize, loss_pct: u32) -> Result<(), String> {
        let port = format!("p{}", i + 1);
        let loss = format!("{loss_pct}%");
        let mut netem = vec![
            "qdisc", "replace", "dev", &port, "root", "netem", "loss", &loss,
        ];
        if loss_pct > 0 {
            netem.extend(["delay", "5ms", "2ms", "reorder", "10%", "50%"]);
        }
        if self.bridge.ns.tc(&netem).is_ok() {
            return Ok(());
        }
        self.losses.borrow_mut()[i] = loss_pct;
        let mut rules = String::from(
            "table bridge wds_loss\ndelete table bridge wds_loss\ntable bridge wds_loss {\n  chain links {\n    type filter hook forward priority 0;\n",
        );
        for (n, pct) in self.losses.borrow().iter().enumerate() {
            if *pct > 0 {
                rules += &format!(
                    "    oifname \"p{}\" numgen random mod 100 < {pct} drop\n",
                    n + 1
                );
            }
        }
        rules += "  }\n}\n";
        self.bridge
            .ns
            .nft(&rules)
            .map_err(|e| format!("{e} (netem is unavailable too)"))
    }

    /// Caps the link towards client namespace `i` at `rate` (a tc rate, e.g. "2mbit").
    fn rate_limit(&self, i: usize, rate: &str) -> Result<(), String> {
        let port = format!("p{}", i + 1);
        self.bridge.ns.tc(&[
            "qdisc", "replace", "dev", &port, "root", "tbf", "rate", rate, "burst", "16k",
            "latency", "200ms",
        ])
    }

    fn clear_rate_limit(&self, i: usize) {
        let port = format!("p{}", i + 1);
        let _ = self.bridge.ns.tc(&["qdisc", "del", "dev", &port, "root"]);
    }
}

/// `wdsmc serve` inside the server namespace, serving `test` from `root`/content.
fn serve(bed: &Testbed, root: &Path, extra: &[&str]) -> ServeProcess {
    let namespace = format!("test={}", root.join("content").display());
    ServeProcess::spawn(
        bed.server
            .command(BIN)
            .args([
                "serve",
                "--namespace",
                &namespace,
                "--listen",
                SERVER_IP,
                "--msi-port",
                MSI_PORT,
                "--port-range",
                "42000-42099",
                "--group-range",
                "239.255.177.0/24",
                "--ttl",
                "1",
            ])
            .args(extra),
        root.join("server.log"),
    )
}

/// One `wdsmc get` in client namespace `ns`.
struct Getter {
    child: Child,
    out: PathBuf,
    stderr: PathBuf,
}

fn spawn_get(bed: &Testbed, ns: usize, dir: &Path, label: &str, extra: &[&str]) -> Getter {
    let out = dir.join(format!("{label}.bin"));
    let stderr = dir.join(format!("{label}.stderr"));
    let interface = format!("10.77.0.{}", 11 + ns);
    let server = format!("{SERVER_IP}:{MSI_PORT}");
    let child = bed.clients[ns]
        .command(BIN)
        .args([
            "get",
            "--server",
            &server,
            "--namespace",
            "test",
            "--object",
            "image.bin",
            "--interface",
            &interface,
            "--progress",
            "none",
            "-o",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    Getter { child, out, stderr }
}

impl Getter {
    /// Waits at most `limit`; returns the exit code and when it exited.
    fn wait(&mut self, limit: Duration) -> (i32, Instant) {
        let Some(status) = wait_or_kill(&mut self.child, limit) else {
            panic!(
                "{} did not exit within {limit:?}: {}",
                self.out.display(),
                self.stderr_text()
            );
        };
        (status.code().unwrap_or(-1), Instant::now())
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, signal: libc::c_int) {
        // nsenter execs wdsmc in place, so the child's pid is wdsmc's.
        // SAFETY: plain FFI call; the child has not been reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }
}

impl Drop for Getter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn content_dir(data: &[u8]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("content")).unwrap();
    std::fs::write(root.path().join("content/image.bin"), data).unwrap();
    root
}

/// Ten receivers over links with 1 %, 5 % (with delay and reordering) and 20 % loss, two of
/// them joining late: every one finishes byte-exact.
fn lossy_links_ten_receivers(bed: &Testbed) {
    for (i, pct) in [1, 5, 20, 0].into_iter().enumerate() {
        bed.shape(i, pct).unwrap();
    }
    let data = common::content(3 << 20, 6);
    let hash = common::sha256_hex(&data);
    let root = content_dir(&data);
    let served = serve(bed, root.path(), &["--max-rate", "20MiB/s"]);
    let dir = tempfile::tempdir().unwrap();
    let args = ["--timeout", "20s", "--sha256", &hash];
    let mut getters: Vec<Getter> = (0..8)
        .map(|i| spawn_get(bed, i % 4, dir.path(), &format!("early{i}"), &args))
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    for i in 0..2 {
        getters.push(spawn_get(
            bed,
            1 + i,
            dir.path(),
            &format!("late{i}"),
            &args,
        ));
    }
    for getter in &mut getters {
        let (code, _) = getter.wait(Duration::from_secs(90));
        assert_eq!(
            code,
            0,
            "{}: {}",
            getter.out.display(),
            getter.stderr_text()
        );
        assert!(
            std::fs::read(&getter.out).unwrap() == data,
            "{} differs",
            getter.out.display()
        );
    }
    drop(served);
    for i in 0..4 {
        bed.shape(i, 0).unwrap();
    }
}

/// The server dies mid-transfer: every client exits 6 within its --timeout plus a second,
/// with nothing under the final name.
fn server_killed_mid_transfer(bed: &Testbed) {
    let data = common::content(8 << 20, 7);
    let root = content_dir(&data);
    let mut served = serve(bed, root.path(), &["--max-rate", "2MiB/s"]);
    let dir = tempfile::tempdir().unwrap();
    let mut getters: Vec<Getter> = (0..4)
        .map(|i| {
            spawn_get(
                bed,
                i,
                dir.path(),
                &format!("orphan{i}"),
                &["--timeout", "2s"],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    served.child.kill().unwrap();
    let killed_at = Instant::now();
    for getter in &mut getters {
        let (code, at) = getter.wait(Duration::from_secs(10));
        assert_eq!(code, 6, "{}", getter.stderr_text());
        let after = at - killed_at;
        assert!(
            after <= Duration::from_millis(3200),
            "exited {after:?} after the kill"
        );
        assert!(!getter.out.exists(), "{} exists", getter.out.display());
    }
}

/// SIGINT to one client: it exits 130, the server logs its LEAVE CANCELLED, the others finish.
fn sigint_to_one_client(bed: &Testbed) {
    let data = common::content(4 << 20, 8);
    let hash = common::sha256_hex(&data);
    let root = content_dir(&data);
    let served = serve(bed, root.path(), &["--max-rate", "4MiB/s"]);
    let dir = tempfile::tempdir().unwrap();
    let args = ["--timeout", "10s", "--sha256", &hash];
    let mut getters: Vec<Getter> = (0..3)
        .map(|i| spawn_get(bed, i, dir.path(), &format!("stay{i}"), &args))
        .collect();
    let mut quitter = spawn_get(bed, 3, dir.path(), "quitter", &args);
    std::thread::sleep(Duration::from_millis(1000));
    quitter.signal(libc::SIGINT);
    let (code, _) = quitter.wait(Duration::from_secs(10));
    assert_eq!(code, 130, "{}", quitter.stderr_text());
    assert!(!quitter.out.exists());
    for getter in &mut getters {
        let (code, _) = getter.wait(Duration::from_secs(30));
        assert_eq!(code, 0, "{}", getter.stderr_text());
        assert!(std::fs::read(&getter.out).unwrap() == data);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !served.log_text().contains("LEAVE CANCELLED") {
        assert!(
            Instant::now() < deadline,
            "no LEAVE CANCELLED in the server log:\n{}",
            served.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client behind a slow link under --auto-disconnect-below is kicked: exit 7.
fn auto_disconnect_kick(bed: &Testbed) {
    bed.rate_limit(0, "2mbit").unwrap();
    let data = common::content(16 << 20, 9);
    let root = content_dir(&data);
    let served = serve(
        bed,
        root.path(),
        &["--auto-disconnect-below", "1MiB/s", "--max-rate", "20MiB/s"],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut slow = spawn_get(bed, 0, dir.path(), "slow", &["--timeout", "10s"]);
    let (code, _) = slow.wait(Duration::from_secs(60));
    assert_eq!(
        code,
        7,
        "{}\nserver log:\n{}",
        slow.stderr_text(),
        served.log_text()
    );
    assert!(!slow.out.exists());
    bed.clear_rate_limit(0);
}

#[test]
fn real_processes_across_namespaces() {
    if let Some(reason) = missing_tool(&["ip", "tc", "unshare", "nsenter"]) {
        eprintln!("skipped: {reason}");
        return;
    }
    let bed = match Testbed::new() {
        Ok(bed) => bed,
        Err(reason) => {
            eprintln!("skipped: cannot build the namespace testbed: {reason}");
            return;
        }
    };
    // Loss needs netem, or nftables where the kernel has no netem.
    if let Err(reason) = bed.shape(0, 0) {
        eprintln!("skipped: cannot shape the test links: {reason}");
        return;
    }
    let started = Instant::now();
    lossy_links_ten_receivers(&bed);
    eprintln!("lossy links: done at {:?}", started.elapsed());
    server_killed_mid_transfer(&bed);
    eprintln!("server killed: done at {:?}", started.elapsed());
    sigint_to_one_client(&bed);
    eprintln!("SIGINT: done at {:?}", started.elapsed());
    auto_disconnect_kick(&bed);
    eprintln!("auto-disconnect: done at {:?}", started.elapsed());
}
