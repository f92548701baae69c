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

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::netns::{Bridge, Netns, missing_tool};
use common::peers::{PEERS, imports_or_skip, python_command};
use common::process::{ServeProcess, wait_or_kill};

const BIN: &str = env!("CARGO_BIN_EXE_wdsmc");
const SERVER_IP: &str = "10.78.0.1";
const CLIENT_IP: &str = "10.78.0.11";
const WATCHER_IP: &str = "10.78.0.12";
const MSI_PORT: &str = "4011";
const RPC_PORT: &str = "4012";
const GROUPS: &str = "239.255.178.0/24";
const PASSWORD: &str = "Diag-pw1";

/// Replaces `ns`'s `wdsdiag` nftables table with `chain` rules (or removes it).
fn filter_input(ns: &Netns, rules: Option<&str>) {
    let mut script = String::from("table inet wdsdiag\ndelete table inet wdsdiag\n");
    if let Some(rules) = rules {
        script += &format!(
            "table inet wdsdiag {{\n  chain input {{\n    type filter hook input priority 0;\n    {rules}\n  }}\n}}\n"
        );
    }
    ns.nft(&script).unwrap_or_else(|e| panic!("{e}"));
}

/// A bridge and three hosts: server, client, watcher.
struct Bed {
    bridge: Bridge,
    server: Netns,
    client: Netns,
    watcher: Netns,
}

impl Bed {
    fn new() -> Result<Bed, String> {
        let bed = Bed {
            bridge: Bridge::new(9000)?,
            server: Netns::new("server")?,
            client: Netns::new("client")?,
            watcher: Netns::new("watcher")?,
        };
        bed.bridge.attach(&bed.server, "p0", SERVER_IP)?;
        bed.bridge.attach(&bed.client, "p1", CLIENT_IP)?;
        bed.bridge.attach(&bed.watcher, "p2", WATCHER_IP)?;
        Ok(bed)
    }
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

/// `wdsmc serve` in `ns`, serving `diag` from `root`/content, with the account `WDS\alice`.
fn serve(ns: &Netns, listen: &str, root: &Path, extra: &[&str]) -> ServeProcess {
    let accounts = root.join("accounts");
    std::fs::write(&accounts, format!("WDS\\alice:{PASSWORD}\n")).unwrap();
    let namespace = format!("diag={}", root.join("content").display());
    ServeProcess::spawn(
        ns.command(BIN)
            .args(["serve", "--namespace", &namespace, "--listen", listen])
            .args(["--msi-port", MSI_PORT, "--rpc-port", RPC_PORT])
            .args(["--port-range", "42100-42199", "--group-range", GROUPS])
            .args(["--accounts", accounts.to_str().unwrap()])
            .args(["--security-mode", "checksum", "--log-format", "json"])
            .args(extra),
        root.join("server.log"),
    )
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
    let exited = wait_or_kill(&mut child, limit).is_some();
    let out = child.wait_with_output().unwrap();
    assert!(
        exited,
        "{cmd:?} took longer than {limit:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    out
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

    let served = serve(
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
    filter_input(&bed.server, Some(&format!("udp dport {MSI_PORT} drop")));
    let (code, out) = doctor(&bed, "image.bin", &[]);
    assert_eq!(code, 6, "{out}");
    assert!(line(&out, "✘", "udp initiation").contains("no answer"));
    // ... which authenticated initiation does not need.
    let (code, out) = doctor(&bed, "image.bin", &rpc_login);
    assert_eq!(code, 0, "{out}");
    line(&out, "!", "udp initiation");
    filter_input(&bed.server, None);

    // Multicast dropped on the client while unicast passes.
    filter_input(
        &bed.client,
        Some(&format!("ip daddr {GROUPS} udp dport 42100-42199 drop")),
    );
    let (code, out) = doctor(&bed, "image.bin", &[]);
    assert_eq!(code, 6, "{out}");
    line(&out, "✔", "join");
    assert!(line(&out, "✘", "multicast").contains("unicast works"));
    assert!(out.contains("IGMP"), "{out}");
    filter_input(&bed.client, None);

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
    let served = serve(
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

/// (group, name, index, namespace, size) of each image in a JSON list; the two clients
/// name the size field differently (`size_key`).
fn image_rows(
    images: &serde_json::Value,
    size_key: &str,
) -> Vec<(String, String, u64, String, u64)> {
    images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["group"].as_str().unwrap().to_string(),
                i["name"].as_str().unwrap().to_string(),
                i["index"].as_u64().unwrap(),
                i["namespace"].as_str().unwrap().to_string(),
                i[size_key].as_u64().unwrap(),
            )
        })
        .collect()
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
    let _served = ServeProcess::spawn(
        Command::new(BIN)
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
            .arg(&accounts),
        dir.path().join("server.log"),
    );
    let ours = output_bounded(
        Command::new(BIN)
            .args(["images", "--server", "127.0.0.1", "--rpc-port", rpc])
            .args(["--user", "WDS\\alice", "--json"])
            .env("WDSMC_PASSWORD", PASSWORD),
        Duration::from_secs(30),
    );
    assert!(ours.status.success(), "{ours:?}");
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let listed = image_rows(&ours["images"], "size");
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

    // Our client's answer is checked either way; impacket's only where it is installed.
    if imports_or_skip("impacket") {
        let peer = output_bounded(
            python_command()
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
        let theirs = image_rows(&report["images"], "namespace_size");
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
}
