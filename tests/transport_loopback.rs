//! The transport API over real loopback multicast against the reference server.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestServer, content};
use wdsmc::transport::{Event, Request, Session, SessionHandle, Stats, Status, TransportError};

/// What a test consumer saw.
#[derive(Default)]
struct Seen {
    data: Vec<u8>,
    events: Vec<String>,
    result: Option<Result<Stats, TransportError>>,
}

fn request(server: &TestServer, object: &str) -> Request {
    let mut request = Request::new(server.addr(), "ns", object);
    request.timeouts.initiation = Duration::from_secs(10);
    request.timeouts.inactivity = Duration::from_secs(10);
    request.seed = Some(1);
    request
}

/// Starts a session whose consumer copies blocks into memory and completes them at once.
fn start(request: Request, size: usize) -> (Session, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen {
        data: vec![0; size],
        ..Seen::default()
    }));
    let sink = Arc::clone(&seen);
    let session = Session::start(request, move |handle, event| {
        let mut seen = sink.lock().unwrap();
        match event {
            Event::SessionStart(info) => seen
                .events
                .push(format!("start {}", info.params.content_size)),
            Event::ReceiveContents { offset, data } => {
                let at = offset as usize;
                seen.data[at..at + data.len()].copy_from_slice(data);
                handle.complete_receive(offset, data.len() as u64).unwrap();
            }
            Event::SessionComplete(result) => {
                seen.events.push("complete".into());
                assert!(seen.result.is_none(), "SessionComplete delivered twice");
                seen.result = Some(result.clone());
            }
            _ => assert!(seen.result.is_none(), "event after SessionComplete"),
        }
    })
    .expect("session starts");
    (session, seen)
}

#[test]
fn downloads_byte_exact_over_loopback_multicast() {
    let server = TestServer::start(1, |_| {});
    let bytes = content(3_000_000 + 123, 1);
    server.put("big.bin", &bytes);
    let (session, seen) = start(request(&server, "big.bin"), bytes.len());
    let status = session
        .wait(Some(Duration::from_secs(60)))
        .expect("finishes");
    assert_eq!(status, Status::Success, "{:?}", seen.lock().unwrap().result);
    let seen = seen.lock().unwrap();
    assert!(seen.data == bytes, "downloaded bytes differ");
    let stats = seen.result.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(stats.bytes_received, bytes.len() as u64);
    // The only client is the master for most of the transfer.
    assert!(stats.time_as_master > Duration::ZERO, "{stats:?}");
    assert_eq!(stats.checksum_drops, 0);
    assert_eq!(
        seen.events.first().map(String::as_str),
        Some("start 3000123")
    );
    assert_eq!(seen.events.last().map(String::as_str), Some("complete"));
}

fn observed_request(server: &common::observed::ObservedServer) -> Request {
    let mut request = Request::new(server.msi_addr.to_string(), "ns", "obj");
    request.timeouts.initiation = Duration::from_secs(10);
    request.timeouts.inactivity = Duration::from_secs(10);
    request.seed = Some(2);
    request
}

fn wait_bytes(seen: &Arc<Mutex<Seen>>, at_least: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = seen
            .lock()
            .unwrap()
            .data
            .iter()
            .filter(|&&b| b != 0)
            .count();
        if got >= at_least {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no data arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cancel_sends_leave_cancelled_and_completes_cancelled() {
    use wdsmc::proto::server::{LeaveReason, ServerEvent};
    let bytes = content(2_000_000, 3);
    let server =
        common::observed::ObservedServer::start(bytes.clone(), 8192, 43001, 151, Some(300_000));
    let (session, seen) = start(observed_request(&server), bytes.len());
    wait_bytes(&seen, 10_000);
    session.cancel();
    let status = session
        .wait(Some(Duration::from_secs(10)))
        .expect("cancel completes");
    assert_eq!(status, Status::Failure(TransportError::Cancelled));
    assert!(
        server.wait_for(Duration::from_secs(5), |e| matches!(
            e,
            ServerEvent::ClientLeft {
                reason: LeaveReason::Cancelled,
                ..
            }
        )),
        "the server saw no LEAVE CANCELLED: {:?}",
        server.events.lock().unwrap()
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.events.last().map(String::as_str), Some("complete"));
    assert_eq!(seen.result, Some(Err(TransportError::Cancelled)));
}

#[test]
fn close_does_not_cancel_and_a_closed_handle_cannot_cancel() {
    let bytes = content(1_500_000, 4);
    let server =
        common::observed::ObservedServer::start(bytes.clone(), 8192, 43002, 152, Some(3_000_000));
    let (session, seen) = start(observed_request(&server), bytes.len());
    let handle = session.handle();
    wait_bytes(&seen, 1000);
    session.close();
    // Cancel through a handle of a closed session does nothing.
    handle.cancel();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().result.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "transfer did not finish after close"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = seen.lock().unwrap();
    assert!(matches!(seen.result, Some(Ok(_))), "{:?}", seen.result);
    assert!(seen.data == bytes, "bytes differ after close");
    assert_eq!(seen.events.last().map(String::as_str), Some("complete"));
}

#[test]
fn slow_consumer_with_small_cache_loses_no_data() {
    let server = TestServer::start(2, |_| {});
    let bytes = content(1_000_000 + 7, 5);
    server.put("slow.bin", &bytes);
    let mut req = request(&server, "slow.bin");
    req.cache_size = 64 * 1024;
    req.timeouts.inactivity = Duration::from_secs(20);
    let data = Arc::new(Mutex::new(vec![0u8; bytes.len()]));
    let (to_worker, from_callback) = std::sync::mpsc::channel::<(SessionHandle, u64, Vec<u8>)>();
    let worker_data = Arc::clone(&data);
    // The consumer completes each block a little later, on another thread.
    let worker = std::thread::spawn(move || {
        for (handle, offset, block) in from_callback {
            std::thread::sleep(Duration::from_micros(300));
            let at = offset as usize;
            worker_data.lock().unwrap()[at..at + block.len()].copy_from_slice(&block);
            handle.complete_receive(offset, block.len() as u64).unwrap();
        }
    });
    let completes = Arc::new(Mutex::new(0));
    let completes_cb = Arc::clone(&completes);
    let session = Session::start(req, move |handle, event| match event {
        Event::ReceiveContents { offset, data } => {
            to_worker
                .send((handle.clone(), offset, data.to_vec()))
                .unwrap();
        }
        Event::SessionComplete(_) => *completes_cb.lock().unwrap() += 1,
        _ => {}
    })
    .unwrap();
    let status = session
        .wait(Some(Duration::from_secs(120)))
        .expect("finishes");
    assert_eq!(status, Status::Success);
    drop(session);
    worker.join().unwrap();
    assert!(
        *data.lock().unwrap() == bytes,
        "bytes differ with a slow consumer"
    );
    assert_eq!(
        *completes.lock().unwrap(),
        1,
        "SessionComplete exactly once"
    );
}

#[test]
fn wait_reports_in_progress_then_status_is_final() {
    let bytes = content(600_000, 6);
    let server =
        common::observed::ObservedServer::start(bytes.clone(), 8192, 43003, 153, Some(400_000));
    let (session, _seen) = start(observed_request(&server), bytes.len());
    assert_eq!(session.wait(Some(Duration::from_millis(50))), None);
    assert_eq!(session.status(), Status::InProgress);
    assert_eq!(
        session.wait(Some(Duration::from_secs(30))),
        Some(Status::Success)
    );
    assert_eq!(session.status(), Status::Success);
}

#[test]
fn refusal_and_timeout_name_their_cause() {
    let server = TestServer::start(3, |_| {});
    let mut req = Request::new(server.addr(), "no-such-namespace", "x");
    req.timeouts.initiation = Duration::from_secs(5);
    let (session, _) = start(req, 0);
    match session.wait(Some(Duration::from_secs(10))) {
        Some(Status::Failure(error @ TransportError::Refused { code })) => {
            assert_eq!(code, wdsmc::wire::msi::error_code::NAMESPACE_NOT_FOUND);
            let message = error.to_string();
            assert!(message.contains("NAMESPACE_NOT_FOUND"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Nothing listens on this port: initiation times out.
    let mut req = Request::new("127.0.0.1:43999", "ns", "x");
    req.timeouts.initiation = Duration::from_millis(1500);
    let (session, _) = start(req, 0);
    match session.wait(Some(Duration::from_secs(10))) {
        Some(Status::Failure(TransportError::Timeout { phase, .. })) => {
            assert_eq!(phase, wdsmc::transport::Phase::Initiation)
        }
        other => panic!("expected an initiation timeout, got {other:?}"),
    }

    // A request that cannot be sent is refused at start, before any thread or socket.
    let req = Request::new(" ", "ns", "x");
    assert!(matches!(
        Session::start(req, |_, _| {}),
        Err(TransportError::InvalidRequest(
            wdsmc::transport::RequestError::NoServer
        ))
    ));
}
