//! End-to-end tests of the real binaries: `wdsmc serve` as a process on 127.0.0.1 and
//! `wdsmc get` against it. Loopback only: the server listens on 127.0.0.1, sends with TTL 1 to
//! groups in 239.255.0.0/16, and every client uses `--interface 127.0.0.1`. Each test has its
//! own MSI port (47000 + n), session port range and group range, so tests can run in parallel.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::process::{ServeProcess, loopback_serve_args, wait_or_kill};

const BIN: &str = env!("CARGO_BIN_EXE_wdsmc");

/// A `wdsmc serve` process with its own content folder; killed when dropped.
struct Served {
    process: ServeProcess,
    _root: tempfile::TempDir,
}

impl Served {
    fn start(n: u16, files: &[(&str, &[u8])], extra: &[&str]) -> Served {
        let root = tempfile::tempdir().unwrap();
        let content = root.path().join("content");
        std::fs::create_dir(&content).unwrap();
        for (name, data) in files {
            std::fs::write(content.join(name), data).unwrap();
        }
        let namespace = format!("test={}", content.display());
        let process = ServeProcess::spawn(
            Command::new(BIN)
                .args(loopback_serve_args(
                    &namespace,
                    47000 + n,
                    47200 + n * 10,
                    80 + n,
                ))
                .args(extra),
            root.path().join("server.log"),
        );
        Served {
            process,
            _root: root,
        }
    }

    fn server(&self) -> String {
        self.process.msi.to_string()
    }
}

struct Finished {
    status: ExitStatus,
    stdout: PathBuf,
    stderr: String,
}

/// Starts `wdsmc get ARGS` in `dir`, with stdout and stderr going to files there.
fn spawn_get(dir: &Path, args: &[&str]) -> (Child, PathBuf, PathBuf) {
    let stdout = dir.join("get.stdout");
    let stderr = dir.join("get.stderr");
    let child = Command::new(BIN)
        .arg("get")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .expect("starting wdsmc get");
    (child, stdout, stderr)
}

fn wait_with_deadline(
    mut child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    limit: Duration,
) -> Finished {
    let status = wait_or_kill(&mut child, limit);
    let stderr = std::fs::read_to_string(&stderr).unwrap_or_default();
    let Some(status) = status else {
        panic!("wdsmc get did not finish within {limit:?}; stderr:\n{stderr}");
    };
    Finished {
        status,
        stdout,
        stderr,
    }
}

fn get(dir: &Path, args: &[&str], limit: Duration) -> Finished {
    let (child, stdout, stderr) = spawn_get(dir, args);
    wait_with_deadline(child, stdout, stderr, limit)
}

/// Files in `dir` other than the test's own stdout/stderr captures.
fn downloads_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "get.stdout" && n != "get.stderr")
        .collect();
    names.sort();
    names
}

/// No file (final, partial or temporary) is left in `dir`.
fn assert_nothing_downloaded(dir: &Path) {
    let left = downloads_in(dir);
    assert!(left.is_empty(), "files left: {left:?}");
}

#[test]
fn downloads_byte_exact_with_sha256() {
    let data = common::content(3 << 20, 1);
    let served = Served::start(1, &[("image.wim", &data)], &[]);
    let dir = tempfile::tempdir().unwrap();
    let hash = common::sha256_hex(&data);
    let server = served.server();
    let args = [
        "--server",
        &server,
        "--namespace",
        "test",
        "--object",
        "image.wim",
        "--interface",
        "127.0.0.1",
        "--sha256",
        &hash,
        "--progress",
        "json",
        "--start-timeout",
        "10s",
    ];
    let done = get(dir.path(), &args, Duration::from_secs(60));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    assert!(
        std::fs::read(dir.path().join("image.wim")).unwrap() == data,
        "downloaded bytes differ"
    );
    assert_eq!(
        downloads_in(dir.path()),
        vec!["image.wim".to_string()],
        "partial file left behind"
    );

    let events: Vec<serde_json::Value> = done
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(events.iter().all(|e| e["schema"] == "wdsmc.progress/1"));
    let start = events
        .iter()
        .find(|e| e["event"] == "start")
        .expect("a start event");
    assert_eq!(start["size"], data.len() as u64);
    assert!(start["group"].as_str().unwrap().starts_with("239.255.81."));
    let result = events
        .iter()
        .rev()
        .find(|e| e["event"] == "result")
        .expect("a result event");
    assert_eq!(result["exit_code"], 0);
    assert_eq!(result["statistics"]["bytes_received"], data.len() as u64);
    let finish = result["finish_ms"].as_u64().expect("finish_ms");
    assert!(finish <= result["elapsed_ms"].as_u64().unwrap(), "{result}");
}

#[test]
fn downloads_two_objects_at_once_into_a_new_folder() {
    let first = common::content(2 << 20, 2);
    let second = common::content((1 << 20) + 12345, 3);
    let served = Served::start(2, &[("first.bin", &first), ("second.bin", &second)], &[]);
    let dir = tempfile::tempdir().unwrap();
    let server = served.server();
    let args = [
        "--server",
        &server,
        "--namespace",
        "test",
        "--object",
        "first.bin",
        "--content",
        "second.bin",
        "-o",
        "out",
        "--interface",
        "127.0.0.1",
        "--progress",
        "plain",
        "--start-timeout",
        "10s",
    ];
    let done = get(dir.path(), &args, Duration::from_secs(60));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    assert!(std::fs::read(dir.path().join("out/first.bin")).unwrap() == first);
    assert!(std::fs::read(dir.path().join("out/second.bin")).unwrap() == second);
    assert_eq!(
        downloads_in(&dir.path().join("out")),
        vec!["first.bin".to_string(), "second.bin".to_string()]
    );
}

#[test]
fn unknown_namespace_is_refused_with_the_server_code() {
    let served = Served::start(3, &[("a.bin", b"abc")], &[]);
    let dir = tempfile::tempdir().unwrap();
    let server = served.server();
    let args = [
        "--server",
        &server,
        "--namespace",
        "no-such-namespace",
        "--object",
        "a.bin",
        "--interface",
        "127.0.0.1",
        "--start-timeout",
        "10s",
    ];
    let done = get(dir.path(), &args, Duration::from_secs(30));
    assert_eq!(done.status.code(), Some(5), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr.contains("0x"),
        "the server's code should be printed:\n{}",
        done.stderr
    );
    assert!(!done.stderr.contains("complete"), "{}", done.stderr);
    assert_nothing_downloaded(dir.path());
}

#[test]
fn wrong_sha256_deletes_the_file_and_exits_8() {
    let data = common::content(1 << 20, 4);
    let served = Served::start(4, &[("a.bin", &data)], &[]);
    let dir = tempfile::tempdir().unwrap();
    let server = served.server();
    let wrong = "0".repeat(64);
    let args = [
        "--server",
        &server,
        "--namespace",
        "test",
        "--object",
        "a.bin",
        "--interface",
        "127.0.0.1",
        "--sha256",
        &wrong,
        "--keep-partial",
        "--start-timeout",
        "10s",
    ];
    let done = get(dir.path(), &args, Duration::from_secs(60));
    assert_eq!(done.status.code(), Some(8), "stderr:\n{}", done.stderr);
    assert!(done.stderr.contains("SHA-256 mismatch"), "{}", done.stderr);
    assert_nothing_downloaded(dir.path());
}

#[cfg(unix)]
#[test]
fn sigint_cancels_and_the_server_sees_leave_cancelled() {
    let data = common::content(8 << 20, 5);
    let served = Served::start(5, &[("slow.bin", &data)], &["--max-rate", "256k"]);
    let dir = tempfile::tempdir().unwrap();
    let server = served.server();
    let args = [
        "--server",
        &server,
        "--namespace",
        "test",
        "--object",
        "slow.bin",
        "--interface",
        "127.0.0.1",
        "--progress",
        "plain",
        "--start-timeout",
        "10s",
    ];
    interrupt_once_flowing(&served, dir.path(), &args);
}

/// Starts `wdsmc get ARGS`, sends SIGINT once data flows, and checks the cancel: exit 130,
/// nothing left in `dir`, and LEAVE CANCELLED in the server's log.
#[cfg(unix)]
fn interrupt_once_flowing(served: &Served, dir: &Path, args: &[&str]) {
    let (child, stdout, stderr) = spawn_get(dir, args);
    // Wait until data flows (the start line is printed on SessionStart), then a bit more.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&stderr)
        .unwrap_or_default()
        .contains("group ")
    {
        assert!(
            Instant::now() < deadline,
            "no start line:\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id() as libc::pid_t;
    // SAFETY: sending a signal to our own child process by its id.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let done = wait_with_deadline(child, stdout, stderr, Duration::from_secs(10));
    assert_eq!(done.status.code(), Some(130), "stderr:\n{}", done.stderr);
    assert!(!done.stderr.contains("complete,"), "{}", done.stderr);
    assert_nothing_downloaded(dir);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = served.process.log_text();
        let seen = log.lines().any(|line| {
            let upper = line.to_ascii_uppercase();
            upper.contains("LEAVE") && upper.contains("CANCEL")
        });
        if seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server log shows no LEAVE CANCELLED:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn no_server_times_out_naming_the_phase() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port (it is in this file's MSI range, test 6 starts no server).
    let args = [
        "--server",
        "127.0.0.1:47006",
        "--namespace",
        "test",
        "--object",
        "a.bin",
        "--interface",
        "127.0.0.1",
        "--start-timeout",
        "2s",
    ];
    let started = Instant::now();
    let done = get(dir.path(), &args, Duration::from_secs(30));
    assert_eq!(done.status.code(), Some(6), "stderr:\n{}", done.stderr);
    assert!(
        done.stderr.contains("session initiation"),
        "the phase should be named:\n{}",
        done.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_nothing_downloaded(dir.path());
}

#[test]
fn stdout_stream_matches_the_object() {
    let data = common::content((2 << 20) + 777, 7);
    let served = Served::start(7, &[("stream.bin", &data)], &[]);
    let dir = tempfile::tempdir().unwrap();
    let server = served.server();
    let hash = common::sha256_hex(&data);
    let args = [
        "--server",
        &server,
        "--namespace",
        "test",
        "--object",
        "stream.bin",
        "--interface",
        "127.0.0.1",
        "-o",
        "-",
        "--sha256",
        &hash,
        "--cache-size",
        "256k",
        "--start-timeout",
        "10s",
    ];
    let done = get(dir.path(), &args, Duration::from_secs(60));
    assert_eq!(done.status.code(), Some(0), "stderr:\n{}", done.stderr);
    assert!(
        std::fs::read(&done.stdout).unwrap() == data,
        "streamed bytes differ"
    );
    assert_nothing_downloaded(dir.path());
}

#[test]
fn keep_partial_leaves_the_partial_file_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on 47008 (test 8 starts no server).
    let args = [
        "--server",
        "127.0.0.1:47008",
        "--namespace",
        "test",
        "--object",
        "kept.bin",
        "--interface",
        "127.0.0.1",
        "--start-timeout",
        "1s",
        "--keep-partial",
    ];
    let done = get(dir.path(), &args, Duration::from_secs(30));
    assert_eq!(done.status.code(), Some(6), "stderr:\n{}", done.stderr);
    let files = downloads_in(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with(".kept.bin.wdsmc-partial-"),
        "{files:?}"
    );
    assert!(
        done.stderr.contains("partial data kept in"),
        "{}",
        done.stderr
    );
    assert!(!dir.path().join("kept.bin").exists());
}

// --- Authenticated initiation (WDS Control Protocol over RPC) -----------------------------

const ALICE_PASSWORD: &str = "Tr0ub4dor&3 horse";

/// A `wdsmc serve` with an RPC listener on 47900 + n and an accounts file holding WDS\alice.
fn served_with_accounts(n: u16, files: &[(&str, &[u8])], extra: &[&str]) -> (Served, u16) {
    let accounts =
        std::env::temp_dir().join(format!("wdsmc-test-accounts-{}-{n}", std::process::id()));
    std::fs::write(
        &accounts,
        format!("# test accounts\nWDS\\alice:{ALICE_PASSWORD}\nbob:other\n"),
    )
    .unwrap();
    let rpc_port = 47900 + n;
    let rpc = rpc_port.to_string();
    let accounts_arg = accounts.to_str().unwrap().to_string();
    let mut args = vec![
        "--accounts",
        &accounts_arg,
        "--rpc-port",
        &rpc,
        "--sign-key-bits",
        "1024",
    ];
    args.extend_from_slice(extra);
    let served = Served::start(n, files, &args);
    let _ = std::fs::remove_file(&accounts);
    (served, rpc_port)
}

fn password_file(dir: &Path, password: &str) -> PathBuf {
    let path = dir.join("password.txt");
    std::fs::write(&path, format!("{password}\n")).unwrap();
    path
}

#[test]
fn authenticated_downloads_are_byte_exact_in_each_security_mode() {
    for (n, mode, expected) in [
        (10, "checksum", "security checksum/checksum"),
        (11, "hash", "security hash/hash"),
        (12, "sign", "security sign/hash"),
    ] {
        let data = common::content(2 << 20, u64::from(n));
        let (served, rpc_port) =
            served_with_accounts(n, &[("image.wim", &data)], &["--security-mode", mode]);
        let dir = tempfile::tempdir().unwrap();
        let secrets = tempfile::tempdir().unwrap();
        let password = password_file(secrets.path(), ALICE_PASSWORD);
        let (server, rpc, hash) = (
            served.server(),
            rpc_port.to_string(),
            common::sha256_hex(&data),
        );
        let args = [
            "--server",
            &server,
            "--namespace",
            "test",
            "--object",
            "image.wim",
            "--interface",
            "127.0.0.1",
            "--user",
            "WDS\\alice",
            "--password-file",
            password.to_str().unwrap(),
            "--rpc-port",
            &rpc,
            "--sha256",
            &hash,
            "--progress",
            "none",
            "--start-timeout",
            "20s",
        ];
        let done = get(dir.path(), &args, Duration::from_secs(90));
        assert_eq!(done.status.code(), Some(0), "{mode}: {}", done.stderr);
        assert!(std::fs::read(dir.path().join("image.wim")).unwrap() == data);
        assert_eq!(downloads_in(dir.path()), ["image.wim"]);
        served
            .process
            .wait_for_log(expected, Duration::from_secs(5));
        assert!(
            served.process.log_text().contains("WDS\\alice"),
            "{}",
            served.process.log_text()
        );
    }
}

#[test]
fn a_client_that_connects_while_the_signing_key_is_made_waits_and_downloads() {
    // A 4096-bit key takes the server seconds to make; its RPC port is bound before that
    // (and before it logs "listening"), so a client connecting meanwhile waits in the backlog
    // instead of being refused (exit 4).
    let n = 18;
    let data = common::content(1 << 20, u64::from(n));
    let root = tempfile::tempdir().unwrap();
    let content = root.path().join("content");
    std::fs::create_dir(&content).unwrap();
    std::fs::write(content.join("image.wim"), &data).unwrap();
    let accounts = root.path().join("accounts.txt");
    std::fs::write(&accounts, format!("WDS\\alice:{ALICE_PASSWORD}\n")).unwrap();
    let rpc_port = 47900 + n;
    let served = ServeProcess::spawn_until(
        Command::new(BIN)
            .args(loopback_serve_args(
                &format!("test={}", content.display()),
                47000 + n,
                47200 + n * 10,
                80 + n,
            ))
            .args(["--accounts", accounts.to_str().unwrap()])
            .args(["--rpc-port", &rpc_port.to_string()])
            .args(["--security-mode", "sign", "--sign-key-bits", "4096"]),
        root.path().join("server.log"),
        "server listening on",
    );
    // Still making the key: otherwise this test would not show the wait.
    assert!(
        !served.log_text().contains("serving on"),
        "{}",
        served.log_text()
    );
    let dir = tempfile::tempdir().unwrap();
    let password = password_file(root.path(), ALICE_PASSWORD);
    let (server, rpc) = (served.msi.to_string(), rpc_port.to_string());
    let args = [
        "--server",
        &server,
        "--namespace",
        "test",
        "--object",
        "image.wim",
        "--interface",
        "127.0.0.1",
        "--user",
        "WDS\\alice",
        "--password-file",
        password.to_str().unwrap(),
        "--rpc-port",
        &rpc,
        "--progress",
        "none",
        "--start-timeout",
        "120s",
    ];
    let done = get(dir.path(), &args, Duration::from_secs(180));
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    assert!(std::fs::read(dir.path().join("image.wim")).unwrap() == data);
}

#[test]
fn a_wrong_password_exits_9_with_nothing_written_and_is_never_printed() {
    let (served, rpc_port) = served_with_accounts(13, &[("image.wim", b"secret data")], &[]);
    let dir = tempfile::tempdir().unwrap();
    let (server, rpc) = (served.server(), rpc_port.to_string());
    let trace = tempfile::NamedTempFile::new().unwrap();
    let wrong = "not-the-Password-9";
    for auth in ["negotiate", "ntlm"] {
        let args = [
            "--server",
            &server,
            "--namespace",
            "test",
            "--object",
            "image.wim",
            "--interface",
            "127.0.0.1",
            "--user",
            "WDS\\alice",
            "--password",
            wrong,
            "--auth",
            auth,
            "--rpc-port",
            &rpc,
            "--trace",
            trace.path().to_str().unwrap(),
            "-vv",
            "--start-timeout",
            "10s",
        ];
        let started = Instant::now();
        let done = get(dir.path(), &args, Duration::from_secs(30));
        assert_eq!(done.status.code(), Some(9), "{auth}: {}", done.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{auth}: slow refusal"
        );
        assert_nothing_downloaded(dir.path());
        let errors: Vec<&str> = done
            .stderr
            .lines()
            .filter(|l| l.contains("error") || l.contains("failed"))
            .collect();
        assert_eq!(errors.len(), 1, "{auth}: one error line: {}", done.stderr);
        assert!(errors[0].contains("--user"), "{}", errors[0]);
        let traced = std::fs::read_to_string(trace.path()).unwrap();
        assert!(
            traced.contains("RPC bind"),
            "the trace shows RPC PDUs:\n{traced}"
        );
        for text in [&done.stderr, &traced, &served.process.log_text()] {
            assert!(!text.contains(wrong), "the password was printed:\n{text}");
            assert!(
                !text.contains(ALICE_PASSWORD),
                "a password was printed:\n{text}"
            );
        }
    }
}

#[test]
fn passwords_from_the_environment_work_and_stay_out_of_traces_and_json() {
    let data = common::content(300_000, 14);
    let (served, rpc_port) = served_with_accounts(14, &[("a.bin", &data)], &[]);
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let (server, rpc) = (served.server(), rpc_port.to_string());
    let stderr = dir.path().join("get.stderr");
    let child = Command::new(BIN)
        .args([
            "get",
            "--server",
            &server,
            "--namespace",
            "test",
            "--object",
            "a.bin",
            "--interface",
            "127.0.0.1",
            "--user",
            "WDS\\alice",
            "--rpc-port",
            &rpc,
            "--progress",
            "json",
            "--trace",
            trace.to_str().unwrap(),
            "-o",
            dir.path().join("a.bin").to_str().unwrap(),
            "--start-timeout",
            "20s",
        ])
        .env("WDSMC_PASSWORD", ALICE_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let done = wait_with_deadline(
        child,
        dir.path().join("none"),
        stderr,
        Duration::from_secs(60),
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    assert!(std::fs::read(dir.path().join("a.bin")).unwrap() == data);
    let traced = std::fs::read_to_string(&trace).unwrap();
    assert!(
        traced.contains("RPC bind") && traced.contains("JOIN"),
        "{traced}"
    );
    let utf16: Vec<u8> = ALICE_PASSWORD
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for text in [&done.stderr, &traced, &served.process.log_text()] {
        assert!(
            !text.contains(ALICE_PASSWORD),
            "the password was printed:\n{text}"
        );
    }
    let raw = std::fs::read(&trace).unwrap();
    assert!(!raw.windows(utf16.len()).any(|w| w == utf16.as_slice()));
    assert!(
        done.stderr.contains("\"event\":\"result\""),
        "{}",
        done.stderr
    );
}

#[cfg(unix)]
#[test]
fn sigint_during_an_authenticated_download_sends_leave_cancelled() {
    let data = common::content(8 << 20, 15);
    let (served, rpc_port) =
        served_with_accounts(15, &[("slow.bin", &data)], &["--max-rate", "256k"]);
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let password = password_file(secrets.path(), ALICE_PASSWORD);
    let (server, rpc) = (served.server(), rpc_port.to_string());
    let args = [
        "--server",
        &server,
        "--namespace",
        "test",
        "--object",
        "slow.bin",
        "--interface",
        "127.0.0.1",
        "--user",
        "WDS\\alice",
        "--password-file",
        password.to_str().unwrap(),
        "--rpc-port",
        &rpc,
        "--progress",
        "plain",
        "--start-timeout",
        "20s",
    ];
    interrupt_once_flowing(&served, dir.path(), &args);
}

#[test]
fn a_cache_smaller_than_one_block_is_refused_at_once_with_the_size_that_works() {
    let served = Served::start(16, &[("a.bin", &common::content(100_000, 16))], &[]);
    let dir = tempfile::tempdir().unwrap();
    let server = served.server();
    for cache in ["1k", "0"] {
        let args = [
            "--server",
            &server,
            "--namespace",
            "test",
            "--object",
            "a.bin",
            "--interface",
            "127.0.0.1",
            "--cache-size",
            cache,
            "--progress",
            "none",
            "--start-timeout",
            "10s",
        ];
        let started = Instant::now();
        let done = get(dir.path(), &args, Duration::from_secs(30));
        assert_eq!(done.status.code(), Some(2), "{cache}: {}", done.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{cache}: took {:?}",
            started.elapsed()
        );
        assert!(done.stderr.contains("at least 8192"), "{}", done.stderr);
        assert!(done.stderr.contains("--cache-size"), "{}", done.stderr);
        assert_nothing_downloaded(dir.path());
    }
}

/// `wdsmc apply`: the WIM is downloaded whole, applied with wimapply and removed; a bad index
/// exits 10 with the image removed; without wimapply it stops at once naming the package.
#[test]
fn apply_downloads_a_wim_and_applies_one_image() {
    let found = Command::new("sh")
        .args(["-c", "command -v wimcapture && command -v wimapply"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIP: wimlib's wimcapture/wimapply are missing (Debian: apt install wimtools)");
        return;
    }
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir(tree.path().join("Windows")).unwrap();
    std::fs::write(
        tree.path().join("Windows/notepad.exe"),
        common::content(70_000, 17),
    )
    .unwrap();
    std::fs::write(tree.path().join("readme.txt"), b"applied by wdsmc\n").unwrap();
    let wim_dir = tempfile::tempdir().unwrap();
    let wim = wim_dir.path().join("install.wim");
    let captured = Command::new("wimcapture")
        .args([tree.path(), &wim])
        .arg("Test Image")
        .output()
        .unwrap();
    assert!(captured.status.success(), "{captured:?}");
    let data = std::fs::read(&wim).unwrap();
    let served = Served::start(17, &[("install.wim", &data)], &[]);
    let server = served.server();
    let apply = |to: &Path, index: &str, path: Option<&str>| {
        let mut command = Command::new(BIN);
        command
            .args([
                "apply",
                "--server",
                &server,
                "--namespace",
                "test",
                "--object",
                "install.wim",
                "--interface",
                "127.0.0.1",
                "--index",
                index,
                "--to",
                to.to_str().unwrap(),
                "--progress",
                "none",
                "--start-timeout",
                "10s",
            ])
            .stdin(Stdio::null());
        if let Some(path) = path {
            command.env("PATH", path);
        }
        command.output().unwrap()
    };
    let target = tempfile::tempdir().unwrap();
    let done = apply(target.path(), "1", None);
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read(target.path().join("readme.txt")).unwrap(),
        b"applied by wdsmc\n"
    );
    assert!(
        std::fs::read(target.path().join("Windows/notepad.exe")).unwrap()
            == common::content(70_000, 17)
    );
    let leftovers: Vec<String> = std::fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("wdsmc"))
        .collect();
    assert!(leftovers.is_empty(), "image left behind: {leftovers:?}");

    let other = tempfile::tempdir().unwrap();
    let done = apply(other.path(), "9", None);
    assert_eq!(
        done.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        std::fs::read_dir(other.path()).unwrap().count(),
        0,
        "image left behind"
    );

    let empty_path = tempfile::tempdir().unwrap();
    let done = apply(other.path(), "1", empty_path.path().to_str());
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    assert_eq!(done.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("wimtools"), "{stderr}");
}
