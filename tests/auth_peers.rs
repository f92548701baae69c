//! Our NTLM / SPNEGO contexts against an independent implementation, pyspnego, run as
//! `tests/peers/ntlm_peer.py` over stdin/stdout (no sockets). Both directions, NTLM and
//! SPNEGO, wrong passwords, and header-signed sealing (pyspnego's wrap_iov) both ways.
//!
//! The interpreter is `$WDSMC_PYTHON` (default `python3`); it needs pyspnego (tested with
//! `pyspnego==0.12.4`). Without it the tests print why and pass without checking anything.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use wdsmc::auth::{
    Accounts, Credentials, NtlmClient, NtlmServer, ServerConfig, SpnegoClient, SpnegoServer,
};
use wdsmc::rpc::security::{AuthError, AuthStep, ClientAuth, Protection, ServerAuth};

use common::peers::{imports_or_skip, python_command};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/ntlm_peer.py");

/// Whether the peer can run here; prints the reason when not.
fn peer_available() -> bool {
    imports_or_skip("spnego")
}

// --- base64, enough for the peer's line protocol ----------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64(data: &[u8]) -> String {
    if data.is_empty() {
        return "-".into();
    }
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn unb64(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for ch in s.bytes().filter(|&c| c != b'=') {
        let v = B64
            .iter()
            .position(|&b| b == ch)
            .expect("base64 from the peer") as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

// --- the peer process ---------------------------------------------------------------------

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(args: &[&str]) -> Peer {
        let mut child = python_command()
            .arg(PEER)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the pyspnego peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one command; `Ok(words after "ok")` or `Err(the peer's message)`.
    fn call(&mut self, cmd: &str, args: &[&[u8]]) -> Result<Vec<String>, String> {
        let mut line = cmd.to_owned();
        for a in args {
            line.push(' ');
            line.push_str(&b64(a));
        }
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).unwrap();
        let mut words = reply.split_whitespace().map(str::to_owned);
        match words.next().as_deref() {
            Some("ok") => Ok(words.collect()),
            Some("err") => Err(words.collect::<Vec<_>>().join(" ")),
            _ => panic!("peer said {reply:?}"),
        }
    }

    /// `step`: the peer's output token (maybe empty) and whether it is complete.
    fn step(&mut self, token: &[u8]) -> Result<(Vec<u8>, bool), String> {
        let w = self.call("step", &[token])?;
        Ok((unb64(&w[0]), w[1] == "1"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- fixtures ------------------------------------------------------------------------------

fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

fn our_server(spnego: bool, seed: u64) -> Box<dyn ServerAuth> {
    let store = Arc::new(Accounts::parse("WDS\\alice:Passw0rd!\nWDS\\bob:Hunter2\n").unwrap());
    let ntlm = NtlmServer::new(
        store,
        ServerConfig::new("WDS01", "WDS"),
        &mut rng(seed),
        SystemTime::now(),
    );
    if spnego {
        Box::new(SpnegoServer::new(ntlm))
    } else {
        Box::new(ntlm)
    }
}

fn our_client(spnego: bool, password: &str, seed: u64) -> Box<dyn ClientAuth> {
    let ntlm = NtlmClient::new(
        Credentials::new("WDS", "alice", password),
        &mut rng(seed),
        SystemTime::now(),
    );
    if spnego {
        Box::new(SpnegoClient::new(ntlm))
    } else {
        Box::new(ntlm)
    }
}

fn proto(spnego: bool) -> &'static str {
    if spnego { "negotiate" } else { "ntlm" }
}

/// A request PDU's header (24 bytes) and sec_trailer, as the RPC layer would pass them.
fn pdu_parts(call_id: u32, auth_type: u8) -> (Vec<u8>, [u8; 8]) {
    let mut h = vec![5, 0, 0, 3, 0x10, 0, 0, 0, 0x60, 0, 0x10, 0];
    h.extend_from_slice(&call_id.to_le_bytes());
    h.extend_from_slice(&[0x20, 0, 0, 0, 0, 0, 0, 0]);
    (h, [auth_type, 6, 0, 0, 0, 0, 0, 0])
}

/// Sealed PDUs both ways, several rounds, so RC4 state and sequence numbers stay in step.
fn seal_both_ways(ours: &mut dyn Protection, peer: &mut Peer, auth_type: u8) {
    for n in 0..5u32 {
        let (h, t) = pdu_parts(n, auth_type);
        let plain = format!("WDSC stub {n} from wdsmc, padded....").into_bytes();
        let mut body = plain.clone();
        let sig = ours.seal(&h, &mut body, &t).unwrap();
        let w = peer
            .call("unseal", &[&h, &body, &t, &sig])
            .expect("pyspnego unseals ours");
        assert_eq!(unb64(&w[0]), plain);

        let plain = format!("reply {n} from pyspnego").into_bytes();
        let w = peer.call("seal", &[&h, &plain, &t]).unwrap();
        let (mut body, sig) = (unb64(&w[0]), unb64(&w[1]));
        assert_ne!(body, plain);
        ours.unseal(&h, &mut body, &t, &sig)
            .expect("we unseal pyspnego's");
        assert_eq!(body, plain);
    }
    // A PDU whose header was changed after signing is refused by the peer.
    let (h, t) = pdu_parts(99, auth_type);
    let mut body = b"tampered header".to_vec();
    let sig = ours.seal(&h, &mut body, &t).unwrap();
    let mut h2 = h.clone();
    h2[12] ^= 1;
    assert!(peer.call("unseal", &[&h2, &body, &t, &sig]).is_err());
}

/// pyspnego initiates, we accept. Returns our server's verdict and the peer.
fn py_client_run(spnego: bool, password: &str) -> (Result<Box<dyn ServerAuth>, AuthError>, Peer) {
    let mut peer = Peer::start(&["client", proto(spnego), "WDS\\alice", password]);
    let mut server = our_server(spnego, 11);
    let (mut token, mut py_done) = peer.step(&[]).unwrap();
    loop {
        match server.step(&token) {
            Err(e) => return (Err(e), peer),
            Ok(AuthStep::Continue(r)) => (token, py_done) = peer.step(&r).unwrap(),
            Ok(AuthStep::Done(reply)) => {
                if let Some(r) = reply {
                    (token, py_done) = peer.step(&r).unwrap();
                    assert!(token.is_empty());
                }
                assert!(py_done, "pyspnego finished too");
                return (Ok(server), peer);
            }
        }
        assert!(!token.is_empty() || py_done);
    }
}

/// We initiate, pyspnego accepts. `Err` carries pyspnego's refusal.
fn our_client_run(spnego: bool, password: &str) -> (Result<Box<dyn Protection>, String>, Peer) {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "WDS:alice:Passw0rd!\nWDS:bob:Hunter2\n").unwrap();
    let mut peer = Peer::start(&["server", proto(spnego), users.to_str().unwrap()]);
    let mut client = our_client(spnego, password, 12);
    let mut out = client.step(None).unwrap();
    loop {
        match out {
            AuthStep::Continue(t) => match peer.step(&t) {
                Ok((r, _)) => out = client.step(Some(&r)).unwrap(),
                Err(e) => return (Err(e), peer),
            },
            AuthStep::Done(Some(t)) => match peer.step(&t) {
                Ok((r, done)) => {
                    assert!(r.is_empty() && done);
                    break;
                }
                Err(e) => return (Err(e), peer),
            },
            AuthStep::Done(None) => break,
        }
    }
    (Ok(client.into_protection().unwrap()), peer)
}

#[test]
fn pyspnego_client_to_our_server() {
    if !peer_available() {
        return;
    }
    for spnego in [false, true] {
        let (server, mut peer) = py_client_run(spnego, "Passw0rd!");
        let server = server.unwrap_or_else(|e| panic!("{}: refused: {e}", proto(spnego)));
        assert_eq!(server.user().as_deref(), Some("WDS\\alice"));
        let auth_type = server.auth_type();
        let mut p = server.into_protection().unwrap();
        seal_both_ways(&mut *p, &mut peer, auth_type);
    }
}

#[test]
fn pyspnego_client_wrong_password_is_rejected() {
    if !peer_available() {
        return;
    }
    for spnego in [false, true] {
        let (server, _) = py_client_run(spnego, "not the password");
        assert_eq!(
            server.err(),
            Some(AuthError::RejectedCredentials),
            "{}",
            proto(spnego)
        );
    }
}

#[test]
fn our_client_to_pyspnego_server() {
    if !peer_available() {
        return;
    }
    for spnego in [false, true] {
        let (p, mut peer) = our_client_run(spnego, "Passw0rd!");
        let mut p = p.unwrap_or_else(|e| panic!("{}: pyspnego refused: {e}", proto(spnego)));
        let user = peer.call("user", &[]).unwrap();
        assert_eq!(unb64(&user[0]), b"WDS\\alice");
        seal_both_ways(&mut *p, &mut peer, if spnego { 0x09 } else { 0x0a });
    }
}

#[test]
fn our_client_wrong_password_is_refused_by_pyspnego() {
    if !peer_available() {
        return;
    }
    for spnego in [false, true] {
        let (p, _) = our_client_run(spnego, "not the password");
        let e = p.err().expect("pyspnego must refuse");
        assert!(
            e.contains("Invalid NTLM response"),
            "{}: {e}",
            proto(spnego)
        );
    }
}
