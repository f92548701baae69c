//! `wdsmc get`: download objects to files (or stdout), one transport session per object.
//!
//! Data path: the session callback copies each delivered block into a bounded queue; a writer
//! thread per object writes it at its offset (or through the in-order buffer for stdout) and
//! only then calls `complete_receive`, so the transport's cache limit bounds what is queued in
//! memory. When the session completes the writer syncs, checks `--sha256` and renames the
//! partial file into place. Nothing is ever written under the final name before that.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::exit::{ExitCode, Failure};
use super::progress::{JobOutcome, Reporter};
use super::{GetArgs, signals};
use crate::file_at::{read_exact_at, write_all_at};
use crate::transport::{
    Event, InterfaceSpec, Request, Session, SessionHandle, SessionInfo, Stats, Timeouts,
    TransportError,
};

/// Blocks queued between a session's callback and its writer thread: enough for a full cache
/// of 4 KiB blocks, so a transport that respects the cache limit never makes its callback wait
/// for the disk; the bound only matters if it does not.
fn writer_queue_blocks(cache_size: u64) -> usize {
    (cache_size / 4096).clamp(256, 65_536) as usize
}
/// Largest run of contiguous blocks handed to the writer as one write: large enough that a
/// fast stream costs one channel message and one write per MiB instead of per block, small
/// against the cache, which the held bytes still count against until they are written.
fn coalesce_limit(cache_size: u64) -> usize {
    (cache_size / 8).clamp(64 * 1024, 1 << 20) as usize
}

/// Joins blocks that arrive back to back into one buffer for the writer thread, so the
/// session's thread neither allocates per block nor wakes the writer per block.
struct Coalescer {
    offset: u64,
    buf: Vec<u8>,
    /// A written run's buffer, waiting to hold the next run: a gap (every block of a repair
    /// round) hands the current buffer out before the written one comes back.
    spare: Vec<u8>,
    limit: usize,
}

impl Coalescer {
    fn new(limit: usize) -> Coalescer {
        Coalescer {
            offset: 0,
            buf: Vec::new(),
            spare: Vec::new(),
            limit,
        }
    }

    /// Adds a delivered block; returns a finished run to write, if one is ready.
    fn push(&mut self, offset: u64, data: &[u8]) -> Option<(u64, Vec<u8>)> {
        let contiguous = self.offset + self.buf.len() as u64 == offset;
        let ready =
            if !self.buf.is_empty() && (!contiguous || self.buf.len() + data.len() > self.limit) {
                self.take()
            } else {
                None
            };
        if self.buf.is_empty() {
            self.offset = offset;
            if self.buf.capacity() == 0 {
                self.buf = std::mem::take(&mut self.spare);
            }
            self.buf.reserve_exact(self.limit.max(data.len()));
        }
        self.buf.extend_from_slice(data);
        if ready.is_none() && self.buf.len() >= self.limit {
            return self.take();
        }
        ready
    }

    /// Takes back a written run's buffer, so steady streaming does not allocate.
    fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() >= self.limit {
            buf.clear();
            if self.buf.capacity() == 0 {
                self.buf = buf;
            } else {
                self.spare = buf;
            }
        }
    }

    /// The run held so far, if any.
    fn take(&mut self) -> Option<(u64, Vec<u8>)> {
        (!self.buf.is_empty()).then(|| (self.offset, std::mem::take(&mut self.buf)))
    }
}

/// Positional writes made on the session's own thread, for file outputs: the data path then
/// needs no hand-off per run, releases the cache as soon as the bytes are in the page cache,
/// and a writer thread that the scheduler starves cannot fill the cache (which would drop
/// blocks and cost a whole repair round). The writer thread still sizes, syncs and renames.
struct DirectFile {
    file: File,
    partial: PathBuf,
    handle: Arc<OnceLock<SessionHandle>>,
    /// Bytes written before the session handle was known, released with the next write.
    unreleased: u64,
    failed: bool,
}

impl DirectFile {
    /// Writes one run and releases it from the transport's cache. Returns the first error
    /// only; later runs are released unwritten while the writer cancels the session.
    fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        let mut result = Ok(());
        if !self.failed {
            result = write_run(&self.file, &self.partial, offset, bytes);
            self.failed = result.is_err();
        }
        self.unreleased += bytes.len() as u64;
        if let Some(handle) = self.handle.get() {
            handle.complete_receive(offset, std::mem::take(&mut self.unreleased));
        }
        result
    }
}

/// How long a cancelled session gets to send LEAVE and complete before we exit anyway.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// One object to download and where it goes.
pub(super) struct Job {
    /// Name shown in progress and messages.
    pub label: String,
    pub object: String,
    pub output: OutputPlan,
}

pub(super) enum OutputPlan {
    Stdout,
    File { target: PathBuf },
}

/// Settings shared by every job of one command.
pub(super) struct GetOptions {
    pub server: String,
    pub namespace: String,
    pub interface: Option<InterfaceSpec>,
    pub timeouts: Timeouts,
    pub cache_size: u64,
    pub keep_partial: bool,
    pub force: bool,
    pub sha256: Option<[u8; 32]>,
    pub trace: Option<PathBuf>,
}

pub fn run(args: GetArgs) -> Result<(), Failure> {
    let jobs = plan_jobs(&args)?;
    let mut timeouts = Timeouts::default();
    if let Some(limit) = args.source.start_timeout {
        timeouts.initiation = limit;
        timeouts.join = limit;
        timeouts.first_data = limit;
    }
    if let Some(limit) = args.timeout {
        timeouts.inactivity = limit;
    }
    let options = GetOptions {
        server: args.source.server.clone(),
        namespace: args.source.namespace.clone(),
        interface: args.source.interface.clone(),
        timeouts,
        cache_size: args.cache_size.max(1),
        keep_partial: args.keep_partial,
        force: args.force,
        sha256: args.sha256,
        trace: args.trace.clone(),
    };
    let labels: Vec<String> = jobs.iter().map(|j| j.label.clone()).collect();
    let reporter = Arc::new(Reporter::new(
        args.progress,
        args.quiet,
        args.verbose,
        &labels,
    ));
    match run_jobs(jobs, &options, reporter) {
        ExitCode::Success => Ok(()),
        code => Err(Failure::reported(code)),
    }
}

/// Decides every output path and refuses what cannot work, all before any network activity.
fn plan_jobs(args: &GetArgs) -> Result<Vec<Job>, Failure> {
    let objects = &args.object;
    if args.output.as_deref() == Some(Path::new("-")) {
        if objects.len() > 1 {
            return Err(Failure::msg(
                ExitCode::Usage,
                "-o - streams one object; give a folder with -o for several objects",
            ));
        }
        if io::stdout().is_terminal() {
            return Err(Failure::msg(
                ExitCode::Usage,
                "refusing to write binary data to a terminal; redirect stdout (-o - > FILE) or give -o FILE",
            ));
        }
        return Ok(vec![Job {
            label: objects[0].clone(),
            object: objects[0].clone(),
            output: OutputPlan::Stdout,
        }]);
    }
    let mut jobs = Vec::with_capacity(objects.len());
    if objects.len() > 1 {
        let folder = args.output.clone().unwrap_or_else(|| PathBuf::from("."));
        fs::create_dir_all(&folder).map_err(|e| {
            Failure::msg(
                ExitCode::Output,
                format!("cannot create output folder {}: {e}", folder.display()),
            )
        })?;
        for object in objects {
            let target = folder.join(default_file_name(object)?);
            if jobs
                .iter()
                .any(|j: &Job| matches!(&j.output, OutputPlan::File { target: t } if *t == target))
            {
                return Err(Failure::msg(
                    ExitCode::Usage,
                    format!(
                        "two objects would both be written to {}; download them separately with -o",
                        target.display()
                    ),
                ));
            }
            jobs.push(Job {
                label: object.clone(),
                object: object.clone(),
                output: OutputPlan::File { target },
            });
        }
    } else {
        let object = &objects[0];
        let target = match &args.output {
            Some(path) if path.is_dir() => path.join(default_file_name(object)?),
            Some(path) => path.clone(),
            None => PathBuf::from(default_file_name(object)?),
        };
        jobs.push(Job {
            label: object.clone(),
            object: object.clone(),
            output: OutputPlan::File { target },
        });
    }
    for job in &jobs {
        if let OutputPlan::File { target } = &job.output {
            check_target(target, args.force)?;
        }
    }
    Ok(jobs)
}

fn check_target(target: &Path, force: bool) -> Result<(), Failure> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => Err(Failure::msg(
            ExitCode::Output,
            format!(
                "output {} is a folder; give a file name with -o",
                target.display()
            ),
        )),
        Ok(_) if !force => Err(Failure::msg(
            ExitCode::Output,
            format!(
                "output file {} already exists; use --force to replace it or -o to choose another name",
                target.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// The file name an object is saved under by default: its last path component, made safe.
pub(super) fn default_file_name(object: &str) -> Result<String, Failure> {
    sanitised_name(object).ok_or_else(|| {
        Failure::msg(
            ExitCode::Usage,
            format!("cannot derive a file name from object {object:?}; give one with -o"),
        )
    })
}

fn sanitised_name(object: &str) -> Option<String> {
    let last = object.rsplit(['/', '\\']).find(|part| !part.is_empty())?;
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_end_matches('.').to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        None
    } else if is_windows_device_name(&cleaned) {
        // `con.wim` would open the console on Windows; same name on every platform.
        Some(format!("_{cleaned}"))
    } else {
        Some(cleaned)
    }
}

/// Names Windows maps to devices whatever the extension (CON, NUL, COM1, LPT1.txt, ...).
fn is_windows_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let upper = stem.to_ascii_uppercase();
    matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((upper.starts_with("COM") || upper.starts_with("LPT"))
        && upper.len() == 4
        && upper.as_bytes()[3].is_ascii_digit()
        && upper.as_bytes()[3] != b'0')
}

fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    let parent = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent.join(format!(".{name}.wdsmc-partial-{}", std::process::id()))
}

enum ToWriter {
    Start(SessionInfo),
    Data {
        offset: u64,
        bytes: Vec<u8>,
    },
    /// A direct write (see [`DirectFile`]) failed; the writer reports it and cancels.
    WriteFailed(String),
    Done(Result<Stats, TransportError>),
}

enum MainMessage {
    JobDone(usize, Box<JobOutcome>),
    Interrupted,
}

/// Runs every job at once and returns the worst exit status.
pub(super) fn run_jobs(jobs: Vec<Job>, options: &GetOptions, reporter: Arc<Reporter>) -> ExitCode {
    let (main_tx, main_rx) = mpsc::channel::<MainMessage>();
    {
        let interrupt_tx = main_tx.clone();
        signals::on_interrupt(move || {
            let _ = interrupt_tx.send(MainMessage::Interrupted);
        });
    }
    let trace = match &options.trace {
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

    // Create every partial file first, so an unwritable folder fails before the network.
    let mut sinks = Vec::with_capacity(jobs.len());
    for job in &jobs {
        match Sink::create(&job.output, options.cache_size) {
            Ok(sink) => sinks.push(sink),
            Err(failure) => {
                for sink in sinks {
                    sink.discard(true);
                }
                if let Some(error) = failure.error {
                    reporter.line(&format!("wdsmc: error: {error:#}"));
                }
                return failure.code;
            }
        }
    }

    let mut outcomes: Vec<Option<JobOutcome>> = vec![None; jobs.len()];
    let mut partials: Vec<Option<PathBuf>> = Vec::with_capacity(jobs.len());
    let mut sessions: Vec<Session> = Vec::new();
    for (index, (job, sink)) in jobs.into_iter().zip(sinks).enumerate() {
        partials.push(sink.partial_path().map(Path::to_path_buf));
        let mut request = Request::new(
            options.server.clone(),
            options.namespace.clone(),
            job.object.clone(),
        );
        request.cache_size = options.cache_size;
        request.interface = options.interface.clone();
        request.timeouts = options.timeouts;
        request.trace = trace.is_some() || reporter.verbose() >= 2;
        let (data_tx, data_rx) =
            mpsc::sync_channel::<ToWriter>(writer_queue_blocks(options.cache_size));
        let last_stats = Arc::new(Mutex::new(None::<Stats>));
        let handle_slot = Arc::new(OnceLock::new());
        let direct = sink.direct_file(&handle_slot);
        let callback = make_callback(
            index,
            &job,
            direct,
            data_tx,
            reporter.clone(),
            trace.clone(),
            last_stats.clone(),
            options,
        );
        match Session::start(request, callback) {
            Ok(session) => {
                let _ = handle_slot.set(session.handle());
                let writer = Writer {
                    index,
                    sink,
                    handle: session.handle(),
                    receiver: data_rx,
                    last_stats,
                    keep_partial: options.keep_partial,
                    force: options.force,
                    sha256: options.sha256,
                    reporter: reporter.clone(),
                    done: DoneGuard {
                        index,
                        sender: Some(main_tx.clone()),
                    },
                };
                let spawned = std::thread::Builder::new()
                    .name(format!("wdsmc-writer-{index}"))
                    .spawn(move || writer.run());
                if let Err(e) = spawned {
                    // The dropped writer's DoneGuard reports this job as an internal error.
                    reporter.warning(&format!("cannot start a writer thread: {e}"));
                    session.cancel();
                    if let Some(partial) = &partials[index] {
                        let _ = fs::remove_file(partial);
                    }
                }
                sessions.push(session);
            }
            Err(error) => {
                sink.discard(true);
                let outcome = JobOutcome {
                    code: ExitCode::for_transport_error(&error),
                    error: Some(error.to_string()),
                    stats: None,
                    elapsed: Duration::ZERO,
                    destination: None,
                };
                reporter.finish(index, &outcome);
                outcomes[index] = Some(outcome);
            }
        }
    }

    let mut remaining = outcomes.iter().filter(|o| o.is_none()).count();
    let mut cancel_deadline: Option<Instant> = None;
    while remaining > 0 {
        let message = match cancel_deadline {
            None => main_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => {
                main_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
        };
        match message {
            Ok(MainMessage::JobDone(index, outcome)) => {
                if outcomes[index].is_none() {
                    remaining -= 1;
                }
                outcomes[index] = Some(*outcome);
            }
            Ok(MainMessage::Interrupted) => {
                if cancel_deadline.is_none() {
                    reporter.warning("cancelling (press Ctrl-C again to exit at once)");
                    for session in &sessions {
                        session.cancel();
                    }
                    cancel_deadline = Some(Instant::now() + CANCEL_GRACE);
                }
            }
            Err(_) => break,
        }
    }
    // Sessions that did not confirm the cancel in time: clean up for them.
    for (index, outcome) in outcomes.iter_mut().enumerate() {
        if outcome.is_none() {
            if let Some(partial) = &partials[index] {
                if options.keep_partial {
                    reporter.line(&format!(
                        "wdsmc: partial data kept in {}",
                        partial.display()
                    ));
                } else {
                    let _ = fs::remove_file(partial);
                }
            }
            let gave_up = JobOutcome {
                code: ExitCode::Cancelled,
                error: Some("cancelled; the session did not confirm within 2s".into()),
                stats: None,
                elapsed: Duration::ZERO,
                destination: None,
            };
            reporter.finish(index, &gave_up);
            *outcome = Some(gave_up);
        }
    }
    if let Some(trace) = &trace {
        let _ = trace.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
    for session in sessions {
        session.close();
    }
    outcomes
        .iter()
        .flatten()
        .map(|o| o.code)
        .max()
        .unwrap_or(ExitCode::Success)
}

type TraceFile = Arc<Mutex<BufWriter<File>>>;

#[allow(clippy::too_many_arguments)]
fn make_callback(
    index: usize,
    job: &Job,
    mut direct: Option<DirectFile>,
    to_writer: SyncSender<ToWriter>,
    reporter: Arc<Reporter>,
    trace: Option<TraceFile>,
    last_stats: Arc<Mutex<Option<Stats>>>,
    options: &GetOptions,
) -> impl FnMut(Event<'_>) + Send + 'static {
    let server = options.server.clone();
    let namespace = options.namespace.clone();
    let label = job.label.clone();
    let object = job.object.clone();
    let to_writer_for_direct = to_writer.clone();
    let to_writer_for_data = to_writer.clone();
    let mut run = Coalescer::new(coalesce_limit(options.cache_size));
    let mut deliver = move |run: &mut Coalescer, (offset, bytes): (u64, Vec<u8>)| match &mut direct
    {
        Some(file) => {
            if let Err(e) = file.write(offset, &bytes) {
                let _ = to_writer_for_direct.send(ToWriter::WriteFailed(e));
            }
            run.recycle(bytes);
        }
        None => {
            let _ = to_writer_for_data.send(ToWriter::Data { offset, bytes });
        }
    };
    move |event| match event {
        Event::SessionStart(info) => {
            reporter.start(index, info, &server, &namespace, &object);
            let _ = to_writer.send(ToWriter::Start(info.clone()));
        }
        Event::ReceiveMetadata(_) => {}
        Event::ReceiveContents { offset, data } => {
            if let Some(ready) = run.push(offset, data) {
                deliver(&mut run, ready);
            }
        }
        Event::Progress(stats) => {
            // Progress comes every quarter second: a stalled stream never holds data back.
            if let Some(ready) = run.take() {
                deliver(&mut run, ready);
            }
            *last_stats.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats.clone());
            reporter.progress(index, stats);
        }
        Event::Notice(text) => reporter.notice(index, text),
        Event::Trace {
            outgoing,
            peer,
            summary,
        } => {
            let direction = if outgoing { "send" } else { "recv" };
            let timestamp = humantime::format_rfc3339_micros(SystemTime::now());
            if let Some(trace) = &trace {
                let mut file = trace.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(file, "{timestamp} {label} {direction} {peer} {summary}");
            }
            if reporter.verbose() >= 2 {
                reporter.line(&format!("wdsmc: {label}: {direction} {peer} {summary}"));
            }
        }
        Event::SessionComplete(result) => {
            if let Some(ready) = run.take() {
                deliver(&mut run, ready);
            }
            let _ = to_writer.send(ToWriter::Done(result.clone()));
        }
    }
}

/// Reports a job's outcome to the main thread, even if the writer thread panics.
struct DoneGuard {
    index: usize,
    sender: Option<Sender<MainMessage>>,
}

impl DoneGuard {
    fn send(mut self, outcome: JobOutcome) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(MainMessage::JobDone(self.index, Box::new(outcome)));
        }
    }
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let outcome = JobOutcome {
                code: ExitCode::Internal,
                error: Some("the writer thread stopped unexpectedly".into()),
                stats: None,
                elapsed: Duration::ZERO,
                destination: None,
            };
            let _ = sender.send(MainMessage::JobDone(self.index, Box::new(outcome)));
        }
    }
}

struct Writer {
    index: usize,
    sink: Sink,
    handle: SessionHandle,
    receiver: Receiver<ToWriter>,
    last_stats: Arc<Mutex<Option<Stats>>>,
    keep_partial: bool,
    force: bool,
    sha256: Option<[u8; 32]>,
    reporter: Arc<Reporter>,
    done: DoneGuard,
}

impl Writer {
    fn run(mut self) {
        let mut started = Instant::now();
        let mut output_error: Option<String> = None;
        let result = loop {
            match self.receiver.recv() {
                Ok(ToWriter::Start(info)) => {
                    started = Instant::now();
                    if let Err(e) = self.sink.prepare(&info) {
                        output_error.get_or_insert(e);
                        self.handle.cancel();
                    }
                }
                Ok(ToWriter::Data { offset, bytes }) => {
                    if output_error.is_some() {
                        self.handle.complete_receive(offset, bytes.len() as u64);
                    } else if let Err(e) = self.sink.accept(offset, bytes, &mut |o, l| {
                        self.handle.complete_receive(o, l)
                    }) {
                        output_error = Some(e);
                        self.handle.cancel();
                    }
                }
                Ok(ToWriter::WriteFailed(e)) => {
                    output_error.get_or_insert(e);
                    self.handle.cancel();
                }
                Ok(ToWriter::Done(result)) => break result,
                Err(_) => {
                    break Err(TransportError::Internal(
                        "the session ended without a completion event".into(),
                    ));
                }
            }
        };
        let stats = match &result {
            Ok(stats) => Some(stats.clone()),
            Err(_) => self
                .last_stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        };
        let finished = match (output_error, result) {
            (Some(error), _) => Err((ExitCode::Output, error)),
            (None, Err(error)) => Err((ExitCode::for_transport_error(&error), error.to_string())),
            (None, Ok(_)) => self.sink.finish(self.sha256, self.force),
        };
        let outcome = match finished {
            Ok(destination) => JobOutcome {
                code: ExitCode::Success,
                error: None,
                stats,
                elapsed: started.elapsed(),
                destination: Some(destination),
            },
            Err((code, mut error)) => {
                let delete = !self.keep_partial || code == ExitCode::Integrity;
                if let Some(kept) = self.sink.discard(delete) {
                    error.push_str(&format!("; partial data kept in {}", kept.display()));
                }
                JobOutcome {
                    code,
                    error: Some(error),
                    stats,
                    elapsed: started.elapsed(),
                    destination: None,
                }
            }
        };
        self.reporter.finish(self.index, &outcome);
        self.done.send(outcome);
    }
}

/// Where a job's bytes go.
enum Sink {
    File {
        file: File,
        partial: PathBuf,
        target: PathBuf,
    },
    Stdout(Box<InOrder<BufWriter<io::Stdout>>>),
}

impl Sink {
    fn create(plan: &OutputPlan, cache_size: u64) -> Result<Sink, Failure> {
        match plan {
            OutputPlan::Stdout => Ok(Sink::Stdout(Box::new(InOrder::new(
                BufWriter::with_capacity(1 << 20, io::stdout()),
                cache_size,
            )))),
            OutputPlan::File { target } => {
                let partial = partial_path(target);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&partial)
                    .map_err(|e| {
                        Failure::msg(
                            ExitCode::Output,
                            format!("cannot create {}: {e}", partial.display()),
                        )
                    })?;
                Ok(Sink::File {
                    file,
                    partial,
                    target: target.clone(),
                })
            }
        }
    }

    /// A second handle on the partial file for [`DirectFile`] writes (file outputs only).
    fn direct_file(&self, handle: &Arc<OnceLock<SessionHandle>>) -> Option<DirectFile> {
        match self {
            Sink::File { file, partial, .. } => file.try_clone().ok().map(|file| DirectFile {
                file,
                partial: partial.clone(),
                handle: Arc::clone(handle),
                unreleased: 0,
                failed: false,
            }),
            Sink::Stdout(_) => None,
        }
    }

    fn partial_path(&self) -> Option<&Path> {
        match self {
            Sink::File { partial, .. } => Some(partial),
            Sink::Stdout(_) => None,
        }
    }

    fn prepare(&mut self, info: &SessionInfo) -> Result<(), String> {
        match self {
            Sink::File { file, partial, .. } => file.set_len(info.content_size).map_err(|e| {
                format!(
                    "cannot size {} to {} bytes: {e}",
                    partial.display(),
                    info.content_size
                )
            }),
            Sink::Stdout(stream) => {
                stream.expected = Some(info.content_size);
                Ok(())
            }
        }
    }

    /// Stores one delivered block and releases it (`complete(offset, len)`) from the transport's
    /// cache once it is written.
    fn accept(
        &mut self,
        offset: u64,
        bytes: Vec<u8>,
        complete: &mut dyn FnMut(u64, u64),
    ) -> Result<(), String> {
        match self {
            Sink::File { file, partial, .. } => {
                write_run(file, partial, offset, &bytes)?;
                complete(offset, bytes.len() as u64);
                Ok(())
            }
            Sink::Stdout(stream) => stream.accept(offset, bytes, complete),
        }
    }

    /// Makes the finished data durable and visible; returns where it went.
    fn finish(
        &mut self,
        sha256: Option<[u8; 32]>,
        force: bool,
    ) -> Result<String, (ExitCode, String)> {
        match self {
            Sink::File {
                file,
                partial,
                target,
            } => {
                file.sync_all().map_err(|e| {
                    (
                        ExitCode::Output,
                        format!("cannot sync {}: {e}", partial.display()),
                    )
                })?;
                if let Some(expected) = sha256 {
                    let actual = hash_file(partial).map_err(|e| {
                        (
                            ExitCode::Output,
                            format!("cannot read back {}: {e}", partial.display()),
                        )
                    })?;
                    if actual != expected {
                        return Err((ExitCode::Integrity, sha_mismatch(&expected, &actual)));
                    }
                }
                if !force && fs::symlink_metadata(&*target).is_ok() {
                    return Err((
                        ExitCode::Output,
                        format!(
                            "{} appeared during the download; use --force to replace it",
                            target.display()
                        ),
                    ));
                }
                fs::rename(&*partial, &*target).map_err(|e| {
                    (
                        ExitCode::Output,
                        format!(
                            "cannot rename {} to {}: {e}",
                            partial.display(),
                            target.display()
                        ),
                    )
                })?;
                sync_parent(target);
                Ok(target.display().to_string())
            }
            Sink::Stdout(stream) => {
                stream.finish()?;
                let actual: [u8; 32] = stream.hasher.clone().finalize().into();
                match sha256 {
                    Some(expected) if expected != actual => Err((
                        ExitCode::Integrity,
                        format!(
                            "{} (the data already went to stdout)",
                            sha_mismatch(&expected, &actual)
                        ),
                    )),
                    _ => Ok("-".into()),
                }
            }
        }
    }

    /// Removes (or keeps) the partial file after a failure; returns its path when kept.
    fn discard(self, delete: bool) -> Option<PathBuf> {
        match self {
            Sink::File { file, partial, .. } => {
                drop(file);
                if delete {
                    let _ = fs::remove_file(&partial);
                    None
                } else {
                    Some(partial)
                }
            }
            Sink::Stdout(_) => None,
        }
    }
}

fn sha_mismatch(expected: &[u8; 32], actual: &[u8; 32]) -> String {
    format!(
        "SHA-256 mismatch: expected {}, got {}; the data was discarded",
        hex(expected),
        hex(actual)
    )
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}

/// Writes a run of the download at its offset in the partial file `path`.
fn write_run(file: &File, path: &Path, offset: u64, bytes: &[u8]) -> Result<(), String> {
    write_all_at(file, bytes, offset)
        .map_err(|e| format!("cannot write {} at offset {offset}: {e}", path.display()))
}

/// Makes the rename durable where the platform allows syncing a folder.
fn sync_parent(target: &Path) {
    #[cfg(unix)]
    if let Some(parent) = target.parent() {
        let folder = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(dir) = File::open(folder) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = target;
}

/// Streams blocks to stdout in offset order. A client may join a multicast cycle anywhere, so
/// blocks can arrive far ahead of the next one to write. Early blocks wait in memory up to
/// `--cache-size` and beyond that in a temporary spill file; each block is released to the
/// transport as soon as it is stored, so the transport's cache never fills up with blocks that
/// wait for a gap it would then have no room to deliver.
struct InOrder<W: Write> {
    out: W,
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: u64,
    memory_limit: u64,
    spill: Option<SpillFile>,
    /// Offset -> length of blocks stored in the spill file (at their own offset).
    spilled: BTreeMap<u64, u64>,
    next: u64,
    expected: Option<u64>,
    hasher: Sha256,
}

/// A temporary file in the system temp folder, removed when dropped.
struct SpillFile {
    file: File,
    path: PathBuf,
}

impl SpillFile {
    fn create() -> Result<SpillFile, String> {
        let folder = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = folder.join(format!("wdsmc-stream-{}-{nanos:08x}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                format!(
                    "cannot create a spill file for out-of-order blocks in {}: {e}; set TMPDIR (TEMP on Windows) to a folder with space",
                    folder.display()
                )
            })?;
        // Unix lets the open file live on without a name, so nothing is left after a crash.
        #[cfg(unix)]
        let _ = fs::remove_file(&path);
        Ok(SpillFile { file, path })
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        #[cfg(not(unix))]
        let _ = fs::remove_file(&self.path);
    }
}

impl<W: Write> InOrder<W> {
    fn new(out: W, memory_limit: u64) -> InOrder<W> {
        InOrder {
            out,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            memory_limit,
            spill: None,
            spilled: BTreeMap::new(),
            next: 0,
            expected: None,
            hasher: Sha256::new(),
        }
    }

    fn accept(
        &mut self,
        offset: u64,
        bytes: Vec<u8>,
        complete: &mut dyn FnMut(u64, u64),
    ) -> Result<(), String> {
        let len = bytes.len() as u64;
        if offset > self.next {
            let known = self.pending.contains_key(&offset) || self.spilled.contains_key(&offset);
            if !known {
                if self.pending_bytes + len <= self.memory_limit {
                    self.pending_bytes += len;
                    self.pending.insert(offset, bytes);
                } else {
                    self.spill_block(offset, &bytes)?;
                }
            }
            complete(offset, len);
            return Ok(());
        }
        self.emit(offset, &bytes)?;
        complete(offset, len);
        self.drain()
    }

    fn spill_block(&mut self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        let spill = match self.spill.take() {
            Some(spill) => spill,
            None => SpillFile::create()?,
        };
        let written = write_all_at(&spill.file, bytes, offset)
            .map_err(|e| format!("cannot write the spill file {}: {e}", spill.path.display()));
        self.spill = Some(spill);
        written?;
        self.spilled.insert(offset, bytes.len() as u64);
        Ok(())
    }

    /// Writes every stored block that has become next in line.
    fn drain(&mut self) -> Result<(), String> {
        loop {
            if let Some(entry) = self.pending.first_entry() {
                if *entry.key() <= self.next {
                    let (start, block) = entry.remove_entry();
                    self.pending_bytes -= block.len() as u64;
                    self.emit(start, &block)?;
                    continue;
                }
            }
            let ready = self
                .spilled
                .first_key_value()
                .map(|(start, len)| (*start, *len));
            match (ready, &self.spill) {
                (Some((start, len)), Some(spill)) if start <= self.next => {
                    self.spilled.remove(&start);
                    let mut block = vec![0u8; len as usize];
                    read_exact_at(&spill.file, &mut block, start).map_err(|e| {
                        format!("cannot read the spill file {}: {e}", spill.path.display())
                    })?;
                    self.emit(start, &block)?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// Writes the part of a block at `start` that lies beyond what was already written.
    fn emit(&mut self, start: u64, block: &[u8]) -> Result<(), String> {
        let end = start + block.len() as u64;
        if end <= self.next {
            return Ok(());
        }
        let fresh = &block[(self.next - start) as usize..];
        self.out
            .write_all(fresh)
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
        self.hasher.update(fresh);
        self.next = end;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), (ExitCode, String)> {
        self.out
            .flush()
            .map_err(|e| (ExitCode::Output, format!("cannot write to stdout: {e}")))?;
        match self.expected {
            Some(size) if size != self.next => Err((
                ExitCode::Internal,
                format!(
                    "the stream ended at byte {} of {size}; {} blocks were still out of order",
                    self.next,
                    self.pending.len() + self.spilled.len()
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescer_joins_contiguous_blocks_and_splits_at_gaps_and_limit() {
        let mut run = Coalescer::new(10);
        assert_eq!(run.push(0, &[1; 4]), None);
        assert_eq!(run.push(4, &[2; 4]), None);
        // A gap ends the run: the held 8 bytes come out, the new block starts the next run.
        assert_eq!(run.push(20, &[3; 4]), Some((0, [[1; 4], [2; 4]].concat())));
        assert_eq!(run.push(24, &[4; 4]), None);
        // Would exceed the limit: the run so far comes out first.
        assert_eq!(run.push(28, &[5; 4]), Some((20, [[3; 4], [4; 4]].concat())));
        // Reaching the limit exactly hands the run over at once.
        assert_eq!(
            run.push(32, &[6; 6]),
            Some((28, [&[5u8; 4][..], &[6; 6]].concat()))
        );
        assert_eq!(run.take(), None);
        assert_eq!(run.push(0, &[7; 3]), None);
        assert_eq!(run.take(), Some((0, vec![7; 3])));
    }

    #[test]
    fn coalescer_reuses_two_buffers_when_every_block_is_a_gap() {
        let mut run = Coalescer::new(16);
        // Repair-round shape: no block follows the previous one; each finished run is written
        // and recycled, as DirectFile does. The written buffer must be kept (as the spare)
        // and become the next run's buffer, not be dropped while a new one is allocated.
        let mut previous: Option<usize> = None;
        for i in 0..20u64 {
            if let Some((offset, bytes)) = run.push(i * 100, &[i as u8; 8]) {
                assert_eq!(
                    (offset, bytes.as_slice()),
                    ((i - 1) * 100, &[(i - 1) as u8; 8][..])
                );
                let written = bytes.as_ptr() as usize;
                run.recycle(bytes);
                assert_eq!(run.spare.as_ptr() as usize, written, "written buffer kept");
                if let Some(spare) = previous {
                    assert_eq!(
                        run.buf.as_ptr() as usize,
                        spare,
                        "the spare holds the next run"
                    );
                }
                previous = Some(written);
            }
        }
    }

    #[test]
    fn default_names_are_safe() {
        let cases: [(&str, Option<&str>); 19] = [
            ("install.wim", Some("install.wim")),
            ("sources/install.wim", Some("install.wim")),
            ("boot\\x64\\boot.wim", Some("boot.wim")),
            ("dir/", Some("dir")),
            ("a:b*c", Some("a_b_c")),
            ("evil\u{7}name", Some("evil_name")),
            ("..", None),
            ("x/..", None),
            (".", None),
            ("", None),
            ("///", None),
            ("sources\\install.wim", Some("install.wim")),
            ("C:\\images\\boot.wim", Some("boot.wim")),
            ("C:", Some("C_")),
            ("images/con.wim", Some("_con.wim")),
            ("NUL", Some("_NUL")),
            ("lpt1.txt", Some("_lpt1.txt")),
            ("com0.wim", Some("com0.wim")),
            ("console.wim", Some("console.wim")),
        ];
        for (object, expected) in cases {
            assert_eq!(
                sanitised_name(object).as_deref(),
                expected,
                "object {object:?}"
            );
        }
    }

    #[test]
    fn partial_file_sits_beside_the_target() {
        let partial = partial_path(Path::new("out/install.wim"));
        assert_eq!(partial.parent(), Some(Path::new("out")));
        let name = partial.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".install.wim.wdsmc-partial-"), "{name}");
        assert_eq!(
            partial_path(Path::new("a.bin")).parent(),
            Some(Path::new("."))
        );
    }

    /// Feeds `data` to an in-order stream as `block`-byte pieces in the given order and returns
    /// what was written and every completion.
    fn stream(
        data: &[u8],
        block: usize,
        order: &[usize],
        limit: u64,
    ) -> (Vec<u8>, Vec<(u64, u64)>) {
        let mut in_order = InOrder::new(Vec::new(), limit);
        in_order.expected = Some(data.len() as u64);
        let mut completed = Vec::new();
        for &index in order {
            let start = index * block;
            let end = (start + block).min(data.len());
            in_order
                .accept(start as u64, data[start..end].to_vec(), &mut |o, l| {
                    completed.push((o, l))
                })
                .unwrap();
        }
        in_order.finish().unwrap();
        let expected_hash: [u8; 32] = Sha256::digest(data).into();
        let streamed_hash: [u8; 32] = in_order.hasher.clone().finalize().into();
        assert_eq!(streamed_hash, expected_hash);
        assert_eq!(in_order.pending_bytes, 0);
        (in_order.out, completed)
    }

    #[test]
    fn in_order_stream_reorders_and_completes_every_block() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let blocks = data.len().div_ceil(1000);
        let mut order: Vec<usize> = (0..blocks).rev().collect();
        order.swap(0, 4);
        let (written, mut completed) = stream(&data, 1000, &order, 1 << 20);
        assert_eq!(written, data);
        completed.sort();
        let expected: Vec<(u64, u64)> = (0..blocks as u64).map(|b| (b * 1000, 1000)).collect();
        assert_eq!(completed, expected);
    }

    #[test]
    fn in_order_stream_ignores_duplicates() {
        let data: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
        let (written, completed) = stream(&data, 1000, &[2, 2, 0, 0, 1, 3, 1], 1 << 20);
        assert_eq!(written, data);
        assert_eq!(
            completed.len(),
            7,
            "every delivery is released exactly once"
        );
    }

    #[test]
    fn in_order_stream_spills_beyond_the_memory_limit() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 256) as u8).collect();
        let mut in_order = InOrder::new(Vec::new(), 3000);
        in_order.expected = Some(data.len() as u64);
        let mut released = 0u64;
        // Arrives back to front, as after joining at the end of a cycle.
        for index in (0..50).rev() {
            let start = index * 1000;
            in_order
                .accept(
                    start as u64,
                    data[start..start + 1000].to_vec(),
                    &mut |_, l| released += l,
                )
                .unwrap();
            assert!(in_order.pending_bytes <= 3000, "memory above the limit");
        }
        assert_eq!(
            released,
            data.len() as u64,
            "every block released once stored"
        );
        in_order.finish().unwrap();
        assert_eq!(in_order.out, data);
        assert!(in_order.spilled.is_empty());
    }

    #[test]
    fn in_order_stream_reports_a_short_stream() {
        let mut in_order = InOrder::new(Vec::new(), 1 << 20);
        in_order.expected = Some(2000);
        in_order.accept(0, vec![1; 1000], &mut |_, _| {}).unwrap();
        assert!(in_order.finish().is_err());
    }
}
