//! Command-line behaviour that needs no server: usage errors, help, refusing to overwrite, and
//! the committed completions and man pages staying in step with the clap definitions.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn wdsmc(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wdsmc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("WDSMC_PASSWORD")
        .output()
        .expect("running wdsmc")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let source = [
        "--server",
        "127.0.0.1:9",
        "--namespace",
        "n",
        "--object",
        "o.bin",
    ];
    let cases: Vec<Vec<&str>> = vec![
        vec!["get"],
        vec!["frobnicate"],
        vec!["get", "--server", "127.0.0.1:9"],
        [&["get"], &source[..], &["--cache-size", "12Q"]].concat(),
        [&["get"], &source[..], &["--timeout", "soon"]].concat(),
        [&["get"], &source[..], &["--start-timeout", "0s"]].concat(),
        [&["get"], &source[..], &["--sha256", "abc"]].concat(),
        [&["get"], &source[..], &["--progress", "fancy"]].concat(),
        [&["get"], &source[..], &["--no-such-flag"]].concat(),
        [&["get"], &source[..], &["--user", "alice"]].concat(),
        [
            &["get"],
            &source[..],
            &["--auth", "kerberos", "--user", "a"],
        ]
        .concat(),
        [
            &["get"],
            &source[..],
            &["--user", "a", "--initiation", "udp"],
        ]
        .concat(),
        [
            &["get"],
            &source[..],
            &["--auth", "anonymous", "--user", "a"],
        ]
        .concat(),
        [
            &["get"],
            &source[..],
            &["--user", "a", "--password-file", "/nonexistent/pw"],
        ]
        .concat(),
        [&["info"], &source[..], &["--user", "DOM\\"]].concat(),
        vec![
            "get",
            "--server",
            "",
            "--namespace",
            "n",
            "--object",
            "o.bin",
        ],
        vec![
            "get",
            "--server",
            "host:0",
            "--namespace",
            "n",
            "--object",
            "o.bin",
        ],
        vec!["serve", "--namespace", "a=/tmp", "--require-auth"],
        vec!["serve", "--namespace", "missing-equals"],
        vec!["serve", "--namespace", "a=/tmp", "--port-range", "9-1"],
    ];
    for args in cases {
        let output = wdsmc(&args, dir.path());
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?} should print one line: {stderr}"
        );
        assert!(stderr.starts_with("wdsmc: error: "), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} printed on stdout");
    }
}

#[test]
fn bad_values_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "get",
        "--server",
        "h",
        "--namespace",
        "n",
        "--object",
        "o",
        "--cache-size",
        "12Q",
    ];
    let stderr = stderr_of(&wdsmc(&args, dir.path()));
    assert!(
        stderr.contains("12Q") && stderr.contains("--cache-size"),
        "{stderr}"
    );
}

#[test]
fn help_lists_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["get", "--help"],
        vec!["serve", "--help"],
    ] {
        let output = wdsmc(&args, dir.path());
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("Exit codes:"), "{args:?}: {help}");
        for code in [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "130",
        ] {
            assert!(
                help.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code} "))),
                "{args:?} lacks {code}"
            );
        }
    }
}

#[test]
fn existing_target_is_refused_before_any_network_activity() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("image.wim"), b"keep me").unwrap();
    // Port 9 on loopback has no server: were the target not checked first, this would wait
    // for the start timeout and exit 6.
    let base = [
        "get",
        "--server",
        "127.0.0.1:9",
        "--namespace",
        "n",
        "--start-timeout",
        "3s",
        "--progress",
        "none",
    ];
    for extra in [
        vec!["--object", "sources/image.wim"],
        vec!["--object", "other", "-o", "image.wim"],
    ] {
        let args = [&base[..], &extra[..]].concat();
        let started = Instant::now();
        let output = wdsmc(&args, dir.path());
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert!(stderr.contains("--force"), "{stderr}");
        assert!(!stderr.contains("complete"), "{stderr}");
        assert_eq!(
            std::fs::read(dir.path().join("image.wim")).unwrap(),
            b"keep me"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "unexpected files: {leftovers:?}");
    }
}

#[test]
fn stdout_output_takes_one_object_only() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "get",
        "--server",
        "127.0.0.1:9",
        "--namespace",
        "n",
        "--object",
        "a",
        "--object",
        "b",
        "-o",
        "-",
    ];
    let output = wdsmc(&args, dir.path());
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
}

#[test]
fn unusable_object_name_needs_an_output_path() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "get",
        "--server",
        "127.0.0.1:9",
        "--namespace",
        "n",
        "--object",
        "..",
        "--progress",
        "none",
    ];
    let output = wdsmc(&args, dir.path());
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("-o"), "{stderr}");
}

/// `-o -` with a terminal as stdout is refused (exit 2). Needs util-linux `script` for a pty;
/// skipped where it is missing.
#[cfg(unix)]
#[test]
fn stdout_to_a_terminal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let command_line = format!(
        "'{}' get --server 127.0.0.1:9 --namespace n --object o.bin -o - --start-timeout 3s",
        env!("CARGO_BIN_EXE_wdsmc")
    );
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &command_line, "/dev/null"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output();
    let Ok(output) = output else {
        eprintln!("skipped: util-linux `script` is not available to provide a terminal");
        return;
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr_of(&output)
    );
    if !output.status.success() && text.contains("invalid option") {
        eprintln!("skipped: this `script` does not accept util-linux options");
        return;
    }
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("terminal"), "{text}");
}

/// Completions and man pages are generated from the clap definitions (by the hidden
/// `wdsmc generate` subcommand) and committed; this fails when they drift.
/// `WDSMC_UPDATE_ASSETS=1 cargo test --test cli` rewrites them.
#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fresh = tempfile::tempdir().unwrap();
    let mut stale = Vec::new();
    for (what, committed) in [("completions", "completions"), ("man", "man")] {
        let dir = fresh.path().join(what);
        let output = wdsmc(&["generate", what, dir.to_str().unwrap()], fresh.path());
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "generate {what} wrote nothing");
        let committed_dir = root.join(committed);
        if std::env::var_os("WDSMC_UPDATE_ASSETS").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(&committed_dir).unwrap();
            for file in &files {
                std::fs::copy(file, committed_dir.join(file.file_name().unwrap())).unwrap();
            }
            continue;
        }
        for file in &files {
            let target = committed_dir.join(file.file_name().unwrap());
            if std::fs::read(&target).ok() != Some(std::fs::read(file).unwrap()) {
                stale.push(target.display().to_string());
            }
        }
        // A committed file the generator no longer writes (a removed command) is stale too.
        for entry in std::fs::read_dir(&committed_dir).unwrap() {
            let name = entry.unwrap().file_name();
            if !files
                .iter()
                .any(|f| f.file_name() == Some(name.as_os_str()))
            {
                stale.push(committed_dir.join(name).display().to_string());
            }
        }
    }
    assert!(
        root.join("man/wdsmc.1").exists(),
        "no man/wdsmc.1 was generated"
    );
    assert!(
        stale.is_empty(),
        "generated files are missing or out of date: {stale:?}; run `WDSMC_UPDATE_ASSETS=1 cargo test --test cli` and commit them"
    );
}

/// Error chains print each cause once: an OS error is part of its message, never repeated as
/// a separate cause.
#[test]
fn errors_print_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = wdsmc(
        &["serve", "--namespace", "a=/nonexistent/folder"],
        dir.path(),
    );
    let stderr = stderr_of(&missing);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    // A port in use: start one server, then a second on the same port.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let busy = wdsmc(
        &[
            "serve",
            "--namespace",
            &format!("a={}", dir.path().display()),
            "--msi-port",
            &port,
        ],
        dir.path(),
    );
    let stderr = stderr_of(&busy);
    assert_eq!(busy.status.code(), Some(4), "{stderr}");
    assert_eq!(stderr.matches("in use").count(), 1, "{stderr}");
}
