//! `wdsmc doctor`: each link of the chain from the name of the server to multicast data on
//! the interface, measured in order, so that the first link that breaks is named.
//!
//! Every passing step reports something it measured: an address, a reply, a time, a count.
//! The session steps (login, initiation, JOIN, multicast, loss, LEAVE) come from one real
//! session that is started, sampled for a short while and then cancelled, so the server sees
//! a LEAVE (reason CANCELLED) and nothing is written anywhere.

use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sys::iface::{InterfaceFlags, interface_flags};
use crate::transport::{
    AuthFailure, DEFAULT_RPC_PORT, ENDPOINT_MAPPER_PORT, Event, Initiation, InterfaceSpec,
    NetworkError, OsError, Phase, Request, RpcAuth, RpcFailure, Session, SessionInfo, Stats,
    TransportError,
};
use crate::wire::Datagram;
use crate::wire::msi::{MsiPacket, MsiRequest};
use crate::wire::mt::{Body, LeaveReason, Packet, SecurityType};

/// What to diagnose.
#[derive(Debug, Clone)]
pub struct DoctorRequest {
    /// `HOST[:PORT]`, as for `get`.
    pub server: String,
    /// Namespace and object of the session to try; without them the steps stop after the
    /// reachability checks.
    pub namespace: Option<String>,
    pub object: Option<String>,
    pub interface: Option<InterfaceSpec>,
    pub initiation: Initiation,
    /// How long to wait for an answer on UDP 5041.
    pub udp_wait: Duration,
    /// Limit for TCP connects, the RPC login and the JOINACK.
    pub connect_wait: Duration,
    /// How long multicast data may take to arrive after the JOINACK.
    pub multicast_wait: Duration,
    /// How long data is received for the loss figure.
    pub sample: Duration,
    pub client_name: Option<String>,
}

impl DoctorRequest {
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            namespace: None,
            object: None,
            interface: None,
            initiation: Initiation::Udp,
            udp_wait: Duration::from_secs(3),
            connect_wait: Duration::from_secs(5),
            multicast_wait: Duration::from_secs(5),
            sample: Duration::from_secs(2),
            client_name: None,
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Measured and fine.
    Pass,
    /// Measured; worth knowing, but nothing downstream depends on it.
    Warn,
    /// The chain breaks here; the steps after it did not run.
    Fail,
}

impl StepStatus {
    pub fn name(self) -> &'static str {
        match self {
            StepStatus::Pass => "pass",
            StepStatus::Warn => "warn",
            StepStatus::Fail => "fail",
        }
    }
}

/// Which link of the chain a step checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepId {
    Resolve,
    Interface,
    Udp,
    TcpRpc,
    TcpMapper,
    Login,
    Initiate,
    Join,
    Multicast,
    Loss,
    Mtu,
    Leave,
}

impl StepId {
    /// A stable machine name (JSON `step`).
    pub fn name(self) -> &'static str {
        match self {
            StepId::Resolve => "resolve",
            StepId::Interface => "interface",
            StepId::Udp => "udp_initiation",
            StepId::TcpRpc => "tcp_rpc",
            StepId::TcpMapper => "tcp_endpoint_mapper",
            StepId::Login => "rpc_login",
            StepId::Initiate => "initiate",
            StepId::Join => "join",
            StepId::Multicast => "multicast",
            StepId::Loss => "loss",
            StepId::Mtu => "mtu",
            StepId::Leave => "leave",
        }
    }
}

/// Why a step failed, beyond the transport error a download would have met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// ICMP port unreachable: nothing listens there.
    PortUnreachable,
    /// No answer at all within the wait.
    Silence,
    /// The server answered UDP initiation with an error code.
    UdpRefused { code: u32 },
    /// TCP connect was refused.
    TcpRefused,
    /// TCP connect timed out.
    TcpSilent,
    /// The interface does not have the multicast flag, or is down.
    NoMulticastFlag,
    /// Blocks do not fit the interface MTU: every block is fragmented.
    Fragmented { datagram: u32, mtu: u32 },
    /// Loss above 1 % over the sample.
    Lossy,
    /// A TCP port the chosen initiation does not need is closed.
    NotNeeded,
    /// UDP 5041 is silent but initiation runs over RPC.
    UdpNotNeeded,
}

/// One step's result.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: StepId,
    pub status: StepStatus,
    /// What was measured, in words.
    pub detail: String,
    /// How long the step's measurement took.
    pub elapsed: Duration,
    /// The error a download would have met here (it decides the exit status).
    pub error: Option<TransportError>,
    pub finding: Option<Finding>,
    /// Facts for JSON output.
    pub facts: serde_json::Value,
}

impl Step {
    fn new(id: StepId, status: StepStatus, detail: impl Into<String>, elapsed: Duration) -> Step {
        Step {
            id,
            status,
            detail: detail.into(),
            elapsed,
            error: None,
            finding: None,
            facts: serde_json::Value::Null,
        }
    }

    fn error(mut self, error: TransportError) -> Step {
        self.error = Some(error);
        self
    }

    fn finding(mut self, finding: Finding) -> Step {
        self.finding = Some(finding);
        self
    }

    fn facts(mut self, facts: serde_json::Value) -> Step {
        self.facts = facts;
        self
    }
}

/// Runs every step in order, handing each to `report` as soon as it is known. Stops after the
/// first failing step. Returns all the steps.
pub fn run(request: &DoctorRequest, report: &mut dyn FnMut(&Step)) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut push = |step: Step, steps: &mut Vec<Step>| -> bool {
        report(&step);
        let failed = step.status == StepStatus::Fail;
        steps.push(step);
        !failed
    };
    let rpc = match &request.initiation {
        Initiation::Rpc(rpc) => Some(rpc.clone()),
        Initiation::Udp => None,
    };

    // 1. The name.
    let started = Instant::now();
    let server = match crate::transport::resolve(&request.server) {
        Ok(addr) => {
            let step = Step::new(
                StepId::Resolve,
                StepStatus::Pass,
                format!("{} is {}", request.server.trim(), addr.ip()),
                started.elapsed(),
            )
            .facts(serde_json::json!({ "address": addr.ip().to_string(), "port": addr.port() }));
            push(step, &mut steps);
            addr
        }
        Err(error) => {
            let step = Step::new(
                StepId::Resolve,
                StepStatus::Fail,
                format!("cannot resolve {}: {error}", request.server.trim()),
                started.elapsed(),
            )
            .error(error);
            push(step, &mut steps);
            return steps;
        }
    };

    // 2. The route and the interface.
    let started = Instant::now();
    let route = match crate::transport::route(request.interface.as_ref(), server) {
        Ok(route) => route,
        Err(error) => {
            let step = Step::new(
                StepId::Interface,
                StepStatus::Fail,
                format!("no interface towards {}: {error}", server.ip()),
                started.elapsed(),
            )
            .error(error);
            push(step, &mut steps);
            return steps;
        }
    };
    let flags: Option<InterfaceFlags> = route.interface.as_deref().and_then(interface_flags);
    let name = route.interface.clone().unwrap_or_else(|| "?".into());
    let mut detail = format!("{name} {}", route.address);
    match flags {
        Some(f) => {
            detail += &format!(
                ", MTU {}, multicast {}{}",
                f.mtu,
                if f.multicast { "on" } else { "off" },
                if f.up { "" } else { ", down" }
            )
        }
        None => detail += ", MTU and flags unknown",
    }
    let mut step = Step::new(
        StepId::Interface,
        StepStatus::Pass,
        detail,
        started.elapsed(),
    )
    .facts(serde_json::json!({
        "interface": route.interface,
        "address": route.address.to_string(),
        "mtu": flags.map(|f| f.mtu),
        "multicast": flags.map(|f| f.multicast),
        "up": flags.map(|f| f.up),
    }));
    if flags.is_some_and(|f| !f.multicast || !f.up) {
        step.status = StepStatus::Warn;
        step.finding = Some(Finding::NoMulticastFlag);
    }
    push(step, &mut steps);

    // 3. UDP 5041 (or the port given): an answer, an error answer, ICMP, or silence.
    let udp_needed = rpc.is_none();
    let step = udp_step(request, server, &route.mac, udp_needed);
    if !push(step, &mut steps) {
        return steps;
    }

    // 4. TCP: the RPC listener and the endpoint mapper.
    let rpc_port = rpc.as_ref().map_or(DEFAULT_RPC_PORT, |r| r.port);
    let mapper_needed = rpc.as_ref().is_some_and(|r| r.endpoint_mapper);
    let rpc_needed = rpc.is_some() && !mapper_needed;
    let step = tcp_step(
        StepId::TcpRpc,
        SocketAddr::new(server.ip(), rpc_port),
        rpc_needed,
        request.connect_wait,
    );
    if !push(step, &mut steps) {
        return steps;
    }
    let step = tcp_step(
        StepId::TcpMapper,
        SocketAddr::new(server.ip(), ENDPOINT_MAPPER_PORT),
        mapper_needed,
        request.connect_wait,
    );
    if !push(step, &mut steps) {
        return steps;
    }

    let (Some(namespace), Some(object)) = (&request.namespace, &request.object) else {
        return steps;
    };

    // 5. onwards: one real session.
    let outcome = sample_session(request, namespace, object);
    for step in session_steps(&outcome, rpc.as_ref().map(|r| &r.auth), flags, request) {
        if !push(step, &mut steps) {
            break;
        }
    }
    steps
}

fn udp_step(request: &DoctorRequest, server: SocketAddr, mac: &[u8], needed: bool) -> Step {
    let started = Instant::now();
    let packet = MsiPacket::Request(MsiRequest {
        namespace: request
            .namespace
            .clone()
            .unwrap_or_else(|| "wdsmc-doctor".into()),
        content: request.object.clone().unwrap_or_else(|| "probe".into()),
        mac_address: if mac.len() == 6 {
            mac.to_vec()
        } else {
            vec![0; 6]
        },
        ipv6_capable: None,
    })
    .encode();
    let facts =
        |answer: &str| serde_json::json!({ "server": server.to_string(), "answer": answer });
    let result = probe_udp(server, &packet, request.udp_wait);
    let elapsed = started.elapsed();
    match result {
        Ok(UdpAnswer::Reply) => Step::new(
            StepId::Udp,
            StepStatus::Pass,
            format!(
                "UDP {} answered in {} with a session",
                server.port(),
                millis(elapsed)
            ),
            elapsed,
        )
        .facts(facts("session")),
        Ok(UdpAnswer::Error(code)) => Step::new(
            StepId::Udp,
            StepStatus::Pass,
            format!(
                "UDP {} answered in {} with error 0x{code:08X}",
                server.port(),
                millis(elapsed)
            ),
            elapsed,
        )
        .finding(Finding::UdpRefused { code })
        .facts(facts("error")),
        Err(finding) => {
            let what = match finding {
                Finding::PortUnreachable => {
                    "port unreachable (ICMP): nothing listens there".to_string()
                }
                _ => format!("no answer in {}", secs(request.udp_wait)),
            };
            let detail = format!("UDP {}: {what}", server.port());
            let error = TransportError::Timeout {
                phase: Phase::Initiation,
                after: request.udp_wait,
            };
            if needed {
                Step::new(StepId::Udp, StepStatus::Fail, detail, elapsed)
                    .error(error)
                    .finding(finding)
                    .facts(facts("none"))
            } else {
                Step::new(
                    StepId::Udp,
                    StepStatus::Warn,
                    format!("{detail} (not needed: initiation runs over RPC)"),
                    elapsed,
                )
                .finding(Finding::UdpNotNeeded)
                .facts(facts("none"))
            }
        }
    }
}

enum UdpAnswer {
    Reply,
    Error(u32),
}

/// Sends the request every second until an MSI answer arrives from the server, an ICMP port
/// unreachable is reported, or `wait` runs out.
fn probe_udp(server: SocketAddr, packet: &[u8], wait: Duration) -> Result<UdpAnswer, Finding> {
    let any: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let socket = UdpSocket::bind(any).map_err(|_| Finding::Silence)?;
    // Connected, so the system reports an ICMP port unreachable on the next receive.
    socket.connect(server).map_err(|_| Finding::Silence)?;
    let started = Instant::now();
    let mut next_send = started;
    let mut buf = vec![0u8; 65_536];
    let mut refused = 0;
    loop {
        let now = Instant::now();
        if now >= started + wait {
            return Err(if refused > 0 {
                Finding::PortUnreachable
            } else {
                Finding::Silence
            });
        }
        if now >= next_send {
            let _ = socket.send(packet);
            next_send = now + Duration::from_secs(1);
        }
        let left = (started + wait).saturating_duration_since(now);
        let _ = socket.set_read_timeout(Some(
            left.clamp(Duration::from_millis(1), Duration::from_millis(100)),
        ));
        match socket.recv(&mut buf) {
            Ok(len) => match MsiPacket::decode(&buf[..len]) {
                Ok(MsiPacket::Reply(_)) => return Ok(UdpAnswer::Reply),
                Ok(MsiPacket::Error { code }) => return Ok(UdpAnswer::Error(code)),
                _ => {}
            },
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                refused += 1;
                // Twice is enough to be sure (the first may be a server still starting).
                if refused >= 2 {
                    return Err(Finding::PortUnreachable);
                }
            }
            Err(_) => {}
        }
    }
}

fn tcp_step(id: StepId, addr: SocketAddr, needed: bool, wait: Duration) -> Step {
    let started = Instant::now();
    let result = TcpStream::connect_timeout(&addr, wait);
    let elapsed = started.elapsed();
    let facts = |open: bool| serde_json::json!({ "address": addr.to_string(), "open": open });
    match result {
        Ok(_) => Step::new(
            id,
            StepStatus::Pass,
            format!("TCP {} open ({})", addr.port(), millis(elapsed)),
            elapsed,
        )
        .facts(facts(true)),
        Err(e) => {
            let (finding, what) = if e.kind() == io::ErrorKind::ConnectionRefused {
                (Finding::TcpRefused, "refused".to_string())
            } else if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
                (Finding::TcpSilent, format!("no answer in {}", secs(wait)))
            } else {
                (Finding::TcpSilent, e.to_string())
            };
            if needed {
                Step::new(
                    id,
                    StepStatus::Fail,
                    format!("TCP {} {what}", addr.port()),
                    elapsed,
                )
                .error(
                    NetworkError::RpcConnect {
                        server: addr,
                        error: OsError::from(e),
                    }
                    .into(),
                )
                .finding(finding)
                .facts(facts(false))
            } else {
                Step::new(
                    id,
                    StepStatus::Warn,
                    format!("TCP {} {what} (not needed here)", addr.port()),
                    elapsed,
                )
                .finding(Finding::NotNeeded)
                .facts(facts(false))
            }
        }
    }
}

/// What one sampled session showed.
#[derive(Debug, Default)]
struct Observed {
    started: Option<Instant>,
    info: Option<SessionInfo>,
    initiated: Option<Instant>,
    first_join: Option<Instant>,
    joined: Option<(Instant, u32)>,
    first_data: Option<(Instant, SocketAddr)>,
    stats: Option<Stats>,
    leave: Option<LeaveReason>,
    result: Option<Result<Stats, TransportError>>,
    sample: Duration,
    start_error: Option<TransportError>,
    /// The security provider the login used, and why Kerberos was not (Negotiate).
    login: Option<(String, Option<String>)>,
}

fn sample_session(request: &DoctorRequest, namespace: &str, object: &str) -> Observed {
    let mut session_request = Request::new(request.server.clone(), namespace, object);
    session_request.interface = request.interface.clone();
    session_request.initiation = request.initiation.clone();
    session_request.client_name = request.client_name.clone();
    session_request.timeouts.initiation = request.connect_wait.max(request.udp_wait);
    session_request.timeouts.join = request.connect_wait;
    session_request.timeouts.first_data = request.multicast_wait;
    session_request.timeouts.inactivity = request.multicast_wait;
    session_request.trace = true;
    let observed = Arc::new(Mutex::new(Observed {
        started: Some(Instant::now()),
        ..Observed::default()
    }));
    let shared = Arc::clone(&observed);
    let callback = move |session: &crate::transport::SessionHandle, event: Event<'_>| {
        let mut o = shared.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match event {
            Event::SessionStart(info) => {
                o.info = Some(info.clone());
                o.initiated = Some(now);
            }
            Event::Joined { client_id } => o.joined = Some((now, client_id)),
            Event::ReceiveContents { offset, data } => {
                if o.first_data.is_none() {
                    let group = o.info.as_ref().map(|i| i.params.group);
                    o.first_data = group.map(|g| (now, g));
                }
                let _ = session.complete_receive(offset, data.len() as u64);
            }
            Event::Progress(stats) => o.stats = Some(stats.clone()),
            Event::Login {
                mechanism,
                kerberos_unavailable,
            } => {
                o.login = Some((
                    mechanism.to_string(),
                    kerberos_unavailable.map(str::to_string),
                ));
            }
            Event::Trace {
                outgoing: true,
                datagram: Datagram::Mt(bytes),
                ..
            } => match Packet::decode(bytes).map(|p| p.body) {
                Ok(Body::Join(_)) if o.first_join.is_none() => o.first_join = Some(now),
                Ok(Body::Leave(leave)) => o.leave = Some(leave.reason),
                _ => {}
            },
            Event::SessionComplete(result) => o.result = Some(result.clone()),
            _ => {}
        }
    };
    let session = match Session::start(session_request, callback) {
        Ok(session) => session,
        Err(error) => {
            let mut o = observed.lock().unwrap_or_else(|e| e.into_inner());
            o.start_error = Some(error);
            return std::mem::take(&mut *o);
        }
    };
    // Wait for the first data (or the end), then sample, then cancel.
    let limit = request.connect_wait * 2 + request.udp_wait + request.multicast_wait;
    let deadline = Instant::now() + limit + request.sample;
    let mut sample_end: Option<Instant> = None;
    loop {
        {
            let o = observed.lock().unwrap_or_else(|e| e.into_inner());
            if o.result.is_some() {
                break;
            }
            if sample_end.is_none() {
                sample_end = o.first_data.map(|(first, _)| first + request.sample);
            }
        }
        let now = Instant::now();
        if sample_end.is_some_and(|end| now >= end) || now >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sample_started = observed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .first_data
        .map(|(t, _)| t);
    session.cancel();
    let _ = session.wait(Some(Duration::from_secs(5)));
    session.close();
    let mut o = observed.lock().unwrap_or_else(|e| e.into_inner());
    o.sample = sample_started.map_or(Duration::ZERO, |t| t.elapsed());
    std::mem::take(&mut *o)
}

fn is_login_failure(error: &TransportError) -> bool {
    matches!(
        error,
        TransportError::AuthFailed(
            AuthFailure::AccessDenied
                | AuthFailure::BindRejected { .. }
                | AuthFailure::SecurityExchange { .. }
                | AuthFailure::Provider(_)
        ) | TransportError::Rpc(RpcFailure::Connection { .. } | RpcFailure::NotRegistered { .. })
    )
}

/// The session's steps, in order, up to the first failure.
fn session_steps(
    o: &Observed,
    auth: Option<&RpcAuth>,
    flags: Option<InterfaceFlags>,
    request: &DoctorRequest,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let started = o.started.unwrap_or_else(Instant::now);
    let error = o
        .start_error
        .clone()
        .or_else(|| o.result.clone().and_then(Result::err))
        .filter(|e| *e != TransportError::Cancelled);
    let initiated = o.initiated.map(|t| t.saturating_duration_since(started));

    // Login (RPC only): passes when the sealed reply came, whatever it said.
    if let Some(auth) = auth {
        let user = match auth {
            RpcAuth::Negotiate(c) | RpcAuth::Ntlm(c) | RpcAuth::Kerberos(c) => account(c),
            RpcAuth::KerberosCache { user: Some(u), .. } => u.clone(),
            RpcAuth::KerberosCache { user: None, .. } => "the credential cache's user".into(),
            RpcAuth::Anonymous => "anonymous".into(),
        };
        // The provider the login settled on, once it did (Negotiate says why not Kerberos).
        let how = match (&o.login, auth) {
            (Some((mechanism, None)), _) => mechanism.clone(),
            (Some((mechanism, Some(why))), _) => format!("{mechanism}; no Kerberos: {why}"),
            (None, RpcAuth::Negotiate(_)) => "SPNEGO".into(),
            (None, RpcAuth::Ntlm(_) | RpcAuth::Anonymous) => "NTLM".into(),
            (None, RpcAuth::Kerberos(_) | RpcAuth::KerberosCache { .. }) => "Kerberos".into(),
        };
        let who = format!("{user} with {how}");
        match &error {
            Some(e) if o.info.is_none() && is_login_failure(e) => {
                steps.push(
                    Step::new(
                        StepId::Login,
                        StepStatus::Fail,
                        format!("login as {who} failed: {e}"),
                        started.elapsed(),
                    )
                    .error(e.clone()),
                );
                return steps;
            }
            Some(TransportError::Timeout {
                phase: Phase::Initiation,
                ..
            }) if o.info.is_none() => {
                steps.push(
                    Step::new(
                        StepId::Login,
                        StepStatus::Fail,
                        format!("login as {who}: the RPC listener did not finish in time"),
                        started.elapsed(),
                    )
                    .error(error.clone().expect("matched")),
                );
                return steps;
            }
            _ => steps.push(
                Step::new(
                    StepId::Login,
                    StepStatus::Pass,
                    format!("logged in as {who} at packet privacy; the sealed reply verified"),
                    initiated.unwrap_or_default(),
                )
                .facts(serde_json::json!({
                    "mechanism": match auth {
                        RpcAuth::Negotiate(_) => "negotiate",
                        RpcAuth::Ntlm(_) => "ntlm",
                        RpcAuth::Kerberos(_) | RpcAuth::KerberosCache { .. } => "kerberos",
                        RpcAuth::Anonymous => "anonymous",
                    },
                    "provider": o.login.as_ref().map(|(m, _)| m.clone()),
                })),
            ),
        }
    }

    // Initiation.
    let Some(info) = &o.info else {
        let e = error.unwrap_or(TransportError::Timeout {
            phase: Phase::Initiation,
            after: request.connect_wait,
        });
        steps.push(
            Step::new(
                StepId::Initiate,
                StepStatus::Fail,
                format!("initiation failed: {e}"),
                started.elapsed(),
            )
            .error(e),
        );
        return steps;
    };
    let p = &info.params;
    steps.push(
        Step::new(
            StepId::Initiate,
            StepStatus::Pass,
            format!(
                "session 0x{:08X}: group {}, server {}, {} bytes in {} blocks of {}, security {}/{}",
                p.session_id,
                p.group,
                p.server,
                p.content_size,
                p.total_blocks,
                p.block_size,
                info.security.modes.server.name(),
                info.security.modes.client.name()
            ),
            initiated.unwrap_or_default(),
        )
        .facts(serde_json::json!({
            "session_id": p.session_id,
            "group": p.group.ip().to_string(),
            "port": p.group.port(),
            "server": p.server.to_string(),
            "size": p.content_size,
            "block_size": p.block_size,
            "total_blocks": p.total_blocks,
            "authenticated": info.authenticated,
        })),
    );

    // JOIN -> JOINACK.
    let Some((joined, client_id)) = o.joined else {
        let e = error.unwrap_or(TransportError::Timeout {
            phase: Phase::Join,
            after: request.connect_wait,
        });
        steps.push(
            Step::new(
                StepId::Join,
                StepStatus::Fail,
                format!("no JOINACK from {}: {e}", p.server),
                started.elapsed(),
            )
            .error(e),
        );
        return steps;
    };
    let join_time = o
        .first_join
        .map_or(Duration::ZERO, |j| joined.saturating_duration_since(j));
    steps.push(
        Step::new(
            StepId::Join,
            StepStatus::Pass,
            format!(
                "JOINACK from {} in {}, client id {client_id}",
                p.server,
                millis(join_time)
            ),
            join_time,
        )
        .facts(
            serde_json::json!({ "client_id": client_id, "join_ms": join_time.as_secs_f64() * 1e3 }),
        ),
    );

    // Multicast data on the interface.
    let Some((first, group)) = o.first_data else {
        let e = error.unwrap_or(TransportError::Timeout {
            phase: Phase::FirstData,
            after: request.multicast_wait,
        });
        steps.push(
            Step::new(
                StepId::Multicast,
                StepStatus::Fail,
                format!(
                    "no data from group {} within {} of the JOINACK (unicast works)",
                    p.group,
                    secs(request.multicast_wait)
                ),
                joined.elapsed(),
            )
            .error(e),
        );
        return steps;
    };
    let wait = first.saturating_duration_since(joined);
    steps.push(
        Step::new(
            StepId::Multicast,
            StepStatus::Pass,
            format!("first block from group {group} {} after the JOINACK", millis(wait)),
            wait,
        )
        .facts(serde_json::json!({ "group": group.to_string(), "first_data_ms": wait.as_secs_f64() * 1e3 })),
    );

    // Loss over the sample.
    if let Some(stats) = &o.stats {
        let lossy = stats.loss_rate > 0.01;
        let mut step = Step::new(
            StepId::Loss,
            if lossy {
                StepStatus::Warn
            } else {
                StepStatus::Pass
            },
            format!(
                "{:.1} % over {:.1} s: {} blocks, {} ODATA, {} repairs, {} NACKs, {} bad checksums",
                stats.loss_rate * 100.0,
                o.sample.as_secs_f64(),
                stats.blocks_received,
                stats.odata_packets,
                stats.rdata_packets,
                stats.nacks_sent,
                stats.checksum_drops
            ),
            o.sample,
        )
        .facts(serde_json::json!({
            "loss_rate": stats.loss_rate,
            "blocks": stats.blocks_received,
            "odata": stats.odata_packets,
            "rdata": stats.rdata_packets,
            "nacks": stats.nacks_sent,
            "checksum_drops": stats.checksum_drops,
            "sample_ms": o.sample.as_secs_f64() * 1e3,
        }));
        if lossy {
            step.finding = Some(Finding::Lossy);
        }
        steps.push(step);
    }

    // The block size against the MTU.
    let security = match info.security.modes.server {
        SecurityType::Checksum => 4,
        SecurityType::Hash => 32,
        SecurityType::Sign => 256,
        SecurityType::None => 0,
    };
    // Security header, session header, ODATA fields, MA DATA header, then IP and UDP.
    let ip = if p.group.is_ipv4() { 28 } else { 48 };
    let datagram = p.block_size + 5 + security + 13 + 22 + 13 + ip;
    match flags {
        Some(f) if datagram > f.mtu => {
            let fragments = datagram.div_ceil(f.mtu.saturating_sub(ip).max(1));
            steps.push(
                Step::new(
                    StepId::Mtu,
                    StepStatus::Warn,
                    format!(
                        "{datagram}-byte packets on MTU {}: each block travels in {fragments} IP fragments, and losing one loses the block",
                        f.mtu
                    ),
                    Duration::ZERO,
                )
                .finding(Finding::Fragmented {
                    datagram,
                    mtu: f.mtu,
                })
                .facts(serde_json::json!({ "datagram": datagram, "mtu": f.mtu, "fragments": fragments })),
            );
        }
        Some(f) => steps.push(
            Step::new(
                StepId::Mtu,
                StepStatus::Pass,
                format!("{datagram}-byte packets fit MTU {}", f.mtu),
                Duration::ZERO,
            )
            .facts(serde_json::json!({ "datagram": datagram, "mtu": f.mtu, "fragments": 1 })),
        ),
        None => {}
    }

    // LEAVE.
    match o.leave {
        Some(reason) => steps.push(
            Step::new(
                StepId::Leave,
                StepStatus::Pass,
                format!("LEAVE (reason {}) sent; nothing was written", reason.name()),
                Duration::ZERO,
            )
            .facts(serde_json::json!({ "reason": reason.name() })),
        ),
        None => {
            let e = error.unwrap_or(TransportError::Timeout {
                phase: Phase::Inactivity,
                after: request.sample,
            });
            steps.push(
                Step::new(
                    StepId::Leave,
                    StepStatus::Fail,
                    format!("the session ended before its LEAVE: {e}"),
                    Duration::ZERO,
                )
                .error(e),
            );
        }
    }
    steps
}

fn account(c: &crate::transport::Credentials) -> String {
    if c.domain.is_empty() {
        c.user.clone()
    } else {
        format!("{}\\{}", c.domain, c.user)
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
