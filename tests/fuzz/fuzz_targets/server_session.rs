#![no_main]
//! The server state machine fed arbitrary datagram sequences from a few peers plus clock
//! steps: it never panics, and everything it sends decodes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use wdsmc::proto::server::{BlockSource, ServerSession, SessionConfig};
use wdsmc::proto::{SeedableRng, SmallRng};
use wdsmc::wire::mt::Packet;

#[path = "datagrams.rs"]
mod datagrams;
use datagrams::{Step, steps};

const SESSION_ID: u32 = 0x5EED_0002;
const BLOCK_SIZES: [u32; 4] = [1, 512, 1400, 8192];

/// Block contents are a pure function of the block number.
struct Pattern;

impl BlockSource for Pattern {
    fn read_block(&mut self, block_number: u64, buf: &mut [u8]) -> std::io::Result<()> {
        buf.fill(block_number as u8);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let [shape, knobs, rest @ ..] = data else { return };
    let block_size = BLOCK_SIZES[usize::from(shape & 3)];
    let content_size = (u64::from(shape >> 2) + 1) * u64::from(block_size) - u64::from(knobs & 1);
    let group = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 255, 9, 9)), 4012);
    let mut config = SessionConfig::new(SESSION_ID, group, content_size, block_size);
    config.max_clients = usize::from(knobs >> 4) + 1;
    if knobs & 2 != 0 {
        config.max_rate = Some(1_000_000);
    }
    if knobs & 4 != 0 {
        config.auto_disconnect_below = Some(100_000);
    }
    let mut now = Instant::now();
    let mut server = ServerSession::new(config, now, SmallRng::seed_from_u64(2));
    let peers: Vec<SocketAddr> = (0..4)
        .map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i)), 5000))
        .collect();
    let mut buf = Vec::new();
    for step in steps(rest, SESSION_ID) {
        match step {
            Step::Wait(d) => {
                now += d;
                if server.poll_timeout().is_some_and(|t| t <= now) {
                    server.handle_timeout(now);
                }
            }
            Step::Datagram { peer, bytes } => server.handle_datagram(now, peers[peer], &bytes),
        }
        // Bounded drain: a paced server may have more to send than one step allows.
        for _ in 0..10_000 {
            buf.clear();
            match server.poll_transmit(now, &mut buf, &mut Pattern) {
                Ok(Some(transmit)) => {
                    let dest = transmit.destination;
                    assert!(dest == group || peers.contains(&dest), "sent to {dest}");
                    Packet::decode(&buf).expect("what the server sends decodes");
                }
                Ok(None) => break,
                Err(e) => panic!("pattern source never fails: {e}"),
            }
        }
        while server.poll_event().is_some() {}
    }
});
