//! Output faults with real `wdsmc get` processes against the in-process reference server on
//! loopback: a file-size limit (RLIMIT_FSIZE), a full tmpfs and a read-only or missing folder
//! all end with exit 3 and nothing under the final name.
//!
//! The tmpfs and read-only cases mount inside a private mount namespace (`unshare --mount`),
//! so they need root; they print why and skip otherwise.

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, content};

const BIN: &str = env!("CARGO_BIN_EXE_wdsmc");
const OUTPUT_ERROR: i32 = 3;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn get_args(server: &TestServer, object: &str, output: &Path) -> Vec<String> {
    [
        "get",
        "--server",
        &server.addr(),
        "--namespace",
        "ns",
        "--object",
        object,
        "--interface",
        "127.0.0.1",
        "--start-timeout",
        "10s",
        "--timeout",
        "10s",
        "--progress",
        "none",
        "-o",
        output.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs `command` to completion within a bound.
fn finish(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(40);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn assert_output_error(output: &Output, final_path: &Path) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{}: {}", final_path.display(), stderr.trim());
    assert_eq!(output.status.code(), Some(OUTPUT_ERROR), "stderr: {stderr}");
    assert!(
        !final_path.exists(),
        "{} exists after a failed download",
        final_path.display()
    );
}

#[test]
fn file_size_limit_exits_3_with_nothing_under_the_final_name() {
    let server = TestServer::start(12, |_| {});
    server.put("big.bin", &content(2_000_000, 12));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.bin");
    let mut command = Command::new(BIN);
    command.args(get_args(&server, "big.bin", &out));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // Writes past the limit then fail with EFBIG instead of raising SIGXFSZ.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 256 * 1024,
                rlim_max: 256 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = finish(command);
    assert_output_error(&output, &out);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("big.bin"),
        "the error names the file"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "the partial file is removed too"
    );
}

/// Runs a shell snippet (which ends by exec'ing `wdsmc get`) in a private mount namespace.
fn in_mount_namespace(script: &str, args: &[String]) -> Option<Output> {
    if !is_root() {
        eprintln!("skipped: needs root for a private mount namespace");
        return None;
    }
    let probe = Command::new("unshare")
        .args(["--mount", "--", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: `unshare --mount` is not available here");
        return None;
    }
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--", "sh", "-ec", script, "sh", BIN])
        .args(args);
    Some(finish(command))
}

#[test]
fn full_tmpfs_exits_3_with_nothing_under_the_final_name() {
    let server = TestServer::start(13, |_| {});
    server.put("big.bin", &content(3_000_000, 13));
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    let out = mount.join("big.bin");
    let args = get_args(&server, "big.bin", &out);
    let script = format!(
        "mount -t tmpfs -o size=1m wdsmc-test {m}; exec \"$@\"",
        m = mount.display()
    );
    let Some(output) = in_mount_namespace(&script, &args) else {
        return;
    };
    assert_output_error(&output, &out);
    // The space is reserved when the session starts, so the error says so before any data
    // (and how much room there was).
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no room for 3000000 bytes") && stderr.contains("bytes free"),
        "{stderr}"
    );
    // The mount was private: our view of the folder is empty, and so was the namespace's.
    assert!(std::fs::read_dir(&mount).unwrap().next().is_none());
}

#[test]
fn read_only_folder_exits_3() {
    let server = TestServer::start(14, |_| {});
    server.put("small.bin", &content(100_000, 14));
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ro");
    std::fs::create_dir(&folder).unwrap();
    let out = folder.join("small.bin");
    let args = get_args(&server, "small.bin", &out);
    let script = format!(
        "mount --bind {f} {f}; mount -o remount,bind,ro {f}; exec \"$@\"",
        f = folder.display()
    );
    let Some(output) = in_mount_namespace(&script, &args) else {
        return;
    };
    assert_output_error(&output, &out);
}

#[test]
fn missing_folder_exits_3() {
    let server = TestServer::start(15, |_| {});
    server.put("small.bin", &content(100_000, 15));
    let dir = tempfile::tempdir().unwrap();
    // A regular file where a folder should be: no user, root included, can write below it.
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let out = dir.path().join("file").join("small.bin");
    let mut command = Command::new(BIN);
    command.args(get_args(&server, "small.bin", &out));
    let output = finish(command);
    assert_output_error(&output, &out);
}
