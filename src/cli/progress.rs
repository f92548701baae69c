//! Progress and result reporting on stderr: indicatif bars, plain lines, JSON lines or nothing.
//!
//! JSON lines follow the versioned schema `wdsmc.progress/1` (documented in README.md): every
//! line is one object with `schema`, `event` (`start`, `progress`, `warning`, `result`),
//! `object` and `time` (RFC 3339), plus the event's fields.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{
    HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle,
};
use serde_json::{Value, json};

use wdsmc::transport::{Event, SessionInfo, Stats};

use super::args::ProgressMode;
use super::exit::ExitCode;
use super::units::{format_bytes, format_rate};

pub const JSON_SCHEMA: &str = "wdsmc.progress/1";
const PLAIN_INTERVAL: Duration = Duration::from_secs(2);
const JSON_INTERVAL: Duration = Duration::from_secs(1);
/// The rate a bar shows is measured over this much of the latest progress.
const RATE_WINDOW: Duration = Duration::from_secs(3);
/// No rate from samples closer together than this (the transport reports every 250 ms).
const RATE_MIN_SPAN: Duration = Duration::from_millis(200);

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
    /// The part of `elapsed` after the last block: final sync, SHA-256 check, rename.
    pub finishing: Duration,
    /// Where the data went (file path or `-`), when it was delivered.
    pub destination: Option<String>,
}

struct JobState {
    label: String,
    bar: Option<ProgressBar>,
    /// The bar shows bytes (the size is known and data flows); before, a spinner and the
    /// phase.
    counting: bool,
    /// Columns the counting bar leaves for its message.
    message_room: usize,
    started: Instant,
    total: u64,
    bytes: u64,
    last_line: Option<Instant>,
    rate: RateWindow,
    /// What the bar draws as the rate (f64 bits), shared with its style.
    shown_rate: Arc<AtomicU64>,
    /// The last progress report, so a change of role redraws the bar's words at once.
    last_stats: Option<Stats>,
}

/// Bytes per second over the last [`RATE_WINDOW`] of progress samples, from the first byte
/// on. indicatif's own estimate also weighs the wait before the first byte and reacts to the
/// first bursts: it read 1.6 times the real rate of a download capped at 100 MiB/s, and a few
/// KiB/s for a demo total moving at 1 GiB/s.
#[derive(Debug, Default)]
struct RateWindow {
    samples: VecDeque<(Instant, u64)>,
    /// `None` until two samples are [`RATE_MIN_SPAN`] apart.
    rate: Option<f64>,
}

impl RateWindow {
    /// Adds the sample `bytes` at `now` and returns the current rate.
    fn record(&mut self, now: Instant, bytes: u64) -> Option<f64> {
        self.samples.push_back((now, bytes));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|&(at, _)| now.duration_since(at) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        // Progress comes every 250 ms; a burst of calls must not grow the queue for ever.
        if self.samples.len() > 64 {
            self.samples.pop_front();
        }
        if let Some(&(at, from)) = self.samples.front() {
            let span = now.duration_since(at);
            if span >= RATE_MIN_SPAN {
                self.rate = Some(bytes.saturating_sub(from) as f64 / span.as_secs_f64());
            }
        }
        self.rate
    }
}

/// A shared rate cell, empty (no rate yet) until the first measurement.
fn rate_cell() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(f64::NAN.to_bits()))
}

fn store_rate(cell: &AtomicU64, rate: Option<f64>) {
    cell.store(rate.unwrap_or(f64::NAN).to_bits(), Ordering::Relaxed);
}

fn load_rate(cell: &AtomicU64) -> Option<f64> {
    Some(f64::from_bits(cell.load(Ordering::Relaxed))).filter(|rate| !rate.is_nan())
}

/// Renders events from all sessions of one command. Shared between session callbacks.
pub struct Reporter {
    style: Style,
    /// Start and summary lines (off with -q, and in JSON mode where events carry them).
    human_lines: bool,
    verbose: u8,
    multi: Option<MultiProgress>,
    total_bar: Option<ProgressBar>,
    /// The total bar's rate: the sum of the unfinished objects' rates.
    total_rate: Arc<AtomicU64>,
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
        Reporter::build(style, multi, quiet, verbose, labels)
    }

    fn build(
        style: Style,
        multi: Option<MultiProgress>,
        quiet: bool,
        verbose: u8,
        labels: &[String],
    ) -> Reporter {
        let now = Instant::now();
        let jobs = labels
            .iter()
            .map(|label| JobState {
                label: label.clone(),
                bar: multi.as_ref().map(|m| {
                    let bar = m.add(ProgressBar::new(0));
                    bar.set_style(phase_style());
                    bar.set_prefix(label.clone());
                    bar.set_message("initiating");
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                }),
                counting: false,
                message_room: 0,
                started: now,
                total: 0,
                bytes: 0,
                last_line: None,
                rate: RateWindow::default(),
                shown_rate: rate_cell(),
                last_stats: None,
            })
            .collect();
        let total_bar = match (&multi, labels.len()) {
            (Some(m), n) if n > 1 => {
                let bar = m.add(ProgressBar::new(0));
                bar.set_style(phase_style());
                bar.set_prefix("total");
                bar.set_message("waiting for the sizes");
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
            total_rate: rate_cell(),
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

    /// Prints an informational line; while bars are drawn it is cut to the terminal's width
    /// (plain and JSON modes keep it whole), so the screen stays one bar block under
    /// single-row lines. Errors and results go through [`Reporter::line`] and are never cut.
    pub fn note(&self, text: &str) {
        match &self.multi {
            Some(_) => self.line(&fit(text, terminal_width())),
            None => self.line(text),
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
                bar.set_message("joining");
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
            self.note(&format!(
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
                if state.counting || stats.bytes_received > 0 {
                    let rate = state.rate.record(now, stats.bytes_received);
                    store_rate(&state.shown_rate, rate);
                }
                if !state.counting && stats.bytes_received > 0 {
                    let (style, room) = bar_style(false, &state.shown_rate);
                    state.counting = true;
                    state.message_room = room;
                    bar.disable_steady_tick();
                    // The message first: a redraw between the two must not show the new bar
                    // with the phase words.
                    bar.set_message(fit(&stats_brief(stats), room));
                    bar.set_style(style);
                    bar.reset_eta();
                }
                bar.set_position(stats.bytes_received);
                if state.counting {
                    bar.set_message(fit(&stats_brief(stats), state.message_room));
                }
                state.last_stats = Some(stats.clone());
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
        match *event {
            Event::Joined { .. } => {
                self.with_job(job, |state| {
                    if let (Some(bar), false) = (&state.bar, state.counting) {
                        bar.set_message("waiting for data");
                    }
                });
            }
            // Redrawn now rather than at the next progress report (up to 250 ms later), so
            // the old and the new master's bars do not both say "master" meanwhile.
            Event::MasterChanged { is_master } => {
                self.with_job(job, |state| {
                    if let (Some(bar), true, Some(stats)) =
                        (&state.bar, state.counting, &mut state.last_stats)
                    {
                        stats.is_master = is_master;
                        bar.set_message(fit(&stats_brief(stats), state.message_room));
                    }
                });
            }
            _ => {}
        }
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
            Event::Login {
                mechanism,
                kerberos_unavailable: None,
            } => format!("logging in with {mechanism}"),
            Event::Login {
                mechanism,
                kerberos_unavailable: Some(why),
            } => format!("Kerberos unavailable ({why}); logging in with {mechanism}"),
            _ => return,
        };
        self.notice(job, &text);
    }

    fn notice(&self, job: usize, text: &str) {
        let label = self.with_job(job, |s| s.label.clone()).unwrap_or_default();
        if self.style == Style::Json {
            self.emit_json("warning", json!(label), json!({ "message": text }));
        } else if self.human_lines && self.verbose > 0 {
            self.note(&format!("wdsmc: {label}: {text}"));
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
        let bytes = outcome.stats.as_ref().map_or(0, |s| s.bytes_received);
        let rate = format_rate(rate_of(bytes, outcome.elapsed));
        let time = format!("{:.1}s", outcome.elapsed.as_secs_f64());
        let mut counters = outcome
            .stats
            .as_ref()
            .map(|s| self.stats_summary(s))
            .unwrap_or_default();
        if self.verbose > 0 && outcome.error.is_none() {
            counters.push_str(&format!(
                ", {:.2}s of it after the last block (sync, check, rename)",
                outcome.finishing.as_secs_f64()
            ));
        }
        let destination = outcome
            .destination
            .as_ref()
            .map(|d| format!(" -> {d}"))
            .unwrap_or_default();
        let summary = match &outcome.error {
            None => format!(
                "complete, {} in {time} ({rate}){counters}{destination}",
                format_bytes(bytes)
            ),
            Some(error) => format!(
                "failed after {} in {time}: {error}{counters}",
                format_bytes(bytes)
            ),
        };
        let Some(label) = self.with_job(job, |state| {
            if let Some(bar) = &state.bar {
                // The end replaces the bar with one line of words: a full bar must never
                // stand for a download that did not finish.
                bar.disable_steady_tick();
                bar.set_style(ended_style());
                let how_far = if state.total > 0 {
                    format!(
                        "at {} of {} ({:.0}%)",
                        format_bytes(bytes.max(state.bytes)),
                        format_bytes(state.total),
                        percent(bytes.max(state.bytes), state.total)
                    )
                } else {
                    "before the session started".to_string()
                };
                let words = match outcome.code {
                    ExitCode::Success => summary.clone(),
                    ExitCode::Cancelled => format!("cancelled {how_far}"),
                    _ => format!("failed {how_far}"),
                };
                let words = fit(&words, words_room());
                if outcome.code == ExitCode::Success {
                    bar.finish_with_message(words);
                } else {
                    bar.abandon_with_message(words);
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
                    "finish_ms": outcome.finishing.as_millis() as u64,
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
        // With bars, a success is told by its finished bar; a failure's error is printed
        // whole as well, since the bar's line may be cut to the terminal.
        if self.style != Style::Bar || outcome.error.is_some() {
            self.line(&format!("wdsmc: {label}: {summary}"));
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
        let total: u64 = jobs.iter().map(|j| j.total).sum();
        let bytes: u64 = jobs.iter().map(|j| j.bytes).sum();
        let running = jobs
            .iter()
            .filter(|j| j.bar.as_ref().is_some_and(|b| !b.is_finished()));
        let rates: Vec<f64> = running.filter_map(|j| j.rate.rate).collect();
        store_rate(
            &self.total_rate,
            (!rates.is_empty()).then(|| rates.iter().sum()),
        );
        total_bar.set_length(total);
        total_bar.set_position(bytes);
        if bytes > 0 && jobs.iter().all(|j| j.total > 0) && total_bar.message() != "" {
            total_bar.set_style(bar_style(true, &self.total_rate).0);
            total_bar.set_message("");
        }
        if jobs
            .iter()
            .all(|j| j.bar.as_ref().is_some_and(|b| b.is_finished()))
        {
            total_bar.set_style(ended_style());
            total_bar.finish_with_message(format!("{} in all", format_bytes(bytes)));
        }
    }

    pub fn verbose(&self) -> u8 {
        self.verbose
    }
}

/// `text` cut to `width` columns (characters), with an ellipsis when cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Columns of the terminal stderr is on (80 when unknown).
fn terminal_width() -> usize {
    console::Term::stderr()
        .size_checked()
        .map_or(80, |(_, cols)| usize::from(cols))
}

/// The counting bar, with as many fields as the terminal has room for, and the columns left
/// for its message, which is cut to fit: a line as wide as the terminal would leave the
/// cursor waiting to wrap, so everything stays one column short.
fn bar_style(total: bool, rate: &Arc<AtomicU64>) -> (ProgressStyle, usize) {
    let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let bar = |len: usize| match (colour, total) {
        (true, false) => format!("[{{bar:{len}.cyan/blue}}]"),
        (true, true) => format!("[{{bar:{len}.green/blue}}]"),
        (false, _) => format!("[{{bar:{len}}}]"),
    };
    let width = terminal_width();
    let (template, fixed) = bar_template(width, &bar);
    let shown = Arc::clone(rate);
    // Blank until there is a rate to show.
    let rate_key = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
        if let Some(rate) = load_rate(&shown) {
            let _ = w.write_str(&format_rate(rate));
        }
    };
    let shown = Arc::clone(rate);
    let eta_key = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let left = state.len().unwrap_or(0).saturating_sub(state.pos()) as f64;
        let _ = match load_rate(&shown).filter(|&rate| rate > 0.0) {
            Some(rate) => write!(
                w,
                "{:#}",
                HumanDuration(Duration::from_secs_f64(left / rate))
            ),
            None => w.write_str("?"),
        };
    };
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("window_rate", rate_key)
        .with_key("window_eta", eta_key)
        .progress_chars("=> ");
    (style, width.saturating_sub(fixed + 1))
}

/// The template for a terminal `width` columns wide and the columns its fixed parts take.
/// Fields go, least important first: the ETA, then the byte counts, the rate, and the bar.
fn bar_template(width: usize, bar: &dyn Fn(usize) -> String) -> (String, usize) {
    // Each field with the columns it takes as drawn (fixed-width formats).
    const PREFIX: (&str, usize) = ("{prefix:>12!} ", 13);
    const BYTES: (&str, usize) = ("{bytes:>10}/{total_bytes:<10} ", 22);
    const PERCENT: (&str, usize) = ("{percent:>3}% ", 5);
    const RATE: (&str, usize) = ("{window_rate:>12} ", 13);
    const ETA: (&str, usize) = ("ETA {window_eta:<4} ", 9);
    let (bar_len, fields): (usize, &[(&str, usize)]) = match width {
        w if w >= 120 => (30, &[BYTES, PERCENT, RATE, ETA]),
        w if w >= 100 => (24, &[BYTES, PERCENT, RATE, ETA]),
        w if w >= 85 => (20, &[BYTES, PERCENT, RATE]),
        w if w >= 64 => (16, &[PERCENT, RATE]),
        w if w >= 44 => (10, &[PERCENT]),
        _ => (0, &[PERCENT]),
    };
    let mut template = PREFIX.0.to_string();
    let mut fixed = PREFIX.1;
    if bar_len > 0 {
        template.push_str(&bar(bar_len));
        template.push(' ');
        fixed += bar_len + 3;
    }
    for (field, columns) in fields {
        template.push_str(field);
        fixed += columns;
    }
    template.push_str("{msg}");
    (template, fixed)
}

/// Columns left for a phase or end message after the label.
fn words_room() -> usize {
    terminal_width().saturating_sub(13 + 2 + 1)
}

/// Before the size is known: a spinner and the phase.
fn phase_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12!} {spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// After the end: one line of words.
fn ended_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12!} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn stats_brief(stats: &Stats) -> String {
    format!(
        "{}repairs {} NACKs {}",
        if stats.is_master { "master, " } else { "" },
        stats.rdata_packets,
        stats.nacks_sent,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_counts_from_the_first_byte_over_the_last_seconds() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // The first sample alone gives no rate: the wait before it is not counted.
        assert_eq!(window.record(at(0), 1 << 20), None);
        // 100 MiB/s in 250 ms steps.
        let step = 100 << 20 >> 2;
        for i in 1..=20u64 {
            window.record(at(250 * i), (1 << 20) + i * step);
        }
        let rate = window.rate.unwrap();
        assert!((rate - f64::from(100 << 20)).abs() < 1.0, "{rate}");
        // A stall shows within the window, not after a long average.
        let stalled = window.record(at(250 * 20 + 3000), (1 << 20) + 20 * step);
        assert_eq!(stalled, Some(0.0));
        assert!(window.samples.len() <= 64);
    }

    #[test]
    fn a_change_of_master_redraws_the_bar_at_once() {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        let reporter = Reporter::build(Style::Bar, Some(multi), true, 0, &["a".to_string()]);
        let mut stats = Stats {
            content_size: 1 << 20,
            bytes_received: 1 << 16,
            is_master: true,
            ..Stats::default()
        };
        reporter.progress(0, &stats);
        let message = || reporter.with_job(0, |s| s.bar.as_ref().unwrap().message());
        assert!(message().unwrap().starts_with("master"), "{:?}", message());
        reporter.transport_event(0, &Event::MasterChanged { is_master: false });
        assert!(!message().unwrap().contains("master"), "{:?}", message());
        // The next report agrees.
        stats.is_master = false;
        stats.bytes_received = 1 << 17;
        reporter.progress(0, &stats);
        assert!(!message().unwrap().contains("master"));
    }

    #[test]
    fn a_burst_of_samples_keeps_the_queue_bounded() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        for i in 0..10_000u64 {
            window.record(start + Duration::from_micros(i), i * 8192);
        }
        assert!(window.samples.len() <= 64);
    }
}
