//! Running downloads for `get` and `demo`: one [`Download`] per job, its events rendered, the
//! first Ctrl-C turned into a cancel of every download, and the worst exit status returned.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use wdsmc::download::{Download, DownloadEvent, Outcome, Output, Saved};
use wdsmc::transport::{Event, Initiation, Request};

use super::exit::{self, ExitCode};
use super::progress::{JobOutcome, Reporter};
use super::signals;

/// One object to download and where it goes.
pub struct Job {
    /// Name shown in progress and messages.
    pub label: String,
    pub object: String,
    pub output: Output,
}

/// What every job of one command shares.
pub struct Plan {
    /// The request each job's is made from (its object replaced).
    pub request: Request,
    /// Write one line per datagram here.
    pub trace: Option<PathBuf>,
}

type TraceFile = Arc<Mutex<BufWriter<File>>>;

enum Message {
    Done(usize, ExitCode),
    Interrupted,
}

/// Runs every job at once and returns the worst exit status.
pub fn run(jobs: Vec<Job>, plan: Plan, reporter: Arc<Reporter>) -> ExitCode {
    let (tx, rx) = mpsc::channel::<Message>();
    {
        let interrupt = tx.clone();
        signals::on_interrupt(move || {
            let _ = interrupt.send(Message::Interrupted);
        });
    }
    let trace = match &plan.trace {
        Some(path) => match File::create(path) {
            Ok(file) => Some(Arc::new(Mutex::new(BufWriter::new(file)))),
            Err(e) => {
                reporter.line(&format!(
                    "wdsmc: error: cannot create trace file {}: {e}",
                    path.display()
                ));
                return ExitCode::Output;
            }
        },
        None => None,
    };
    let mut codes: Vec<Option<ExitCode>> = vec![None; jobs.len()];
    let mut downloads = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.into_iter().enumerate() {
        let mut request = plan.request.clone();
        request.object = job.object.clone();
        request.trace = trace.is_some() || reporter.verbose() >= 2;
        let rpc = matches!(request.initiation, Initiation::Rpc(_));
        let on_event = render(index, &job, &request, trace.clone(), &reporter, tx.clone());
        match Download::start(request, job.output, on_event) {
            Ok(download) => downloads.push(download),
            Err(error) => {
                let outcome = JobOutcome {
                    code: ExitCode::for_download_error(&error),
                    error: Some(exit::download_message(&error, rpc)),
                    stats: None,
                    elapsed: Duration::ZERO,
                    finishing: Duration::ZERO,
                    destination: None,
                };
                reporter.finish(index, &outcome);
                codes[index] = Some(outcome.code);
            }
        }
    }
    let mut cancelled = false;
    while codes.iter().any(Option::is_none) {
        match rx.recv() {
            Ok(Message::Done(index, code)) => codes[index] = Some(code),
            Ok(Message::Interrupted) if !cancelled => {
                cancelled = true;
                reporter.warning("cancelling (press Ctrl-C again to exit at once)");
                for download in &downloads {
                    download.cancel();
                }
            }
            Ok(Message::Interrupted) => {}
            Err(_) => break,
        }
    }
    if let Some(trace) = &trace {
        let _ = trace.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
    for download in downloads {
        download.close();
    }
    codes
        .into_iter()
        .map(|c| c.unwrap_or(ExitCode::Internal))
        .max()
        .unwrap_or(ExitCode::Success)
}

/// The event handler of one job: progress and notices to the reporter, datagrams to the trace,
/// the outcome to the reporter and the main loop.
fn render(
    index: usize,
    job: &Job,
    request: &Request,
    trace: Option<TraceFile>,
    reporter: &Arc<Reporter>,
    done: mpsc::Sender<Message>,
) -> impl FnMut(DownloadEvent<'_>) + Send + 'static {
    let reporter = Arc::clone(reporter);
    let server = request.server.clone();
    let rpc = matches!(request.initiation, Initiation::Rpc(_));
    let namespace = request.namespace.clone();
    let label = job.label.clone();
    let object = job.object.clone();
    let trace_reporter = Arc::clone(&reporter);
    let trace_label = label.clone();
    let trace_file = trace.clone();
    // One line per datagram or PDU, to the trace file and (with -vv) the terminal.
    let traced = move |outgoing: bool, peer: std::net::SocketAddr, what: &dyn std::fmt::Display| {
        let direction = if outgoing { "send" } else { "recv" };
        if let Some(trace) = &trace_file {
            let timestamp = humantime::format_rfc3339_micros(SystemTime::now());
            let mut file = trace.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(file, "{timestamp} {trace_label} {direction} {peer} {what}");
        }
        if trace_reporter.verbose() >= 2 {
            trace_reporter.note(&format!("wdsmc: {trace_label}: {direction} {peer} {what}"));
        }
    };
    move |event| match event {
        DownloadEvent::Transport(Event::SessionStart(info)) => {
            reporter.start(index, info, &server, &namespace, &object)
        }
        DownloadEvent::Transport(Event::Progress(stats)) => reporter.progress(index, stats),
        DownloadEvent::Transport(Event::Trace {
            outgoing,
            peer,
            datagram,
        }) => traced(outgoing, peer, &datagram),
        DownloadEvent::Transport(Event::RpcTrace {
            outgoing,
            peer,
            pdu,
        }) => traced(outgoing, peer, &wdsmc::rpc::pdu::Summary(pdu)),
        DownloadEvent::Transport(other) => reporter.transport_event(index, &other),
        DownloadEvent::Finished(outcome) => {
            let outcome = job_outcome(outcome, rpc);
            if let Some(trace) = &trace {
                // The last line of an object: `wdsmc trace summarize` reads the end from it.
                let timestamp = humantime::format_rfc3339_micros(SystemTime::now());
                let message = outcome.error.as_deref().unwrap_or("ok").replace('\n', " ");
                let mut file = trace.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(
                    file,
                    "{timestamp} {label} end exit={} {message}",
                    outcome.code.as_i32()
                );
            }
            reporter.finish(index, &outcome);
            let _ = done.send(Message::Done(index, outcome.code));
        }
    }
}

fn job_outcome(outcome: &Outcome, rpc: bool) -> JobOutcome {
    let (code, error, destination) = match &outcome.result {
        Ok(saved) => {
            let destination = match saved {
                Saved::File(path) => path.display().to_string(),
                Saved::Stream => "-".into(),
            };
            (ExitCode::Success, None, Some(destination))
        }
        Err(error) => {
            let mut message = exit::download_message(error, rpc);
            if let Some(kept) = &outcome.kept_partial {
                message.push_str(&format!("; partial data kept in {}", kept.display()));
            }
            (ExitCode::for_download_error(error), Some(message), None)
        }
    };
    JobOutcome {
        code,
        error,
        stats: outcome.stats.clone(),
        elapsed: outcome.elapsed,
        finishing: outcome.finishing,
        destination,
    }
}
