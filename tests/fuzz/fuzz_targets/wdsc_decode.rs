#![no_main]
//! MS-WDSC packet and INITIATE decoders: never panic; whatever decodes re-encodes to a
//! packet that decodes to the same value.

use libfuzzer_sys::fuzz_target;
use wdsmc::wire::wdsc::{InitiateOutcome, InitiateRequest, WdscPacket};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = WdscPacket::decode(data) {
        let again = packet.encode().expect("a decoded packet re-encodes");
        assert_eq!(WdscPacket::decode(&again).expect("re-encoded packet decodes"), packet);
    }
    if let Ok(req) = InitiateRequest::decode(data)
        && req.validate().is_ok()
    {
        let again = req.encode().expect("a valid request encodes");
        assert_eq!(InitiateRequest::decode(&again).expect("re-encoded request decodes"), req);
    }
    if let Ok(InitiateOutcome::Session(reply)) = InitiateOutcome::decode(data) {
        let again = reply.encode();
        assert_eq!(
            InitiateOutcome::decode(&again).expect("re-encoded reply decodes"),
            InitiateOutcome::Session(reply)
        );
    }
});
