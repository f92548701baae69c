//! DNS SRV look-ups (RFC 2782) for locating KDCs (`_kerberos._tcp.REALM`): the query and
//! answer codec are pure; [`lookup_srv`] asks the first name servers of `/etc/resolv.conf`
//! over UDP, or on Windows the system resolver (DnsQuery_W).

// On Windows the system resolver does the work; the codec and the UDP exchange serve Unix
// (and the tests).
#![cfg_attr(windows, allow(dead_code))]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;

/// A recursive query for the SRV records of `name`.
pub fn encode_query(id: u16, name: &str) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&TYPE_SRV.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Some(q)
}

/// A (possibly compressed) name at `at`; returns it and the offset after it in place.
fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *msg.get(at)? as usize;
        match len {
            0 => {
                return Some((labels.join("."), end.unwrap_or(at + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let ptr = ((l & 0x3f) << 8) | *msg.get(at + 1)? as usize;
                end.get_or_insert(at + 2);
                at = ptr;
            }
            l if l < 64 => {
                let label = msg.get(at + 1..at + 1 + l)?;
                labels.push(String::from_utf8_lossy(label).into_owned());
                at += 1 + l;
            }
            _ => return None,
        }
    }
    None
}

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

/// The SRV records of an answer to query `id`, ordered by priority then weight (heaviest
/// first); `None` if the answer is not one.
pub fn decode_answer(id: u16, msg: &[u8]) -> Option<Vec<Srv>> {
    if u16_at(msg, 0)? != id || msg.get(2)? & 0x80 == 0 {
        return None;
    }
    if msg.get(3)? & 0x0f != 0 {
        return Some(Vec::new());
    }
    let questions = u16_at(msg, 4)?;
    let answers = u16_at(msg, 6)?;
    let mut at = 12;
    for _ in 0..questions {
        at = read_name(msg, at)?.1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        at = read_name(msg, at)?.1;
        let rtype = u16_at(msg, at)?;
        let rdlen = usize::from(u16_at(msg, at + 8)?);
        let rdata = at + 10;
        if rtype == TYPE_SRV && rdlen >= 7 {
            let (target, _) = read_name(msg, rdata + 6)?;
            out.push(Srv {
                priority: u16_at(msg, rdata)?,
                weight: u16_at(msg, rdata + 2)?,
                port: u16_at(msg, rdata + 4)?,
                target,
            });
        }
        at = rdata + rdlen;
    }
    // "." as the target means the service is not offered.
    out.retain(|s| !s.target.is_empty());
    out.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
    Some(out)
}

/// The name servers of `/etc/resolv.conf` (at most three, as the resolver uses).
#[cfg(not(windows))]
fn name_servers() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .take(3)
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Looks up the SRV records of `name` within `deadline`: from the name servers of
/// `/etc/resolv.conf`, or on Windows through the system resolver.
pub fn lookup_srv(name: &str, deadline: Instant) -> Vec<Srv> {
    #[cfg(windows)]
    {
        let _ = deadline;
        system_srv(name)
    }
    #[cfg(not(windows))]
    {
        lookup_srv_at(&name_servers(), name, deadline)
    }
}

/// Asks each of `servers` in turn over UDP.
pub fn lookup_srv_at(servers: &[SocketAddr], name: &str, deadline: Instant) -> Vec<Srv> {
    use rand::TryRngCore;
    // An unpredictable id, so a spoofed answer must guess it.
    let id = rand::rngs::OsRng.try_next_u32().unwrap_or(0x5a5a) as u16;
    let Some(query) = encode_query(id, name) else {
        return Vec::new();
    };
    for &server in servers {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let bind: SocketAddr = if server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(socket) = UdpSocket::bind(bind) else {
            continue;
        };
        if socket.connect(server).is_err() || socket.send(&query).is_err() {
            continue;
        }
        let _ = socket.set_read_timeout(Some(left.min(Duration::from_secs(2))));
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            if let Some(records) = decode_answer(id, &buf[..n]) {
                return records;
            }
        }
    }
    Vec::new()
}

/// DnsQuery_W for the SRV records of `name`.
#[cfg(windows)]
fn system_srv(name: &str) -> Vec<Srv> {
    use windows_sys::Win32::NetworkManagement::Dns::{
        DNS_QUERY_STANDARD, DNS_RECORDA, DNS_RECORDW, DNS_TYPE_SRV, DnsFree, DnsFreeRecordList,
        DnsQuery_W,
    };
    let wide: Vec<u16> = name.encode_utf16().chain(Some(0)).collect();
    let mut results: *mut DNS_RECORDA = std::ptr::null_mut();
    // SAFETY: `wide` is NUL-terminated and outlives the call; on success `results` receives
    // a record list that DnsFree releases below.
    let status = unsafe {
        DnsQuery_W(
            wide.as_ptr(),
            DNS_TYPE_SRV,
            DNS_QUERY_STANDARD,
            std::ptr::null_mut(),
            &mut results,
            std::ptr::null_mut(),
        )
    };
    if status != 0 || results.is_null() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut rec = results as *const DNS_RECORDW;
    while !rec.is_null() {
        // SAFETY: `rec` points into the list DnsQuery_W returned (wide records, as asked
        // for with the _W call); it stays valid until DnsFree.
        let r = unsafe { &*rec };
        if r.wType == DNS_TYPE_SRV {
            // SAFETY: for an SRV record the union holds DNS_SRV_DATAW, whose target is a
            // NUL-terminated wide string.
            let srv = unsafe { r.Data.SRV };
            let target = unsafe { wide_string(srv.pNameTarget) };
            out.push(Srv {
                priority: srv.wPriority,
                weight: srv.wWeight,
                port: srv.wPort,
                target,
            });
        }
        rec = r.pNext;
    }
    // SAFETY: `results` came from DnsQuery_W and is freed once.
    unsafe { DnsFree(results as *const core::ffi::c_void, DnsFreeRecordList) };
    out.retain(|s| !s.target.is_empty());
    out.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
    out
}

/// A NUL-terminated UTF-16 string.
///
/// # Safety
/// `p` is null or points to a NUL-terminated UTF-16 string.
#[cfg(windows)]
unsafe fn wide_string(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    // SAFETY: the caller promises a terminating NUL.
    while unsafe { *p.add(len) } != 0 && len < 1024 {
        len += 1;
    }
    // SAFETY: `len` units were just read.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_answer() {
        let q = encode_query(0x1234, "_kerberos._tcp.WDSMC.TEST").unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(q[12], 9);
        assert_eq!(&q[13..22], b"_kerberos");
        // An answer: the question, then two SRV records, the second's target compressed.
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 2;
        let srv = |a: &mut Vec<u8>, prio: u16, weight: u16, port: u16, target: &[u8]| {
            a.extend_from_slice(&[0xc0, 12]);
            a.extend_from_slice(&[0, 33, 0, 1, 0, 0, 0, 60]);
            a.extend_from_slice(&((6 + target.len()) as u16).to_be_bytes());
            a.extend_from_slice(&prio.to_be_bytes());
            a.extend_from_slice(&weight.to_be_bytes());
            a.extend_from_slice(&port.to_be_bytes());
            a.extend_from_slice(target);
        };
        let first = a.len();
        srv(&mut a, 10, 0, 88, b"\x03dc2\x05wdsmc\x04test\x00");
        // dc1 followed by a pointer to "wdsmc.test" in the record above.
        let ptr = (first + 18 + 4) as u8;
        srv(&mut a, 0, 5, 88, &[3, b'd', b'c', b'1', 0xc0, ptr]);
        let got = decode_answer(0x1234, &a).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].target, "dc1.wdsmc.test");
        assert_eq!(
            (got[1].target.as_str(), got[1].port),
            ("dc2.wdsmc.test", 88)
        );
        assert!(decode_answer(0x9999, &a).is_none());
        // NXDOMAIN: no records.
        a[3] = 0x83;
        assert_eq!(decode_answer(0x1234, &a), Some(Vec::new()));
        assert!(encode_query(1, "bad..name").is_none());
    }

    /// A name server on loopback that answers one query with one SRV record.
    #[test]
    fn asks_a_name_server_over_udp() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let answering = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let mut a = buf[..n].to_vec();
            a[2] |= 0x80;
            a[7] = 1;
            a.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 17]);
            a.extend_from_slice(&[0, 0, 0, 0, 0, 88]);
            a.extend_from_slice(b"\x03kdc\x05wdsmc\x04test\x00");
            // A stray datagram with another id first: ignored.
            let mut stray = a.clone();
            stray[0] ^= 0xff;
            server.send_to(&stray, from).unwrap();
            server.send_to(&a, from).unwrap();
        });
        let got = lookup_srv_at(
            &[addr],
            "_kerberos._tcp.WDSMC.TEST",
            Instant::now() + Duration::from_secs(5),
        );
        answering.join().unwrap();
        assert_eq!(
            got,
            vec![Srv {
                priority: 0,
                weight: 0,
                port: 88,
                target: "kdc.wdsmc.test".into()
            }]
        );
    }
}
