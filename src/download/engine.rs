//! The running download: the session callback (the data path, on the session's thread) and
//! the writer thread that owns the output, finishes it and reports the outcome.
//!
//! File outputs are written by positional writes from the session's own thread: the data path
//! then needs no hand-off per run, releases the cache as soon as the bytes are in the page
//! cache, and a writer thread that the scheduler starves cannot fill the cache (which would
//! drop blocks and cost a whole repair round). The writer thread syncs, verifies and renames.
//! Stream outputs go through the writer thread, which puts blocks in order.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::coalesce::{Coalescer, coalesce_limit};
use super::partial::PartialFile;
use super::stream::InOrder;
use super::writeback::{WRITEBACK_WINDOW, Writeback};
use super::{
    CANCEL_GRACE, DownloadError, DownloadEvent, DownloadOptions, Outcome, Output, Saved, Sink,
};
use crate::sys::file::{free_space, preallocate, write_all_at};
use crate::transport::{Event, Request, Session, SessionHandle, Stats, Status, TransportError};

/// How often the writer thread looks at a pending cancel while no message arrives.
const WRITER_TICK: Duration = Duration::from_millis(100);

/// Messages queued between the session's callback and the writer thread. A stream's runs:
/// enough for a full cache of 4 KiB blocks, so a transport that respects the cache limit never
/// makes its callback wait; the bound only matters if it does not. A file's writes happen on
/// the session's thread, so only a few control messages travel (the channel allocates every
/// slot up front).
fn writer_queue(sink: &Sink, cache_size: u64) -> usize {
    match sink {
        Sink::Stream(_) => (cache_size / 4096).clamp(256, 65_536) as usize,
        Sink::File(_) => 16,
    }
}

/// A running (or finished) download. Dropping it is the same as [`Download::close`].
pub struct Download {
    shared: Arc<Shared>,
}

struct Shared {
    session: SessionHandle,
    cancel_at: Mutex<Option<Instant>>,
    outcome: Mutex<Option<Arc<Outcome>>>,
    done: Condvar,
}

/// The caller's callback, shared by the session's thread and the writer thread. `finished` is
/// set once `Finished` went out, so nothing follows it.
struct Reporter<F> {
    on_event: Mutex<F>,
    finished: AtomicBool,
}

impl<F: FnMut(DownloadEvent<'_>)> Reporter<F> {
    fn report(&self, event: DownloadEvent<'_>) {
        let mut on_event = self.on_event.lock().unwrap_or_else(|e| e.into_inner());
        if !self.finished.load(Ordering::SeqCst) {
            let last = matches!(event, DownloadEvent::Finished(_));
            on_event(event);
            if last {
                self.finished.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// From the session's callback to the writer thread.
enum ToWriter {
    Started {
        size: u64,
    },
    /// A run of a stream output, at its offset.
    Data {
        offset: u64,
        bytes: Vec<u8>,
    },
    /// A direct write failed; the session is being aborted.
    Failed(Box<DownloadError>),
    /// Boxed: the channel's slots are all as large as its largest message.
    Done(Box<Done>),
}

struct Done {
    result: Result<Stats, TransportError>,
    last_stats: Option<Stats>,
    started: Option<Instant>,
}

impl Download {
    /// Starts the session for `request` and writes what it delivers to `output`. Events,
    /// including the final [`DownloadEvent::Finished`], arrive in `on_event`, from the
    /// session's thread and (for `Finished`) the writer thread, never two at once. Fails here
    /// only for a request that cannot be valid or a thread that cannot start.
    pub fn start<F>(
        request: Request,
        output: Output,
        on_event: F,
    ) -> Result<Download, DownloadError>
    where
        F: FnMut(DownloadEvent<'_>) + Send + 'static,
    {
        let Output { sink, options } = output;
        let reporter = Arc::new(Reporter {
            on_event: Mutex::new(on_event),
            finished: AtomicBool::new(false),
        });
        let (to_writer, from_session) = mpsc::sync_channel(writer_queue(&sink, request.cache_size));
        let writer = match &sink {
            Sink::File(partial) => Some(DirectFile {
                file: partial.writer().map_err(|error| DownloadError::Size {
                    path: partial.path().to_path_buf(),
                    size: 0,
                    error,
                })?,
                path: partial.path().to_path_buf(),
                failed: false,
                writeback: Writeback::new(WRITEBACK_WINDOW),
            }),
            Sink::Stream(_) => None,
        };
        let data = DataPath {
            direct: writer,
            runs: Coalescer::new(coalesce_limit(request.cache_size)),
            to_writer,
        };
        let callback = session_callback(data, Arc::clone(&reporter));
        let cache_size = request.cache_size;
        let session = Session::start(request, callback)?;
        let shared = Arc::new(Shared {
            session: session.handle(),
            cancel_at: Mutex::new(None),
            outcome: Mutex::new(None),
            done: Condvar::new(),
        });
        let sink = match sink {
            Sink::File(partial) => WriterSink::File(partial),
            Sink::Stream(out) => WriterSink::Stream(Box::new(InOrder::new(out, cache_size))),
        };
        let writer = Writer {
            sink,
            options,
            from_session,
            session,
            shared: Arc::clone(&shared),
            reporter,
        };
        thread::Builder::new()
            .name("wdsmc-writer".into())
            .spawn(move || writer.run())
            // The writer (and with it the partial file and the session) was dropped: the
            // session's handle is closed, so cancel through the one kept here.
            .map_err(|error| {
                shared.session.cancel();
                DownloadError::Thread { error }
            })?;
        Ok(Download { shared })
    }

    /// Stops the transfer: the session sends LEAVE with reason CANCELLED and the download
    /// finishes as cancelled, with its partial file removed. If the session does not confirm
    /// within [`CANCEL_GRACE`], the download finishes without it.
    pub fn cancel(&self) {
        let mut cancel_at = self
            .shared
            .cancel_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cancel_at.get_or_insert_with(Instant::now);
        self.shared.session.cancel();
    }

    /// Waits until the download's outcome is known or `timeout` passes (`None`: no limit);
    /// `None` if it is still running. The [`DownloadEvent::Finished`] event may reach the
    /// callback just after this returns.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Arc<Outcome>> {
        let slot = self
            .shared
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let running = |o: &mut Option<Arc<Outcome>>| o.is_none();
        let slot = match timeout {
            None => self
                .shared
                .done
                .wait_while(slot, running)
                .unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                self.shared
                    .done
                    .wait_timeout_while(slot, t, running)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        slot.clone()
    }

    /// Releases the handle. A download still running goes on to its end; only
    /// [`Download::cancel`] stops it.
    pub fn close(self) {
        drop(self)
    }
}

/// Positional writes to the partial file from the session's thread.
struct DirectFile {
    file: File,
    path: PathBuf,
    /// After the first failure, runs are released unwritten while the session is aborted.
    failed: bool,
    writeback: Writeback,
}

/// The data path on the session's thread: joins delivered blocks into runs and writes them
/// (files) or queues them for the writer thread (streams).
struct DataPath {
    direct: Option<DirectFile>,
    runs: Coalescer,
    to_writer: SyncSender<ToWriter>,
}

impl DataPath {
    fn start(&mut self, handle: &SessionHandle, size: u64) {
        let _ = self.to_writer.send(ToWriter::Started { size });
        if let Some(file) = &mut self.direct {
            let sized = file
                .file
                .set_len(size)
                .and_then(|()| preallocate(&file.file, size));
            let no_space = |file: &DirectFile| {
                let folder = file.path.parent().map(PathBuf::from);
                DownloadError::NoSpace {
                    folder: folder.unwrap_or_else(|| file.path.clone()),
                    size,
                    free: free_space(&file.file),
                }
            };
            match sized {
                Ok(true) => {}
                // Not reserved (no such call, or a memory-backed filesystem): a folder that
                // plainly cannot hold the object still fails now rather than part way through.
                Ok(false) => {
                    if free_space(&file.file).is_some_and(|free| free < size) {
                        let error = no_space(file);
                        self.fail(handle, error);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::StorageFull => {
                    let error = no_space(file);
                    self.fail(handle, error);
                }
                Err(error) => {
                    let path = file.path.clone();
                    self.fail(handle, DownloadError::Size { path, size, error });
                }
            }
        }
    }

    fn push(&mut self, handle: &SessionHandle, offset: u64, data: &[u8]) {
        if let Some(run) = self.runs.push(offset, data) {
            self.deliver(handle, run);
        }
    }

    /// Hands on the run held so far, so a stalled stream never holds data back.
    fn flush(&mut self, handle: &SessionHandle) {
        if let Some(run) = self.runs.take() {
            self.deliver(handle, run);
        }
    }

    fn deliver(&mut self, handle: &SessionHandle, (offset, bytes): (u64, Vec<u8>)) {
        let Some(file) = &mut self.direct else {
            let _ = self.to_writer.send(ToWriter::Data { offset, bytes });
            return;
        };
        if !file.failed {
            match write_all_at(&file.file, &bytes, offset) {
                Ok(()) => file
                    .writeback
                    .written(&file.file, offset, bytes.len() as u64),
                Err(error) => {
                    let path = file.path.clone();
                    self.fail(
                        handle,
                        DownloadError::Write {
                            path,
                            offset,
                            error,
                        },
                    );
                }
            }
        }
        let released = handle.complete_receive(offset, bytes.len() as u64);
        debug_assert!(released.is_ok(), "{released:?}");
        self.runs.recycle(bytes);
    }

    fn fail(&mut self, handle: &SessionHandle, error: DownloadError) {
        if let Some(file) = &mut self.direct {
            file.failed = true;
        }
        let _ = self.to_writer.send(ToWriter::Failed(Box::new(error)));
        handle.abort();
    }
}

/// The transport callback: the data path for contents, everything else passed on.
fn session_callback<F>(
    mut data: DataPath,
    reporter: Arc<Reporter<F>>,
) -> impl FnMut(&SessionHandle, Event<'_>) + Send + 'static
where
    F: FnMut(DownloadEvent<'_>) + Send + 'static,
{
    let mut started = None;
    let mut last_stats = None;
    move |handle, event| match event {
        Event::ReceiveContents {
            offset,
            data: bytes,
        } => data.push(handle, offset, bytes),
        Event::SessionStart(info) => {
            started = Some(Instant::now());
            data.start(handle, info.params.content_size);
            reporter.report(DownloadEvent::Transport(event));
        }
        Event::Progress(stats) => {
            data.flush(handle);
            last_stats = Some(stats.clone());
            reporter.report(DownloadEvent::Transport(event));
        }
        Event::SessionComplete(result) => {
            data.flush(handle);
            let _ = data.to_writer.send(ToWriter::Done(Box::new(Done {
                result: result.clone(),
                last_stats: last_stats.take(),
                started,
            })));
        }
        _ => reporter.report(DownloadEvent::Transport(event)),
    }
}

/// What the writer thread writes to.
enum WriterSink {
    File(PartialFile),
    Stream(Box<InOrder<Box<dyn Write + Send>>>),
}

/// The writer thread: owns the output and the session until the download is over.
struct Writer<F> {
    sink: WriterSink,
    options: DownloadOptions,
    from_session: Receiver<ToWriter>,
    session: Session,
    shared: Arc<Shared>,
    reporter: Arc<Reporter<F>>,
}

impl<F: FnMut(DownloadEvent<'_>) + Send + 'static> Writer<F> {
    fn run(self) {
        let Writer {
            sink,
            options,
            from_session,
            session,
            shared,
            reporter,
        } = self;
        // Published if this thread panics, so waiters are never left hanging; the partial
        // file goes with the unwinding sink.
        let guard = PublishOnPanic {
            shared: Arc::clone(&shared),
            reporter: Arc::clone(&reporter),
        };
        let mut sink = sink;
        let handle = session.handle();
        let mut output_error = None;
        let mut transport_ended = None;
        let (result, stats, started) = loop {
            let deadline = shared
                .cancel_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .map(|at| at + CANCEL_GRACE);
            let wait = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => WRITER_TICK,
            };
            if deadline.is_some() && wait.is_zero() {
                let error = DownloadError::CancelUnconfirmed {
                    grace: CANCEL_GRACE,
                };
                break (Err(error), None, None);
            }
            match from_session.recv_timeout(wait.min(WRITER_TICK)) {
                Ok(ToWriter::Started { size }) => sink.started(size),
                Ok(ToWriter::Data { offset, bytes }) => {
                    if output_error.is_some() {
                        let _ = handle.complete_receive(offset, bytes.len() as u64);
                    } else if let Err(e) = sink.accept(offset, bytes, &handle) {
                        output_error = Some(e);
                        handle.abort();
                    }
                }
                Ok(ToWriter::Failed(e)) => {
                    output_error.get_or_insert(*e);
                }
                Ok(ToWriter::Done(done)) => {
                    transport_ended = Some(Instant::now());
                    let Done {
                        result,
                        last_stats,
                        started,
                    } = *done;
                    let stats = match &result {
                        Ok(stats) => Some(stats.clone()),
                        Err(_) => last_stats,
                    };
                    break (result.map_err(DownloadError::from), stats, started);
                }
                Err(RecvTimeoutError::Timeout) => {}
                // The callback is gone without a completion: the session's thread panicked.
                Err(RecvTimeoutError::Disconnected) => {
                    let error = match session.status() {
                        Status::Failure(e) => DownloadError::Transport(e),
                        _ => DownloadError::WriterStopped,
                    };
                    break (Err(error), None, None);
                }
            }
        };
        let ended = match output_error {
            Some(error) => Err(error),
            None => result.map(|_| ()),
        };
        let (result, kept_partial) = conclude(sink, ended, &options);
        let outcome = Arc::new(Outcome {
            result,
            stats,
            elapsed: started.map(|s| s.elapsed()).unwrap_or_default(),
            finishing: transport_ended.map(|t| t.elapsed()).unwrap_or_default(),
            kept_partial,
        });
        drop(guard);
        publish(&shared, &reporter, outcome);
        session.close();
    }
}

/// Wakes waiters with the outcome, then reports it to the callback. Waiters come first: a
/// callback stuck in an earlier event (which is also what keeps a cancelled session from
/// confirming) must not hold the outcome back from them.
fn publish<F: FnMut(DownloadEvent<'_>)>(
    shared: &Shared,
    reporter: &Reporter<F>,
    outcome: Arc<Outcome>,
) {
    *shared.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&outcome));
    shared.done.notify_all();
    reporter.report(DownloadEvent::Finished(&outcome));
}

struct PublishOnPanic<F: FnMut(DownloadEvent<'_>)> {
    shared: Arc<Shared>,
    reporter: Arc<Reporter<F>>,
}

impl<F: FnMut(DownloadEvent<'_>)> Drop for PublishOnPanic<F> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let outcome = Arc::new(Outcome {
            result: Err(DownloadError::WriterStopped),
            stats: None,
            elapsed: Duration::ZERO,
            finishing: Duration::ZERO,
            kept_partial: None,
        });
        publish(&self.shared, &self.reporter, outcome);
        self.shared.session.cancel();
    }
}

impl WriterSink {
    fn started(&mut self, size: u64) {
        if let WriterSink::Stream(stream) = self {
            stream.expect(size);
        }
    }

    /// Stores one run of a stream output and releases it from the transport's cache.
    fn accept(
        &mut self,
        offset: u64,
        bytes: Vec<u8>,
        handle: &SessionHandle,
    ) -> Result<(), DownloadError> {
        match self {
            WriterSink::Stream(stream) => stream.accept(offset, bytes, &mut |o, l| {
                let released = handle.complete_receive(o, l);
                debug_assert!(released.is_ok(), "{released:?}");
            }),
            // File runs are written on the session's thread and never queued.
            WriterSink::File(_) => Ok(()),
        }
    }
}

/// Ends the output: on success verifies, syncs and renames it into place (or flushes the
/// stream); on failure keeps the partial file if asked to (never after a SHA-256 mismatch) or
/// removes it. Returns the result and where partial data was kept.
fn conclude(
    sink: WriterSink,
    ended: Result<(), DownloadError>,
    options: &DownloadOptions,
) -> (Result<Saved, DownloadError>, Option<PathBuf>) {
    let check = |actual: [u8; 32], streamed| match options.sha256 {
        Some(expected) if expected != actual => Err(DownloadError::Integrity {
            expected,
            actual,
            streamed,
        }),
        _ => Ok(()),
    };
    match sink {
        WriterSink::Stream(mut stream) => {
            let result = ended.and_then(|()| check(stream.finish()?, true));
            (result.map(|()| Saved::Stream), None)
        }
        WriterSink::File(partial) => {
            let verified = ended.and_then(|()| {
                partial.sync()?;
                match options.sha256 {
                    Some(_) => check(partial.sha256()?, false),
                    None => Ok(()),
                }
            });
            let (error, partial) = match verified {
                Ok(()) => match partial.persist(options.replace_existing) {
                    Ok(path) => return (Ok(Saved::File(path)), None),
                    Err(failed) => *failed,
                },
                Err(error) => (error, partial),
            };
            let keep = options.keep_partial && !matches!(error, DownloadError::Integrity { .. });
            // Not kept: dropping `partial` removes the file.
            (Err(error), if keep { partial.keep() } else { None })
        }
    }
}
