//! The transport API over real loopback multicast against the reference server.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestServer, content};
use wdsmc::transport::{Event, Request, Session, Stats, Status, TransportError};

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
    let handle_slot: Arc<Mutex<Option<wdsmc::transport::SessionHandle>>> = Arc::default();
    let handle_for_cb = Arc::clone(&handle_slot);
    let session = Session::start(request, move |event| {
        let mut seen = sink.lock().unwrap();
        match event {
            Event::SessionStart(info) => seen.events.push(format!("start {}", info.content_size)),
            Event::ReceiveContents { offset, data } => {
                let at = offset as usize;
                seen.data[at..at + data.len()].copy_from_slice(data);
                if let Some(h) = handle_for_cb.lock().unwrap().as_ref() {
                    h.complete_receive(offset, data.len() as u64);
                }
            }
            Event::SessionComplete(result) => {
                seen.events.push("complete".into());
                assert!(seen.result.is_none(), "SessionComplete delivered twice");
                seen.result = Some(result.clone());
            }
            Event::Progress(_)
            | Event::Notice(_)
            | Event::Trace { .. }
            | Event::ReceiveMetadata(_) => {
                assert!(seen.result.is_none(), "event after SessionComplete");
            }
        }
    })
    .expect("session starts");
    *handle_slot.lock().unwrap() = Some(session.handle());
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
    assert_eq!(
        seen.events.first().map(String::as_str),
        Some("start 3000123")
    );
    assert_eq!(seen.events.last().map(String::as_str), Some("complete"));
}
