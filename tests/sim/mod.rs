//! Deterministic simulation: one reference server and N clients (the real sans-IO state
//! machines) on a virtual clock, joined by seeded lossy links. No sockets, no threads, no
//! wall clock: a run is a pure function of its seed.

pub mod link;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use wdsmc::wire::security::{Check, Protect, SessionSecurity};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use wdsmc::proto::SessionParams;
use wdsmc::proto::client::{Client, ClientConfig, ClientEvent, ClientOutcome};
use wdsmc::proto::server::{BlockSource, ServerEvent, ServerSession, SessionConfig};

use link::{Link, LinkModel};

/// Virtual addresses: nothing is ever sent on a real network.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 6000);
pub const GROUP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 255, 1, 1)), 6000);

pub fn client_addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 10 + i as u8)), 7000)
}

/// Content served from memory.
pub struct MemorySource {
    pub bytes: Vec<u8>,
    pub block_size: usize,
}

impl BlockSource for MemorySource {
    fn read_block(&mut self, block_number: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = (block_number as usize - 1) * self.block_size;
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(())
    }
}

/// How one simulated client behaves.
#[derive(Debug, Clone, Copy)]
pub struct ClientPlan {
    /// Virtual time at which it starts.
    pub start_at: Duration,
    /// Cancel at this time (a user pressing Ctrl-C, or a master that leaves).
    pub cancel_at: Option<Duration>,
    /// Vanish at this time: stop processing and sending anything (power loss).
    pub vanish_at: Option<Duration>,
    /// Cache size given to the client; small values exercise back-pressure.
    pub cache_size: u64,
    /// Bytes per second the consumer completes; `None` completes at once.
    pub consumer_rate: Option<u64>,
    pub downlink: LinkModel,
    pub uplink: LinkModel,
}

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    /// The packet security both sides use.
    pub security: SimSecurity,
    pub content_size: usize,
    pub block_size: u32,
    pub clients: Vec<ClientPlan>,
    /// Virtual time after which the run counts as hung.
    pub deadline: Duration,
}

/// Packet security modes of a simulated session (server mode / client mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimSecurity {
    Checksum,
    /// HASH both ways.
    Hash,
    /// The server signs, the clients hash.
    Sign,
}

impl SimSecurity {
    /// The server's Protect and Check, and the clients' view of the session's security.
    fn configure(self) -> (Protect, Check, SessionSecurity) {
        use wdsmc::wire::mt::SecurityType;
        use wdsmc::wire::security::{HashAlg, HmacKey, SecModes, SigningKey, VerifyingKey};
        // One key for every run: generating RSA keys per seed would dominate the test.
        static SIGNING: std::sync::OnceLock<std::sync::Arc<SigningKey>> =
            std::sync::OnceLock::new();
        let hmac = HmacKey::new(b"simulated session key", HashAlg::Sha256).unwrap();
        match self {
            SimSecurity::Checksum => (
                Protect::Checksum,
                Check::Checksum,
                SessionSecurity::checksum(),
            ),
            SimSecurity::Hash => (
                Protect::Hash(hmac.clone()),
                Check::Hash(hmac.clone()),
                SessionSecurity {
                    modes: SecModes {
                        client: SecurityType::Hash,
                        server: SecurityType::Hash,
                    },
                    hmac: Some(hmac),
                    sign: None,
                },
            ),
            SimSecurity::Sign => {
                let key = SIGNING.get_or_init(|| {
                    std::sync::Arc::new(
                        SigningKey::generate(&mut rand_core::OsRng, 1024, HashAlg::Sha256).unwrap(),
                    )
                });
                let verify = VerifyingKey::new(key.public().clone(), HashAlg::Sha256);
                (
                    Protect::Sign(std::sync::Arc::clone(key)),
                    Check::Hash(hmac.clone()),
                    SessionSecurity {
                        modes: SecModes {
                            client: SecurityType::Hash,
                            server: SecurityType::Sign,
                        },
                        hmac: Some(hmac),
                        sign: Some(verify),
                    },
                )
            }
        }
    }
}

/// What happened to one client.
#[derive(Debug, Clone)]
pub struct ClientReport {
    pub outcome: Option<ClientOutcome>,
    pub byte_exact: bool,
    pub finished_at: Option<Duration>,
    pub stats: wdsmc::proto::client::ClientStats,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub clients: Vec<ClientReport>,
    /// Datagrams lost on the server-to-client links.
    pub downlink_lost: u64,
    /// Datagrams that crossed a server-to-client link only corrupted (dropped by the client).
    pub downlink_only_corrupted: u64,
    /// RDATA packets the server sent.
    pub rdata_sent: u64,
    pub server_events: Vec<String>,
    pub end: Duration,
}

enum Target {
    Server,
    Client(usize),
}

struct InFlight {
    at: Instant,
    order: u64,
    target: Target,
    from: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

struct SimClient {
    plan: ClientPlan,
    client: Option<Client>,
    received: Vec<u8>,
    /// Bytes delivered but not yet completed by the slow consumer.
    pending_release: u64,
    last_release: Instant,
    downlink: Link,
    uplink: Link,
    outcome: Option<ClientOutcome>,
    finished_at: Option<Duration>,
    vanished: bool,
    cancelled: bool,
}

pub fn run(scenario: &Scenario) -> Report {
    let mut rng = SmallRng::seed_from_u64(scenario.seed);
    let epoch = Instant::now();
    let mut content = vec![0u8; scenario.content_size];
    rng.fill(&mut content[..]);
    let block_size = scenario.block_size;
    let total_blocks = (scenario.content_size as u64).div_ceil(block_size as u64);
    let session_id = rng.random();
    let (server_protect, server_check, client_security) = scenario.security.configure();
    let mut server = ServerSession::new(
        SessionConfig {
            session_id,
            group: GROUP,
            content_size: scenario.content_size as u64,
            block_size,
            total_blocks,
            max_clients: 200,
            exp_max_window: 64,
            max_window: 512,
            inactivity_timeout: Duration::from_secs(300),
            client_dead_timeout: Duration::from_secs(60),
            qcc_interval: Duration::from_secs(5),
            max_rate: None,
            auto_disconnect_below: None,
            protect: server_protect,
            check: server_check,
        },
        epoch,
        SmallRng::seed_from_u64(rng.random()),
    );
    let mut source = MemorySource {
        bytes: content.clone(),
        block_size: block_size as usize,
    };
    let params = SessionParams {
        session_id,
        group: GROUP,
        server: SERVER,
        content_size: scenario.content_size as u64,
        block_size,
        total_blocks,
    };
    let mut clients: Vec<SimClient> = scenario
        .clients
        .iter()
        .map(|plan| SimClient {
            plan: *plan,
            client: None,
            received: vec![0u8; scenario.content_size],
            pending_release: 0,
            last_release: epoch,
            downlink: Link::new(plan.downlink, SmallRng::seed_from_u64(rng.random())),
            uplink: Link::new(plan.uplink, SmallRng::seed_from_u64(rng.random())),
            outcome: None,
            finished_at: None,
            vanished: false,
            cancelled: false,
        })
        .collect();
    let client_seeds: Vec<u64> = clients.iter().map(|_| rng.random()).collect();

    let mut queue: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut now = epoch;
    let mut buf = Vec::with_capacity(70_000);
    let mut server_events = Vec::new();
    let deadline = epoch + scenario.deadline;
    let mut stalled = 0u32;

    loop {
        // Start, cancel and vanish clients whose time has come.
        for (i, c) in clients.iter_mut().enumerate() {
            let elapsed = now - epoch;
            if c.client.is_none()
                && c.outcome.is_none()
                && !c.vanished
                && elapsed >= c.plan.start_at
            {
                c.client = Some(
                    Client::new(
                        ClientConfig {
                            params: params.clone(),
                            security: client_security.clone(),
                            client_name: format!("SIM{i}"),
                            local_ip: client_addr(i).ip(),
                            mac_address: vec![0x02, 0, 0, 0, 0, i as u8],
                            user_sid: None,
                            cache_size: c.plan.cache_size,
                            join_timeout: Duration::from_secs(30),
                            first_data_timeout: Duration::from_secs(60),
                            inactivity_timeout: Duration::from_secs(30),
                        },
                        now,
                        SmallRng::seed_from_u64(client_seeds[i]),
                    )
                    .expect("the simulated session's sizes agree"),
                );
            }
            if let Some(at) = c.plan.cancel_at {
                if !c.cancelled && elapsed >= at {
                    if let Some(client) = c.client.as_mut() {
                        c.cancelled = true;
                        client.cancel(now);
                    }
                }
            }
            if let Some(at) = c.plan.vanish_at {
                if !c.vanished && elapsed >= at {
                    c.vanished = true;
                    c.client = None;
                    c.downlink.cut = true;
                    c.uplink.cut = true;
                }
            }
            // The slow consumer releases what it has worked through.
            if let (Some(client), Some(rate)) = (c.client.as_mut(), c.plan.consumer_rate) {
                let budget = (now - c.last_release).as_secs_f64() * rate as f64;
                if budget >= 1.0 && c.pending_release > 0 {
                    let done = (budget as u64).min(c.pending_release);
                    c.pending_release -= done;
                    client.cache_done(done);
                    c.last_release = now;
                } else if c.pending_release == 0 {
                    c.last_release = now;
                }
            }
        }

        // Drain transmissions.
        loop {
            buf.clear();
            let transmit = server
                .poll_transmit(now, &mut buf, &mut source)
                .expect("memory source never fails");
            let Some(dest) = transmit.map(|t| t.destination) else {
                break;
            };
            trace(now - epoch, "server ->", dest, &buf);
            for (i, c) in clients.iter_mut().enumerate() {
                if dest != GROUP && dest != client_addr(i) {
                    continue;
                }
                for (at, bytes) in c.downlink.carry(now, &buf) {
                    order += 1;
                    queue.push(Reverse(InFlight {
                        at,
                        order,
                        target: Target::Client(i),
                        from: SERVER,
                        bytes,
                    }));
                }
            }
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let Some(client) = c.client.as_mut() else {
                continue;
            };
            buf.clear();
            while let Some(dest) = client.poll_transmit(&mut buf).map(|t| t.destination) {
                assert_eq!(dest, SERVER, "clients send only to the server");
                trace(now - epoch, &format!("client {i} ->"), dest, &buf);
                for (at, bytes) in c.uplink.carry(now, &buf) {
                    order += 1;
                    queue.push(Reverse(InFlight {
                        at,
                        order,
                        target: Target::Server,
                        from: client_addr(i),
                        bytes,
                    }));
                }
                buf.clear();
            }
            while let Some(event) = client.poll_event() {
                if let ClientEvent::Finished(outcome) = event {
                    c.outcome = Some(outcome);
                    c.finished_at = Some(now - epoch);
                }
            }
        }
        while let Some(event) = server.poll_event() {
            server_events.push(format!("{:?} {:?}", now - epoch, event));
            if server_events.len() > 10_000 {
                server_events.remove(0);
            }
            let _: &ServerEvent = &event;
        }

        let all_done = clients.iter().all(|c| {
            c.vanished || (c.outcome.is_some() && c.client.as_ref().is_none_or(|x| x.is_finished()))
        });
        if all_done || now >= deadline {
            break;
        }

        // Advance the virtual clock to the next thing that happens.
        let mut next = deadline;
        if let Some(Reverse(head)) = queue.peek() {
            next = next.min(head.at);
        }
        if let Some(t) = server.poll_timeout() {
            next = next.min(t);
        }
        for c in &clients {
            if let Some(t) = c.client.as_ref().and_then(|x| x.poll_timeout()) {
                next = next.min(t);
            }
            if c.client.is_none() && c.outcome.is_none() && !c.vanished {
                next = next.min(epoch + c.plan.start_at);
            }
            // A cancel planned before the client starts happens when it starts.
            for at in [
                c.plan.cancel_at.filter(|_| !c.cancelled),
                c.plan.vanish_at.filter(|_| !c.vanished),
            ]
            .into_iter()
            .flatten()
            {
                if epoch + at > now {
                    next = next.min(epoch + at);
                }
            }
            if c.pending_release > 0 {
                next = next.min(now + Duration::from_millis(10));
            }
        }
        if next <= now {
            stalled += 1;
            assert!(
                stalled < 100_000,
                "seed {}: virtual clock stuck at {:?}: server timer {:?}, client timers {:?}",
                scenario.seed,
                now - epoch,
                server
                    .poll_timeout()
                    .map(|t| t.saturating_duration_since(epoch)),
                clients
                    .iter()
                    .map(|c| c
                        .client
                        .as_ref()
                        .and_then(|x| x.poll_timeout())
                        .map(|t| t.saturating_duration_since(epoch)))
                    .collect::<Vec<_>>()
            );
        } else {
            stalled = 0;
        }
        now = next.max(now);

        // Deliver everything due, then fire due timers.
        while queue.peek().is_some_and(|Reverse(head)| head.at <= now) {
            let Reverse(item) = queue.pop().expect("peeked");
            match item.target {
                Target::Server => server.handle_datagram(now, item.from, &item.bytes),
                Target::Client(i) => {
                    let c = &mut clients[i];
                    let Some(client) = c.client.as_mut() else {
                        continue;
                    };
                    if let Some(delivery) = client.handle_datagram(now, item.from, &item.bytes) {
                        let start = delivery.offset as usize;
                        c.received[start..start + delivery.data.len()]
                            .copy_from_slice(delivery.data);
                        match c.plan.consumer_rate {
                            None => client.cache_done(delivery.data.len() as u64),
                            Some(_) => c.pending_release += delivery.data.len() as u64,
                        }
                    }
                }
            }
        }
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
        for c in clients.iter_mut() {
            if let Some(client) = c.client.as_mut() {
                if client.poll_timeout().is_some_and(|t| t <= now) {
                    client.handle_timeout(now);
                }
            }
        }
    }

    let stats = server.stats();
    Report {
        clients: clients
            .iter()
            .map(|c| ClientReport {
                outcome: c.outcome,
                byte_exact: c.received == content,
                finished_at: c.finished_at,
                stats: c
                    .client
                    .as_ref()
                    .map(|x| x.stats().clone())
                    .unwrap_or_default(),
            })
            .collect(),
        downlink_lost: clients.iter().map(|c| c.downlink.stats.lost).sum(),
        downlink_only_corrupted: clients
            .iter()
            .map(|c| c.downlink.stats.only_corrupted)
            .sum(),
        rdata_sent: stats.rdata_sent,
        server_events,
        end: now - epoch,
    }
}

/// With `WDSMC_SIM_TRACE=1`, prints every datagram sent (for replaying a failing seed).
fn trace(at: Duration, who: &str, dest: SocketAddr, bytes: &[u8]) {
    if std::env::var_os("WDSMC_SIM_TRACE").is_none() {
        return;
    }
    match wdsmc::wire::mt::Packet::decode(bytes) {
        Ok(p) => eprintln!("{at:?} {who} {dest} {:?}", p.body),
        Err(e) => eprintln!("{at:?} {who} {dest} undecodable: {e}"),
    }
}
