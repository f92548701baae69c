//! `wdsmc watch`: a passive observer of a session's multicast, refreshed in place on a
//! terminal, or JSON lines with `--json`. With `--group` nothing at all is sent; otherwise only
//! the initiation request that finds the group (no JOIN, so the server never counts it).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::json;
use wdsmc::diag::watch::{Observer, WatchConfig, WatchReport};
use wdsmc::transport::{Initiation, Request, initiate};

use super::args::WatchArgs;
use super::exit::{self, ExitCode, Failure};
use super::login;
use super::signals;
use super::units::{format_bytes, format_rate};

pub fn run(args: WatchArgs) -> Result<(), Failure> {
    let (config, label) = match args.group {
        Some(group) => {
            let route = wdsmc::transport::route(args.interface.as_ref(), group).map_err(|e| {
                Failure::msg(
                    ExitCode::for_transport_error(&e),
                    exit::transport_message(&e, false),
                )
            })?;
            (
                WatchConfig {
                    group,
                    local: route.address,
                    session_id: None,
                    total_blocks: None,
                },
                group.to_string(),
            )
        }
        None => {
            let (Some(server), Some(namespace), Some(object)) =
                (&args.server, &args.namespace, &args.object)
            else {
                return Err(Failure::msg(
                    ExitCode::Usage,
                    "give --group ADDR:PORT, or --server, --namespace and --object",
                ));
            };
            let mut request = Request::new(server.clone(), namespace.clone(), object.clone());
            request.interface = args.interface.clone();
            request.initiation =
                login::initiation(&args.auth, &mut |w| eprintln!("wdsmc: warning: {w}"))?;
            let rpc = matches!(request.initiation, Initiation::Rpc(_));
            let info = initiate(&request).map_err(|e| {
                Failure::msg(
                    ExitCode::for_transport_error(&e),
                    exit::transport_message(&e, rpc),
                )
            })?;
            (
                WatchConfig {
                    group: info.params.group,
                    local: info.local_address,
                    session_id: Some(info.params.session_id),
                    total_blocks: Some(info.params.total_blocks),
                },
                format!("{namespace}/{object}"),
            )
        }
    };
    let group: SocketAddr = config.group;
    let local = config.local;
    let mut observer = Observer::open(config).map_err(|e| {
        Failure::msg(
            ExitCode::NetworkSetup,
            format!("cannot join {group} on {local}: {e}"),
        )
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        signals::on_interrupt(move || stop.store(true, Ordering::Relaxed));
    }
    let started = Instant::now();
    let in_place = !args.json && std::io::stdout().is_terminal();
    let mut drawn = 0usize;
    let mut seen_data = false;
    loop {
        let next = Instant::now() + args.interval;
        let deadline = args.duration.map_or(next, |d| next.min(started + d));
        observer
            .receive_until(deadline)
            .map_err(|e| Failure::msg(ExitCode::NetworkSetup, format!("receive failed: {e}")))?;
        let report = observer.report();
        seen_data |= report.totals.odata + report.totals.rdata > 0;
        let done = stop.load(Ordering::Relaxed)
            || args.duration.is_some_and(|d| started.elapsed() >= d)
            || args
                .idle_exit
                .is_some_and(|idle| seen_data && report.idle >= idle);
        if args.json {
            println!("{}", report_json("report", &report, group, &label));
        } else {
            let text = render(&report, group, local, &label);
            let mut out = std::io::stdout().lock();
            if in_place && drawn > 0 {
                let _ = console::Term::stdout().clear_last_lines(drawn);
            }
            let _ = write!(out, "{text}");
            let _ = out.flush();
            drawn = text.lines().count();
        }
        if done {
            if args.json {
                println!("{}", report_json("summary", &report, group, &label));
            } else {
                println!(
                    "watched {:.1} s: {} ODATA, {} RDATA, data for {:.2} s at {} on average",
                    report.elapsed.as_secs_f64(),
                    report.totals.odata,
                    report.totals.rdata,
                    report.data_span.as_secs_f64(),
                    format_rate(report.span_rate)
                );
            }
            return Ok(());
        }
    }
}

fn render(r: &WatchReport, group: SocketAddr, local: std::net::IpAddr, label: &str) -> String {
    let session = r.session_id.map_or_else(
        || "no session yet".to_string(),
        |id| format!("session 0x{id:08X}"),
    );
    let pps = (r.interval_counts.odata + r.interval_counts.rdata) as f64
        / r.interval.as_secs_f64().max(1e-9);
    let spm = r.spm_interval.map_or_else(
        || "-".to_string(),
        |d| format!("every {:.2} s", d.as_secs_f64()),
    );
    let coverage = match r.coverage {
        Some(c) => format!("{:.1} % ({} blocks)", c * 100.0, r.round_blocks),
        None => format!("{} blocks", r.round_blocks),
    };
    let master = r.master.map_or_else(|| "-".to_string(), |m| m.to_string());
    format!(
        "{label}: {session} on {group} via {local}, {:.0} s\n\
         data     {:>12}  ({pps:.0} packets/s)   repairs {} ({:.1} % of data packets)\n\
         spm      {spm:<14} round {}   coverage {coverage}\n\
         ncf {}   kicks {} ({} clients)   master {master} ({} changes)   total {} in {} packets\n",
        r.elapsed.as_secs_f64(),
        format_rate(r.data_rate),
        format_rate(r.repair_rate),
        r.rdata_share * 100.0,
        r.round,
        r.interval_counts.ncf,
        r.totals.kick,
        r.totals.kicked_clients,
        r.totals.master_changes,
        format_bytes(r.totals.odata_bytes + r.totals.rdata_bytes),
        r.totals.odata + r.totals.rdata,
    )
}

fn report_json(event: &str, r: &WatchReport, group: SocketAddr, label: &str) -> serde_json::Value {
    let c = &r.interval_counts;
    let t = &r.totals;
    json!({
        "schema": "wdsmc.watch/1",
        "event": event,
        "source": label,
        "group": group.to_string(),
        "session_id": r.session_id,
        "elapsed_ms": r.elapsed.as_secs_f64() * 1e3,
        "interval_ms": r.interval.as_secs_f64() * 1e3,
        "data_rate": r.data_rate,
        "repair_rate": r.repair_rate,
        "spm_interval_ms": r.spm_interval.map(|d| d.as_secs_f64() * 1e3),
        "round": r.round,
        "round_blocks": r.round_blocks,
        "coverage": r.coverage,
        "rdata_share": r.rdata_share,
        "ncf": c.ncf,
        "kicks": c.kick,
        "master": r.master,
        "master_changes": c.master_changes,
        "interval": { "odata": c.odata, "rdata": c.rdata, "odata_bytes": c.odata_bytes,
                      "rdata_bytes": c.rdata_bytes, "spm": c.spm, "poll": c.poll },
        "totals": { "odata": t.odata, "rdata": t.rdata, "odata_bytes": t.odata_bytes,
                    "rdata_bytes": t.rdata_bytes, "spm": t.spm, "ncf": t.ncf, "poll": t.poll,
                    "kicks": t.kick, "kicked_clients": t.kicked_clients,
                    "master_changes": t.master_changes, "undecodable": t.undecodable,
                    "other_session": t.other_session },
        "data_span_ms": r.data_span.as_secs_f64() * 1e3,
        "span_rate": r.span_rate,
    })
}
