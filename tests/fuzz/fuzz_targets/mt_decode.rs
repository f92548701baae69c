#![no_main]
//! MS-WDSMT decoder: never panics; whatever decodes re-encodes to an equal packet. The input
//! is tried as is and with a valid checksum patched in, so the body decoders are reached.

use libfuzzer_sys::fuzz_target;
use wdsmc::wire::mt::{Packet, checksum};

fn check(bytes: &[u8]) {
    if let Ok(packet) = Packet::decode(bytes) {
        let again = packet.encode();
        assert_eq!(Packet::decode(&again).expect("re-encoded packet decodes"), packet);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut patched = vec![b'W', b'D', 3, 0, 4, 0, 0, 0, 0];
    patched.extend_from_slice(data);
    let sum = checksum(&patched[9..]);
    patched[5..9].copy_from_slice(&sum.to_be_bytes());
    check(&patched);
});
