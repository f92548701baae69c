//! A small server for transport tests that records what the server side sees: the real
//! sans-IO `ServerSession` on real loopback sockets, with an MSI responder that answers every
//! request with one in-memory object. Tests read its events (JOIN, LEAVE with reason, ...).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use wdsmc::proto::server::{BlockSource, ServerEvent, ServerSession, SessionConfig};
use wdsmc::server::driver::bind_session_socket;
use wdsmc::wire::msi::{MsiPacket, MsiReply};

struct Memory(Arc<Vec<u8>>, u32);

impl BlockSource for Memory {
    fn read_block(&mut self, block_number: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = (block_number - 1) as usize * self.1 as usize;
        buf.copy_from_slice(&self.0[start..start + buf.len()]);
        Ok(())
    }
}

pub struct ObservedServer {
    pub msi_addr: SocketAddr,
    pub events: Arc<Mutex<Vec<ServerEvent>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl ObservedServer {
    /// Serves `content` on `port` and group 239.255.`group_octet`.1, at most `max_rate`
    /// bytes per second.
    pub fn start(
        content: Vec<u8>,
        block_size: u32,
        port: u16,
        group_octet: u8,
        max_rate: Option<u64>,
    ) -> Self {
        let content = Arc::new(content);
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let group = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 255, group_octet, 1)), port);
        let session_id = 0x5E55_1000 + u32::from(group_octet);
        let size = content.len() as u64;
        let total_blocks = size.div_ceil(u64::from(block_size));
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));

        let msi = UdpSocket::bind((local, 0)).unwrap();
        msi.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let msi_addr = msi.local_addr().unwrap();
        let reply = MsiPacket::Reply(MsiReply {
            multicast_addr: group.ip(),
            server_addr: local,
            multicast_port: port,
            server_port: port,
            content_size: size,
            block_size,
            total_blocks,
            session_id,
        })
        .encode();
        let msi_stop = Arc::clone(&stop);
        let msi_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !msi_stop.load(Ordering::Relaxed) {
                if let Ok((_, from)) = msi.recv_from(&mut buf) {
                    let _ = msi.send_to(&reply, from);
                }
            }
        });

        let socket = bind_session_socket(local, port, 1).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let session_stop = Arc::clone(&stop);
        let sink = Arc::clone(&events);
        let session_thread = std::thread::spawn(move || {
            let mut config = SessionConfig::new(session_id, group, size, block_size);
            config.max_rate = max_rate;
            let mut session =
                ServerSession::new(config, Instant::now(), SmallRng::seed_from_u64(9));
            let mut source = Memory(content, block_size);
            let mut out = Vec::with_capacity(70_000);
            let mut buf = vec![0u8; 65_536];
            while !session_stop.load(Ordering::Relaxed) && !session.is_finished() {
                let now = Instant::now();
                out.clear();
                while let Ok(Some(t)) = session.poll_transmit(now, &mut out, &mut source) {
                    let _ = socket.send_to(&out, t.destination);
                    out.clear();
                }
                while let Some(event) = session.poll_event() {
                    sink.lock().unwrap().push(event);
                }
                let wait = session
                    .poll_timeout()
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::from_millis(5))
                    .clamp(Duration::from_micros(100), Duration::from_millis(5));
                let _ = socket.set_read_timeout(Some(wait));
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    session.handle_datagram(Instant::now(), from, &buf[..len]);
                }
                let now = Instant::now();
                if session.poll_timeout().is_some_and(|t| t <= now) {
                    session.handle_timeout(now);
                }
            }
        });
        ObservedServer {
            msi_addr,
            events,
            stop,
            threads: vec![msi_thread, session_thread],
        }
    }

    /// Waits up to `limit` for an event matching `pred`.
    pub fn wait_for(&self, limit: Duration, pred: impl Fn(&ServerEvent) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.events.lock().unwrap().iter().any(&pred) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for ObservedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
