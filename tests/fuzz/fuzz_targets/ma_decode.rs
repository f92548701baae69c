#![no_main]
//! MS-WDSMA decoder: never panics; whatever decodes re-encodes to the same bytes.

use libfuzzer_sys::fuzz_target;
use wdsmc::wire::ma::MaPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = MaPacket::decode(data) {
        assert_eq!(packet.encode(), data);
    }
});
