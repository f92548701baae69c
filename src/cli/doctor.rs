//! `wdsmc doctor`: runs the library's diagnosis and prints one line per step (✔, ! or ✘, what
//! was measured) with one concrete hint under a failure or warning; `--json` prints one
//! object per step. Exits with the status the first failing step would give `get`.

use std::io::Write;

use serde_json::json;
use wdsmc::diag::doctor::{self, DoctorRequest, Finding, Step, StepId, StepStatus};
use wdsmc::transport::{AuthFailure, Initiation, TransportError};

use super::args::DoctorArgs;
use super::exit::{ExitCode, Failure};
use super::login;

pub fn run(args: DoctorArgs) -> Result<(), Failure> {
    let mut request = DoctorRequest::new(args.server.clone());
    request.namespace = args.namespace.clone();
    request.object = args.object.clone();
    request.interface = args.interface.clone();
    request.initiation = login::initiation(&args.auth, &mut |w| eprintln!("wdsmc: warning: {w}"))?;
    request.udp_wait = args.wait;
    request.connect_wait = args.wait;
    request.multicast_wait = args.multicast_wait;
    request.sample = args.sample;
    let rpc = matches!(request.initiation, Initiation::Rpc(_));
    let json = args.json;
    let mut first_failure: Option<ExitCode> = None;
    let steps = doctor::run(&request, &mut |step| {
        let code = step.error.as_ref().map(ExitCode::for_transport_error);
        if step.status == StepStatus::Fail && first_failure.is_none() {
            first_failure = Some(code.unwrap_or(ExitCode::Internal));
        }
        let hint = hint(step, &args, rpc);
        let mut out = std::io::stdout().lock();
        if json {
            let line = json!({
                "schema": "wdsmc.doctor/1",
                "step": step.id.name(),
                "status": step.status.name(),
                "ok": step.status != StepStatus::Fail,
                "detail": step.detail,
                "hint": hint,
                "elapsed_ms": step.elapsed.as_secs_f64() * 1e3,
                "exit_code": (step.status == StepStatus::Fail)
                    .then(|| code.unwrap_or(ExitCode::Internal).as_i32()),
                "facts": step.facts,
            });
            let _ = writeln!(out, "{line}");
        } else {
            let mark = match step.status {
                StepStatus::Pass => "✔",
                StepStatus::Warn => "!",
                StepStatus::Fail => "✘",
            };
            let _ = writeln!(out, "{mark} {:<15} {}", title(step.id), step.detail);
            if let Some(hint) = hint {
                let _ = writeln!(out, "  {:<15} hint: {hint}", "");
            }
        }
        let _ = out.flush();
    });
    if !json && first_failure.is_none() && steps.iter().all(|s| s.id != StepId::Leave) {
        println!("  (give --namespace and --object to try a session too)");
    }
    match first_failure {
        None => Ok(()),
        Some(code) => Err(Failure::reported(code)),
    }
}

fn title(id: StepId) -> &'static str {
    match id {
        StepId::Resolve => "name",
        StepId::Interface => "interface",
        StepId::Udp => "udp initiation",
        StepId::TcpRpc => "tcp rpc",
        StepId::TcpMapper => "tcp 135",
        StepId::Login => "rpc login",
        StepId::Initiate => "initiate",
        StepId::Join => "join",
        StepId::Multicast => "multicast",
        StepId::Loss => "loss",
        StepId::Mtu => "mtu",
        StepId::Leave => "leave",
    }
}

/// One concrete hint for a failure or a warning.
fn hint(step: &Step, args: &DoctorArgs, rpc: bool) -> Option<String> {
    if step.status == StepStatus::Pass {
        return None;
    }
    let port = |key: &str| {
        step.facts
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    Some(match (step.id, &step.finding, &step.error) {
        (StepId::Resolve, _, _) => {
            "check the name (DNS, hosts file) or give the server's address".into()
        }
        (StepId::Interface, Some(Finding::NoMulticastFlag), _) => {
            "the interface is down or lacks the MULTICAST flag (`ip link set dev IF multicast on`), or choose another with --interface".into()
        }
        (StepId::Interface, _, _) => "choose the interface with --interface".into(),
        (StepId::Udp, Some(Finding::PortUnreachable), _) => format!(
            "nothing listens on UDP at {}: is the WDS server running, and is the port in --server right?",
            port("server")
        ),
        (StepId::Udp, Some(Finding::UdpNotNeeded), _) => {
            "fine for authenticated initiation; `get` without --user would fail here".into()
        }
        (StepId::Udp, _, _) => format!(
            "UDP to {} is dropped by a firewall, or the server ignores unauthenticated initiation (stock WDS does): log in with --user",
            port("server")
        ),
        (StepId::TcpRpc, Some(Finding::NotNeeded), _) if !rpc => {
            "not used without --user; a WDS server with RPC initiation listens here".into()
        }
        (StepId::TcpMapper, Some(Finding::NotNeeded), _) => {
            "only --endpoint-mapper needs it".into()
        }
        (StepId::TcpRpc | StepId::TcpMapper, _, _) => {
            "check --rpc-port (or try --endpoint-mapper) and that the firewall passes TCP to the server".into()
        }
        (StepId::Login, _, Some(TransportError::AuthFailed(AuthFailure::BindRejected { .. }))) => {
            "the server refused the security provider: try --auth ntlm or --auth negotiate".into()
        }
        (StepId::Login, _, Some(TransportError::AuthFailed(_))) => {
            "the credentials were rejected: check --user (DOMAIN\\NAME) and the password".into()
        }
        (StepId::Login, _, _) => {
            "the RPC listener did not complete the login: check --rpc-port and the firewall, or raise --wait".into()
        }
        (StepId::Initiate, _, Some(TransportError::AuthFailed(_))) => {
            "the user may not read this namespace: log in as a user the namespace allows".into()
        }
        (StepId::Initiate, _, Some(TransportError::Refused { code }))
            if *code == wdsmc::server::UDP_REFUSED_AUTH_REQUIRED =>
        {
            "this server requires authenticated initiation: log in with --user".into()
        }
        (StepId::Initiate, _, Some(TransportError::Refused { .. })) => format!(
            "check --namespace {:?} and --object {:?} (`wdsmc images` lists what the server offers)",
            args.namespace.as_deref().unwrap_or(""),
            args.object.as_deref().unwrap_or("")
        ),
        (StepId::Initiate, _, _) => "the server did not describe a session in time: raise --wait".into(),
        (StepId::Join, _, _) => {
            "JOIN or its JOINACK is blocked: a firewall drops the session's UDP port (server side) or its replies to this host".into()
        }
        (StepId::Multicast, _, _) => {
            "unicast works but the group's traffic does not arrive: a firewall drops UDP to the group, IGMP snooping without a querier does not forward it, or --interface names the wrong interface".into()
        }
        (StepId::Loss, _, _) => {
            "loss this high slows every client of the session: check the link, or cap the server's rate (serve --max-rate)".into()
        }
        (StepId::Mtu, _, _) => {
            "a lost fragment loses the whole block: use a block size under the MTU on the server (serve --block-size) or jumbo frames".into()
        }
        (StepId::Leave, _, _) => "the session ended early; run `wdsmc get -v` to see why".into(),
    })
}
