//! The download engine on its own (no CLI): a file, a folder and a `Write` sink against the
//! reference server over loopback multicast, and a failure at each stage (before the network,
//! at initiation, mid-transfer, at verification, at the rename, a cancel, a cancel the session
//! cannot confirm, a panicking callback), each leaving nothing under the final name.

mod common;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestServer, content};
use sha2::{Digest, Sha256};
use wdsmc::download::{
    CANCEL_GRACE, Destination, Download, DownloadError, DownloadEvent, DownloadOptions, Outcome,
    Output, Saved,
};
use wdsmc::transport::{Event, InterfaceSpec, Request, TransportError};

fn request(server: &TestServer, object: &str) -> Request {
    let mut request = Request::new(server.addr(), "ns", object);
    request.interface = Some(InterfaceSpec::Address(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    request.timeouts.initiation = Duration::from_secs(10);
    request.timeouts.inactivity = Duration::from_secs(10);
    request.seed = Some(7);
    request
}

/// Runs a download to its end and returns its outcome and every event name it reported.
fn run(request: Request, output: Output) -> (Arc<Outcome>, Vec<String>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let names = Arc::clone(&seen);
    let (finished_tx, finished_rx) = std::sync::mpsc::channel();
    let download = Download::start(request, output, move |event| {
        names.lock().unwrap().push(name(&event));
        if let DownloadEvent::Finished(_) = event {
            let _ = finished_tx.send(());
        }
    })
    .expect("download starts");
    let outcome = download
        .wait(Some(Duration::from_secs(60)))
        .expect("the download finishes");
    download.close();
    finished_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("Finished reaches the callback");
    let seen = seen.lock().unwrap().clone();
    (outcome, seen)
}

fn name(event: &DownloadEvent<'_>) -> String {
    match event {
        DownloadEvent::Transport(Event::SessionStart(_)) => "start".into(),
        DownloadEvent::Transport(Event::Progress(_)) => "progress".into(),
        DownloadEvent::Transport(_) => "other".into(),
        DownloadEvent::Finished(_) => "finished".into(),
    }
}

/// The folder holds exactly `names` (no partial or stray file).
fn assert_folder_holds(folder: &Path, names: &[&str]) {
    let mut found: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "files in {}", folder.display());
}

fn options() -> DownloadOptions {
    DownloadOptions::default()
}

#[test]
fn a_file_destination_is_byte_exact_and_renamed_into_place() {
    let server = TestServer::start(20, |_| {});
    let bytes = content(2_500_000 + 17, 20);
    server.put("a.bin", &bytes);
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("copy.bin");
    let mut opts = options();
    opts.sha256 = Some(Sha256::digest(&bytes).into());
    let output = Output::create(Destination::File(target.clone()), "a.bin", opts).unwrap();
    let partial = output.partial_path().unwrap().to_path_buf();
    assert!(partial.exists() && !target.exists());
    let (outcome, events) = run(request(&server, "a.bin"), output);
    assert_eq!(
        outcome.result.as_ref().ok(),
        Some(&Saved::File(target.clone()))
    );
    assert!(std::fs::read(&target).unwrap() == bytes, "file differs");
    // The SHA-256 read-back and the sync happen after the last block, inside the elapsed time.
    assert!(
        !outcome.finishing.is_zero() && outcome.finishing <= outcome.elapsed,
        "{:?} of {:?}",
        outcome.finishing,
        outcome.elapsed
    );
    assert_folder_holds(out.path(), &["copy.bin"]);
    assert_eq!(events.first().map(String::as_str), Some("start"));
    assert_eq!(events.last().map(String::as_str), Some("finished"));
    assert_eq!(events.iter().filter(|e| *e == "finished").count(), 1);
    let stats = outcome.stats.as_ref().unwrap();
    assert_eq!(stats.bytes_received, bytes.len() as u64);
}

#[test]
fn a_folder_destination_gets_the_default_name_and_is_created() {
    let server = TestServer::start(21, |_| {});
    let bytes = content(300_000, 21);
    server.put("con.wim", &bytes);
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("new").join("folder");
    let output = Output::create(
        Destination::Folder(folder.clone()),
        "images/con.wim",
        options(),
    )
    .unwrap();
    // Windows device names are never used as file names.
    assert_eq!(output.target(), Some(folder.join("_con.wim").as_path()));
    let mut req = request(&server, "con.wim");
    req.object = "con.wim".into();
    let (outcome, _) = run(req, output);
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(std::fs::read(folder.join("_con.wim")).unwrap() == bytes);
    assert_folder_holds(&folder, &["_con.wim"]);
}

/// A `Write` sink that keeps what it gets, and can fail after some bytes.
#[derive(Clone, Default)]
struct Sink {
    bytes: Arc<Mutex<Vec<u8>>>,
    fail_after: Option<usize>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = self.bytes.lock().unwrap();
        if self
            .fail_after
            .is_some_and(|limit| bytes.len() + buf.len() > limit)
        {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "reader went away",
            ));
        }
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_write_sink_gets_the_object_in_order_with_a_small_cache() {
    let server = TestServer::start(22, |_| {});
    let bytes = content(1_200_000 + 5, 22);
    server.put("s.bin", &bytes);
    let sink = Sink::default();
    let mut opts = options();
    opts.sha256 = Some(Sha256::digest(&bytes).into());
    let output =
        Output::create(Destination::Stream(Box::new(sink.clone())), "s.bin", opts).unwrap();
    assert_eq!(output.target(), None);
    let mut req = request(&server, "s.bin");
    req.cache_size = 64 * 1024;
    let (outcome, _) = run(req, output);
    assert_eq!(outcome.result.as_ref().ok(), Some(&Saved::Stream));
    assert!(*sink.bytes.lock().unwrap() == bytes, "stream differs");
}

#[test]
fn refusals_before_the_network_leave_no_file() {
    let out = tempfile::tempdir().unwrap();
    let existing = out.path().join("keep.bin");
    std::fs::write(&existing, b"keep me").unwrap();
    let refused = Output::create(Destination::File(existing.clone()), "x", options());
    assert!(matches!(refused, Err(DownloadError::TargetExists { .. })));
    let folder = Output::create(Destination::File(out.path().to_path_buf()), "x", options());
    assert!(matches!(folder, Err(DownloadError::TargetIsFolder { .. })));
    let nameless = Output::create(
        Destination::Folder(out.path().to_path_buf()),
        "..",
        options(),
    );
    assert!(matches!(nameless, Err(DownloadError::NoFileName { .. })));
    let missing = out.path().join("no").join("such").join("f.bin");
    let unwritable = Output::create(Destination::File(missing), "x", options());
    assert!(matches!(
        unwritable,
        Err(DownloadError::CreatePartial { .. })
    ));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    assert_folder_holds(out.path(), &["keep.bin"]);
    // An invalid request fails at start, and the partial file goes with the output.
    let output =
        Output::create(Destination::File(out.path().join("n.bin")), "x", options()).unwrap();
    let started = Download::start(Request::new("", "ns", "x"), output, |_| {});
    assert!(matches!(
        started,
        Err(DownloadError::Transport(TransportError::InvalidRequest(_)))
    ));
    assert_folder_holds(out.path(), &["keep.bin"]);
}

#[test]
fn a_refused_initiation_leaves_nothing() {
    let server = TestServer::start(23, |_| {});
    let out = tempfile::tempdir().unwrap();
    let output = Output::create(
        Destination::File(out.path().join("m.bin")),
        "m.bin",
        options(),
    )
    .unwrap();
    let (outcome, events) = run(request(&server, "missing.bin"), output);
    assert!(
        matches!(
            outcome.result,
            Err(DownloadError::Transport(TransportError::Refused { .. }))
        ),
        "{:?}",
        outcome.result
    );
    assert_eq!(events, ["finished"]);
    assert_folder_holds(out.path(), &[]);
}

#[test]
fn a_sha256_mismatch_discards_the_data_even_when_asked_to_keep_it() {
    let server = TestServer::start(24, |_| {});
    let bytes = content(200_000, 24);
    server.put("h.bin", &bytes);
    let out = tempfile::tempdir().unwrap();
    let mut opts = options();
    opts.sha256 = Some([0xAB; 32]);
    opts.keep_partial = true;
    let output =
        Output::create(Destination::File(out.path().join("h.bin")), "h.bin", opts).unwrap();
    let (outcome, _) = run(request(&server, "h.bin"), output);
    assert!(matches!(
        outcome.result,
        Err(DownloadError::Integrity {
            streamed: false,
            ..
        })
    ));
    assert_eq!(outcome.kept_partial, None);
    assert_folder_holds(out.path(), &[]);
}

#[test]
fn a_target_that_appears_during_the_download_is_not_replaced() {
    let server = TestServer::start(25, |_| {});
    let bytes = content(400_000, 25);
    server.put("r.bin", &bytes);
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("r.bin");
    let output = Output::create(Destination::File(target.clone()), "r.bin", options()).unwrap();
    // Someone else creates the target once the session has started.
    let intruder = target.clone();
    let download = Download::start(request(&server, "r.bin"), output, move |event| {
        if let DownloadEvent::Transport(Event::SessionStart(_)) = event {
            std::fs::write(&intruder, b"theirs").unwrap();
        }
    })
    .unwrap();
    let outcome = download.wait(Some(Duration::from_secs(60))).unwrap();
    assert!(
        matches!(outcome.result, Err(DownloadError::TargetAppeared { .. })),
        "{:?}",
        outcome.result
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"theirs");
    assert_folder_holds(out.path(), &["r.bin"]);
}

#[test]
fn a_failing_stream_aborts_the_session() {
    let server = TestServer::start(26, |_| {});
    let bytes = content(3_000_000, 26);
    server.put("p.bin", &bytes);
    let sink = Sink {
        fail_after: Some(100_000),
        ..Sink::default()
    };
    let output = Output::create(Destination::Stream(Box::new(sink)), "p.bin", options()).unwrap();
    let (outcome, _) = run(request(&server, "p.bin"), output);
    assert!(
        matches!(outcome.result, Err(DownloadError::StreamWrite { .. })),
        "{:?}",
        outcome.result
    );
}

/// Starts a slow download (a rate-capped server) and cancels it once data flows.
fn cancelled(
    slot: u16,
    keep_partial: bool,
    stall_after_cancel: bool,
) -> (Arc<Outcome>, tempfile::TempDir) {
    let server = TestServer::start(slot, |config| config.max_rate = Some(256 * 1024));
    let bytes = content(4_000_000, u64::from(slot));
    server.put("c.bin", &bytes);
    let out = tempfile::tempdir().unwrap();
    let mut opts = options();
    opts.keep_partial = keep_partial;
    let output =
        Output::create(Destination::File(out.path().join("c.bin")), "c.bin", opts).unwrap();
    let (progress_tx, progress_rx) = std::sync::mpsc::channel();
    let stalled = Arc::new(Mutex::new(false));
    let stall = Arc::clone(&stalled);
    let download = Download::start(request(&server, "c.bin"), output, move |event| {
        if let DownloadEvent::Transport(Event::Progress(stats)) = event {
            if stats.bytes_received > 0 {
                let _ = progress_tx.send(());
                // A session thread stuck in its callback cannot confirm the cancel.
                if stall_after_cancel && *stall.lock().unwrap() {
                    std::thread::sleep(CANCEL_GRACE * 3);
                }
            }
        }
    })
    .unwrap();
    progress_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("data flows");
    *stalled.lock().unwrap() = true;
    let cancelled_at = std::time::Instant::now();
    download.cancel();
    let outcome = download.wait(Some(Duration::from_secs(20))).unwrap();
    assert!(
        cancelled_at.elapsed() < CANCEL_GRACE + Duration::from_secs(1),
        "took {:?}",
        cancelled_at.elapsed()
    );
    (outcome, out)
}

#[test]
fn a_cancel_removes_the_partial_file_or_keeps_it_when_asked() {
    let (outcome, out) = cancelled(27, false, false);
    assert!(
        matches!(
            outcome.result,
            Err(DownloadError::Transport(TransportError::Cancelled))
        ),
        "{:?}",
        outcome.result
    );
    assert_folder_holds(out.path(), &[]);

    let (outcome, out) = cancelled(28, true, false);
    let kept = outcome.kept_partial.clone().expect("partial kept");
    assert!(kept.starts_with(out.path()) && kept.exists());
    assert!(!out.path().join("c.bin").exists());
}

#[test]
fn a_cancel_the_session_cannot_confirm_still_ends_within_the_grace_and_cleans_up() {
    let (outcome, out) = cancelled(29, false, true);
    assert!(
        matches!(outcome.result, Err(DownloadError::CancelUnconfirmed { .. })),
        "{:?}",
        outcome.result
    );
    assert_folder_holds(out.path(), &[]);
}

#[test]
fn a_panicking_callback_ends_the_download_and_removes_the_partial_file() {
    let server = TestServer::start(30, |_| {});
    let bytes = content(2_000_000, 30);
    server.put("x.bin", &bytes);
    let out = tempfile::tempdir().unwrap();
    let output = Output::create(
        Destination::File(out.path().join("x.bin")),
        "x.bin",
        options(),
    )
    .unwrap();
    let download = Download::start(request(&server, "x.bin"), output, |event| {
        if let DownloadEvent::Transport(Event::Progress(_)) = event {
            panic!("consumer bug");
        }
    })
    .unwrap();
    let outcome = download.wait(Some(Duration::from_secs(30))).unwrap();
    assert!(
        matches!(
            outcome.result,
            Err(DownloadError::Transport(TransportError::Internal(_)))
        ),
        "{:?}",
        outcome.result
    );
    assert_folder_holds(out.path(), &[]);
}
