//! A passive observer of one session's multicast: it joins the group and decodes what arrives,
//! and sends nothing at all (no JOIN, no QCR, no NACK: the server never learns of it).
//!
//! Figures: data (ODATA) and repair (RDATA) rates in datagram bytes per second, the mean SPM
//! interval, the query round (a POLL with a new sequence number starts the next one), NCFs and
//! the repair share, KICKs, master changes (the master's ClientId in SPM and data packets),
//! and the share of the object's blocks seen in the current round.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::wire::ma::MaPacket;
use crate::wire::mt::{Body, Packet};

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The session's multicast group and port.
    pub group: SocketAddr,
    /// The local address to join the group on (the interface).
    pub local: IpAddr,
    /// Only this session's packets count; the first session seen when `None`.
    pub session_id: Option<u32>,
    /// The object's blocks, for the coverage figure; unknown with `None`.
    pub total_blocks: Option<u64>,
}

/// Counters since the observer started (or, in [`WatchReport::interval`], since the last
/// report).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub odata: u64,
    pub rdata: u64,
    /// Datagram bytes of ODATA and of RDATA.
    pub odata_bytes: u64,
    pub rdata_bytes: u64,
    pub spm: u64,
    pub ncf: u64,
    pub poll: u64,
    pub qcc: u64,
    /// Clients named in KICK packets.
    pub kicked_clients: u64,
    pub kick: u64,
    pub demote: u64,
    pub master_changes: u64,
    /// Datagrams that did not decode (a bad checksum included).
    pub undecodable: u64,
    /// Datagrams of another session on the same group.
    pub other_session: u64,
}

impl Counts {
    fn minus(&self, earlier: &Counts) -> Counts {
        Counts {
            odata: self.odata - earlier.odata,
            rdata: self.rdata - earlier.rdata,
            odata_bytes: self.odata_bytes - earlier.odata_bytes,
            rdata_bytes: self.rdata_bytes - earlier.rdata_bytes,
            spm: self.spm - earlier.spm,
            ncf: self.ncf - earlier.ncf,
            poll: self.poll - earlier.poll,
            qcc: self.qcc - earlier.qcc,
            kicked_clients: self.kicked_clients - earlier.kicked_clients,
            kick: self.kick - earlier.kick,
            demote: self.demote - earlier.demote,
            master_changes: self.master_changes - earlier.master_changes,
            undecodable: self.undecodable - earlier.undecodable,
            other_session: self.other_session - earlier.other_session,
        }
    }
}

/// One report: the interval since the previous one and the totals.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchReport {
    pub session_id: Option<u32>,
    /// Since the observer started.
    pub elapsed: Duration,
    /// Length of the interval the rates cover.
    pub interval: Duration,
    pub interval_counts: Counts,
    pub totals: Counts,
    /// ODATA and RDATA datagram bytes per second over the interval.
    pub data_rate: f64,
    pub repair_rate: f64,
    /// Mean gap between SPMs in the interval (the last known one when the interval had fewer
    /// than two).
    pub spm_interval: Option<Duration>,
    /// Query rounds seen (POLLs with a new sequence number).
    pub round: u64,
    /// Distinct blocks seen since the current round started.
    pub round_blocks: u64,
    /// `round_blocks` over the object's blocks, 0..=1, when the total is known.
    pub coverage: Option<f64>,
    /// RDATA over all data packets in the interval, 0..=1.
    pub rdata_share: f64,
    /// The master client's id as the server last announced it (0: none).
    pub master: Option<u32>,
    /// The time from the first to the last data packet, and the mean data rate (ODATA and
    /// RDATA bytes) over it: the figure to set against the server's own statistics.
    pub data_span: Duration,
    pub span_rate: f64,
    /// When the last packet of the session arrived.
    pub idle: Duration,
}

/// The observer.
pub struct Observer {
    config: WatchConfig,
    socket: UdpSocket,
    started: Instant,
    counts: Counts,
    reported: Counts,
    last_report: Instant,
    session_id: Option<u32>,
    spm_last: Option<Instant>,
    spm_gaps: Duration,
    spm_gap_count: u32,
    spm_interval: Option<Duration>,
    round: u64,
    last_poll_seq: Option<u64>,
    seen: Vec<u64>,
    round_blocks: u64,
    master: Option<u32>,
    first_data: Option<Instant>,
    last_data: Option<Instant>,
    last_packet: Option<Instant>,
    buf: Vec<u8>,
}

/// Largest bitmap of seen blocks (2^27 blocks: 1 TiB at 8 KiB).
const MAX_TRACKED_BLOCKS: u64 = 1 << 27;

impl Observer {
    /// Joins the group on `config.local`. Nothing is ever sent from the socket.
    pub fn open(config: WatchConfig) -> io::Result<Observer> {
        let group = config.group;
        let domain = if group.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
        socket.set_reuse_port(true)?;
        let _ = socket.set_recv_buffer_size(8 * 1024 * 1024);
        let bind_ip = if cfg!(windows) {
            match group {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            }
        } else {
            group.ip()
        };
        socket.bind(&SocketAddr::new(bind_ip, group.port()).into())?;
        match (group.ip(), config.local) {
            (IpAddr::V4(g), IpAddr::V4(local)) => socket.join_multicast_v4(&g, &local)?,
            (IpAddr::V4(g), IpAddr::V6(_)) => {
                socket.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED)?
            }
            (IpAddr::V6(g), _) => socket.join_multicast_v6(&g, 0)?,
        }
        Self::with_socket(config, socket.into())
    }

    fn with_socket(config: WatchConfig, socket: UdpSocket) -> io::Result<Observer> {
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let now = Instant::now();
        Ok(Observer {
            session_id: config.session_id,
            seen: Vec::new(),
            config,
            socket,
            started: now,
            counts: Counts::default(),
            reported: Counts::default(),
            last_report: now,
            spm_last: None,
            spm_gaps: Duration::ZERO,
            spm_gap_count: 0,
            spm_interval: None,
            round: 0,
            last_poll_seq: None,
            round_blocks: 0,
            master: None,
            first_data: None,
            last_data: None,
            last_packet: None,
            buf: vec![0; 65_536],
        })
    }

    /// Receives and decodes until `deadline`.
    pub fn receive_until(&mut self, deadline: Instant) -> io::Result<()> {
        while Instant::now() < deadline {
            match self.socket.recv_from(&mut self.buf) {
                Ok((len, _from)) => {
                    let bytes = std::mem::take(&mut self.buf);
                    self.handle(Instant::now(), &bytes[..len]);
                    self.buf = bytes;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Feeds one datagram (what [`Self::receive_until`] does with each); public for tests.
    pub fn handle(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(packet) = Packet::decode(bytes) else {
            self.counts.undecodable += 1;
            return;
        };
        match self.session_id {
            Some(id) if id != packet.session_id => {
                self.counts.other_session += 1;
                return;
            }
            None => self.session_id = Some(packet.session_id),
            Some(_) => {}
        }
        self.last_packet = Some(now);
        let len = bytes.len() as u64;
        match &packet.body {
            Body::OData(d) | Body::RData(d) => {
                if matches!(packet.body, Body::OData(_)) {
                    self.counts.odata += 1;
                    self.counts.odata_bytes += len;
                } else {
                    self.counts.rdata += 1;
                    self.counts.rdata_bytes += len;
                }
                self.first_data.get_or_insert(now);
                self.last_data = Some(now);
                self.master_is(d.client_id);
                if let Ok(MaPacket::Data(block)) = MaPacket::decode(d.data) {
                    self.saw_block(block.block_number);
                }
            }
            Body::Spm(spm) => {
                self.counts.spm += 1;
                if let Some(last) = self.spm_last {
                    self.spm_gaps += now - last;
                    self.spm_gap_count += 1;
                }
                self.spm_last = Some(now);
                self.master_is(spm.master_client_id);
            }
            Body::Ncf(_) => self.counts.ncf += 1,
            Body::Poll(poll) => {
                self.counts.poll += 1;
                if self.last_poll_seq != Some(poll.poll_seq_no) {
                    self.last_poll_seq = Some(poll.poll_seq_no);
                    self.round += 1;
                    self.round_blocks = 0;
                    self.seen.iter_mut().for_each(|w| *w = 0);
                }
            }
            Body::Qcc(_) => self.counts.qcc += 1,
            Body::Kick(kick) => {
                self.counts.kick += 1;
                self.counts.kicked_clients += kick.clients.len() as u64;
            }
            Body::Demote(_) => self.counts.demote += 1,
            _ => {}
        }
    }

    fn master_is(&mut self, id: u32) {
        if self.master.is_some_and(|m| m != id) {
            self.counts.master_changes += 1;
        }
        self.master = Some(id);
    }

    fn saw_block(&mut self, block: u64) {
        if block == 0 || block > MAX_TRACKED_BLOCKS {
            return;
        }
        if let Some(total) = self.config.total_blocks
            && block > total
        {
            return;
        }
        let bit = block - 1;
        let word = (bit / 64) as usize;
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        let mask = 1u64 << (bit % 64);
        if self.seen[word] & mask == 0 {
            self.seen[word] |= mask;
            self.round_blocks += 1;
        }
    }

    /// The figures for the interval since the last report, and the totals.
    pub fn report(&mut self) -> WatchReport {
        let now = Instant::now();
        let interval = now - self.last_report;
        let delta = self.counts.minus(&self.reported);
        if self.spm_gap_count > 0 {
            self.spm_interval = Some(self.spm_gaps / self.spm_gap_count);
            self.spm_gaps = Duration::ZERO;
            self.spm_gap_count = 0;
        }
        let secs = interval.as_secs_f64().max(1e-9);
        let data_packets = delta.odata + delta.rdata;
        let data_span = match (self.first_data, self.last_data) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        };
        let span_bytes = self.counts.odata_bytes + self.counts.rdata_bytes;
        let report = WatchReport {
            session_id: self.session_id,
            elapsed: now - self.started,
            interval,
            interval_counts: delta,
            totals: self.counts,
            data_rate: delta.odata_bytes as f64 / secs,
            repair_rate: delta.rdata_bytes as f64 / secs,
            spm_interval: self.spm_interval,
            round: self.round,
            round_blocks: self.round_blocks,
            coverage: self
                .config
                .total_blocks
                .filter(|t| *t > 0)
                .map(|t| self.round_blocks as f64 / t as f64),
            rdata_share: if data_packets == 0 {
                0.0
            } else {
                delta.rdata as f64 / data_packets as f64
            },
            master: self.master,
            data_span,
            span_rate: if data_span.is_zero() {
                0.0
            } else {
                span_bytes as f64 / data_span.as_secs_f64()
            },
            idle: self.last_packet.map_or(now - self.started, |t| now - t),
        };
        self.reported = self.counts;
        self.last_report = now;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ma::DataBlock;
    use crate::wire::mt::{DataPacket, Kick, KickReason, Poll, Security, Spm};

    fn encode(session: u32, body: Body<'_>) -> Vec<u8> {
        Packet {
            security: Security::Checksum,
            session_id: session,
            sender_time: 0,
            body,
        }
        .encode()
    }

    fn data(session: u32, master: u32, block: u64, repair: bool) -> Vec<u8> {
        let content = [7u8; 100];
        let app = MaPacket::Data(DataBlock {
            block_number: block,
            data: &content,
        })
        .encode();
        let d = DataPacket {
            client_id: master,
            odata_seq_no: block,
            trail_odata_seq_no: 0,
            data: &app,
            fw_lead_seq_no: None,
        };
        encode(
            session,
            if repair {
                Body::RData(d)
            } else {
                Body::OData(d)
            },
        )
    }

    #[test]
    fn counts_rounds_coverage_masters_and_kicks() {
        let config = WatchConfig {
            group: "239.255.1.1:40000".parse().unwrap(),
            local: "127.0.0.1".parse().unwrap(),
            session_id: None,
            total_blocks: Some(4),
        };
        // Packets are fed by hand; the socket only has to exist.
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut o = Observer::with_socket(config, socket).unwrap();
        let t = Instant::now();
        for b in 1..=3 {
            o.handle(t, &data(9, 1, b, false));
        }
        o.handle(t, &data(9, 1, 3, true));
        o.handle(t, &data(8, 1, 4, false));
        assert_eq!(o.round_blocks, 3);
        o.handle(
            t,
            &encode(
                9,
                Body::Spm(Spm {
                    spm_seq_no: 1,
                    master_client_id: 2,
                    min_nack_backoff: 0,
                    max_nack_backoff: 0,
                    trail_odata_seq_no: 0,
                    lead_odata_seq_no: 0,
                    rtt: 0,
                }),
            ),
        );
        o.handle(
            t,
            &encode(
                9,
                Body::Poll(Poll {
                    poll_seq_no: 5,
                    backoff: 0,
                    app_data: &MaPacket::SrvCir.encode(),
                }),
            ),
        );
        o.handle(t, &data(9, 2, 4, true));
        o.handle(
            t,
            &encode(
                9,
                Body::Kick(Kick {
                    clients: vec![(3, KickReason::from_u8(1))],
                }),
            ),
        );
        o.handle(t, b"garbage");
        let r = o.report();
        assert_eq!(r.session_id, Some(9));
        assert_eq!(r.totals.odata, 3);
        assert_eq!(r.totals.rdata, 2);
        assert_eq!(r.totals.other_session, 1);
        assert_eq!(r.totals.master_changes, 1);
        assert_eq!(r.master, Some(2));
        assert_eq!(r.round, 1);
        assert_eq!(r.round_blocks, 1);
        assert_eq!(r.coverage, Some(0.25));
        assert_eq!(r.totals.kicked_clients, 1);
        assert_eq!(r.totals.undecodable, 1);
        assert!((r.rdata_share - 0.4).abs() < 1e-9);
    }
}
