//! `wdsmc doctor`, `wdsmc watch` and `wdsmc images` as real processes.
//!
//! * doctor and watch run in network namespaces this test creates (holder processes from
//!   `unshare --net`, a bridge namespace with veth pairs to a server, a client and a watcher
//!   namespace, private addresses 10.78.0.0/24 that exist only inside them), with nftables
//!   rules for the failures. They need root with `ip`, `nft`, `unshare` and `nsenter`;
//!   otherwise they print `SKIP:` and pass.
//! * images runs on 127.0.0.1 and is checked by an independent client (impacket, through
//!   `tests/peers/impacket_client.py --images`, with `$WDSMC_PYTHON`); without it only our
//!   client's answer is checked.

#![cfg(target_os = "linux")]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wdsmc");
const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");
const SERVER_IP: &str = "10.78.0.1";
const CLIENT_IP: &str = "10.78.0.11";
const WATCHER_IP: &str = "10.78.0.12";
const MSI_PORT: &str = "4011";
const RPC_PORT: &str = "4012";
const GROUPS: &str = "239.255.178.0/24";
const PASSWORD: &str = "Diag-pw1";

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace held open by a sleeping `unshare --net` process.
struct Netns {
    holder: Child,
}

impl Netns {
    fn new() -> Result<Netns, String> {
        let holder = Command::new("unshare")
            .args(["--net", "--", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let ns = Netns { holder };
        let own = std::fs::read_link("/proc/self/ns/net").ok();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(ns.path()).ok() == own {
            if Instant::now() > deadline {
                return Err("namespace never appeared".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program);
        cmd
    }

    fn ip(&self, args: &[&str]) -> Result<(), String> {
        run(self.command("ip").args(args))
    }

    /// Replaces this namespace's `wdsdiag` nftables table with `chain` rules (or removes it).
    fn nft(&self, rules: Option<&str>) {
        let mut script = String::from("table inet wdsdiag\ndelete table inet wdsdiag\n");
        if let Some(rules) = rules {
            script += &format!(
                "table inet wdsdiag {{\n  chain input {{\n    type filter hook input priority 0;\n    {rules}\n  }}\n}}\n"
            );
        }
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nft");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A bridge and three hosts: server, client, watcher.
struct Bed {
    bridge: Netns,
    server: Netns,
    client: Netns,
    watcher: Netns,
}

impl Bed {
    fn new() -> Result<Bed, String> {
        let bridge = Netns::new()?;
        bridge.ip(&["link", "add", "br0", "mtu", "9000", "type", "bridge"])?;
        bridge.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        bridge.ip(&["link", "set", "br0", "up"])?;
        let bed = Bed {
            bridge,
            server: Netns::new()?,
            client: Netns::new()?,
            watcher: Netns::new()?,
        };
        bed.attach(&bed.server, "p0", SERVER_IP)?;
        bed.attach(&bed.client, "p1", CLIENT_IP)?;
        bed.attach(&bed.watcher, "p2", WATCHER_IP)?;
        Ok(bed)
    }

    fn attach(&self, ns: &Netns, port: &str, addr: &str) -> Result<(), String> {
        let pid = ns.holder.id().to_string();
        self.bridge.ip(&[
            "link", "add", port, "mtu", "9000", "type", "veth", "peer", "name", "eth0", "mtu",
            "9000", "netns", &pid,
        ])?;
        self.bridge.ip(&["link", "set", port, "master", "br0"])?;
        self.bridge.ip(&["link", "set", port, "up"])?;
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        ns.ip(&["link", "set", "eth0", "up"])?;
        ns.ip(&["route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        Ok(())
    }
}

fn missing_tool(tools: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("`{tool}` not found"));
        }
    }
    None
}

fn bed_or_skip(test: &str) -> Option<Bed> {
    if let Some(why) = missing_tool(&["ip", "nft", "unshare", "nsenter"]) {
        eprintln!("SKIP: {test}: {why}");
        return None;
    }
    match Bed::new() {
        Ok(bed) => Some(bed),
        Err(e) => {
            eprintln!("SKIP: {test}: cannot build the namespaces: {e}");
            None
        }
    }
}

/// `wdsmc serve` in `ns`.
struct Served {
    child: Child,
    log: PathBuf,
}

impl Served {
    fn start(ns: &Netns, listen: &str, root: &Path, extra: &[&str]) -> Served {
        let log = root.join("server.log");
        let accounts = root.join("accounts");
        std::fs::write(&accounts, format!("WDS\\alice:{PASSWORD}\n")).unwrap();
        let namespace = format!("diag={}", root.join("content").display());
        let child = ns
            .command(BIN)
            .args(["serve", "--namespace", &namespace, "--listen", listen])
            .args(["--msi-port", MSI_PORT, "--rpc-port", RPC_PORT])
            .args(["--port-range", "42100-42199", "--group-range", GROUPS])
            .args(["--accounts", accounts.to_str().unwrap()])
            .args(["--security-mode", "checksum", "--log-format", "json"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let served = Served { child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !served.log_text().contains("listening") {
            assert!(
                Instant::now() < deadline,
                "server never started: {}",
                served.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        served
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn content_dir(size: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("content")).unwrap();
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("content").join("image.bin"), data).unwrap();
    dir
}

/// Runs `cmd` with a time limit.
fn output_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} took longer than {limit:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `wdsmc doctor` in the client namespace: (exit code, stdout).
fn doctor(bed: &Bed, object: &str, extra: &[&str]) -> (i32, String) {
    let server = format!("{SERVER_IP}:{MSI_PORT}");
    let out = output_bounded(
        bed.client
            .command(BIN)
            .args(["doctor", "--server", &server, "--namespace", "diag"])
            .args(["--object", object, "--interface", CLIENT_IP])
            .args(["--wait", "2s", "--multicast-wait", "3s", "--sample", "1s"])
            .args(extra),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "--- doctor {extra:?}:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

/// The line of step `title`, which must carry `mark`.
fn line<'a>(stdout: &'a str, mark: &str, title: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{mark} {title}")))
        .unwrap_or_else(|| panic!("no `{mark} {title}` line in:\n{stdout}"))
}

fn failures(stdout: &str) -> usize {
    stdout.lines().filter(|l| l.starts_with('✘')).count()
}

#[test]
fn doctor_pinpoints_each_failure_and_passes_a_healthy_session() {
    let Some(bed) = bed_or_skip("doctor") else {
        return;
    };
    let dir = content_dir(4 << 20);

    // No server at all: ICMP port unreachable on UDP.
    let (code, out) = doctor(&bed, "image.bin", &[]);
    assert_eq!(code, 6, "{out}");
    assert!(line(&out, "✘", "udp initiation").contains("port unreachable"));
    assert_eq!(failures(&out), 1);

    let served = Served::start(
        &bed.server,
        SERVER_IP,
        dir.path(),
        &["--max-rate", "2MiB/s"],
    );

    // Healthy, over UDP and over RPC.
    let (code, out) = doctor(&bed, "image.bin", &[]);
    assert_eq!(code, 0, "{out}");
    for step in [
        "name",
        "interface",
        "udp initiation",
        "initiate",
        "join",
        "multicast",
        "loss",
        "mtu",
        "leave",
    ] {
        line(&out, "✔", step);
    }
    assert!(line(&out, "✔", "interface").contains("MTU 9000"));
    assert!(line(&out, "✔", "leave").contains("CANCELLED"));
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let rpc_login = [
        "--user",
        "WDS\\alice",
        "--password-file",
        pw.to_str().unwrap(),
        "--rpc-port",
        RPC_PORT,
    ];
    let (code, out) = doctor(&bed, "image.bin", &rpc_login);
    assert_eq!(code, 0, "{out}");
    line(&out, "✔", "rpc login");
    line(&out, "✔", "multicast");

    // Unknown object.
    let (code, out) = doctor(&bed, "missing.bin", &[]);
    assert_eq!(code, 5, "{out}");
    assert!(line(&out, "✘", "initiate").contains("0xC1210103"));

    // Wrong password.
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "not-the-password\n").unwrap();
    let mut wrong = rpc_login;
    wrong[3] = bad.to_str().unwrap();
    let (code, out) = doctor(&bed, "image.bin", &wrong);
    assert_eq!(code, 9, "{out}");
    line(&out, "✘", "rpc login");
    assert!(out.contains("password"), "{out}");

    // UDP initiation dropped by the server's firewall: silence, and the RPC port is open.
    bed.server.nft(Some(&format!("udp dport {MSI_PORT} drop")));
    let (code, out) = doctor(&bed, "image.bin", &[]);
    assert_eq!(code, 6, "{out}");
    assert!(line(&out, "✘", "udp initiation").contains("no answer"));
    // ... which authenticated initiation does not need.
    let (code, out) = doctor(&bed, "image.bin", &rpc_login);
    assert_eq!(code, 0, "{out}");
    line(&out, "!", "udp initiation");
    bed.server.nft(None);

    // Multicast dropped on the client while unicast passes.
    bed.client.nft(Some(&format!(
        "ip daddr {GROUPS} udp dport 42100-42199 drop"
    )));
    let (code, out) = doctor(&bed, "image.bin", &[]);
    assert_eq!(code, 6, "{out}");
    line(&out, "✔", "join");
    assert!(line(&out, "✘", "multicast").contains("unicast works"));
    assert!(out.contains("IGMP"), "{out}");
    bed.client.nft(None);

    // --json: one object per step, and the exit code of the failing one.
    let (code, out) = doctor(&bed, "missing.bin", &["--json"]);
    assert_eq!(code, 5);
    let steps: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let last = steps.last().unwrap();
    assert_eq!(last["step"], "initiate");
    assert_eq!(last["status"], "fail");
    assert_eq!(last["exit_code"], 5);
    assert!(last["hint"].as_str().unwrap().contains("--object"));
    drop(served);
}

#[test]
fn watch_reports_the_rates_the_server_logs() {
    let Some(bed) = bed_or_skip("watch") else {
        return;
    };
    let dir = content_dir(24 << 20);
    let served = Served::start(
        &bed.server,
        SERVER_IP,
        dir.path(),
        &["--max-rate", "8MiB/s", "--session-timeout", "3s"],
    );
    let server = format!("{SERVER_IP}:{MSI_PORT}");
    // The watcher finds the group by initiation (no JOIN), then only listens.
    let watch_out = dir.path().join("watch.jsonl");
    let mut watch = bed
        .watcher
        .command(BIN)
        .args(["watch", "--server", &server, "--namespace", "diag"])
        .args(["--object", "image.bin", "--interface", WATCHER_IP])
        .args(["--json", "--idle-exit", "2s", "--duration", "60s"])
        .stdin(Stdio::null())
        .stdout(File::create(&watch_out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&watch_out)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "watch never reported");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = dir.path().join("got.bin");
    let get = output_bounded(
        bed.client
            .command(BIN)
            .args(["get", "--server", &server, "--namespace", "diag"])
            .args(["--object", "image.bin", "--interface", CLIENT_IP])
            .args(["--progress", "none", "-o", out.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    assert!(get.status.success(), "{get:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while watch.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "watch did not stop when idle");
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = std::fs::read_to_string(&watch_out).unwrap();
    let summary: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(summary["event"], "summary", "{lines}");
    // The server logs its statistics when the session times out.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        let log = served.log_text();
        if let Some(l) = log.lines().find(|l| l.contains("\"session_ended\"")) {
            break serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
        assert!(Instant::now() < deadline, "no session_ended in {log}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let fields = &ended["fields"];
    let server_rate = fields["data_rate"].as_f64().unwrap();
    let watch_rate = summary["span_rate"].as_f64().unwrap();
    eprintln!("server {server_rate:.0} B/s, watch {watch_rate:.0} B/s");
    assert!(server_rate > 1e6, "{fields}");
    assert!(
        (watch_rate - server_rate).abs() <= 0.10 * server_rate,
        "watch {watch_rate} vs server {server_rate}"
    );
    let totals = &summary["totals"];
    let server_packets =
        fields["odata_sent"].as_u64().unwrap() + fields["rdata_sent"].as_u64().unwrap();
    let watched = totals["odata"].as_u64().unwrap() + totals["rdata"].as_u64().unwrap();
    assert!(
        (watched as f64 - server_packets as f64).abs() <= 0.10 * server_packets as f64,
        "watched {watched} of {server_packets} packets"
    );
    // Per-interval reports carried rates while data flowed.
    let peak = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["data_rate"].as_f64())
        .fold(0.0, f64::max);
    assert!(peak > 0.5 * server_rate, "peak interval rate {peak}");
    // Nothing from the watcher reached the server: one client joined.
    let joins = served
        .log_text()
        .lines()
        .filter(|l| l.contains("\"client_joined\""))
        .count();
    assert_eq!(joins, 1, "{}", served.log_text());
}

/// A WIM header with an uncompressed UTF-16 XML resource and no image data.
fn fake_wim(images: &[(u32, &str)]) -> Vec<u8> {
    let mut xml = String::from("<WIM>");
    for (index, name) in images {
        xml += &format!("<IMAGE INDEX=\"{index}\"><NAME>{name}</NAME></IMAGE>");
    }
    xml += "</WIM>";
    let mut utf16 = vec![0xff, 0xfe];
    for unit in xml.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let mut out = vec![0u8; 208];
    out[..8].copy_from_slice(b"MSWIM\0\0\0");
    out[8..12].copy_from_slice(&208u32.to_le_bytes());
    out[72..79].copy_from_slice(&(utf16.len() as u64).to_le_bytes()[..7]);
    out[80..88].copy_from_slice(&208u64.to_le_bytes());
    out[88..96].copy_from_slice(&(utf16.len() as u64).to_le_bytes());
    out.extend_from_slice(&utf16);
    out
}

fn python() -> String {
    std::env::var("WDSMC_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn impacket_available() -> bool {
    match Command::new(python())
        .args(["-c", "import impacket"])
        .output()
    {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!(
                "SKIP (peer part): {} lacks impacket; pip install -r tests/peers/requirements.txt and set WDSMC_PYTHON",
                python()
            );
            false
        }
    }
}

#[test]
fn images_lists_what_serve_offers_and_impacket_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    std::fs::write(
        images.join("install.wim"),
        fake_wim(&[(1, "Windows Pro"), (2, "Windows Home")]),
    )
    .unwrap();
    std::fs::write(images.join("boot.wim"), b"not really a wim").unwrap();
    let drivers = dir.path().join("drivers");
    std::fs::create_dir(&drivers).unwrap();
    std::fs::write(drivers.join("net.cab"), vec![1u8; 1000]).unwrap();
    let accounts = dir.path().join("accounts");
    std::fs::write(&accounts, format!("WDS\\alice:{PASSWORD}\n")).unwrap();
    let (msi, rpc) = ("48711", "48712");
    let log = dir.path().join("server.log");
    let mut server = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1",
            "--msi-port",
            msi,
            "--rpc-port",
            rpc,
        ])
        .arg("--namespace")
        .arg(format!("WDS:Images={}", images.display()))
        .arg("--namespace")
        .arg(format!("drivers={}", drivers.display()))
        .arg("--accounts")
        .arg(&accounts)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("serving on")
    {
        assert!(Instant::now() < deadline, "server never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ours = output_bounded(
        Command::new(BIN)
            .args(["images", "--server", "127.0.0.1", "--rpc-port", rpc])
            .args(["--user", "WDS\\alice", "--json"])
            .env("WDSMC_PASSWORD", PASSWORD),
        Duration::from_secs(30),
    );
    assert!(ours.status.success(), "{ours:?}");
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let listed: Vec<(String, String, u64, String, u64)> = ours["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["group"].as_str().unwrap().to_string(),
                i["name"].as_str().unwrap().to_string(),
                i["index"].as_u64().unwrap(),
                i["namespace"].as_str().unwrap().to_string(),
                i["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let wim_size = std::fs::metadata(images.join("install.wim")).unwrap().len();
    let s = |x: &str| x.to_string();
    assert_eq!(
        listed,
        vec![
            (s("WDS:Images"), s("boot.wim"), 1, s("WDS:Images"), 16),
            (
                s("WDS:Images"),
                s("Windows Pro"),
                1,
                s("WDS:Images"),
                wim_size
            ),
            (
                s("WDS:Images"),
                s("Windows Home"),
                2,
                s("WDS:Images"),
                wim_size
            ),
            (s("drivers"), s("net.cab"), 1, s("drivers"), 1000),
        ]
    );
    // The table form.
    let table = output_bounded(
        Command::new(BIN)
            .args(["images", "--server", "127.0.0.1", "--rpc-port", rpc])
            .args(["--user", "WDS\\alice"])
            .env("WDSMC_PASSWORD", PASSWORD),
        Duration::from_secs(30),
    );
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("GROUP"), "{table}");
    assert!(table.contains("Windows Home"), "{table}");
    // A wrong password is exit 9; no user at all is a usage error.
    let wrong = output_bounded(
        Command::new(BIN)
            .args(["images", "--server", "127.0.0.1", "--rpc-port", rpc])
            .args(["--user", "WDS\\alice"])
            .env("WDSMC_PASSWORD", "wrong"),
        Duration::from_secs(30),
    );
    assert_eq!(wrong.status.code(), Some(9), "{wrong:?}");
    let anonymous = output_bounded(
        Command::new(BIN).args(["images", "--server", "127.0.0.1", "--rpc-port", rpc]),
        Duration::from_secs(30),
    );
    assert_eq!(anonymous.status.code(), Some(2));

    if impacket_available() {
        let peer = output_bounded(
            Command::new(python())
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .arg(format!("{PEERS}/impacket_client.py"))
                .args([
                    "--port",
                    rpc,
                    "--user",
                    "WDS\\alice",
                    "--password",
                    PASSWORD,
                ])
                .arg("--images"),
            Duration::from_secs(60),
        );
        let report: serde_json::Value =
            serde_json::from_slice(&peer.stdout).unwrap_or_else(|e| panic!("{e}: {peer:?}"));
        assert_eq!(report["ok"], true, "{report}");
        let theirs: Vec<(String, String, u64, String, u64)> = report["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["group"].as_str().unwrap().to_string(),
                    i["name"].as_str().unwrap().to_string(),
                    i["index"].as_u64().unwrap(),
                    i["namespace"].as_str().unwrap().to_string(),
                    i["namespace_size"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            theirs, listed,
            "impacket reads the server's reply differently"
        );
        // Every entry carries its container path and the resource path.
        for image in report["images"].as_array().unwrap() {
            assert!(image["path"].as_str().unwrap().starts_with('\\'));
            assert_eq!(image["resourcefilepath"], image["path"]);
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}
