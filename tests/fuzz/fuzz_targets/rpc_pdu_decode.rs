#![no_main]
//! DCE/RPC PDU decoder, stream framer and the stubs behind a request: never panic; a decoded
//! PDU without auth data re-encodes to one that decodes to the same body.

use libfuzzer_sys::fuzz_target;
use wdsmc::rpc::frame::Framer;
use wdsmc::rpc::pdu::{self, Body};
use wdsmc::rpc::stub::{self, EptMapResponse};

fuzz_target!(|data: &[u8]| {
    if let Ok(pdu) = pdu::decode(data) {
        if let Body::Request(r) = &pdu.body {
            let _ = stub::decode_message_request(r.stub);
        }
        if let Body::Response(r) = &pdu.body {
            let _ = stub::decode_message_response(r.stub);
            let _ = EptMapResponse::decode(r.stub);
        }
        if pdu.auth.is_none() {
            let again = pdu::encode(pdu.header.flags, pdu.header.call_id, &pdu.body, None)
                .expect("a decoded PDU re-encodes");
            let decoded = pdu::decode(&again).expect("re-encoded PDU decodes");
            assert_eq!(decoded.body, pdu.body);
        }
    }
    // The same bytes as a stream, cut into pieces whose sizes the input chooses.
    let [max, rest @ ..] = data else { return };
    let max = 16 + u16::from(*max) * 16;
    let mut framer = Framer::new(max);
    for piece in rest.chunks(usize::from(rest.first().copied().unwrap_or(1)).max(1)) {
        let mut input = piece;
        while !input.is_empty() {
            match framer.feed(&mut input) {
                Ok(Some(p)) => {
                    assert!(p.len() >= 16 && p.len() <= usize::from(max));
                    let _ = pdu::decode(&p);
                }
                Ok(None) => {}
                Err(_) => return,
            }
            assert!(framer.buffered() <= usize::from(max));
        }
    }
});
