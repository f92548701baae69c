//! Hostile DCE/RPC peers in both directions, loopback only (127.0.0.1; the legitimate
//! downloads use groups 239.255.19{0,1}.0/24 with TTL 1).
//!
//! * Against the server: `wdsmc serve --accounts` as a process (its peak resident memory read
//!   from /proc/PID/status, its JSON log lines checked) while a legitimate client downloads a
//!   rate-limited object through its own RPC session and more legitimate logins keep coming;
//!   raw TCP clients send impossible headers, oversized claims, endless fragments, bad
//!   verifiers, huge binds and a connection flood, each on its own connection. The idle
//!   timeout (30 s by default) is tested in process with a short `RpcConfig::idle_timeout`.
//! * Against the client: `wdsmc get --user` as a process facing a scripted listener that logs
//!   the client in with the library's own sans-IO RPC server machine and NTLM/SPNEGO acceptors,
//!   then answers with hostile bytes: exit codes, one-line errors, no file under the final
//!   name, peak memory bounded.
//!
//! Needs multicast on lo for the legitimate downloads: `bash .ci/run netns cargo test
//! --offline --test hostile_rpc`.

#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::TryRngCore;
use wdsmc::auth::{
    AUTH_TYPE_NTLM, AUTH_TYPE_SPNEGO, Account, AccountStore, Accounts, Credentials, NtlmClient,
    NtlmServer, ServerConfig as NtlmConfig, SpnegoServer,
};
use wdsmc::rpc::frame::Framer;
use wdsmc::rpc::pdu::{
    self, Bind, BindAck, Body, ContextElem, ContextResult, NDR, Request, Response, SecTrailer,
    WDS_INTERFACE, auth_level, pfc, ptype, result, status,
};
use wdsmc::rpc::security::{AuthStep, ClientAuth, Protection, ServerAuth};
use wdsmc::rpc::server::{AuthFactory, Server as RpcMachine, ServerConfig, ServerEvent};
use wdsmc::rpc::stub;
use wdsmc::server::{NamespaceConfig, RpcConfig, Server, ServerConfig as WdsConfig};
use wdsmc::transport::{
    Initiation, InterfaceSpec, Request as TransportRequest, RpcAuth, RpcInitiation, Status,
    initiate,
};
use wdsmc::wire::security::SymKey;
use wdsmc::wire::wdsc::InitiateReply;

use common::memory_download::MemoryDownload;
use common::process::{ServeProcess, loopback_serve_args, vm_hwm_kib, wait_sampling_peak};

const BIN: &str = env!("CARGO_BIN_EXE_wdsmc");
const PASSWORD: &str = "correct horse";
/// Peak resident memory a process may reach under hostile input.
const MEMORY_LIMIT_KIB: i64 = 64 * 1024;
/// The server's bounds (src/rpc/server.rs defaults) and the client's.
const MAX_CALL: usize = 1 << 20;
const MAX_FRAGMENTS: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Shared helpers

fn accounts() -> Accounts {
    Accounts::new(vec![Account::new("WDS", "alice", PASSWORD)])
}

fn credentials() -> Credentials {
    Credentials::new("WDS", "alice", PASSWORD)
}

fn os_rng() -> impl rand::RngCore {
    rand::rngs::OsRng.unwrap_err()
}

fn bind_body(contexts: Vec<ContextElem>) -> Bind {
    Bind {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 0,
        contexts,
    }
}

fn wds_context(context_id: u16) -> ContextElem {
    ContextElem {
        context_id,
        abstract_syntax: WDS_INTERFACE,
        transfer_syntaxes: vec![NDR],
    }
}

/// A 16-byte common header (FIRST|LAST, little-endian, call 1) claiming `frag_len`.
fn header(ptype: u8, frag_len: u16) -> Vec<u8> {
    let mut h = vec![5, 0, ptype, pfc::FIRST_FRAG | pfc::LAST_FRAG, 0x10, 0, 0, 0];
    h.extend_from_slice(&frag_len.to_le_bytes());
    h.extend_from_slice(&[0, 0, 1, 0, 0, 0]);
    h
}

/// What a peer got back before its connection ended.
#[derive(Debug, Default)]
struct Seen {
    /// Each PDU as "type" or "fault 0x........".
    pdus: Vec<String>,
    /// The peer closed (EOF or reset) within the limit.
    closed: bool,
    after: Duration,
}

fn describe(bytes: &[u8]) -> String {
    match pdu::decode(bytes) {
        Ok(p) => match p.body {
            Body::Fault(f) => format!("fault 0x{:08x}", f.status),
            Body::BindNak(n) => format!("bind_nak {}", n.reason),
            _ => pdu::ptype_name(p.header.ptype).to_string(),
        },
        Err(e) => format!("undecodable ({e})"),
    }
}

/// Reads whole PDUs until the peer closes or `limit` passes (measured from `since`).
fn read_until_closed(stream: &mut TcpStream, since: Instant, limit: Duration) -> Seen {
    let mut seen = Seen::default();
    let mut framer = Framer::new(u16::MAX);
    let mut buf = vec![0u8; 64 * 1024];
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while since.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => {
                seen.closed = true;
                break;
            }
            Ok(n) => {
                let mut input = &buf[..n];
                while !input.is_empty() {
                    match framer.feed(&mut input) {
                        Ok(Some(p)) => seen.pdus.push(describe(&p)),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                seen.closed = true;
                break;
            }
        }
    }
    seen.after = since.elapsed();
    seen
}

/// Reads one whole PDU (blocking up to 5 s).
fn read_pdu(stream: &mut TcpStream, framer: &mut Framer) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    loop {
        let n = stream.read(&mut byte).expect("a PDU from the peer");
        assert!(n > 0, "peer closed before a whole PDU");
        let mut input = &byte[..];
        if let Some(p) = framer.feed(&mut input).expect("a valid PDU") {
            return p;
        }
    }
}

/// Writes `bytes`; false when the peer has closed (EPIPE or reset).
fn send(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).is_ok()
}

// ---------------------------------------------------------------------------------------------
// A hostile client: NTLM login by hand, so it can seal whatever request fragments it likes.

/// An established NTLM context's sealing side, for fragments built by hand.
struct Sealer {
    protection: Box<dyn Protection>,
    trailer: SecTrailer,
}

impl Sealer {
    /// Seals and signs a request or response fragment (MS-RPCE 2.2.2.11: stub padded to 16,
    /// the signature over header, plaintext body and sec_trailer).
    fn seal(&mut self, flags: u8, call_id: u32, body: &Body<'_>) -> Vec<u8> {
        let sig_len = self.protection.signature_len();
        let mut bytes = pdu::encode(
            flags,
            call_id,
            body,
            Some((self.trailer, &vec![0; sig_len])),
        )
        .unwrap();
        let fixed = pdu::stub_offset(body.ptype(), flags);
        let trailer_at = bytes.len() - sig_len - pdu::SEC_TRAILER_LEN;
        let (head, rest) = bytes.split_at_mut(fixed);
        let (plain, rest) = rest.split_at_mut(trailer_at - fixed);
        let (trailer, slot) = rest.split_at_mut(pdu::SEC_TRAILER_LEN);
        let signature = self.protection.seal(head, plain, trailer).unwrap();
        slot.copy_from_slice(&signature);
        bytes
    }
}

struct LoggedIn {
    stream: TcpStream,
    sealer: Sealer,
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connects");
    stream.set_nodelay(true).unwrap();
    stream
}

/// bind (NEGOTIATE) → bind_ack (CHALLENGE) → auth3 (AUTHENTICATE), as alice.
fn login(addr: SocketAddr) -> LoggedIn {
    let mut stream = connect(addr);
    let mut auth: Box<dyn ClientAuth> = Box::new(NtlmClient::new(
        credentials(),
        &mut os_rng(),
        SystemTime::now(),
    ));
    let trailer = SecTrailer::new(AUTH_TYPE_NTLM, auth_level::PKT_PRIVACY, 0);
    let AuthStep::Continue(negotiate) = auth.step(None).unwrap() else {
        panic!("NTLM starts with NEGOTIATE")
    };
    let flags = pfc::FIRST_FRAG | pfc::LAST_FRAG | pfc::SUPPORT_HEADER_SIGN;
    let bind = pdu::encode(
        flags,
        1,
        &Body::Bind(bind_body(vec![wds_context(0)])),
        Some((trailer, &negotiate)),
    )
    .unwrap();
    stream.write_all(&bind).unwrap();
    let ack = read_pdu(&mut stream, &mut Framer::new(4280));
    let ack = pdu::decode(&ack).unwrap();
    assert!(matches!(ack.body, Body::BindAck(_)), "{:?}", ack.body);
    let signing = ack.header.flags & pfc::SUPPORT_HEADER_SIGN != 0;
    let challenge = ack.auth.expect("a CHALLENGE").value.to_vec();
    let AuthStep::Done(Some(authenticate)) = auth.step(Some(&challenge)).unwrap() else {
        panic!("NTLM answers with AUTHENTICATE")
    };
    let auth3 = pdu::encode(flags, 1, &Body::Auth3, Some((trailer, &authenticate))).unwrap();
    stream.write_all(&auth3).unwrap();
    let mut protection = auth.into_protection().unwrap();
    protection.set_header_signing(signing);
    LoggedIn {
        stream,
        sealer: Sealer {
            protection,
            trailer,
        },
    }
}

impl LoggedIn {
    /// One sealed and signed request fragment with the given flags and alloc_hint.
    fn fragment(&mut self, flags: u8, call_id: u32, alloc_hint: u32, stub: &[u8]) -> Vec<u8> {
        let body = Body::Request(Request {
            alloc_hint,
            context_id: 0,
            opnum: 0,
            object: None,
            stub,
        });
        self.sealer.seal(flags, call_id, &body)
    }
}

/// An unauthenticated bind; returns the stream after its bind_ack.
fn bind_unauthenticated(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr);
    let bind = pdu::encode(
        pfc::FIRST_FRAG | pfc::LAST_FRAG,
        1,
        &Body::Bind(bind_body(vec![wds_context(0)])),
        None,
    )
    .unwrap();
    stream.write_all(&bind).unwrap();
    let ack = read_pdu(&mut stream, &mut Framer::new(4280));
    assert_eq!(describe(&ack), "bind_ack");
    stream
}

/// A `WdsRpcMessage` request stub carrying a valid INITIATE for `object`.
fn initiate_stub(object: &str) -> Vec<u8> {
    let packet = wdsmc::wire::wdsc::InitiateRequest {
        namespace: "ns".into(),
        content: object.into(),
        client: "HOSTILE".into(),
        cap: Some(wdsmc::wire::wdsc::cap::CHECKSUM),
    }
    .encode()
    .unwrap();
    stub::encode_message_request(&packet).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Against the server

/// `wdsmc serve --accounts` on loopback; killed when dropped.
struct Served {
    process: ServeProcess,
    root: tempfile::TempDir,
}

impl Served {
    fn start(n: u16, extra: &[&str]) -> Served {
        let root = tempfile::tempdir().unwrap();
        let content = root.path().join("content");
        std::fs::create_dir(&content).unwrap();
        let accounts = root.path().join("accounts");
        std::fs::write(&accounts, format!("WDS\\alice:{PASSWORD}\n")).unwrap();
        let namespace = format!("ns={}", content.display());
        let process = ServeProcess::spawn(
            Command::new(BIN)
                .args(loopback_serve_args(
                    &namespace,
                    47600 + n,
                    47700 + n * 10,
                    190 + n,
                ))
                .args(["--accounts", accounts.to_str().unwrap(), "--rpc-port", "0"])
                .args(["--log-format", "json"])
                .args(extra),
            root.path().join("server.log"),
        );
        Served { process, root }
    }

    fn rpc(&self) -> SocketAddr {
        self.process.rpc.expect("an RPC listener")
    }

    fn put(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.root.path().join("content").join(name), bytes).unwrap();
    }

    fn log_lines(&self) -> Vec<serde_json::Value> {
        self.process
            .log_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The log line of `event` about the connection from `from`, if any.
    fn logged(&self, event: &str, from: SocketAddr) -> Option<String> {
        let from = from.to_string();
        self.log_lines()
            .into_iter()
            .find(|l| {
                l.get("event").and_then(|e| e.as_str()) == Some(event)
                    && l.pointer("/fields/from").and_then(|f| f.as_str()) == Some(from.as_str())
            })
            .map(|l| l.to_string())
    }

    fn vm_hwm_kib(&self) -> i64 {
        vm_hwm_kib(self.process.child.id())
    }

    fn alive(&mut self) -> bool {
        self.process.child.try_wait().unwrap().is_none()
    }

    fn request(&self, object: &str) -> TransportRequest {
        let mut request = TransportRequest::new(self.process.msi.to_string(), "ns", object);
        request.interface = Some(InterfaceSpec::Address(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        request.timeouts.initiation = Duration::from_secs(10);
        request.timeouts.inactivity = Duration::from_secs(20);
        let mut rpc = RpcInitiation::new(RpcAuth::Negotiate(Arc::new(credentials())));
        rpc.port = self.rpc().port();
        request.initiation = Initiation::Rpc(rpc);
        request
    }
}

/// Finishes a legitimate download: a success, byte-exact.
fn check_legitimate(download: MemoryDownload, expected: &[u8]) {
    let (status, data) = download.finish(Duration::from_secs(90));
    assert_eq!(status, Some(Status::Success), "the legitimate download");
    assert!(data == expected, "the legitimate download differs");
}

/// Legitimate logins (a whole INITIATE each) every 100 ms until stopped: (successes, errors).
struct Logins {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl Logins {
    fn start(request: TransportRequest) -> Logins {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut ok, mut errors) = (0, Vec::new());
            while !flag.load(Ordering::SeqCst) {
                match initiate(&request) {
                    Ok(_) => ok += 1,
                    Err(e) => errors.push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (ok, errors)
        });
        Logins { stop, thread }
    }

    fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// One hostile case's outcome, printed as a table row.
struct Case {
    name: &'static str,
    seen: Seen,
    from: SocketAddr,
}

impl Case {
    fn report(&self) {
        eprintln!(
            "server case {:<48} closed={} after {:>6} ms, got {:?}",
            self.name,
            self.seen.closed,
            self.seen.after.as_millis(),
            self.seen.pdus
        );
    }
}

/// Runs one case: `script` writes its hostile bytes to `stream` (which may have logged in
/// already) and returns when done writing; then the connection is read until the server
/// closes it. The time reported runs from the first hostile byte.
fn case(name: &'static str, stream: TcpStream, script: impl FnOnce(&mut TcpStream)) -> Case {
    let mut stream = stream;
    let from = stream.local_addr().unwrap();
    let since = Instant::now();
    script(&mut stream);
    let seen = read_until_closed(&mut stream, since, Duration::from_secs(5));
    let case = Case { name, seen, from };
    case.report();
    case
}

#[test]
fn hostile_clients_cannot_disturb_the_server() {
    let mut served = Served::start(0, &["--max-rate", "2MiB/s"]);
    let bytes = common::content(10 << 20, 190);
    served.put("big.bin", &bytes);
    served.put("small.bin", b"small");
    let rpc = served.rpc();

    // The legitimate client logs in and downloads for about five seconds at the capped rate.
    let download = MemoryDownload::start(served.request("big.bin"), bytes.len());
    std::thread::sleep(Duration::from_millis(500));
    let logins = Logins::start(served.request("small.bin"));
    let hwm_before = served.vm_hwm_kib();
    let started = Instant::now();
    let mut cases = Vec::new();

    // 1. A header claiming 64 KiB, then nothing; then one followed by garbage.
    let mut huge = header(ptype::REQUEST, u16::MAX);
    let stream = connect(rpc);
    cases.push(case("frag_len 0xFFFF, then nothing", stream, |s| {
        s.write_all(&huge).unwrap();
    }));
    huge.extend((0..4000u32).map(|i| (i * 37) as u8));
    let stream = connect(rpc);
    cases.push(case("frag_len 0xFFFF, then garbage", stream, |s| {
        let _ = s.write_all(&huge);
    }));

    // 2. A valid login, then a request whose alloc_hint claims 4 GiB.
    let mut logged = login(rpc);
    let stream = logged.stream.try_clone().unwrap();
    cases.push(case("alloc_hint 4 GiB after NTLM login", stream, |s| {
        let frag = logged.fragment(pfc::FIRST_FRAG, 2, u32::MAX, &[0; 64]);
        s.write_all(&frag).unwrap();
    }));

    // 3. Endless non-LAST fragments after a valid login: small ones (the 4096-fragment bound)
    // and full ones (the 1 MiB bound); and after an unauthenticated bind.
    for (name, chunk) in [
        ("endless 16-byte fragments after NTLM login", 16usize),
        ("endless 4096-byte fragments after NTLM login", 4096),
    ] {
        let mut logged = login(rpc);
        let stream = logged.stream.try_clone().unwrap();
        let mut sent = 0usize;
        cases.push(case(name, stream, |s| {
            let stub = vec![0x41; chunk];
            let mut flags = pfc::FIRST_FRAG;
            while sent < 2 * MAX_FRAGMENTS.max(MAX_CALL / chunk) {
                let frag = logged.fragment(flags, 2, 0, &stub);
                if !send(s, &frag) {
                    break;
                }
                flags = 0;
                sent += 1;
            }
        }));
        eprintln!("  ({name}: {sent} fragments written before the server closed)");
    }
    let stream = bind_unauthenticated(rpc);
    cases.push(case(
        "endless fragments after an unauthenticated bind",
        stream,
        |s| {
            let mut flags = pfc::FIRST_FRAG;
            for _ in 0..10_000 {
                let body = Body::Request(Request {
                    alloc_hint: 0,
                    context_id: 0,
                    opnum: 0,
                    object: None,
                    stub: &[0; 16],
                });
                if !send(s, &pdu::encode(flags, 2, &body, None).unwrap()) {
                    break;
                }
                flags = 0;
            }
        },
    ));

    // 4. auth_len larger than the PDU (a bind whose token would run past its end).
    let stream = connect(rpc);
    cases.push(case("bind with auth_len > frag_len", stream, |s| {
        let trailer = SecTrailer::new(AUTH_TYPE_NTLM, auth_level::PKT_PRIVACY, 0);
        let mut bind = pdu::encode(
            pfc::FIRST_FRAG | pfc::LAST_FRAG,
            1,
            &Body::Bind(bind_body(vec![wds_context(0)])),
            Some((trailer, b"NTLMSSP\0")),
        )
        .unwrap();
        bind[10..12].copy_from_slice(&0x1000u16.to_le_bytes());
        s.write_all(&bind).unwrap();
    }));

    // 5. Garbage right after a valid bind (unauthenticated and authenticated).
    let stream = bind_unauthenticated(rpc);
    cases.push(case("garbage after an unauthenticated bind", stream, |s| {
        let _ = s.write_all(&[0xA5; 300]);
    }));
    let logged = login(rpc);
    cases.push(case("garbage after NTLM login", logged.stream, |s| {
        let _ = s.write_all(&[0xA5; 300]);
    }));

    // 6. A valid login and a request whose signature is flipped.
    let mut logged = login(rpc);
    let stream = logged.stream.try_clone().unwrap();
    cases.push(case("request with a flipped signature", stream, |s| {
        let mut frag = logged.fragment(
            pfc::FIRST_FRAG | pfc::LAST_FRAG,
            2,
            0,
            &initiate_stub("small.bin"),
        );
        let last = frag.len() - 5;
        frag[last] ^= 0x01;
        s.write_all(&frag).unwrap();
    }));

    // 7. Binds with 1000 presentation contexts (44 KB: beyond any fragment), with as many as
    // fit one fragment (96), and with a count of 255 but one context's bytes.
    let many = |n: usize| -> Vec<u8> {
        let contexts: Vec<_> = (0..n as u16).map(wds_context).collect();
        let mut out = header(ptype::BIND, 0);
        out.extend_from_slice(&4280u16.to_le_bytes());
        out.extend_from_slice(&4280u16.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&[n as u8, 0, 0, 0]);
        for c in &contexts {
            let one = pdu::encode(3, 1, &Body::Bind(bind_body(vec![c.clone()])), None).unwrap();
            out.extend_from_slice(&one[28..]);
        }
        let len = out.len().min(usize::from(u16::MAX)) as u16;
        out[8..10].copy_from_slice(&len.to_le_bytes());
        out
    };
    let stream = connect(rpc);
    cases.push(case("bind with 1000 presentation contexts", stream, |s| {
        let _ = s.write_all(&many(1000));
    }));
    let stream = connect(rpc);
    let mut ninety_six = None;
    cases.push(case("bind with 96 presentation contexts", stream, |s| {
        s.write_all(&many(96)).unwrap();
        let ack = read_pdu(s, &mut Framer::new(u16::MAX));
        ninety_six = Some(ack);
        // Then a request on an unauthenticated connection: refused, connection closed.
        let body = Body::Request(Request {
            alloc_hint: 0,
            context_id: 0,
            opnum: 0,
            object: None,
            stub: &initiate_stub("small.bin"),
        });
        let request = pdu::encode(pfc::FIRST_FRAG | pfc::LAST_FRAG, 2, &body, None).unwrap();
        s.write_all(&request).unwrap();
    }));
    let stream = connect(rpc);
    cases.push(case(
        "bind claiming 255 contexts, carrying 1",
        stream,
        |s| {
            let mut one = many(1);
            one[24] = 255;
            s.write_all(&one).unwrap();
        },
    ));

    // Every case ended within a few seconds, closed by the server, and was logged.
    for c in &cases {
        assert!(c.seen.closed, "{}: the server did not close", c.name);
        assert!(
            c.seen.after < Duration::from_secs(3),
            "{}: closed after {:?}",
            c.name,
            c.seen.after
        );
    }
    let expect = |name: &str, pdus: &[&str]| {
        let c = cases.iter().find(|c| c.name == name).unwrap();
        assert_eq!(c.seen.pdus, pdus, "{name}");
    };
    let denied = format!("fault 0x{:08x}", status::ACCESS_DENIED);
    let sec_pkg = format!("fault 0x{:08x}", status::SEC_PKG_ERROR);
    expect("frag_len 0xFFFF, then nothing", &[]);
    expect("frag_len 0xFFFF, then garbage", &[]);
    expect("alloc_hint 4 GiB after NTLM login", &[&denied]);
    expect("endless 16-byte fragments after NTLM login", &[&denied]);
    expect("endless 4096-byte fragments after NTLM login", &[&denied]);
    expect(
        "endless fragments after an unauthenticated bind",
        &[&denied],
    );
    expect("bind with auth_len > frag_len", &[]);
    expect("garbage after an unauthenticated bind", &[]);
    expect("garbage after NTLM login", &[]);
    expect("request with a flipped signature", &[&sec_pkg]);
    expect("bind with 1000 presentation contexts", &[]);
    expect("bind with 96 presentation contexts", &[&denied]);
    expect("bind claiming 255 contexts, carrying 1", &[]);
    let ack = ninety_six.expect("a bind_ack for 96 contexts");
    let Body::BindAck(BindAck { results, .. }) = pdu::decode(&ack).unwrap().body else {
        panic!("expected a bind_ack")
    };
    let accepted = results
        .iter()
        .filter(|r: &&ContextResult| r.result == result::ACCEPTANCE)
        .count();
    assert_eq!(results.len(), 96);
    assert_eq!(accepted, 16, "at most 16 contexts are kept");

    // 8. 200 connections at once: at most 64 stay open, the rest are closed promptly.
    let (ok, errors) = logins.stop();
    eprintln!("legitimate logins during the cases: {ok} succeeded, errors {errors:?}");
    assert!(ok >= 1, "no legitimate login completed during the cases");
    assert!(errors.is_empty(), "legitimate logins failed: {errors:?}");
    let flood_started = Instant::now();
    let flood: Vec<TcpStream> = (0..200).map(|_| connect(rpc)).collect();
    for s in &flood {
        s.set_nonblocking(true).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut gone = vec![false; flood.len()];
    while Instant::now() < deadline && gone.iter().filter(|g| **g).count() < 136 {
        for (i, s) in flood.iter().enumerate() {
            gone[i] = gone[i] || closed_by_peer(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let open = gone.iter().filter(|g| !**g).count();
    let closed = flood.len() - open;
    eprintln!(
        "server case {:<48} {closed} of 200 closed within {} ms, {} held open",
        "200 connections at once",
        flood_started.elapsed().as_millis(),
        open
    );
    assert!(
        closed >= 136,
        "only {closed} of 200 connections were closed"
    );
    assert!(open <= 64, "{open} connections held open");
    let refused = served
        .log_lines()
        .iter()
        .filter(|l| l.get("event").and_then(|e| e.as_str()) == Some("rpc_refused"))
        .count();
    assert!(refused >= 136, "{refused} refusals logged");
    drop(flood);
    // The server frees the slots as soon as those clients go: a new login gets in.
    let healthy = Instant::now();
    let mut login_after = initiate(&served.request("small.bin"));
    while login_after.is_err() && healthy.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(200));
        login_after = initiate(&served.request("small.bin"));
    }
    login_after.expect("a login after the flood");
    eprintln!(
        "  (a legitimate login got in {} ms after the flood closed)",
        healthy.elapsed().as_millis()
    );

    check_legitimate(download, &bytes);
    let hwm_after = served.vm_hwm_kib();
    eprintln!(
        "server peak RSS: {hwm_before} KiB before the cases, {hwm_after} KiB after; cases took {} ms",
        started.elapsed().as_millis()
    );
    assert!(served.alive(), "the server exited");
    assert!(hwm_after < MEMORY_LIMIT_KIB, "server peak {hwm_after} KiB");
    assert!(
        hwm_after - hwm_before < 16 * 1024,
        "server peak grew from {hwm_before} to {hwm_after} KiB"
    );
    // A clear log line for every connection the server gave up on.
    for c in &cases {
        let line = served.logged("rpc_error", c.from);
        assert!(
            line.is_some(),
            "{}: no rpc_error line for {}",
            c.name,
            c.from
        );
        eprintln!("  log: {}", line.unwrap());
    }
}

/// Whether the server has closed (or reset) a non-blocking stream.
fn closed_by_peer(mut s: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    match s.read(&mut probe) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// The idle timeout closes a connection that trickles one byte a second (the timer counts
/// whole PDUs, not bytes), in process with a 2 s `RpcConfig::idle_timeout`; a legitimate
/// download through another session meanwhile is unaffected.
#[test]
fn slowloris_is_closed_by_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::content(300_000, 191);
    std::fs::write(dir.path().join("s.bin"), &bytes).unwrap();
    let mut config = WdsConfig::new(vec![NamespaceConfig {
        name: "ns".into(),
        root: dir.path().to_path_buf(),
    }]);
    config.listen = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.msi_port = 0;
    config.port_range = (47790, 47799);
    config.group_range_v4 = (Ipv4Addr::new(239, 255, 191, 0), 24);
    let mut rpc = RpcConfig::new(accounts());
    rpc.port = 0;
    rpc.idle_timeout = Duration::from_secs(2);
    config.rpc = Some(rpc);
    let server = Server::start(config).unwrap();
    let rpc_addr = server.rpc_addr().unwrap();

    let mut trickle = connect(rpc_addr);
    let bind = pdu::encode(
        pfc::FIRST_FRAG | pfc::LAST_FRAG,
        1,
        &Body::Bind(bind_body(vec![wds_context(0)])),
        None,
    )
    .unwrap();
    let started = Instant::now();
    let slow = std::thread::spawn(move || {
        let mut written = 0;
        for b in &bind {
            if trickle.write_all(&[*b]).is_err() {
                break;
            }
            written += 1;
            // Closed yet? Peek without blocking for long.
            trickle
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            let mut probe = [0u8; 1];
            match trickle.read(&mut probe) {
                Ok(0) => return (written, started.elapsed(), true),
                Ok(_) => return (written, started.elapsed(), false),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return (written, started.elapsed(), true),
            }
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        (written, started.elapsed(), false)
    });

    let mut request =
        TransportRequest::new(server.msi_addr().to_string(), "ns", "s.bin".to_string());
    request.interface = Some(InterfaceSpec::Address(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    request.timeouts.initiation = Duration::from_secs(10);
    request.timeouts.inactivity = Duration::from_secs(10);
    let mut init = RpcInitiation::new(RpcAuth::Ntlm(Arc::new(credentials())));
    init.port = rpc_addr.port();
    request.initiation = Initiation::Rpc(init);
    check_legitimate(MemoryDownload::start(request, bytes.len()), &bytes);

    let (written, after, closed) = slow.join().unwrap();
    eprintln!(
        "server case {:<48} closed={closed} after {} ms, {written} bytes trickled",
        "slowloris, one byte per second",
        after.as_millis()
    );
    assert!(closed, "the trickling connection was not closed");
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(5),
        "closed after {after:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Against the client

/// An acceptor factory like the server's: NTLM or SPNEGO wrapping NTLM, over alice.
fn factory() -> AuthFactory {
    let store: Arc<dyn AccountStore> = Arc::new(accounts());
    Box::new(move |auth_type| {
        let ntlm = NtlmServer::new(
            Arc::clone(&store),
            NtlmConfig::new("HOSTILE", "WDS"),
            &mut os_rng(),
            SystemTime::now(),
        );
        let auth: Box<dyn ServerAuth> = match auth_type {
            AUTH_TYPE_NTLM => Box::new(ntlm),
            AUTH_TYPE_SPNEGO => Box::new(SpnegoServer::new(ntlm)),
            _ => return None,
        };
        Some(auth)
    })
}

/// The scripted server after the login and the client's request: the machine that did the
/// handshake (it still seals for this connection) and the call to answer.
struct Handshaken {
    stream: TcpStream,
    machine: RpcMachine,
    call_id: u32,
}

impl Handshaken {
    /// The sealed fragments of `stub` as the answer, not yet sent.
    fn response(&mut self, stub: &[u8]) -> Vec<Vec<u8>> {
        self.machine.respond(self.call_id, stub).unwrap();
        std::iter::from_fn(|| self.machine.poll_transmit()).collect()
    }

    /// Sends the sealed answer `stub`, then waits for the client to close.
    fn answer(&mut self, stub: &[u8]) {
        for frag in self.response(stub) {
            send(&mut self.stream, &frag);
        }
        self.until_closed();
    }

    /// Waits (up to 10 s) for the client to close.
    fn until_closed(&mut self) {
        let _ = read_until_closed(&mut self.stream, Instant::now(), Duration::from_secs(10));
    }
}

/// Runs the library's RPC server machine on one accepted connection until the client's
/// request arrives; `patch` may rewrite each PDU before it is sent.
fn handshake(
    listener: &TcpListener,
    config: ServerConfig,
    mut patch: impl FnMut(&mut Vec<u8>),
) -> Handshaken {
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut machine = RpcMachine::new(config, Some(factory()));
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(mut bytes) = machine.poll_transmit() {
            patch(&mut bytes);
            stream.write_all(&bytes).unwrap();
        }
        while let Some(event) = machine.poll_event() {
            match event {
                ServerEvent::Request { call_id, .. } => {
                    return Handshaken {
                        stream,
                        machine,
                        call_id,
                    };
                }
                ServerEvent::Bound { user } => {
                    assert!(
                        user.is_some_and(|u| u.contains("alice")),
                        "logged in as alice"
                    )
                }
                other => panic!("handshake failed: {other:?}"),
            }
        }
        let n = stream.read(&mut buf).expect("the client's next PDU");
        assert!(n > 0, "the client closed during the handshake");
        machine.handle_bytes(&buf[..n]);
    }
}

/// A WDSC INITIATE reply for a consistent one-block session.
fn reply() -> InitiateReply {
    InitiateReply {
        multicast_addr: IpAddr::V4(Ipv4Addr::new(239, 255, 192, 1)),
        server_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 47800,
        session_id: 7,
        content_size: 1000,
        block_size: 1000,
        total_blocks: 1,
        content_metadata: None,
        sym_key: Some(
            SymKey {
                alg: 0x8009,
                key: vec![7; 32],
            }
            .encode(),
        ),
        sign_key: None,
        hash_alg_id: Some(0x800C),
        hmac_alg_id: Some(0x8009),
        sec_mode: Some(0x0001_0001),
        user_sid: Some(vec![1, 1, 0, 0, 0, 0, 0, 5, 7, 0, 0, 0]),
    }
}

struct Outcome {
    code: i32,
    stderr: String,
    max_rss_kib: i64,
    elapsed: Duration,
}

/// Runs `wdsmc get --user WDS\alice` against a scripted listener playing `script` on another
/// thread, sampling the client's peak memory (VmHWM, every millisecond) until it exits. A
/// client that fails within a few milliseconds may exit before a sample shows its real peak.
fn run_get(
    name: &str,
    extra: &[&str],
    script: impl FnOnce(&TcpListener) + Send,
) -> (Outcome, tempfile::TempDir) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("get.stderr");
    let out = dir.path().join("out.bin");
    let mut args = vec![
        "get",
        "--server",
        "127.0.0.1",
        "--rpc-port",
        &port,
        "--user",
        "WDS\\alice",
        "--namespace",
        "ns",
        "--object",
        "obj",
        "--interface",
        "127.0.0.1",
        "--start-timeout",
        "3s",
        "--timeout",
        "2s",
        "--progress",
        "none",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(&args)
        .env("WDSMC_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let (code, max_rss_kib) = std::thread::scope(|scope| {
        let player = scope.spawn(|| script(&listener));
        let (status, peak) = wait_sampling_peak(
            &mut child,
            Duration::from_secs(20),
            Duration::from_millis(1),
        );
        let Some(status) = status else {
            panic!(
                "{name}: wdsmc get did not exit; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        };
        player.join().expect("the script");
        (status.code().expect("exited, not killed by a signal"), peak)
    });
    let outcome = Outcome {
        code,
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        max_rss_kib,
        elapsed: started.elapsed(),
    };
    eprintln!(
        "client case {name:<44} exit {} after {:>5} ms, peak {:>6} KiB: {}",
        outcome.code,
        outcome.elapsed.as_millis(),
        outcome.max_rss_kib,
        outcome.stderr.trim()
    );
    (outcome, dir)
}

/// The documented exit code, a one-line error naming `needle`, no panic, nothing left in the
/// output folder but the client's stderr, and bounded memory.
fn check(outcome: &Outcome, dir: &Path, code: i32, needle: &str) {
    assert_eq!(outcome.code, code, "stderr: {}", outcome.stderr);
    let lines: Vec<&str> = outcome.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of error: {:?}", outcome.stderr);
    assert!(
        outcome.stderr.contains(needle),
        "error names {needle:?}: {}",
        outcome.stderr
    );
    assert!(!outcome.stderr.contains("panic"), "{}", outcome.stderr);
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "get.stderr")
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    assert!(
        outcome.max_rss_kib > 0 && outcome.max_rss_kib < MEMORY_LIMIT_KIB,
        "peak {} KiB",
        outcome.max_rss_kib
    );
}

/// Answers the client's bind with a bind_ack whose fragment sizes are `xmit`/`recv`.
fn ack_with_sizes(listener: &TcpListener, xmit: u16, recv: u16) {
    let (mut stream, _) = listener.accept().unwrap();
    let bind = read_pdu(&mut stream, &mut Framer::new(4280));
    let call_id = pdu::decode(&bind).unwrap().header.call_id;
    let ack = BindAck {
        max_xmit_frag: xmit,
        max_recv_frag: recv,
        assoc_group_id: 1,
        secondary_address: b"5040".to_vec(),
        results: vec![ContextResult {
            result: result::ACCEPTANCE,
            reason: 0,
            transfer_syntax: NDR,
        }],
    };
    let bytes = pdu::encode(
        pfc::FIRST_FRAG | pfc::LAST_FRAG,
        call_id,
        &Body::BindAck(ack),
        None,
    )
    .unwrap();
    stream.write_all(&bytes).unwrap();
    let _ = read_until_closed(&mut stream, Instant::now(), Duration::from_secs(10));
}

#[test]
fn bind_ack_with_tiny_fragment_sizes_exits_1() {
    for (name, xmit, recv) in [
        ("bind_ack max_xmit_frag 0", 0u16, 4280u16),
        ("bind_ack max_xmit_frag 1431", 1431, 4280),
        ("bind_ack max_recv_frag 16", 4280, 16),
    ] {
        let (outcome, dir) = run_get(name, &[], |l| ack_with_sizes(l, xmit, recv));
        check(&outcome, dir.path(), 1, "below the 1432-byte minimum");
    }
}

#[test]
fn response_header_claiming_64_kib_then_silence_exits_1_at_once() {
    let (outcome, dir) = run_get("response frag_len 0xFFFF, then silence", &[], |l| {
        let mut h = handshake(l, ServerConfig::default(), |_| {});
        let header = header(ptype::RESPONSE, u16::MAX);
        h.stream.write_all(&header).unwrap();
        h.until_closed();
    });
    check(&outcome, dir.path(), 1, "fragment length 65535");
    assert!(
        outcome.elapsed < Duration::from_secs(2),
        "{:?}",
        outcome.elapsed
    );
}

/// A raw NTLM acceptor (`--auth ntlm` clients): bind → bind_ack with the CHALLENGE, auth3,
/// then the client's request; returns the stream, a sealer for responses and the call id.
fn ntlm_handshake(listener: &TcpListener) -> (TcpStream, Sealer, u32) {
    let (mut stream, _) = listener.accept().unwrap();
    let bytes = read_pdu(&mut stream, &mut Framer::new(4280));
    let bind = pdu::decode(&bytes).unwrap();
    let auth = bind.auth.expect("an NTLM bind");
    assert_eq!(auth.trailer.auth_type, AUTH_TYPE_NTLM);
    let trailer = SecTrailer::new(
        AUTH_TYPE_NTLM,
        auth_level::PKT_PRIVACY,
        auth.trailer.context_id,
    );
    let mut acceptor = factory()(AUTH_TYPE_NTLM).unwrap();
    let AuthStep::Continue(challenge) = acceptor.step(auth.value).unwrap() else {
        panic!("NTLM answers NEGOTIATE with a CHALLENGE")
    };
    let ack = BindAck {
        max_xmit_frag: 4280,
        max_recv_frag: 4280,
        assoc_group_id: 1,
        secondary_address: b"5040".to_vec(),
        results: vec![ContextResult {
            result: result::ACCEPTANCE,
            reason: 0,
            transfer_syntax: NDR,
        }],
    };
    let flags = pfc::FIRST_FRAG | pfc::LAST_FRAG | pfc::SUPPORT_HEADER_SIGN;
    let ack = pdu::encode(
        flags,
        bind.header.call_id,
        &Body::BindAck(ack),
        Some((trailer, &challenge)),
    )
    .unwrap();
    stream.write_all(&ack).unwrap();
    let bytes = read_pdu(&mut stream, &mut Framer::new(4280));
    let auth3 = pdu::decode(&bytes).unwrap();
    assert!(matches!(auth3.body, Body::Auth3));
    let token = auth3.auth.expect("an AUTHENTICATE").value;
    assert!(
        matches!(acceptor.step(token), Ok(AuthStep::Done(_))),
        "alice logs in"
    );
    let mut protection = acceptor.into_protection().unwrap();
    protection.set_header_signing(true);
    let bytes = read_pdu(&mut stream, &mut Framer::new(4280));
    let call_id = pdu::decode(&bytes).unwrap().header.call_id;
    (
        stream,
        Sealer {
            protection,
            trailer,
        },
        call_id,
    )
}

#[test]
fn endless_response_fragments_stop_at_the_client_bounds() {
    // Full fragments with alloc_hint 0 (unknown), never LAST: the 1 MiB reassembly bound.
    let (outcome, dir) = run_get(
        "endless 4096-byte response fragments",
        &["--auth", "ntlm"],
        |l| {
            let (mut stream, mut sealer, call_id) = ntlm_handshake(l);
            let chunk = [0x42; 4096];
            for i in 0..2 * MAX_CALL / chunk.len() {
                let body = Body::Response(Response {
                    alloc_hint: 0,
                    context_id: 0,
                    cancel_count: 0,
                    stub: &chunk,
                });
                let flags = if i == 0 { pfc::FIRST_FRAG } else { 0 };
                if !send(&mut stream, &sealer.seal(flags, call_id, &body)) {
                    break;
                }
            }
            let _ = read_until_closed(&mut stream, Instant::now(), Duration::from_secs(10));
        },
    );
    check(&outcome, dir.path(), 1, "1048576-byte reassembly limit");
    // 64-byte fragments (16 stub bytes each) from the library's machine: the 4096-fragment
    // bound. The bind_ack is patched to announce 4280 so the client accepts the association
    // (bind_acks are not signed).
    let config = ServerConfig {
        max_xmit_frag: 64,
        ..ServerConfig::default()
    };
    let (outcome, dir) = run_get("endless 64-byte response fragments", &[], |l| {
        let mut h = handshake(l, config, |pdu| {
            if pdu[2] == ptype::BIND_ACK {
                pdu[16..18].copy_from_slice(&4280u16.to_le_bytes());
            }
        });
        let frags = h.response(&vec![0x42; MAX_CALL / 4]);
        assert!(frags.len() > 2 * MAX_FRAGMENTS);
        for frag in &frags[..frags.len() - 1] {
            if !send(&mut h.stream, frag) {
                break;
            }
        }
        h.until_closed();
    });
    check(&outcome, dir.path(), 1, "4096-fragment limit");
    // A response announcing 3 MiB: refused at its first fragment by the alloc_hint bound.
    let (outcome, dir) = run_get("response announcing 3 MiB", &[], |l| {
        let mut h = handshake(l, ServerConfig::default(), |_| {});
        let frags = h.response(&vec![0x42; 3 * MAX_CALL]);
        for frag in &frags[..frags.len() - 1] {
            if !send(&mut h.stream, frag) {
                break;
            }
        }
        h.until_closed();
    });
    check(
        &outcome,
        dir.path(),
        1,
        "alloc_hint 3145728 exceeds the 1048576-byte limit",
    );
}

#[test]
fn response_with_a_garbage_verifier_exits_1() {
    let (outcome, dir) = run_get("response with a garbage verifier", &[], |l| {
        let mut h = handshake(l, ServerConfig::default(), |_| {});
        let stub = stub::encode_message_response(Some(&reply().encode()), 0).unwrap();
        let mut frags = h.response(&stub);
        let frag = &mut frags[0];
        let sig_at = frag.len() - 12;
        for b in &mut frag[sig_at..] {
            *b = 0x5A;
        }
        for frag in &frags {
            send(&mut h.stream, frag);
        }
        h.until_closed();
    });
    check(&outcome, dir.path(), 1, "signature does not verify");
}

#[test]
fn bind_ack_then_silence_times_out_with_exit_6() {
    let (outcome, dir) = run_get("bind_ack, then silence", &[], |l| {
        let (mut stream, _) = l.accept().unwrap();
        let mut machine = RpcMachine::new(ServerConfig::default(), Some(factory()));
        let bind = read_pdu(&mut stream, &mut Framer::new(4280));
        machine.handle_bytes(&bind);
        let ack = machine.poll_transmit().expect("a bind_ack");
        stream.write_all(&ack).unwrap();
        // Read (and ignore) whatever else the client sends until it gives up.
        let _ = read_until_closed(&mut stream, Instant::now(), Duration::from_secs(10));
    });
    check(
        &outcome,
        dir.path(),
        6,
        "timed out during session initiation",
    );
    assert!(
        outcome.elapsed >= Duration::from_secs(3) && outcome.elapsed < Duration::from_secs(5),
        "{:?}",
        outcome.elapsed
    );
}

#[test]
fn close_in_the_middle_of_a_response_exits_4() {
    let (outcome, dir) = run_get("close mid-PDU", &[], |l| {
        let mut h = handshake(l, ServerConfig::default(), |_| {});
        let stub = stub::encode_message_response(Some(&reply().encode()), 0).unwrap();
        let frags = h.response(&stub);
        h.stream.write_all(&frags[0][..frags[0].len() / 2]).unwrap();
        // Dropping the stream closes it mid-PDU.
    });
    check(&outcome, dir.path(), 4, "in the middle of a PDU");
}

#[test]
fn reply_stub_claiming_a_4_gib_packet_exits_1() {
    let (outcome, dir) = run_get("reply stub claiming a 4 GiB packet", &[], |l| {
        let mut h = handshake(l, ServerConfig::default(), |_| {});
        let mut stub = Vec::new();
        stub.extend_from_slice(&u32::MAX.to_le_bytes());
        stub.extend_from_slice(&0x0002_0000u32.to_le_bytes());
        stub.extend_from_slice(&u32::MAX.to_le_bytes());
        stub.extend_from_slice(&[0; 64]);
        h.answer(&stub);
    });
    check(&outcome, dir.path(), 1, "malformed");
}

#[test]
fn wdsc_reply_with_variable_count_0xffffffff_exits_1() {
    let (outcome, dir) = run_get("WDSC reply with Variable-Count 0xFFFFFFFF", &[], |l| {
        let mut h = handshake(l, ServerConfig::default(), |_| {});
        let mut packet = reply().encode();
        // Endpoint header (40) + Packet-Size, Version, Packet-Type, Padding, OpCode (12).
        packet[52..56].copy_from_slice(&u32::MAX.to_le_bytes());
        let stub = stub::encode_message_response(Some(&packet), 0).unwrap();
        h.answer(&stub);
    });
    check(&outcome, dir.path(), 1, "Variable-Count");
}

#[test]
fn sign_mode_without_a_sign_key_exits_1() {
    let (outcome, dir) = run_get("SecMode 0x00020001 without SignKey", &[], |l| {
        let mut h = handshake(l, ServerConfig::default(), |_| {});
        let mut sign = reply();
        sign.sec_mode = Some(0x0002_0001);
        let stub = stub::encode_message_response(Some(&sign.encode()), 0).unwrap();
        h.answer(&stub);
    });
    check(&outcome, dir.path(), 1, "SignKey");
}
