//! The reference server over real loopback UDP: MSI requests, content lookup, session sharing,
//! and a raw JOIN to a session port. Every test uses its own session port range so that tests
//! running in parallel never collide.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use wdsmc::server::{NamespaceConfig, Server, ServerConfig};
use wdsmc::wire::msi::{MsiPacket, MsiReply, MsiRequest, error_code};
use wdsmc::wire::mt::{self, Body, Packet, Security};

const NAMESPACE: &str = "WDS:test/install.wim/1";

fn start(root: &Path, ports: (u16, u16)) -> Server {
    start_with(root, ports, |_| {})
}

fn start_with(root: &Path, ports: (u16, u16), adjust: impl FnOnce(&mut ServerConfig)) -> Server {
    let mut config = ServerConfig::new(vec![NamespaceConfig {
        name: NAMESPACE.into(),
        root: root.to_path_buf(),
    }]);
    config.listen = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.msi_port = 0;
    config.port_range = ports;
    config.group_range_v4 = (Ipv4Addr::new(239, 255, 77, 0), 24);
    config.ttl = 1;
    config.seed = Some(1);
    adjust(&mut config);
    Server::start(config).expect("server starts")
}

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("install.wim"), vec![0xAB; 20_000]).unwrap();
    std::fs::write(dir.path().join("boot.wim"), vec![0xCD; 100]).unwrap();
    std::fs::create_dir(dir.path().join("images")).unwrap();
    std::fs::write(dir.path().join("images/deep.wim"), vec![1; 8192]).unwrap();
    dir
}

fn request(server: &Server, namespace: &str, content: &str) -> MsiPacket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let packet = MsiPacket::Request(MsiRequest {
        namespace: namespace.into(),
        content: content.into(),
        mac_address: vec![0, 0x15, 0x5d, 1, 2, 3],
        ipv6_capable: None,
    });
    socket.send_to(&packet.encode(), server.msi_addr()).unwrap();
    let mut buf = [0u8; 2048];
    let (len, from) = socket.recv_from(&mut buf).expect("an MSI reply");
    assert_eq!(from, server.msi_addr());
    MsiPacket::decode(&buf[..len]).expect("a valid MSI packet")
}

fn reply(packet: MsiPacket) -> MsiReply {
    match packet {
        MsiPacket::Reply(reply) => reply,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn error(packet: MsiPacket) -> u32 {
    match packet {
        MsiPacket::Error { code } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn valid_request_gets_a_consistent_reply() {
    let dir = folder();
    let server = start(dir.path(), (40000, 40009));
    let reply = reply(request(&server, NAMESPACE, "install.wim"));
    reply.check_consistency().unwrap();
    assert_eq!(reply.content_size, 20_000);
    assert_eq!(reply.block_size, wdsmc::server::DEFAULT_BLOCK_SIZE);
    assert_eq!(reply.total_blocks, 3);
    assert_eq!(reply.server_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!((40000..=40009).contains(&reply.server_port));
    assert_eq!(reply.multicast_port, reply.server_port);
    match reply.multicast_addr {
        IpAddr::V4(group) => assert_eq!(group.octets()[..3], [239, 255, 77]),
        other => panic!("unexpected group {other}"),
    }
    assert_ne!(reply.session_id, 0);
    // Backslashes are separators too.
    let deep = self::reply(request(&server, NAMESPACE, "images\\deep.wim"));
    assert_eq!(deep.total_blocks, 1);
    server.shutdown();
}

#[test]
fn unknown_namespace_and_missing_content_get_error_codes() {
    let dir = folder();
    let server = start(dir.path(), (40010, 40019));
    assert_eq!(
        error(request(&server, "WDS:nope", "install.wim")),
        error_code::NAMESPACE_NOT_FOUND
    );
    assert_eq!(
        error(request(&server, NAMESPACE, "missing.wim")),
        error_code::CONTENT_NOT_FOUND
    );
    assert_eq!(
        error(request(&server, NAMESPACE, "images")),
        error_code::CONTENT_NOT_FOUND
    );
    server.shutdown();
}

#[test]
fn names_escaping_the_folder_are_refused() {
    let dir = folder();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.wim");
    std::fs::write(&secret, b"secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&secret, dir.path().join("link.wim")).unwrap();
    let server = start(dir.path(), (40020, 40029));
    let escape = format!(
        "../{}/secret.wim",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    for name in [
        escape.as_str(),
        "images/../../secret.wim",
        "..\\..\\secret.wim",
        secret.to_str().unwrap(),
        "/etc/passwd",
    ] {
        assert_eq!(
            error(request(&server, NAMESPACE, name)),
            error_code::CONTENT_NOT_FOUND,
            "{name}"
        );
    }
    #[cfg(unix)]
    assert_eq!(
        error(request(&server, NAMESPACE, "link.wim")),
        error_code::CONTENT_NOT_FOUND
    );
    server.shutdown();
}

#[test]
fn same_object_shares_a_session_and_different_objects_do_not() {
    let dir = folder();
    let server = start(dir.path(), (40030, 40039));
    let first = reply(request(&server, NAMESPACE, "install.wim"));
    let again = reply(request(&server, NAMESPACE, "./install.wim"));
    assert_eq!(first, again);
    let other = reply(request(&server, NAMESPACE, "boot.wim"));
    assert_ne!(other.session_id, first.session_id);
    assert_ne!(other.server_port, first.server_port);
    assert_ne!(other.multicast_addr, first.multicast_addr);
    assert_eq!(other.content_size, 100);
    server.shutdown();
}

#[test]
fn exhausted_port_range_is_refused() {
    let dir = folder();
    let server = start(dir.path(), (40040, 40040));
    reply(request(&server, NAMESPACE, "install.wim"));
    let code = error(request(&server, NAMESPACE, "boot.wim"));
    assert_eq!(code, wdsmc::server::registry::ERROR_NO_SYSTEM_RESOURCES);
    server.shutdown();
}

#[test]
fn raw_join_to_the_session_port_gets_a_joinack() {
    let dir = folder();
    let server = start(dir.path(), (40050, 40059));
    let session = reply(request(&server, NAMESPACE, "install.wim"));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let join = Packet {
        security: Security::Checksum,
        session_id: session.session_id,
        sender_time: 4242,
        body: Body::Join(mt::Join {
            client_name: "TESTMACHINE".into(),
            ip_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mac_address: &[0, 0x15, 0x5d, 1, 2, 3],
            user_sid: None,
            capabilities: Some(&[mt::CAP_MULTISTREAM]),
        }),
    };
    let server_addr = SocketAddr::new(session.server_addr, session.server_port);
    client.send_to(&join.encode(), server_addr).unwrap();
    let mut buf = [0u8; 2048];
    let (len, from) = client.recv_from(&mut buf).expect("a JOINACK");
    assert_eq!(from, server_addr);
    let packet = Packet::decode(&buf[..len]).unwrap();
    assert_eq!(packet.security, Security::Checksum);
    assert_eq!(packet.session_id, session.session_id);
    match packet.body {
        Body::JoinAck(ack) => {
            assert_ne!(ack.client_id, 0);
            assert_eq!(ack.client_time, 4242);
        }
        other => panic!("expected JOINACK, got {other:?}"),
    }
    // A JOIN for a wrong session id is dropped silently.
    let wrong = Packet {
        session_id: session.session_id ^ 1,
        ..join
    };
    client.send_to(&wrong.encode(), server_addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // The only thing that may arrive is a JOINACK re-send for the first JOIN.
    if let Ok((len, _)) = client.recv_from(&mut buf) {
        let packet = Packet::decode(&buf[..len]).unwrap();
        assert_eq!(packet.session_id, session.session_id);
    }
    server.shutdown();
}

#[test]
fn idle_session_ends_and_a_new_request_starts_another() {
    let dir = folder();
    let server = start_with(dir.path(), (40060, 40069), |c| {
        c.session_inactivity = Duration::from_millis(300);
    });
    let first = reply(request(&server, NAMESPACE, "install.wim"));
    std::thread::sleep(Duration::from_millis(900));
    let second = reply(request(&server, NAMESPACE, "install.wim"));
    assert_ne!(first.session_id, second.session_id);
    server.shutdown();
}

#[test]
fn wait_returns_after_shutdown_from_a_handle() {
    let dir = folder();
    let server = start(dir.path(), (40070, 40079));
    let handle = server.shutdown_handle();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        handle.shutdown();
    });
    server.wait();
}

#[test]
fn bad_configuration_is_refused() {
    let dir = folder();
    let mut config = ServerConfig::new(vec![NamespaceConfig {
        name: NAMESPACE.into(),
        root: dir.path().join("does-not-exist"),
    }]);
    config.msi_port = 0;
    assert!(Server::start(config.clone()).is_err());
    config.namespaces[0].root = dir.path().to_path_buf();
    config.block_size = 70_000;
    let err = Server::start(config).err().expect("refused");
    assert!(err.to_string().contains("block size"), "{err}");
}

/// A minimal scripted client over real loopback multicast: JOIN, QCR, answer QCCs, POLLs
/// (with its missing ranges), ACK as master, collect every block, LEAVE.
#[test]
fn scripted_client_downloads_the_whole_object_over_loopback_multicast() {
    use std::collections::BTreeSet;
    use std::time::Instant;
    use wdsmc::wire::ma::{BlockRange, CntCir, MaPacket};

    let dir = folder();
    let content: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("pattern.bin"), &content).unwrap();
    let server = start_with(dir.path(), (40080, 40089), |c| c.block_size = 1000);
    let session = reply(request(&server, NAMESPACE, "pattern.bin"));
    assert_eq!(session.total_blocks, 50);

    let IpAddr::V4(group) = session.multicast_addr else {
        unreachable!()
    };
    let multicast = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap();
    multicast.set_reuse_address(true).unwrap();
    // A burst of a full window must not overflow the receive buffer.
    let _ = multicast.set_recv_buffer_size(8 << 20);
    multicast
        .bind(&SocketAddr::new(IpAddr::V4(group), session.multicast_port).into())
        .unwrap();
    multicast
        .join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
        .unwrap();
    let multicast: UdpSocket = multicast.into();
    multicast
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let unicast = UdpSocket::bind("127.0.0.1:0").unwrap();
    unicast
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let server_addr = SocketAddr::new(session.server_addr, session.server_port);
    let sid = session.session_id;
    let send = |body: Body<'_>| {
        let packet = Packet {
            security: Security::Checksum,
            session_id: sid,
            sender_time: 1,
            body,
        };
        unicast.send_to(&packet.encode(), server_addr).unwrap();
    };
    send(Body::Join(mt::Join {
        client_name: "SCRIPTED".into(),
        ip_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        mac_address: &[2, 0, 0, 0, 0, 1],
        user_sid: None,
        capabilities: None,
    }));
    let mut buf = vec![0u8; 65536];
    let (len, _) = unicast.recv_from(&mut buf).expect("JOINACK");
    let joinack = Packet::decode(&buf[..len]).unwrap();
    let Body::JoinAck(ack) = joinack.body else {
        panic!("expected JOINACK")
    };
    let me = ack.client_id;
    let qcr = |qcc_seq_no, server_time| {
        Body::Qcr(mt::Qcr {
            client_id: me,
            qcc_seq_no,
            backoff: 0,
            server_time,
            hi_odata_seq_no: 0,
            loss_rate: 0,
            app_data: &[],
            cpu_util: None,
            mem_util: None,
            net_util: None,
        })
    };
    send(qcr(0, joinack.sender_time));

    let mut blocks: Vec<Option<Vec<u8>>> = vec![None; 50];
    let mut seqs = BTreeSet::new();
    let mut contiguous = 0u64;
    let mut master = 0u32;
    let deadline = Instant::now() + Duration::from_secs(20);
    while blocks.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "download did not finish");
        let Ok((len, _)) = multicast.recv_from(&mut buf) else {
            continue;
        };
        let packet = Packet::decode(&buf[..len]).expect("server packets decode");
        assert_eq!(packet.session_id, sid);
        let ack_to = |seq: u64| {
            Body::Ack(mt::Ack {
                client_id: me,
                odata_seq_no: seq,
                server_time: packet.sender_time,
                hi_odata_seq_no: seq,
                loss_rate: 0,
            })
        };
        match &packet.body {
            Body::Qcc(q) => send(qcr(q.qcc_seq_no, packet.sender_time)),
            Body::Spm(spm) => {
                master = spm.master_client_id;
                // Sequence numbers below the trail can no longer be repaired: skip them.
                contiguous = contiguous.max(spm.trail_odata_seq_no.saturating_sub(1));
                while seqs.contains(&(contiguous + 1)) {
                    contiguous += 1;
                }
                if master == me {
                    send(ack_to(contiguous));
                    if contiguous < spm.lead_odata_seq_no {
                        send(Body::Nack(mt::Nack {
                            client_id: me,
                            hi_odata_seq_no: spm.lead_odata_seq_no,
                            loss_rate: 0,
                            ranges: vec![mt::SeqRange {
                                start: contiguous + 1,
                                end: spm.lead_odata_seq_no,
                            }],
                        }));
                    }
                }
            }
            Body::Poll(poll) => {
                // Runs of missing blocks, at most 64 of them, as a real client reports.
                let mut missing: Vec<BlockRange> = Vec::new();
                for (index, block) in blocks.iter().enumerate() {
                    let number = index as u64 + 1;
                    if block.is_some() {
                        continue;
                    }
                    if let Some(run) = missing.last_mut().filter(|r| r.end + 1 == number) {
                        run.end = number;
                    } else if missing.len() == 64 {
                        break;
                    } else {
                        missing.push(BlockRange {
                            start: number,
                            end: number,
                        });
                    }
                }
                let mut app = Vec::new();
                MaPacket::CntCir(CntCir {
                    progress: 0,
                    time_in_session: 1,
                    ranges: missing,
                })
                .encode_into(&mut app);
                send(Body::PollAck(mt::PollAck {
                    client_id: me,
                    poll_seq_no: poll.poll_seq_no,
                    app_data: &app,
                }));
            }
            Body::OData(data) | Body::RData(data) => {
                seqs.insert(data.odata_seq_no);
                contiguous = contiguous.max(data.trail_odata_seq_no.saturating_sub(1));
                while seqs.contains(&(contiguous + 1)) {
                    contiguous += 1;
                }
                if let Ok(MaPacket::Data(block)) = MaPacket::decode(data.data) {
                    let index = (block.block_number - 1) as usize;
                    blocks[index] = Some(block.data.to_vec());
                }
                if data.client_id == me {
                    send(ack_to(contiguous));
                }
            }
            _ => {}
        }
    }
    assert_eq!(master, me);
    let received: Vec<u8> = blocks.into_iter().flatten().flatten().collect();
    assert_eq!(received, content);
    send(Body::Leave(mt::Leave {
        client_id: me,
        reason: mt::LeaveReason::Complete,
    }));
    server.shutdown();
}

/// MSI over IPv6 (::1 only; no multicast is sent because no client joins): an IPv6-capable
/// request gets an IPv6 group, a request without IPV6_CAPABLE is refused with a clear code.
#[test]
fn ipv6_listener_gives_ipv6_sessions_to_capable_clients() {
    use std::net::Ipv6Addr;
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipping: ::1 is not available on this host");
        return;
    }
    let dir = folder();
    let server = start_with(dir.path(), (40090, 40099), |c| {
        c.listen = IpAddr::V6(Ipv6Addr::LOCALHOST);
        c.group_range_v6 = Some(("ff15::77:0".parse().unwrap(), 112));
    });
    let socket = UdpSocket::bind("[::1]:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let ask = |ipv6_capable| {
        let packet = MsiPacket::Request(MsiRequest {
            namespace: NAMESPACE.into(),
            content: "install.wim".into(),
            mac_address: vec![0, 0x15, 0x5d, 1, 2, 3],
            ipv6_capable,
        });
        socket.send_to(&packet.encode(), server.msi_addr()).unwrap();
        let mut buf = [0u8; 2048];
        let (len, _) = socket.recv_from(&mut buf).expect("an MSI reply");
        MsiPacket::decode(&buf[..len]).unwrap()
    };
    let session = reply(ask(Some(true)));
    session.check_consistency().unwrap();
    assert_eq!(session.server_addr, IpAddr::V6(Ipv6Addr::LOCALHOST));
    match session.multicast_addr {
        IpAddr::V6(group) => assert_eq!(group.segments()[..7], [0xff15, 0, 0, 0, 0, 0, 0x77]),
        other => panic!("expected an IPv6 group, got {other}"),
    }
    assert_eq!(error(ask(None)), error_code::INCOMPATIBLE_VERSION);
    server.shutdown();
}

#[test]
fn malformed_msi_packets_are_ignored() {
    let dir = folder();
    let server = start(dir.path(), (40100, 40109));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for junk in [
        &b""[..],
        b"\x01",
        b"\x01\xff\xff",
        b"\x02\x00\x00",
        &[0xAA; 600][..],
    ] {
        socket.send_to(junk, server.msi_addr()).unwrap();
    }
    let mut buf = [0u8; 2048];
    assert!(socket.recv_from(&mut buf).is_err(), "no reply to junk");
    // The responder is still alive.
    reply(request(&server, NAMESPACE, "boot.wim"));
    server.shutdown();
}

#[test]
fn several_namespaces_are_served_at_once() {
    let dir = folder();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("install.wim"), vec![7; 300]).unwrap();
    let other_root = other.path().to_path_buf();
    let server = start_with(dir.path(), (40110, 40119), move |c| {
        c.namespaces.push(NamespaceConfig {
            name: "WDS:second".into(),
            root: other_root,
        });
    });
    let first = reply(request(&server, NAMESPACE, "install.wim"));
    let second = reply(request(&server, "WDS:second", "install.wim"));
    assert_eq!(first.content_size, 20_000);
    assert_eq!(second.content_size, 300);
    assert_ne!(first.session_id, second.session_id);
    assert_ne!(first.server_port, second.server_port);
    server.shutdown();
}
