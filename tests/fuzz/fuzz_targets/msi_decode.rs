#![no_main]
//! MS-WDSMSI decoder: never panics; whatever decodes re-encodes to an equal packet.

use libfuzzer_sys::fuzz_target;
use wdsmc::wire::msi::MsiPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = MsiPacket::decode(data) {
        let again = packet.encode();
        assert_eq!(MsiPacket::decode(&again).expect("re-encoded packet decodes"), packet);
    }
});
