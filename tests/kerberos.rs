//! Kerberos against a real MIT KDC on loopback (`tests/peers/kdc.sh`: a throwaway realm
//! WDSMC.TEST in a temporary folder, torn down after each test): `wdsmc get --auth
//! kerberos` and `--auth negotiate` against `wdsmc serve --keytab`, byte-exact; Negotiate
//! falling back to NTLM when the KDC is down; credential caches made by MIT's `kinit`;
//! expired and wrong tickets (exit 9); clock skew; an unreachable KDC (exit 4); a KDC
//! reached over UDP only; impacket's Kerberos client against `wdsmc serve`; and MIT's own
//! GSS-API (libgssapi_krb5 through ctypes, DCE style, header-signed Wrap tokens) both as a
//! client of `wdsmc serve` and as the acceptor `wdsmc get --auth kerberos` logs in to.
//!
//! Every test prints `SKIP:` and passes when the MIT KDC tools are missing. The downloads
//! need multicast on loopback and MIT's tools resolve the KDC's address only where the
//! namespace has an IPv6 link-local address: run them in the project's namespace,
//! `bash .ci/run netns cargo test --offline --test kerberos`.
//!
//! Ports: KDCs 38800–38899, sessions UDP 45000–45199, groups 239.255.230.0–239.255.249.255;
//! `wdsmc serve` binds port 0 for MSI and RPC and reports what it got.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::peers::{PEERS, imports_or_skip, python_command};
use common::process::{ServeProcess, loopback_serve_args, wait_bounded};
use common::read_text;

const BIN: &str = env!("CARGO_BIN_EXE_wdsmc");
const SPN: &str = "host/wds.wdsmc.test";
const ALICE: &str = "alice@WDSMC.TEST";
const ALICE_PW: &str = "alice-pass-1";
const LIMIT: Duration = Duration::from_secs(60);

/// A realm from `tests/peers/kdc.sh`, stopped and removed when dropped.
struct Kdc {
    dir: PathBuf,
    vars: HashMap<String, String>,
    _parent: tempfile::TempDir,
}

impl Kdc {
    /// `None` (after printing SKIP) when the MIT tools are missing.
    fn start(n: u16) -> Option<Kdc> {
        Kdc::start_with(n, &[])
    }

    /// [`Kdc::start`] with more `kdc.sh start` arguments (`udp`: no TCP listener).
    fn start_with(n: u16, extra: &[&str]) -> Option<Kdc> {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("realm");
        let port = (38800 + n).to_string();
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(format!("{PEERS}/kdc.sh"))
            .args(["start", dir.to_str().unwrap(), &port])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("running kdc.sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.code() == Some(3) {
            eprintln!("{}", text.trim());
            return None;
        }
        assert!(
            out.status.success(),
            "kdc.sh failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vars: HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        eprintln!(
            "KDC setup: {} ms in kdc.sh, {} ms with the process",
            vars["SETUP_MS"],
            started.elapsed().as_millis()
        );
        Some(Kdc {
            dir,
            vars,
            _parent: parent,
        })
    }

    fn var(&self, k: &str) -> &str {
        &self.vars[k]
    }

    fn kdc(&self) -> &str {
        self.var("KDC")
    }

    /// Runs an MIT tool (kinit, kvno) in this realm with cache `ccache`.
    fn mit(&self, tool: &str, args: &[&str], stdin: &str, ccache: &Path) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(tool)
            .args(args)
            .env("KRB5_CONFIG", self.var("KRB5_CONFIG"))
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `kinit alice` into `ccache` (with `lifetime`, e.g. "10h").
    fn kinit(&self, ccache: &Path, lifetime: &str) {
        let out = self.mit(
            "kinit",
            &["-l", lifetime, ALICE],
            &format!("{ALICE_PW}\n"),
            ccache,
        );
        assert!(
            out.status.success(),
            "kinit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(format!("{PEERS}/kdc.sh"))
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

/// A `wdsmc serve` with a keytab (and maybe accounts); killed when dropped.
struct Served {
    process: ServeProcess,
    msi_port: u16,
    rpc_port: u16,
    content: Vec<u8>,
    _root: tempfile::TempDir,
}

impl Served {
    fn start(n: u16, extra: &[&str]) -> Served {
        Served::start_with(n, extra, None)
    }

    /// [`Served::start`] under `faketime -f OFFSET` when `offset` is given.
    fn start_with(n: u16, extra: &[&str], offset: Option<&str>) -> Served {
        let mut all = vec!["--require-auth"];
        all.extend_from_slice(extra);
        Served::start_raw(n, &all, offset)
    }

    /// With exactly `extra` after the common options (e.g. UDP initiation allowed).
    fn start_raw(n: u16, extra: &[&str], offset: Option<&str>) -> Served {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("content");
        std::fs::create_dir(&dir).unwrap();
        let content = common::content(300_000, 9100 + u64::from(n));
        std::fs::write(dir.join("a.bin"), &content).unwrap();
        let namespace = format!("ns={}", dir.display());
        let mut command = match offset {
            Some(offset) => {
                let mut c = Command::new("faketime");
                c.args(["-f", offset, BIN]);
                c
            }
            None => Command::new(BIN),
        };
        command
            .args(loopback_serve_args(&namespace, 0, 45000 + n * 10, 230 + n))
            .args(["--rpc-port", "0"])
            .args(extra);
        let process = ServeProcess::spawn(&mut command, root.path().join("serve.log"));
        Served {
            msi_port: process.msi.port(),
            // Without --accounts or --keytab there is no RPC listener.
            rpc_port: process.rpc.map_or(0, |rpc| rpc.port()),
            process,
            content,
            _root: root,
        }
    }

    fn log_text(&self) -> String {
        self.process.log_text()
    }
}

struct Got {
    code: Option<i32>,
    stderr: String,
    out: tempfile::TempDir,
}

impl Got {
    fn bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.out.path().join("a.bin")).ok()
    }
}

/// `wdsmc get -v` from `served`, with the given extra options and environment.
fn get(served: &Served, extra: &[&str], env: &[(&str, &str)]) -> Got {
    get_with(served, extra, env, None)
}

/// [`get`], run by `faketime -f OFFSET` when `offset` is given (a clock off by that much).
fn get_with(served: &Served, extra: &[&str], env: &[(&str, &str)], offset: Option<&str>) -> Got {
    get_ports(served.msi_port, served.rpc_port, extra, env, offset)
}

/// [`get_with`] against explicit MSI and RPC ports.
fn get_ports(
    msi_port: u16,
    rpc_port: u16,
    extra: &[&str],
    env: &[(&str, &str)],
    offset: Option<&str>,
) -> Got {
    let out = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let stderr_path = logs.path().join("stderr");
    let target = out.path().join("a.bin");
    let msi = format!("127.0.0.1:{msi_port}");
    let rpc = rpc_port.to_string();
    let mut args = vec![
        "get",
        "--server",
        &msi,
        "--namespace",
        "ns",
        "--object",
        "a.bin",
        "-o",
        target.to_str().unwrap(),
        "--interface",
        "127.0.0.1",
        "--rpc-port",
        &rpc,
        "--progress",
        "none",
        "--timeout",
        "20s",
        "--start-timeout",
        "15s",
        "-v",
    ];
    args.extend_from_slice(extra);
    let mut command = match offset {
        Some(offset) => {
            let mut c = Command::new("faketime");
            c.args(["-f", offset, BIN]);
            c
        }
        None => Command::new(BIN),
    };
    command
        .args(&args)
        .env_remove("WDSMC_PASSWORD")
        .env_remove("KRB5CCNAME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_path).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("starting wdsmc get");
    let status = wait_bounded(&mut child, LIMIT, "wdsmc get");
    Got {
        code: status.code(),
        stderr: read_text(&stderr_path),
        out,
    }
}

fn assert_downloaded(got: &Got, served: &Served) {
    assert_eq!(
        got.code,
        Some(0),
        "wdsmc get:\n{}\nwdsmc serve:\n{}",
        got.stderr,
        served.log_text()
    );
    assert_eq!(
        got.bytes().map(|b| common::sha256_hex(&b)),
        Some(common::sha256_hex(&served.content)),
        "bytes differ"
    );
}

fn assert_failed(got: &Got, code: i32, needle: &str) {
    assert_eq!(got.code, Some(code), "{}", got.stderr);
    assert!(
        got.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "no {needle:?} in:\n{}",
        got.stderr
    );
    assert!(got.bytes().is_none(), "a file was written");
}

fn keytab_args(kdc: &Kdc) -> Vec<String> {
    vec![
        "--keytab".into(),
        kdc.var("KEYTAB").into(),
        "--spn".into(),
        kdc.var("SPN").into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn kerberos_with_a_password_downloads_byte_exact_and_refuses_a_wrong_one() {
    let Some(kdc) = Kdc::start(0) else { return };
    let served = Served::start(0, &strs(&keytab_args(&kdc)));
    let pw_dir = tempfile::tempdir().unwrap();
    let pw = pw_dir.path().join("pw");
    std::fs::write(&pw, format!("{ALICE_PW}\n")).unwrap();
    let got = get(
        &served,
        &[
            "--auth",
            "kerberos",
            "--user",
            ALICE,
            "--password-file",
            pw.to_str().unwrap(),
            "--kdc",
            kdc.kdc(),
            "--spn",
            SPN,
        ],
        &[],
    );
    assert_downloaded(&got, &served);
    assert!(
        got.stderr.contains("logging in with Kerberos"),
        "{}",
        got.stderr
    );
    let log = served.log_text();
    assert!(log.contains("alice@WDSMC.TEST from"), "{log}");
    assert!(!got.stderr.contains(ALICE_PW) && !log.contains(ALICE_PW));

    // The wrong password: the KDC refuses pre-authentication, exit 9, nothing written.
    let got = get(
        &served,
        &[
            "--auth",
            "kerberos",
            "--user",
            ALICE,
            "--kdc",
            kdc.kdc(),
            "--spn",
            SPN,
        ],
        &[("WDSMC_PASSWORD", "wrong password")],
    );
    assert_failed(&got, 9, "pre-authentication failed");
}

#[test]
fn negotiate_picks_kerberos_when_the_kdc_is_up_and_ntlm_when_it_is_down() {
    let Some(kdc) = Kdc::start(1) else { return };
    let accounts_dir = tempfile::tempdir().unwrap();
    let accounts = accounts_dir.path().join("accounts");
    std::fs::write(&accounts, format!("WDSMC.TEST\\alice:{ALICE_PW}\n")).unwrap();
    let mut extra = keytab_args(&kdc);
    extra.extend(["--accounts".into(), accounts.display().to_string()]);
    let served = Served::start(1, &strs(&extra));
    let user = "WDSMC.TEST\\alice";
    let got = get(
        &served,
        &["--user", user, "--kdc", kdc.kdc(), "--spn", SPN],
        &[("WDSMC_PASSWORD", ALICE_PW)],
    );
    assert_downloaded(&got, &served);
    assert!(
        got.stderr.contains("logging in with Kerberos (SPNEGO)"),
        "{}",
        got.stderr
    );
    assert!(served.log_text().contains("alice@WDSMC.TEST from"));

    // A KDC port nothing listens on: Negotiate says why and logs in with NTLM.
    let got = get(
        &served,
        &["--user", user, "--kdc", "127.0.0.1:38899", "--spn", SPN],
        &[("WDSMC_PASSWORD", ALICE_PW)],
    );
    assert_downloaded(&got, &served);
    assert!(
        got.stderr.contains("Kerberos unavailable") && got.stderr.contains("NTLM (SPNEGO)"),
        "{}",
        got.stderr
    );
    assert!(served.log_text().contains("WDSMC.TEST\\alice from"));

    // A server without a keytab answers the Kerberos offer with NTLM: the NTLM legs follow,
    // with both mechListMICs (the downgrade check).
    let ntlm_only = Served::start(9, &["--accounts", accounts.to_str().unwrap()]);
    let got = get(
        &ntlm_only,
        &["--user", user, "--kdc", kdc.kdc(), "--spn", SPN],
        &[("WDSMC_PASSWORD", ALICE_PW)],
    );
    assert_downloaded(&got, &ntlm_only);
    assert!(
        got.stderr.contains("logging in with Kerberos (SPNEGO)"),
        "{}",
        got.stderr
    );
    assert!(ntlm_only.log_text().contains("WDSMC.TEST\\alice from"));

    // Kerberos alone with that KDC: exit 4, the KDC named.
    let got = get(
        &served,
        &[
            "--auth",
            "kerberos",
            "--user",
            user,
            "--kdc",
            "127.0.0.1:38899",
            "--spn",
            SPN,
        ],
        &[("WDSMC_PASSWORD", ALICE_PW)],
    );
    assert_failed(&got, 4, "cannot reach a Kerberos KDC for realm WDSMC.TEST");
}

#[test]
fn a_kinit_credential_cache_logs_in_without_a_password() {
    let Some(kdc) = Kdc::start(2) else { return };
    let served = Served::start(2, &strs(&keytab_args(&kdc)));
    let cc_dir = tempfile::tempdir().unwrap();
    let cc = cc_dir.path().join("cc");
    kdc.kinit(&cc, "10h");
    let ccname = format!("FILE:{}", cc.display());
    for auth in ["kerberos", "negotiate"] {
        let got = get(
            &served,
            &["--auth", auth, "--kdc", kdc.kdc(), "--spn", SPN],
            &[("KRB5CCNAME", &ccname)],
        );
        assert_downloaded(&got, &served);
        assert!(got.stderr.contains("credential cache"), "{}", got.stderr);
    }
    // --user naming the cache's principal, no password: the cache, no prompt.
    let got = get(
        &served,
        &["--user", ALICE, "--kdc", kdc.kdc(), "--spn", SPN],
        &[("KRB5CCNAME", &ccname)],
    );
    assert_downloaded(&got, &served);
    // A cache of an empty path: exit 9 with what to do.
    let got = get(
        &served,
        &["--auth", "kerberos", "--kdc", kdc.kdc(), "--spn", SPN],
        &[("KRB5CCNAME", "FILE:/nonexistent/cc")],
    );
    assert_failed(&got, 9, "run kinit");
}

#[test]
fn expired_and_wrong_tickets_exit_9() {
    let Some(kdc) = Kdc::start(3) else { return };
    let cc_dir = tempfile::tempdir().unwrap();
    let cc = cc_dir.path().join("cc");
    kdc.kinit(&cc, "1s");
    std::thread::sleep(Duration::from_millis(2100));
    let ccname = format!("FILE:{}", cc.display());
    let served = Served::start(3, &strs(&keytab_args(&kdc)));
    let got = get(
        &served,
        &["--auth", "kerberos", "--kdc", kdc.kdc(), "--spn", SPN],
        &[("KRB5CCNAME", &ccname)],
    );
    assert_failed(&got, 9, "has expired");

    // A server whose keytab holds another service's key: the ticket does not open, bind_nak.
    let served = Served::start(4, &["--keytab", kdc.var("OTHER_KEYTAB")]);
    let pw_env = [("WDSMC_PASSWORD", ALICE_PW)];
    let got = get(
        &served,
        &[
            "--auth",
            "kerberos",
            "--user",
            ALICE,
            "--kdc",
            kdc.kdc(),
            "--spn",
            SPN,
        ],
        &pw_env,
    );
    assert_failed(&got, 9, "rejected");
    let log = served.log_text();
    assert!(log.contains("no key for host/wds.wdsmc.test"), "{log}");

    // A service the realm does not know: the KDC says so, exit 9.
    let got = get(
        &served,
        &[
            "--auth",
            "kerberos",
            "--user",
            ALICE,
            "--kdc",
            kdc.kdc(),
            "--spn",
            "host/unknown.wdsmc.test",
        ],
        &pw_env,
    );
    assert_failed(&got, 9, "server not found in the Kerberos database");
}

#[test]
fn a_kdc_without_tcp_is_reached_over_udp() {
    let Some(kdc) = Kdc::start_with(4, &["udp"]) else {
        return;
    };
    let served = Served::start(10, &strs(&keytab_args(&kdc)));
    let got = get(
        &served,
        &[
            "--auth",
            "kerberos",
            "--user",
            ALICE,
            "--kdc",
            kdc.kdc(),
            "--spn",
            SPN,
        ],
        &[("WDSMC_PASSWORD", ALICE_PW)],
    );
    assert_downloaded(&got, &served);
}

#[test]
fn an_ip_address_server_needs_an_spn_for_kerberos() {
    let Some(kdc) = Kdc::start(5) else { return };
    let served = Served::start(5, &strs(&keytab_args(&kdc)));
    let got = get(
        &served,
        &["--auth", "kerberos", "--user", ALICE, "--kdc", kdc.kdc()],
        &[("WDSMC_PASSWORD", ALICE_PW)],
    );
    assert_failed(&got, 2, "--spn");
}

#[test]
fn clock_skew_against_the_kdc_has_its_own_message() {
    if !Command::new("faketime")
        .args(["-f", "+0", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("SKIP: faketime not found (Debian: apt-get install faketime)");
        return;
    }
    let Some(kdc) = Kdc::start(7) else { return };
    let served = Served::start(7, &strs(&keytab_args(&kdc)));
    // This machine an hour ahead of the KDC: the KDC refuses the encrypted timestamp.
    for auth in ["kerberos", "negotiate"] {
        let got = get_with(
            &served,
            &[
                "--auth",
                auth,
                "--user",
                ALICE,
                "--kdc",
                kdc.kdc(),
                "--spn",
                SPN,
            ],
            &[("WDSMC_PASSWORD", ALICE_PW)],
            Some("+1h"),
        );
        assert_failed(&got, 9, "Kerberos clock skew");
    }
    // The server's clock an hour ahead: it refuses the authenticator at bind and says why.
    drop(served);
    let served = Served::start_with(8, &strs(&keytab_args(&kdc)), Some("+1h"));
    let got = get(
        &served,
        &[
            "--auth",
            "kerberos",
            "--user",
            ALICE,
            "--kdc",
            kdc.kdc(),
            "--spn",
            SPN,
        ],
        &[("WDSMC_PASSWORD", ALICE_PW)],
    );
    assert_failed(&got, 9, "rejected the credentials at bind");
    let log = served.log_text();
    assert!(log.contains("clock skew"), "{log}");
}

// --- MIT's GSS-API → wdsmc serve ----------------------------------------------------------------

#[test]
fn mit_gssapi_in_dce_style_logs_in_and_both_sides_check_header_signed_wraps() {
    let Some(kdc) = Kdc::start(8) else { return };
    let served = Served::start(11, &strs(&keytab_args(&kdc)));
    let cc_dir = tempfile::tempdir().unwrap();
    let cc = cc_dir.path().join("cc");
    kdc.kinit(&cc, "10h");
    let run = |extra: &[&str]| {
        let port = served.rpc_port.to_string();
        let spn = format!("{SPN}@WDSMC.TEST");
        let mut args = vec![
            format!("{PEERS}/mit_gss_client.py"),
            "--port".into(),
            port,
            "--spn".into(),
            spn,
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        python_command()
            .args(&args)
            .env("KRB5_CONFIG", kdc.var("KRB5_CONFIG"))
            .env("KRB5CCNAME", format!("FILE:{}", cc.display()))
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(3) {
        eprintln!("SKIP: {stdout}");
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "mit_gss_client: {stdout}\n{}\nserve:\n{}",
        String::from_utf8_lossy(&out.stderr),
        served.log_text()
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["ok"], true, "{stdout}");
    // Header signing was agreed, so both directions signed the RPC header and sec_trailer.
    assert_eq!(report["header_signing"], true, "{stdout}");
    // MIT sends the DCE-style AP-REQ unframed (MS-KILE 3.4.5.1) and wraps as we do.
    assert_eq!(report["ap_req_framed"], false, "{stdout}");
    for side in ["request_token", "response_token"] {
        assert_eq!(report[side]["len"], 76, "{stdout}");
        assert_eq!(report[side]["ec"], 16, "{stdout}");
        assert_eq!(report[side]["rrc"], 28, "{stdout}");
    }
    assert!(served.log_text().contains("alice@WDSMC.TEST from"));
    // A flipped byte in our sealed response: MIT's gss_unwrap_iov refuses it.
    let out = run(&["--tamper", "body"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\"tamper_detected\": true"), "{stdout}");
}

#[test]
fn our_client_logs_in_to_mit_s_gssapi_acceptor_and_downloads_byte_exact() {
    // rpc_server.py's acceptor is pyspnego's.
    if !imports_or_skip("spnego") {
        return;
    }
    let Some(kdc) = Kdc::start(9) else { return };
    // The multicast session comes from a wdsmc serve that allows UDP initiation; the login
    // and the reply from rpc_server.py with MIT's acceptor.
    let served = Served::start_raw(12, &[], None);
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "X:nobody:unused\n").unwrap();
    let log = dir.path().join("rpc_server.log");
    let relay = format!("127.0.0.1:{}", served.msi_port);
    let mut child = python_command()
        .args([
            &format!("{PEERS}/rpc_server.py"),
            "--users",
            users.to_str().unwrap(),
            "--kerberos",
            "--relay",
            &relay,
        ])
        .env("KRB5_CONFIG", kdc.var("KRB5_CONFIG"))
        .env("KRB5_KTNAME", format!("FILE:{}", kdc.var("KEYTAB")))
        .env("KRB5RCACHETYPE", "none")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .expect("rpc_server.py");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port: u16 = match line.trim().strip_prefix("port ").map(str::parse) {
        Some(Ok(p)) => p,
        _ => {
            let _ = child.kill();
            panic!("rpc_server.py did not start: {line:?}\n{}", read_text(&log));
        }
    };
    let got = get_ports(
        served.msi_port,
        port,
        &[
            "--auth",
            "kerberos",
            "--user",
            ALICE,
            "--kdc",
            kdc.kdc(),
            "--spn",
            SPN,
        ],
        &[("WDSMC_PASSWORD", ALICE_PW)],
        None,
    );
    let _ = child.kill();
    let _ = child.wait();
    let text = read_text(&log);
    assert_downloaded(&got, &served);
    assert!(
        text.contains("logged in as alice@WDSMC.TEST (kerberos (MIT GSS-API, DCE style))"),
        "{text}"
    );
}

// --- impacket → wdsmc serve --------------------------------------------------------------------

#[test]
fn impacket_kerberos_client_logs_in_to_wdsmc_serve() {
    if !imports_or_skip("impacket") {
        return;
    }
    let Some(kdc) = Kdc::start(6) else { return };
    let served = Served::start(6, &strs(&keytab_args(&kdc)));
    // impacket takes the service ticket from a cache MIT's kinit and kvno filled.
    let cc_dir = tempfile::tempdir().unwrap();
    let cc = cc_dir.path().join("cc");
    kdc.kinit(&cc, "10h");
    let out = kdc.mit("kvno", &[&format!("{SPN}@WDSMC.TEST")], "", &cc);
    assert!(
        out.status.success(),
        "kvno: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = |extra: &[&str]| {
        let port = served.rpc_port.to_string();
        let mut args = vec![
            format!("{PEERS}/impacket_client.py"),
            "--port".into(),
            port,
            "--user".into(),
            "WDSMC.TEST\\alice".into(),
            "--password".into(),
            String::new(),
            "--kerberos".into(),
            "--remote-name".into(),
            "wds.wdsmc.test".into(),
            "--namespace".into(),
            "ns".into(),
            "--object".into(),
            "a.bin".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        python_command()
            .args(&args)
            .env("KRB5CCNAME", cc.display().to_string())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "impacket: {stdout}\n{}\nserve:\n{}",
        String::from_utf8_lossy(&out.stderr),
        served.log_text()
    );
    assert!(stdout.contains("\"ok\": true"), "{stdout}");
    assert!(served.log_text().contains("alice@WDSMC.TEST from"));
}
