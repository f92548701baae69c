#![no_main]
//! The client state machine fed arbitrary datagram sequences and clock steps: it never
//! panics, never delivers a block outside the content, and everything it sends decodes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use wdsmc::proto::client::{Client, ClientConfig};
use wdsmc::proto::{SeedableRng, SessionParams, SmallRng};
use wdsmc::wire::mt::Packet;

#[path = "datagrams.rs"]
mod datagrams;
use datagrams::{Step, steps};

const SESSION_ID: u32 = 0x5EED_0001;
const BLOCK_SIZES: [u32; 4] = [1, 512, 1400, 8192];

fuzz_target!(|data: &[u8]| {
    let [shape, last, rest @ ..] = data else { return };
    let block_size = BLOCK_SIZES[usize::from(shape & 3)];
    let total_blocks = u64::from(shape >> 2) + 1;
    let last_len = u64::from(*last) % u64::from(block_size) + 1;
    let content_size = (total_blocks - 1) * u64::from(block_size) + last_len;
    let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4011);
    let params = SessionParams {
        session_id: SESSION_ID,
        group: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 255, 9, 9)), 4012),
        server,
        content_size,
        block_size,
        total_blocks,
    };
    let now0 = Instant::now();
    let mut now = now0;
    let mut client = Client::new(
        ClientConfig {
            params,
            security: wdsmc::wire::security::SessionSecurity::checksum(),
            client_name: "FUZZ".into(),
            local_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            mac_address: vec![2, 0, 0, 0, 0, 1],
            user_sid: None,
            cache_size: 4 * u64::from(block_size),
            join_timeout: Duration::from_secs(5),
            first_data_timeout: Duration::from_secs(10),
            inactivity_timeout: Duration::from_secs(10),
        },
        now,
        SmallRng::seed_from_u64(1),
    )
    .expect("the sizes agree");
    // Peers other than the server: stray senders on the group.
    let peers = [
        server,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), 4011),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9999),
        server,
    ];
    let mut buf = Vec::new();
    for step in steps(rest, SESSION_ID) {
        match step {
            Step::Wait(d) => {
                now += d;
                if client.poll_timeout().is_some_and(|t| t <= now) {
                    client.handle_timeout(now);
                }
            }
            Step::Datagram { peer, bytes } => {
                if let Some(delivery) = client.handle_datagram(now, peers[peer], &bytes) {
                    let block = delivery.block_number;
                    assert!((1..=total_blocks).contains(&block), "block {block}");
                    assert_eq!(delivery.offset, (block - 1) * u64::from(block_size));
                    assert!(delivery.offset + delivery.data.len() as u64 <= content_size);
                    let len = delivery.data.len() as u64;
                    client.cache_done(len);
                }
            }
        }
        while let Some(dest) = client.poll_transmit(&mut buf).map(|t| t.destination) {
            // A DEMOTE may move the session to another port, never to another host.
            assert_eq!(dest.ip(), server.ip(), "a client sends only to its server");
            Packet::decode(&buf).expect("what the client sends decodes");
            buf.clear();
        }
        while client.poll_event().is_some() {}
        assert!(client.stats().blocks_received <= total_blocks);
    }
    let _ = now0;
});
