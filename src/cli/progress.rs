//! Progress and result reporting on stderr: indicatif bars, plain lines, JSON lines or nothing.
//!
//! JSON lines follow the versioned schema `wdsmc.progress/1` (documented in README.md): every
//! line is one object with `schema`, `event` (`start`, `progress`, `warning`, `result`),
//! `object` and `time` (RFC 3339), plus the event's fields.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use wdsmc::transport::{Event, SessionInfo, Stats};

use super::args::ProgressMode;
use super::exit::ExitCode;
use super::units::{format_bytes, format_rate};

pub const JSON_SCHEMA: &str = "wdsmc.progress/1";
const PLAIN_INTERVAL: Duration = Duration::from_secs(2);
const JSON_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Bar,
    Plain,
    Json,
    Silent,
}

/// How one object's download ended, for the summary line and the JSON result.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub code: ExitCode,
    pub error: Option<String>,
    pub stats: Option<Stats>,
    pub elapsed: Duration,
    /// Where the data went (file path or `-`), when it was delivered.
    pub destination: Option<String>,
}

struct JobState {
    label: String,
    bar: Option<ProgressBar>,
    started: Instant,
    total: u64,
    bytes: u64,
    last_line: Option<Instant>,
}

/// Renders events from all sessions of one command. Shared between session callbacks.
pub struct Reporter {
    style: Style,
    /// Start and summary lines (off with -q, and in JSON mode where events carry them).
    human_lines: bool,
    verbose: u8,
    multi: Option<MultiProgress>,
    total_bar: Option<ProgressBar>,
    jobs: Mutex<Vec<JobState>>,
}

impl Reporter {
    pub fn new(mode: ProgressMode, quiet: bool, verbose: u8, labels: &[String]) -> Reporter {
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let style = match (mode, quiet) {
            (_, true) => Style::Silent,
            (ProgressMode::Auto, _) if stderr_is_terminal => Style::Bar,
            (ProgressMode::Auto, _) => Style::Silent,
            // indicatif draws nothing on a non-terminal; plain lines keep the promise of progress.
            (ProgressMode::Bar, _) if stderr_is_terminal => Style::Bar,
            (ProgressMode::Bar, _) => Style::Plain,
            (ProgressMode::Plain, _) => Style::Plain,
            (ProgressMode::Json, _) => Style::Json,
            (ProgressMode::None, _) => Style::Silent,
        };
        let multi = (style == Style::Bar)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let now = Instant::now();
        let jobs = labels
            .iter()
            .map(|label| JobState {
                label: label.clone(),
                bar: multi.as_ref().map(|m| {
                    let bar = m.add(ProgressBar::new(0));
                    bar.set_style(bar_style(false));
                    bar.set_prefix(label.clone());
                    bar.set_message("starting");
                    bar
                }),
                started: now,
                total: 0,
                bytes: 0,
                last_line: None,
            })
            .collect();
        let total_bar = match (&multi, labels.len()) {
            (Some(m), n) if n > 1 => {
                let bar = m.add(ProgressBar::new(0));
                bar.set_style(bar_style(true));
                bar.set_prefix("total");
                Some(bar)
            }
            _ => None,
        };
        Reporter {
            style,
            human_lines: !quiet && style != Style::Json,
            verbose,
            multi,
            total_bar,
            jobs: Mutex::new(jobs),
        }
    }

    /// Prints a human line on stderr without tearing the bars.
    pub fn line(&self, text: &str) {
        match &self.multi {
            Some(multi) => multi.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    fn emit_json(&self, event: &str, object: Value, mut fields: Value) {
        if let Value::Object(map) = &mut fields {
            map.insert("schema".into(), json!(JSON_SCHEMA));
            map.insert("event".into(), json!(event));
            map.insert("object".into(), object);
            map.insert(
                "time".into(),
                json!(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
            );
        }
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{fields}");
    }

    fn with_job<R>(&self, job: usize, f: impl FnOnce(&mut JobState) -> R) -> Option<R> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get_mut(job).map(f)
    }

    /// The session started; `server_arg` is the server as the user wrote it.
    pub fn start(
        &self,
        job: usize,
        info: &SessionInfo,
        server_arg: &str,
        namespace: &str,
        object: &str,
    ) {
        let session = &info.params;
        let Some(label) = self.with_job(job, |state| {
            state.started = Instant::now();
            state.total = session.content_size;
            if let Some(bar) = &state.bar {
                bar.set_length(session.content_size);
                bar.set_message("");
                bar.reset_elapsed();
            }
            state.label.clone()
        }) else {
            return;
        };
        self.update_total();
        if self.style == Style::Json {
            self.emit_json(
                "start",
                json!(label),
                json!({
                    "server": session.server.to_string(),
                    "namespace": namespace,
                    "interface": info.local_address.to_string(),
                    "group": session.group.ip().to_string(),
                    "port": session.group.port(),
                    "session_id": session.session_id,
                    "size": session.content_size,
                    "block_size": session.block_size,
                    "total_blocks": session.total_blocks,
                }),
            );
        }
        if self.human_lines {
            self.line(&format!(
                "wdsmc: {}{namespace}/{object} from {server_arg} ({}) via {}, group {}:{}, {} ({} bytes)",
                if label == object { String::new() } else { format!("{label}: ") },
                session.server,
                info.local_address,
                session.group.ip(),
                session.group.port(),
                format_bytes(session.content_size),
                session.content_size
            ));
        }
    }

    pub fn progress(&self, job: usize, stats: &Stats) {
        let now = Instant::now();
        let Some((label, elapsed, emit)) = self.with_job(job, |state| {
            state.bytes = stats.bytes_received;
            if state.total == 0 {
                state.total = stats.content_size;
            }
            if let Some(bar) = &state.bar {
                bar.set_position(stats.bytes_received);
                bar.set_message(stats_brief(stats));
            }
            let interval = if self.style == Style::Json {
                JSON_INTERVAL
            } else {
                PLAIN_INTERVAL
            };
            let due = state
                .last_line
                .is_none_or(|last| now.duration_since(last) >= interval);
            if due {
                state.last_line = Some(now);
            }
            (state.label.clone(), now.duration_since(state.started), due)
        }) else {
            return;
        };
        self.update_total();
        if !emit {
            return;
        }
        let rate = rate_of(stats.bytes_received, elapsed);
        match self.style {
            Style::Plain => {
                let percent = percent(stats.bytes_received, stats.content_size);
                self.line(&format!(
                    "wdsmc: {label}: {} of {} ({percent:.1}%), {}, {}",
                    format_bytes(stats.bytes_received),
                    format_bytes(stats.content_size),
                    format_rate(rate),
                    stats_brief(stats)
                ));
            }
            Style::Json => self.emit_json(
                "progress",
                json!(label),
                json!({
                    "bytes": stats.bytes_received,
                    "total": stats.content_size,
                    "rate": rate.round() as u64,
                    "elapsed_ms": elapsed.as_millis() as u64,
                    "master": stats.is_master,
                    "repairs": stats.rdata_packets,
                    "nacks": stats.nacks_sent,
                }),
            ),
            Style::Bar | Style::Silent => {}
        }
    }

    /// A transport event worth a line (joined, master client, demoted, a send failure, a small
    /// receive buffer): always an event in JSON, shown to people only with -v.
    pub fn transport_event(&self, job: usize, event: &Event<'_>) {
        let text = match event {
            Event::Joined { client_id } => format!("joined as client {client_id}"),
            Event::MasterChanged { is_master: true } => {
                "this client is now the master client (it acknowledges data)".into()
            }
            Event::MasterChanged { is_master: false } => {
                "this client is no longer the master client".into()
            }
            Event::Demoted { to } => format!(
                "demoted by the server to session 0x{:08x} on {}",
                to.session_id, to.group
            ),
            Event::ReceiveBufferLimited { granted, requested } => format!(
                "receive buffer is {} KiB, less than the {} KiB asked for; raise net.core.rmem_max to avoid drops at high rates",
                granted / 1024,
                requested / 1024
            ),
            Event::SendFailed { destination, error } => {
                format!("cannot send to {destination}: {error}")
            }
            _ => return,
        };
        self.notice(job, &text);
    }

    fn notice(&self, job: usize, text: &str) {
        let label = self.with_job(job, |s| s.label.clone()).unwrap_or_default();
        if self.style == Style::Json {
            self.emit_json("warning", json!(label), json!({ "message": text }));
        } else if self.human_lines && self.verbose > 0 {
            self.line(&format!("wdsmc: {label}: {text}"));
        }
    }

    /// A message about the whole command, not one object (e.g. "cancelling").
    pub fn warning(&self, text: &str) {
        if self.style == Style::Json {
            self.emit_json("warning", Value::Null, json!({ "message": text }));
        } else if self.human_lines {
            self.line(&format!("wdsmc: {text}"));
        }
    }

    pub fn finish(&self, job: usize, outcome: &JobOutcome) {
        let Some(label) = self.with_job(job, |state| {
            if let Some(bar) = &state.bar {
                if outcome.code == ExitCode::Success {
                    bar.finish_with_message("done");
                } else {
                    bar.abandon_with_message("failed");
                }
            }
            state.label.clone()
        }) else {
            return;
        };
        self.update_total();
        if self.style == Style::Json {
            self.emit_json(
                "result",
                json!(label),
                json!({
                    "exit_code": outcome.code.as_i32(),
                    "error": outcome.error,
                    "destination": outcome.destination,
                    "elapsed_ms": outcome.elapsed.as_millis() as u64,
                    "statistics": outcome.stats.as_ref().map(stats_json),
                }),
            );
        }
        if !self.human_lines {
            // -q silences everything but errors; JSON mode carried it in the result event.
            if let (Some(error), false) = (&outcome.error, self.style == Style::Json) {
                self.line(&format!("wdsmc: {label}: {error}"));
            }
            return;
        }
        let bytes = outcome.stats.as_ref().map_or(0, |s| s.bytes_received);
        let rate = format_rate(rate_of(bytes, outcome.elapsed));
        let time = format!("{:.1}s", outcome.elapsed.as_secs_f64());
        let counters = outcome
            .stats
            .as_ref()
            .map(|s| self.stats_summary(s))
            .unwrap_or_default();
        match &outcome.error {
            None => self.line(&format!(
                "wdsmc: {label}: complete, {} in {time} ({rate}){counters}{}",
                format_bytes(bytes),
                outcome
                    .destination
                    .as_ref()
                    .map(|d| format!(" -> {d}"))
                    .unwrap_or_default()
            )),
            Some(error) => self.line(&format!(
                "wdsmc: {label}: failed after {} in {time}: {error}{counters}",
                format_bytes(bytes)
            )),
        }
    }

    fn stats_summary(&self, stats: &Stats) -> String {
        let mut text = format!(
            ", repairs {}, NACKs {}, checksum drops {}",
            stats.rdata_packets, stats.nacks_sent, stats.checksum_drops
        );
        if self.verbose > 0 {
            text.push_str(&format!(
                ", duplicates {}, other drops {}, cache-full drops {}, loss {:.2}%{}",
                stats.duplicate_blocks,
                stats.other_drops,
                stats.cache_full_drops,
                stats.loss_rate * 100.0,
                if stats.is_master { ", master" } else { "" }
            ));
        }
        text
    }

    fn update_total(&self) {
        let Some(total_bar) = &self.total_bar else {
            return;
        };
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        total_bar.set_length(jobs.iter().map(|j| j.total).sum());
        total_bar.set_position(jobs.iter().map(|j| j.bytes).sum());
        if jobs
            .iter()
            .all(|j| j.bar.as_ref().is_some_and(|b| b.is_finished()))
        {
            total_bar.finish();
        }
    }

    pub fn verbose(&self) -> u8 {
        self.verbose
    }
}

fn bar_style(total: bool) -> ProgressStyle {
    let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let bar = match (colour, total) {
        (true, false) => "{bar:30.cyan/blue}",
        (true, true) => "{bar:30.green/blue}",
        (false, _) => "{bar:30}",
    };
    let template = format!(
        "{{prefix:>12!}} [{bar}] {{bytes}}/{{total_bytes}} {{percent:>3}}% {{binary_bytes_per_sec}} ETA {{eta}} {{msg}}"
    );
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn stats_brief(stats: &Stats) -> String {
    format!(
        "repairs {} NACKs {}{}",
        stats.rdata_packets,
        stats.nacks_sent,
        if stats.is_master { " master" } else { "" }
    )
}

fn stats_json(stats: &Stats) -> Value {
    json!({
        "bytes_received": stats.bytes_received,
        "blocks_received": stats.blocks_received,
        "total_blocks": stats.total_blocks,
        "content_size": stats.content_size,
        "odata_packets": stats.odata_packets,
        "rdata_packets": stats.rdata_packets,
        "duplicate_blocks": stats.duplicate_blocks,
        "nacks_sent": stats.nacks_sent,
        "checksum_drops": stats.checksum_drops,
        "other_drops": stats.other_drops,
        "cache_full_drops": stats.cache_full_drops,
        "master": stats.is_master,
        "loss_rate": stats.loss_rate,
    })
}

fn rate_of(bytes: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        bytes as f64 / seconds
    } else {
        0.0
    }
}

fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    }
}
