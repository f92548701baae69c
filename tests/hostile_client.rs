//! Hostile clients against the in-process reference server: JOIN floods beyond the 200-client
//! limit, bogus ClientIds, NACKs outside the window, oversized range counts and garbage. The
//! server stays up and a real client still downloads byte-exact afterwards.
//!
//! Loopback only (127.0.0.1, groups 239.255.{110,111}.0/24 through tests/common).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::memory_download::MemoryDownload;
use common::{TestServer, content};
use wdsmc::transport::{InterfaceSpec, Request, Status};
use wdsmc::wire::msi::{MsiPacket, MsiRequest};
use wdsmc::wire::mt::{
    Ack, Body, Join, Leave, LeaveReason, Nack, Packet, PollAck, Qcr, Security, SeqRange, checksum,
};

/// Asks the server for `object` over MSI, as a client would; returns (session id, session
/// unicast address).
fn initiate(server: &TestServer, object: &str) -> (u32, SocketAddr) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = MsiPacket::Request(MsiRequest {
        namespace: "ns".into(),
        content: object.into(),
        mac_address: vec![2, 0, 0, 0, 0, 9],
        ipv6_capable: None,
    });
    socket.send_to(&request.encode(), server.addr()).unwrap();
    let mut buf = vec![0u8; 65536];
    let (len, _) = socket.recv_from(&mut buf).expect("an MSI reply");
    match MsiPacket::decode(&buf[..len]).expect("the reply decodes") {
        MsiPacket::Reply(reply) => (
            reply.session_id,
            SocketAddr::new(reply.server_addr, reply.server_port),
        ),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn packet(session_id: u32, body: Body<'_>) -> Vec<u8> {
    Packet {
        security: Security::Checksum,
        session_id,
        sender_time: 1,
        body,
    }
    .encode()
}

fn join(session_id: u32, n: usize) -> Vec<u8> {
    packet(
        session_id,
        Body::Join(Join {
            client_name: format!("FLOOD{n}"),
            ip_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mac_address: &[2, 0, 0, 0, 1, n as u8],
            user_sid: None,
            capabilities: None,
        }),
    )
}

/// Every kind of malformed or out-of-place client packet we can think of, for `session_id`.
fn garbage(session_id: u32, round: u64) -> Vec<Vec<u8>> {
    let bogus_id = 0xDEAD_0000 + round as u32;
    let wide = SeqRange {
        start: 1,
        end: u64::MAX,
    };
    let far = SeqRange {
        start: 1 << 62,
        end: (1 << 62) + 10,
    };
    let backwards = SeqRange { start: 50, end: 3 };
    let mut out = vec![
        packet(
            session_id,
            Body::Ack(Ack {
                client_id: bogus_id,
                odata_seq_no: u64::MAX,
                server_time: u64::MAX,
                hi_odata_seq_no: u64::MAX,
                loss_rate: u64::MAX,
            }),
        ),
        packet(
            session_id,
            Body::Nack(Nack {
                client_id: bogus_id,
                hi_odata_seq_no: u64::MAX,
                loss_rate: 0,
                ranges: vec![wide, far, backwards],
            }),
        ),
        // The largest NACK that fits a datagram: ~4000 ranges.
        packet(
            session_id,
            Body::Nack(Nack {
                client_id: bogus_id,
                hi_odata_seq_no: 5,
                loss_rate: 0,
                ranges: vec![wide; 4000],
            }),
        ),
        packet(
            session_id,
            Body::Leave(Leave {
                client_id: bogus_id,
                reason: LeaveReason::Complete,
            }),
        ),
        packet(
            session_id,
            Body::PollAck(PollAck {
                client_id: bogus_id,
                poll_seq_no: u64::MAX,
                app_data: &[0xFF; 40],
            }),
        ),
        packet(
            session_id,
            Body::Qcr(Qcr {
                client_id: bogus_id,
                qcc_seq_no: u64::MAX,
                backoff: u16::MAX,
                server_time: u64::MAX,
                hi_odata_seq_no: u64::MAX,
                loss_rate: u64::MAX,
                app_data: &[1, 2, 3],
                cpu_util: Some(255),
                mem_util: None,
                net_util: None,
            }),
        ),
        // Wrong session id.
        join(session_id ^ 0x55, 0),
        // Random bytes.
        (0..200).map(|i| (i as u64 * 31 + round) as u8).collect(),
        Vec::new(),
        b"WD".to_vec(),
    ];
    // A NACK whose range count claims more ranges than it carries.
    let mut lying = packet(
        session_id,
        Body::Nack(Nack {
            client_id: bogus_id,
            hi_odata_seq_no: 5,
            loss_rate: 0,
            ranges: vec![wide; 2],
        }),
    );
    let count_at = lying.len() - 2 * 16 - 2;
    lying[count_at..count_at + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    let sum = checksum(&lying[9..]);
    lying[5..9].copy_from_slice(&sum.to_be_bytes());
    out.push(lying.clone());
    // Truncated at every length, re-checksummed so the body decoders see them.
    for cut in (9..lying.len()).step_by(7) {
        let mut short = lying[..cut].to_vec();
        let sum = checksum(&short[9..]);
        short[5..9].copy_from_slice(&sum.to_be_bytes());
        out.push(short);
    }
    // A bad checksum.
    let mut bad = join(session_id, 1);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    out.push(bad);
    out
}

/// Downloads `object` with the real client in-process; returns the bytes.
fn download(server: &TestServer, object: &str, size: usize) -> Vec<u8> {
    let mut request = Request::new(server.addr(), "ns", object);
    request.interface = Some(InterfaceSpec::Address(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    request.timeouts.initiation = Duration::from_secs(10);
    request.timeouts.join = Duration::from_secs(20);
    request.timeouts.inactivity = Duration::from_secs(10);
    request.seed = Some(3);
    let (status, data) = MemoryDownload::start(request, size).finish(Duration::from_secs(60));
    assert_eq!(status.expect("the real client finishes"), Status::Success);
    data
}

#[test]
fn join_flood_beyond_200_clients_is_refused_and_a_real_client_still_downloads() {
    let server = TestServer::start(10, |_| {});
    let bytes = content(1_500_000, 10);
    server.put("f.bin", &bytes);
    let (session_id, session_addr) = initiate(&server, "f.bin");

    let flood: Vec<UdpSocket> = (0..250)
        .map(|_| {
            let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            s
        })
        .collect();
    for (n, socket) in flood.iter().enumerate() {
        socket.send_to(&join(session_id, n), session_addr).unwrap();
        if n % 25 == 24 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Count the sockets that got a JOINACK: never more than the 200-client limit.
    let mut acked = 0;
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut seen = vec![false; flood.len()];
    while Instant::now() < deadline && seen.iter().any(|s| !s) {
        for (n, socket) in flood.iter().enumerate() {
            if seen[n] {
                continue;
            }
            if let Ok((len, _)) = socket.recv_from(&mut buf) {
                if let Ok(Packet {
                    body: Body::JoinAck(_),
                    ..
                }) = Packet::decode(&buf[..len])
                {
                    seen[n] = true;
                    acked += 1;
                }
            }
        }
    }
    eprintln!("JOIN flood: {acked} of {} joins acknowledged", flood.len());
    assert!(acked > 0, "the server answered no JOIN at all");
    assert!(acked <= 200, "{acked} clients admitted, limit is 200");

    // The flooders never send a QCR, so their pending records expire and the real one gets in.
    assert!(
        download(&server, "f.bin", bytes.len()) == bytes,
        "bytes differ"
    );
}

#[test]
fn garbage_from_clients_does_not_disturb_a_real_download() {
    let server = TestServer::start(11, |_| {});
    let bytes = content(2_000_000, 11);
    server.put("g.bin", &bytes);
    let (session_id, session_addr) = initiate(&server, "g.bin");
    let attacker = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    for round in 0..20 {
        for datagram in garbage(session_id, round) {
            attacker.send_to(&datagram, session_addr).unwrap();
        }
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_flag = Arc::clone(&stop);
    // Keep the garbage coming while the real client downloads.
    let noise = std::thread::spawn(move || {
        let mut round = 20;
        while !stop_flag.load(std::sync::atomic::Ordering::SeqCst) {
            for datagram in garbage(session_id, round) {
                let _ = attacker.send_to(&datagram, session_addr);
            }
            round += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        round
    });
    let got = download(&server, "g.bin", bytes.len());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = noise.join().unwrap();
    eprintln!("garbage rounds sent: {rounds}");
    assert!(got == bytes, "bytes differ");
    // And the server still answers MSI afterwards.
    let _ = initiate(&server, "g.bin");
}

/// Regression (found by the namespace testbed): a kicked client whose multicast KICK was lost
/// keeps sending NACKs; the server now answers them with a unicast KICK, at most once a second.
#[test]
fn kicked_client_that_keeps_nacking_gets_its_kick_by_unicast() {
    use wdsmc::proto::server::{BlockSource, ServerSession, SessionConfig};
    use wdsmc::proto::{SeedableRng, SmallRng};
    use wdsmc::wire::mt::KickReason;

    struct Zeros;
    impl BlockSource for Zeros {
        fn read_block(&mut self, _: u64, buf: &mut [u8]) -> std::io::Result<()> {
            buf.fill(0);
            Ok(())
        }
    }
    const SESSION: u32 = 0x1234_5678;
    let group = SocketAddr::from(([239, 255, 110, 99], 42999));
    let client = SocketAddr::from(([127, 0, 0, 5], 5555));
    let start = Instant::now();
    let mut server = ServerSession::new(
        SessionConfig::new(SESSION, group, 100_000, 1000),
        start,
        SmallRng::seed_from_u64(5),
    );
    let mut buf = Vec::new();
    let mut drain = |server: &mut ServerSession, now: Instant| {
        let mut sent = Vec::new();
        buf.clear();
        while let Some(t) = server.poll_transmit(now, &mut buf, &mut Zeros).unwrap() {
            let decoded = Packet::decode(&buf).unwrap();
            sent.push((t.destination, format!("{:?}", decoded.body)));
            buf.clear();
        }
        sent
    };
    server.handle_datagram(start, client, &join(SESSION, 1));
    let sent = drain(&mut server, start);
    let client_id = sent
        .iter()
        .find(|(_, body)| body.starts_with("JoinAck"))
        .map(|(_, body)| {
            let digits: String = body
                .split("client_id: ")
                .nth(1)
                .unwrap()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u32>().unwrap()
        })
        .expect("a JOINACK");
    let qcr = packet(
        SESSION,
        Body::Qcr(Qcr {
            client_id,
            qcc_seq_no: 0,
            backoff: 0,
            server_time: 0,
            hi_odata_seq_no: 0,
            loss_rate: 0,
            app_data: &[],
            cpu_util: None,
            mem_util: None,
            net_util: None,
        }),
    );
    server.handle_datagram(start, client, &qcr);
    drain(&mut server, start);
    server.kick(start, client_id, KickReason::Fallback);
    drain(&mut server, start); // the multicast KICK, "lost"
    let nack = packet(
        SESSION,
        Body::Nack(Nack {
            client_id,
            hi_odata_seq_no: 1,
            loss_rate: 0,
            ranges: vec![SeqRange { start: 1, end: 1 }],
        }),
    );
    let unicast_kicks = |sent: &[(SocketAddr, String)]| {
        sent.iter()
            .filter(|(dest, body)| *dest == client && body.starts_with("Kick"))
            .count()
    };
    let mut now = start + Duration::from_millis(100);
    server.handle_datagram(now, client, &nack);
    assert_eq!(
        unicast_kicks(&drain(&mut server, now)),
        1,
        "first NACK after the kick"
    );
    now += Duration::from_millis(100);
    server.handle_datagram(now, client, &nack);
    assert_eq!(unicast_kicks(&drain(&mut server, now)), 0, "rate-limited");
    now += Duration::from_secs(1);
    server.handle_datagram(now, client, &nack);
    assert_eq!(
        unicast_kicks(&drain(&mut server, now)),
        1,
        "again after a second"
    );
}
