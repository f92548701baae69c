//! Splits a fuzz input into a sequence of steps for the state-machine targets.
//!
//! Record layout: one control byte, then for a datagram a u16 little-endian length and that
//! many bytes (cut short at the end of the input). Control byte:
//! * low two bits 0: a time step of `(control >> 2)` squared milliseconds, so both tiny steps
//!   and jumps past every timeout are reachable;
//! * otherwise a datagram; bit 7 set patches a valid MT security header (checksum mode), the
//!   session's id and a valid checksum in, so the bytes get past the header checks; bits 2..=3
//!   pick which peer address it comes from.

use std::time::Duration;

use wdsmc::wire::mt::checksum;

pub enum Step {
    Wait(Duration),
    Datagram { peer: usize, bytes: Vec<u8> },
}

/// Offset of SessionId: "WD", type, SecurityDataLen u16, 4 checksum bytes.
const SESSION_ID_AT: usize = 9;
/// Security header plus session header.
const HEADERS_LEN: usize = SESSION_ID_AT + 13;

pub fn steps(mut data: &[u8], session_id: u32) -> Vec<Step> {
    let mut out = Vec::new();
    while let Some((&control, rest)) = data.split_first() {
        data = rest;
        if control & 3 == 0 {
            let ms = u64::from(control >> 2);
            out.push(Step::Wait(Duration::from_millis(ms * ms)));
            continue;
        }
        let len = match data {
            [a, b, rest @ ..] => {
                data = rest;
                usize::from(u16::from_le_bytes([*a, *b]))
            }
            _ => {
                data = &[];
                0
            }
        };
        let take = len.min(data.len());
        let mut bytes = data[..take].to_vec();
        data = &data[take..];
        if control & 0x80 != 0 {
            patch_header(&mut bytes, session_id);
        }
        out.push(Step::Datagram {
            peer: usize::from((control >> 2) & 3),
            bytes,
        });
    }
    out
}

/// Makes `bytes` a checksummed MT packet of session `session_id`, keeping its OpCode,
/// SenderTime and body.
fn patch_header(bytes: &mut Vec<u8>, session_id: u32) {
    if bytes.len() < HEADERS_LEN {
        bytes.resize(HEADERS_LEN, 0);
    }
    bytes[..5].copy_from_slice(&[b'W', b'D', 3, 0, 4]);
    bytes[SESSION_ID_AT..SESSION_ID_AT + 4].copy_from_slice(&session_id.to_be_bytes());
    // Map the OpCode byte onto the 15 defined ones.
    bytes[SESSION_ID_AT + 4] = bytes[SESSION_ID_AT + 4] % 15 + 1;
    let sum = checksum(&bytes[SESSION_ID_AT..]);
    bytes[5..9].copy_from_slice(&sum.to_be_bytes());
}
