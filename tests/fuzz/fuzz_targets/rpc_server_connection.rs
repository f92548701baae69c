#![no_main]
//! A server connection (with the toy security provider from the `test-support` feature) fed
//! arbitrary bytes split at arbitrary points, optionally after a genuine bind: it never
//! panics, sends only valid PDUs, and hands up no request larger than its limit.

use libfuzzer_sys::fuzz_target;
use wdsmc::rpc::client::{Client, ClientConfig};
use wdsmc::rpc::pdu::{self, auth_level};
use wdsmc::rpc::server::{Server, ServerConfig, ServerEvent};
use wdsmc::rpc::test_support::{Legs, ToyClient, server_factory};

const SECRET: &[u8] = b"fuzz";
const MAX_REQUEST: usize = 8192;

fn drain(s: &mut Server) {
    while let Some(ev) = s.poll_event() {
        if let ServerEvent::Request { call_id, stub, .. } = ev {
            assert!(stub.len() <= MAX_REQUEST);
            let _ = s.respond(call_id, &stub);
        }
    }
    while let Some(out) = s.poll_transmit() {
        pdu::decode(&out).expect("the server sends only valid PDUs");
    }
}

fuzz_target!(|data: &[u8]| {
    let [knobs, split, rest @ ..] = data else { return };
    let mut server = Server::new(
        ServerConfig {
            allow_unauthenticated: knobs & 1 != 0,
            max_request_size: MAX_REQUEST,
            max_fragments: 64,
            max_xmit_frag: if knobs & 2 != 0 { 160 } else { 4280 },
            min_frag: 64,
            ..ServerConfig::default()
        },
        Some(server_factory(SECRET, [2; 8])),
    );
    // Bits 2-3: start from nothing, or after a real three- or four-leg bind.
    let legs = match (knobs >> 2) & 3 {
        1 => Some(Legs::Three),
        2 => Some(Legs::Four),
        _ => None,
    };
    if let Some(legs) = legs {
        let auth = Box::new(ToyClient::new(SECRET, "fuzz", [1; 8], legs));
        let config = ClientConfig {
            auth_level: auth_level::PKT_PRIVACY,
            min_frag: 64,
            ..ClientConfig::default()
        };
        let mut client = Client::new(config, Some(auth)).expect("toy client starts");
        for _ in 0..4 {
            while let Some(bytes) = client.poll_transmit() {
                server.handle_bytes(&bytes);
            }
            while let Some(bytes) = server.poll_transmit() {
                client.handle_bytes(&bytes);
            }
            while server.poll_event().is_some() {}
        }
    }
    let step = usize::from(*split).max(1);
    for piece in rest.chunks(step) {
        server.handle_bytes(piece);
        drain(&mut server);
    }
    server.handle_eof();
    drain(&mut server);
});
