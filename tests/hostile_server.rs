//! A scripted, hostile server against the real client: `wdsmc get` as a process (exit codes,
//! peak memory from `wait4`) and `transport::Session` in-process (drop counters).
//!
//! Loopback only: the script answers MSI on 127.0.0.1 itself (src/wire codecs) and sends to
//! groups in 239.255.180.0/24 with IP_MULTICAST_IF 127.0.0.1 and TTL 1. Each test has its own
//! group, so tests run in parallel.

#![cfg(unix)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use wdsmc::transport::{Event, InterfaceSpec, Request, Session, Stats, Status, TransportError};
use wdsmc::wire::ma::{DataBlock, MaPacket};
use wdsmc::wire::msi::{MsiPacket, MsiReply};
use wdsmc::wire::mt::{
    Body, DataPacket, JoinAck, Kick, KickReason, Nack, Ncf, Packet, Security, SeqRange,
};

use common::process::{vm_hwm_kib, wait_sampling_peak};

const BIN: &str = env!("CARGO_BIN_EXE_wdsmc");
const SESSION_ID: u32 = 0x0BAD_5E55;
/// Peak resident memory any client may reach under hostile input.
const MEMORY_LIMIT_KIB: i64 = 64 * 1024;

/// The scripted server: one unicast socket for MSI and session traffic, one multicast sender.
struct Scripted {
    unicast: UdpSocket,
    multicast: UdpSocket,
    group: SocketAddr,
}

impl Scripted {
    fn new(slot: u8) -> Scripted {
        let unicast = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        unicast
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = unicast.local_addr().unwrap().port();
        let sender = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        sender.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
        sender.set_multicast_ttl_v4(1).unwrap();
        sender.set_multicast_loop_v4(true).unwrap();
        sender
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        Scripted {
            unicast,
            multicast: sender.into(),
            group: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 255, 180, slot)), port),
        }
    }

    fn msi_addr(&self) -> String {
        self.unicast.local_addr().unwrap().to_string()
    }

    fn reply(&self, content_size: u64, block_size: u32, total_blocks: u64) -> MsiReply {
        MsiReply {
            multicast_addr: self.group.ip(),
            server_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            multicast_port: self.group.port(),
            server_port: self.group.port(),
            content_size,
            block_size,
            total_blocks,
            session_id: SESSION_ID,
        }
    }

    /// Waits for the MSI request and answers it with `reply`.
    fn answer_msi(&self, reply: &MsiReply) {
        let (bytes, from) = self.recv(Duration::from_secs(10)).expect("an MSI request");
        assert!(
            matches!(MsiPacket::decode(&bytes), Ok(MsiPacket::Request(_))),
            "expected an MSI request"
        );
        self.unicast
            .send_to(&MsiPacket::Reply(reply.clone()).encode(), from)
            .unwrap();
    }

    fn recv(&self, limit: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            if let Ok((len, from)) = self.unicast.recv_from(&mut buf) {
                return Some((buf[..len].to_vec(), from));
            }
        }
        None
    }

    /// Waits for the client's JOIN and answers with a JOINACK giving it `client_id`.
    fn accept_join(&self, client_id: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no JOIN from the client");
            let Some((bytes, from)) = self.recv(Duration::from_secs(1)) else {
                continue;
            };
            if let Ok(Packet {
                body: Body::Join(_),
                ..
            }) = Packet::decode(&bytes)
            {
                let ack = packet(Body::JoinAck(JoinAck {
                    client_id,
                    min_nack_backoff: 10,
                    max_nack_backoff: 20,
                    rtt: 1,
                    client_time: 0,
                }));
                self.unicast.send_to(&ack, from).unwrap();
                return;
            }
        }
    }

    fn send_group(&self, bytes: &[u8]) {
        self.multicast.send_to(bytes, self.group).unwrap();
    }
}

fn packet(body: Body<'_>) -> Vec<u8> {
    Packet {
        security: Security::Checksum,
        session_id: SESSION_ID,
        sender_time: 1,
        body,
    }
    .encode()
}

/// An ODATA packet carrying `block_number` with `data`.
fn odata(seq: u64, block_number: u64, data: &[u8]) -> Vec<u8> {
    let ma = MaPacket::Data(DataBlock { block_number, data }).encode();
    packet(Body::OData(DataPacket {
        client_id: 0,
        odata_seq_no: seq,
        trail_odata_seq_no: 1,
        data: &ma,
        fw_lead_seq_no: None,
    }))
}

/// Recomputes nothing: flips a byte after the header so the checksum no longer matches.
fn with_bad_checksum(mut bytes: Vec<u8>) -> Vec<u8> {
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    bytes
}

/// Re-checksums a packet whose covered bytes were edited.
fn fix_checksum(bytes: &mut [u8]) {
    let sum = wdsmc::wire::mt::checksum(&bytes[9..]);
    bytes[5..9].copy_from_slice(&sum.to_be_bytes());
}

struct Outcome {
    code: i32,
    stderr: String,
    max_rss_kib: i64,
}

/// Runs `wdsmc get` against `server`, plays `script` meanwhile (on another thread), and
/// samples the process's peak resident memory until it exits.
fn run_get(
    dir: &Path,
    server: &Scripted,
    extra: &[&str],
    script: impl FnOnce(&Scripted) + Send,
) -> Outcome {
    let stderr_path = dir.join("get.stderr");
    let msi = server.msi_addr();
    let out = dir.join("out.bin");
    let out = out.to_str().unwrap();
    let mut args = vec![
        "get",
        "--server",
        &msi,
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
        out,
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new(BIN)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut max_rss_kib = 0;
    std::thread::scope(|scope| {
        let player = scope.spawn(|| script(server));
        while !player.is_finished() {
            max_rss_kib = max_rss_kib.max(vm_hwm_kib(pid));
            std::thread::sleep(Duration::from_millis(5));
        }
        player.join().expect("script");
    });
    let (status, peak) = wait_sampling_peak(
        &mut child,
        Duration::from_secs(20),
        Duration::from_millis(5),
    );
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let Some(status) = status else {
        panic!("wdsmc get did not exit; stderr:\n{stderr}");
    };
    Outcome {
        code: status
            .code()
            .expect("wdsmc get exited, not killed by a signal"),
        stderr,
        max_rss_kib: max_rss_kib.max(peak),
    }
}

fn assert_no_output(dir: &Path) {
    assert!(
        !dir.join("out.bin").exists(),
        "a file exists under the final name"
    );
}

/// A refused session stayed under the memory limit and left nothing under the final name.
fn assert_bounded_and_no_output(outcome: &Outcome, dir: &Path) {
    assert!(
        outcome.max_rss_kib < MEMORY_LIMIT_KIB,
        "peak {} KiB",
        outcome.max_rss_kib
    );
    assert_no_output(dir);
}

#[test]
fn reply_whose_total_blocks_does_not_fit_the_size_exits_1() {
    let server = Scripted::new(1);
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_get(dir.path(), &server, &[], |s| {
        s.answer_msi(&s.reply(1 << 20, 1400, 1 << 60));
    });
    assert_eq!(outcome.code, 1, "stderr: {}", outcome.stderr);
    assert!(
        outcome.stderr.contains("1152921504606846976"),
        "the error names the value: {}",
        outcome.stderr
    );
    assert_bounded_and_no_output(&outcome, dir.path());
}

#[test]
fn consistent_total_blocks_of_2_60_is_refused_with_bounded_memory() {
    let server = Scripted::new(2);
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_get(dir.path(), &server, &[], |s| {
        s.answer_msi(&s.reply(1 << 60, 1, 1 << 60));
    });
    eprintln!(
        "2^60 blocks: exit {}, peak {} KiB",
        outcome.code, outcome.max_rss_kib
    );
    assert_eq!(outcome.code, 1, "stderr: {}", outcome.stderr);
    assert!(outcome.stderr.contains("at most"), "{}", outcome.stderr);
    assert_bounded_and_no_output(&outcome, dir.path());
}

#[test]
fn largest_accepted_session_keeps_memory_bounded() {
    // 2^32 one-byte blocks: the largest bitmap the client accepts (512 MiB of address space,
    // touched only where blocks arrive), and a 4 GiB sparse output file.
    let server = Scripted::new(3);
    let dir = tempfile::tempdir().unwrap();
    let total = 1u64 << 32;
    let outcome = run_get(dir.path(), &server, &[], |s| {
        s.answer_msi(&s.reply(total, 1, total));
        s.accept_join(7);
        for (seq, block) in [(1, 1), (2, total), (3, total / 2), (4, total + 1), (5, 0)] {
            s.send_group(&odata(seq, block, b"x"));
        }
    });
    eprintln!(
        "2^32 blocks: exit {}, peak {} KiB",
        outcome.code, outcome.max_rss_kib
    );
    assert_eq!(
        outcome.code, 6,
        "inactivity timeout; stderr: {}",
        outcome.stderr
    );
    assert_bounded_and_no_output(&outcome, dir.path());
}

#[test]
fn kick_naming_the_client_exits_7_and_others_are_ignored() {
    let server = Scripted::new(4);
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_get(dir.path(), &server, &[], |s| {
        s.answer_msi(&s.reply(10_000, 1000, 10));
        s.accept_join(7);
        s.send_group(&odata(1, 1, &[1; 1000]));
        // A flood of KICKs for other clients must not end this one.
        for id in 100..1100 {
            s.send_group(&packet(Body::Kick(Kick {
                clients: vec![(id, KickReason::Fail)],
            })));
        }
        std::thread::sleep(Duration::from_millis(200));
        s.send_group(&packet(Body::Kick(Kick {
            clients: vec![(8, KickReason::Fail), (7, KickReason::PolicyNotMet)],
        })));
    });
    assert_eq!(outcome.code, 7, "stderr: {}", outcome.stderr);
    assert!(outcome.stderr.contains("kicked"), "{}", outcome.stderr);
    assert_no_output(dir.path());
}

#[test]
fn server_that_vanishes_after_the_join_times_out_with_exit_6() {
    let server = Scripted::new(5);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let outcome = run_get(dir.path(), &server, &[], |s| {
        s.answer_msi(&s.reply(10_000, 1000, 10));
        s.accept_join(7);
    });
    assert_eq!(outcome.code, 6, "stderr: {}", outcome.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_no_output(dir.path());
}

/// In-process: every kind of hostile datagram is dropped and counted, and the valid stream
/// that follows still completes byte-exact.
#[test]
fn hostile_datagrams_are_counted_and_the_download_stays_byte_exact() {
    let server = Scripted::new(6);
    const BLOCK: usize = 1000;
    const BLOCKS: u64 = 40;
    let content: Vec<u8> = (0..BLOCK * BLOCKS as usize - 123)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let mut request = Request::new(server.msi_addr(), "ns", "obj");
    request.interface = Some(InterfaceSpec::Address(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    request.timeouts.initiation = Duration::from_secs(5);
    request.timeouts.join = Duration::from_secs(5);
    request.timeouts.first_data = Duration::from_secs(5);
    request.timeouts.inactivity = Duration::from_secs(5);
    request.seed = Some(6);

    type Seen = (Vec<u8>, Option<Result<Stats, TransportError>>);
    let seen: Arc<Mutex<Seen>> = Arc::new(Mutex::new((vec![0; content.len()], None)));
    let sink = Arc::clone(&seen);
    let session = Session::start(request, move |handle, event| match event {
        Event::ReceiveContents { offset, data } => {
            let mut seen = sink.lock().unwrap();
            let at = offset as usize;
            seen.0[at..at + data.len()].copy_from_slice(data);
            handle.complete_receive(offset, data.len() as u64).unwrap();
        }
        Event::SessionComplete(result) => sink.lock().unwrap().1 = Some(result.clone()),
        _ => {}
    })
    .unwrap();

    server.answer_msi(&server.reply(content.len() as u64, BLOCK as u32, BLOCKS));
    server.accept_join(7);
    let block = |n: u64| {
        let start = (n as usize - 1) * BLOCK;
        &content[start..(start + BLOCK).min(content.len())]
    };
    let mut bad_checksums = 0u64;
    let mut other_bad = 0u64;
    // Block numbers 0 and beyond TotalBlocks.
    for (seq, n) in [(1u64, 0u64), (2, BLOCKS + 1), (3, u64::MAX), (4, 1 << 60)] {
        server.send_group(&odata(seq, n, &[0xEE; BLOCK]));
        other_bad += 1;
    }
    // DataLen that does not match the bytes carried: short and long, for a valid block.
    for (seq, len) in [(5u64, 10usize), (6, BLOCK + 1)] {
        server.send_group(&odata(seq, 2, &vec![0xEE; len]));
        other_bad += 1;
    }
    let mut lying = odata(7, 3, block(3));
    let data_len_at = lying.len() - BLOCK - 2;
    lying[data_len_at..data_len_at + 2].copy_from_slice(&500u16.to_be_bytes());
    fix_checksum(&mut lying);
    server.send_group(&lying);
    other_bad += 1;
    // Wrong session id, bad checksums, truncated packets.
    for seq in 8..28u64 {
        let mut wrong = odata(seq, 4, &[0xEE; BLOCK]);
        wrong[9..13].copy_from_slice(&(SESSION_ID ^ 1).to_be_bytes());
        fix_checksum(&mut wrong);
        server.send_group(&wrong);
        other_bad += 1;
        server.send_group(&with_bad_checksum(odata(seq, 4, &[0xEE; BLOCK])));
        bad_checksums += 1;
        let whole = odata(seq, 4, &[0xEE; BLOCK]);
        let mut cut = whole[..(seq as usize * 53) % whole.len()].to_vec();
        if cut.len() > 9 {
            fix_checksum(&mut cut);
        }
        server.send_group(&cut);
        other_bad += 1;
    }
    // NACK and NCF floods (client-bound garbage) and KICKs for others.
    for i in 0..500u64 {
        let range = SeqRange {
            start: i,
            end: i + 1_000_000,
        };
        server.send_group(&packet(Body::Nack(Nack {
            client_id: 7,
            hi_odata_seq_no: i,
            loss_rate: 0,
            ranges: vec![range; 8],
        })));
        other_bad += 1;
        server.send_group(&packet(Body::Ncf(Ncf {
            ranges: vec![range; 8],
        })));
        server.send_group(&packet(Body::Kick(Kick {
            clients: vec![(8 + i as u32, KickReason::Fail)],
        })));
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // The real content, repeated until the client is done (it may lose some to the flood).
    let mut seq = 1000;
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().1.is_none() && Instant::now() < deadline {
        for n in 1..=BLOCKS {
            server.send_group(&odata(seq, n, block(n)));
            seq += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = session
        .wait(Some(Duration::from_secs(10)))
        .expect("finishes");
    assert_eq!(status, Status::Success);
    let seen = seen.lock().unwrap();
    assert!(seen.0 == content, "downloaded bytes differ");
    let stats = seen.1.clone().unwrap().unwrap();
    eprintln!(
        "hostile datagrams: sent {bad_checksums} bad checksums, {other_bad} other; counted checksum_drops {} other_drops {}",
        stats.checksum_drops, stats.other_drops
    );
    assert_eq!(stats.blocks_received, BLOCKS);
    assert!(stats.checksum_drops >= bad_checksums, "{stats:?}");
    assert!(stats.other_drops >= other_bad, "{stats:?}");
}
