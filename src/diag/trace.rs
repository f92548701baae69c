//! Reading back a `--trace` file: per object, how long each phase took, what was lost and
//! repaired, and why the session ended.
//!
//! A trace line is `TIME LABEL send|recv PEER SUMMARY` (one per datagram or RPC PDU), and the
//! last line of an object is `TIME LABEL end exit=N MESSAGE`. Lines that do not parse are
//! counted and skipped, so a truncated file still summarizes.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// One object's summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceSummary {
    pub label: String,
    /// Time of the first and last line.
    pub first: Option<SystemTime>,
    pub last: Option<SystemTime>,
    /// Initiation (first MSI request or RPC PDU sent to its answer), JOIN to JOINACK,
    /// JOINACK to first data, first data to the LEAVE (or the last data).
    pub initiation: Option<Duration>,
    pub join: Option<Duration>,
    pub first_data: Option<Duration>,
    pub transfer: Option<Duration>,
    pub rpc: bool,
    pub msi_requests: u64,
    pub joins: u64,
    pub odata: u64,
    pub rdata: u64,
    /// Distinct blocks in DATA packets received.
    pub blocks: u64,
    pub ncf: u64,
    pub spm: u64,
    pub nacks: u64,
    /// Sequence numbers the NACKs asked for (counting repeats).
    pub nacked: u64,
    pub acks: u64,
    /// Highest ODATA sequence number received.
    pub highest_seq: Option<u64>,
    pub kicks: u64,
    pub leave: Option<String>,
    /// The `end` line: exit status and message.
    pub exit: Option<(i32, String)>,
    pub server_error: Option<String>,
    pub undecodable: u64,
    pub lines: u64,
}

impl TraceSummary {
    /// NACKed sequence numbers over the sequence numbers sent, 0..=1.
    pub fn loss(&self) -> Option<f64> {
        let sent = self.highest_seq? + 1;
        Some((self.nacked as f64 / sent as f64).min(1.0))
    }

    /// Why the session ended, in words.
    pub fn end_reason(&self) -> String {
        if let Some((code, message)) = &self.exit {
            return if *code == 0 {
                "completed (exit 0)".to_string()
            } else {
                format!("exit {code}: {message}")
            };
        }
        if let Some(error) = &self.server_error {
            return format!("the server refused: {error}");
        }
        if let Some(reason) = &self.leave {
            return format!("LEAVE sent, reason {reason}");
        }
        if self.kicks > 0 {
            return "kicked by the server".to_string();
        }
        "the trace stops without a LEAVE (the client was killed, or the file is cut short)"
            .to_string()
    }
}

/// What a whole file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceFile {
    pub objects: Vec<TraceSummary>,
    /// Lines that are not trace lines.
    pub skipped: u64,
}

#[derive(Default)]
struct Times {
    first_send: Option<SystemTime>,
    answered: Option<SystemTime>,
    last_rpc_recv: Option<SystemTime>,
    first_join: Option<SystemTime>,
    joinack: Option<SystemTime>,
    first_data: Option<SystemTime>,
    last_data: Option<SystemTime>,
    leave: Option<SystemTime>,
    blocks: std::collections::HashSet<u64>,
}

/// Reads a trace.
pub fn summarize(reader: impl BufRead) -> std::io::Result<TraceFile> {
    let mut objects: BTreeMap<String, (usize, TraceSummary, Times)> = BTreeMap::new();
    let mut skipped = 0;
    for line in reader.lines() {
        let line = line?;
        let Some(parsed) = parse_line(&line) else {
            if !line.trim().is_empty() {
                skipped += 1;
            }
            continue;
        };
        let order = objects.len();
        let (_, s, t) = objects.entry(parsed.label.to_string()).or_insert_with(|| {
            (
                order,
                TraceSummary {
                    label: parsed.label.to_string(),
                    ..TraceSummary::default()
                },
                Times::default(),
            )
        });
        s.lines += 1;
        s.first.get_or_insert(parsed.time);
        s.last = Some(parsed.time);
        let time = parsed.time;
        let mut words = parsed.summary.split_whitespace();
        let kind = words.next().unwrap_or("");
        match (parsed.direction, kind) {
            (Direction::End, _) => {
                let code = parsed
                    .summary
                    .strip_prefix("exit=")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|c| c.parse::<i32>().ok())
                    .unwrap_or(1);
                let message = parsed
                    .summary
                    .split_once(' ')
                    .map_or("", |(_, m)| m)
                    .to_string();
                s.exit = Some((code, message));
            }
            (Direction::Send, "MSI") => {
                s.msi_requests += 1;
                t.first_send.get_or_insert(time);
            }
            (Direction::Recv, "MSI") => {
                if parsed.summary.starts_with("MSI ERROR") {
                    s.server_error = Some(parsed.summary.to_string());
                }
                t.answered.get_or_insert(time);
            }
            (direction, "RPC") => {
                s.rpc = true;
                if parsed.summary.starts_with("RPC fault")
                    || parsed.summary.starts_with("RPC bind_nak")
                {
                    s.server_error = Some(parsed.summary.to_string());
                }
                match direction {
                    Direction::Send => {
                        t.first_send.get_or_insert(time);
                    }
                    _ => t.last_rpc_recv = Some(time),
                }
            }
            (Direction::Send, "JOIN") => {
                s.joins += 1;
                t.first_join.get_or_insert(time);
            }
            (Direction::Recv, "JOINACK") => {
                t.joinack.get_or_insert(time);
            }
            (Direction::Recv, "ODATA" | "RDATA") => {
                if kind == "ODATA" {
                    s.odata += 1;
                    if let Some(seq) = field(parsed.summary, "seq=").and_then(|v| v.parse().ok()) {
                        s.highest_seq = Some(s.highest_seq.map_or(seq, |h: u64| h.max(seq)));
                    }
                } else {
                    s.rdata += 1;
                }
                if let Some(block) = field(parsed.summary, "block=").and_then(|v| v.parse().ok()) {
                    t.blocks.insert(block);
                }
                t.first_data.get_or_insert(time);
                t.last_data = Some(time);
            }
            (Direction::Recv, "NCF") => s.ncf += 1,
            (Direction::Recv, "SPM") => s.spm += 1,
            (Direction::Recv, "KICK") => s.kicks += 1,
            (Direction::Send, "NACK") => {
                s.nacks += 1;
                s.nacked += nacked(parsed.summary);
            }
            (Direction::Send, "ACK") => s.acks += 1,
            (Direction::Send, "LEAVE") => {
                s.leave = field(parsed.summary, "reason=").map(str::to_string);
                t.leave = Some(time);
            }
            (_, "undecodable") => s.undecodable += 1,
            _ => {}
        }
    }
    let mut list: Vec<(usize, TraceSummary)> = objects
        .into_values()
        .map(|(order, mut s, t)| {
            let between = |a: Option<SystemTime>, b: Option<SystemTime>| {
                a.zip(b).and_then(|(a, b)| b.duration_since(a).ok())
            };
            let answered = if s.rpc {
                // The last RPC PDU received before the first JOIN closes the initiation.
                t.last_rpc_recv.or(t.answered)
            } else {
                t.answered
            };
            s.initiation = between(t.first_send, answered);
            s.join = between(t.first_join, t.joinack);
            s.first_data = between(t.joinack, t.first_data);
            s.transfer = between(t.first_data, t.leave.or(t.last_data));
            s.blocks = t.blocks.len() as u64;
            (order, s)
        })
        .collect();
    list.sort_by_key(|(order, _)| *order);
    Ok(TraceFile {
        objects: list.into_iter().map(|(_, s)| s).collect(),
        skipped,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Send,
    Recv,
    End,
}

struct Line<'a> {
    time: SystemTime,
    label: &'a str,
    direction: Direction,
    summary: &'a str,
}

fn parse_line(line: &str) -> Option<Line<'_>> {
    let (time, rest) = line.split_once(' ')?;
    let time = humantime::parse_rfc3339_weak(time.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(time))
        .ok()?;
    // The label may hold spaces: the direction is the first `send`/`recv` followed by a
    // socket address, or `end` followed by `exit=`.
    let mut offset = 0;
    for word in rest.split(' ') {
        let after = &rest[(offset + word.len()).min(rest.len())..];
        let after = after.strip_prefix(' ').unwrap_or(after);
        let label = rest[..offset].trim_end();
        match word {
            "send" | "recv" if !label.is_empty() => {
                if let Some((peer, summary)) = after.split_once(' ')
                    && peer.parse::<SocketAddr>().is_ok()
                {
                    return Some(Line {
                        time,
                        label,
                        direction: if word == "send" {
                            Direction::Send
                        } else {
                            Direction::Recv
                        },
                        summary,
                    });
                }
            }
            "end" if !label.is_empty() && after.starts_with("exit=") => {
                return Some(Line {
                    time,
                    label,
                    direction: Direction::End,
                    summary: after,
                });
            }
            _ => {}
        }
        offset += word.len() + 1;
    }
    None
}

/// The value after `key` up to the next space.
fn field<'a>(summary: &'a str, key: &str) -> Option<&'a str> {
    let at = summary.find(&format!(" {key}"))? + 1 + key.len();
    summary[at..].split([' ', ',', ']']).next()
}

/// Sequence numbers in a NACK's `ranges=[a-b, c-d]`.
fn nacked(summary: &str) -> u64 {
    let Some(start) = summary.find("ranges=[") else {
        return 0;
    };
    let list = &summary[start + "ranges=[".len()..];
    let list = list.split(']').next().unwrap_or("");
    list.split(',')
        .filter_map(|r| {
            let (a, b) = r.trim().split_once('-')?;
            let (a, b) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
            (b >= a).then(|| b - a + 1)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "\
2026-01-01T00:00:00.000000Z my image.wim send 10.0.0.1:5041 MSI REQUEST namespace=\"ns\" content=\"my image.wim\" ipv6_capable=None
2026-01-01T00:00:00.010000Z my image.wim recv 10.0.0.1:5041 MSI REPLY group=239.1.1.1:40000 server=10.0.0.1:40000 size=3 block_size=1 blocks=3 session=0x00000001
2026-01-01T00:00:00.020000Z my image.wim send 10.0.0.1:40000 JOIN session=0x00000001 time=0 name=\"x\" ip=10.0.0.2 caps=None
2026-01-01T00:00:00.025000Z my image.wim recv 10.0.0.1:40000 JOINACK session=0x00000001 time=1 client=1 nack_backoff=1..2 rtt=0
2026-01-01T00:00:00.100000Z my image.wim recv 10.0.0.1:40000 ODATA session=0x00000001 time=2 client=1 seq=0 trail=0 DATA block=1 len=1
2026-01-01T00:00:00.110000Z my image.wim recv 10.0.0.1:40000 ODATA session=0x00000001 time=2 client=1 seq=2 trail=0 DATA block=3 len=1
2026-01-01T00:00:00.120000Z my image.wim send 10.0.0.1:40000 NACK session=0x00000001 time=3 client=1 hi=2 ranges=[1-1]
2026-01-01T00:00:00.130000Z my image.wim recv 10.0.0.1:40000 NCF session=0x00000001 time=3 ranges=[1-1]
2026-01-01T00:00:00.140000Z my image.wim recv 10.0.0.1:40000 RDATA session=0x00000001 time=3 client=1 seq=1 trail=0 DATA block=2 len=1
2026-01-01T00:00:00.600000Z my image.wim send 10.0.0.1:40000 LEAVE session=0x00000001 time=4 client=1 reason=COMPLETE
2026-01-01T00:00:00.610000Z my image.wim end exit=0 ok
not a trace line
";

    #[test]
    fn phases_loss_repairs_and_the_end_are_read_back() {
        let file = summarize(TRACE.as_bytes()).unwrap();
        assert_eq!(file.skipped, 1);
        let s = &file.objects[0];
        assert_eq!(s.label, "my image.wim");
        assert_eq!(s.initiation, Some(Duration::from_millis(10)));
        assert_eq!(s.join, Some(Duration::from_millis(5)));
        assert_eq!(s.first_data, Some(Duration::from_millis(75)));
        assert_eq!(s.transfer, Some(Duration::from_millis(500)));
        assert_eq!(
            (s.odata, s.rdata, s.ncf, s.nacks, s.nacked),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(s.blocks, 3);
        assert_eq!(s.leave.as_deref(), Some("COMPLETE"));
        assert!((s.loss().unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.end_reason(), "completed (exit 0)");
    }

    #[test]
    fn a_cut_trace_says_so() {
        let cut: String = TRACE.lines().take(5).collect::<Vec<_>>().join("\n");
        let file = summarize(cut.as_bytes()).unwrap();
        assert!(file.objects[0].end_reason().contains("without a LEAVE"));
    }
}
