//! Datagrams laid back to back in one buffer and handed to the kernel together. On Linux a
//! batch costs one `sendmmsg` call instead of one call per datagram, and a run of equal-sized
//! datagrams to the same destination goes down the network stack once as a UDP GSO message
//! (`UDP_SEGMENT`), which the kernel (or the NIC) cuts into the datagrams. Elsewhere each
//! datagram is sent on its own.
//!
//! GSO needs every datagram but the last of a message to have the same size and to fit the
//! path MTU without IP fragmentation. A default 8 KiB block on a 1500-byte LAN does not, so the
//! first GSO message the kernel refuses turns GSO off for the batch's lifetime and is sent one
//! datagram at a time: nothing is lost by trying.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use crate::proto::Transmit;

/// Messages (GSO runs or single datagrams) per batch.
const MAX_MESSAGES: usize = 64;
/// Bytes buffered before a batch is due, so a batch of large blocks stays cache-friendly.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// The kernel's UDP_MAX_SEGMENTS (64 before Linux 6.7, 128 since).
const MAX_GSO_SEGMENTS: usize = 64;
/// A GSO message is one UDP datagram as far as the length fields go: stay under 64 KiB.
const MAX_GSO_BYTES: usize = 65_000;

/// One `sendmmsg` entry: `len` bytes of the buffer from `start`, cut into datagrams of
/// `segment` bytes (the last may be shorter) when it holds more than one: a [`Transmit`]
/// placed in the batch's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message {
    dest: SocketAddr,
    start: usize,
    len: usize,
    segment: usize,
}

impl Message {
    /// Each datagram's byte range in the buffer (an empty datagram is one empty range).
    fn datagrams(&self) -> impl Iterator<Item = (usize, usize)> {
        let end = self.start + self.len;
        let step = self.segment.max(1);
        (self.start..end.max(self.start + 1))
            .step_by(step)
            .map(move |at| (at, (at + step).min(end)))
    }

    #[cfg(target_os = "linux")]
    fn is_gso(&self) -> bool {
        self.len > self.segment
    }
}

/// Datagrams waiting to be sent together; see the module documentation.
pub struct SendBatch {
    buf: Vec<u8>,
    messages: Vec<Message>,
    gso: bool,
    /// Datagrams (not messages) handed over so far.
    datagrams: usize,
}

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub datagrams: usize,
    /// GSO was refused by the kernel during this flush and is now off.
    pub gso_turned_off: bool,
}

impl SendBatch {
    /// A batch that uses GSO when `gso` is set (see [`super::socket::gso_supported`]).
    pub fn new(gso: bool) -> Self {
        Self {
            buf: Vec::with_capacity(MAX_BATCH_BYTES + 70_000),
            messages: Vec::with_capacity(MAX_MESSAGES),
            gso,
            datagrams: 0,
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Whether the batch should be flushed before another datagram is added.
    pub fn is_full(&self) -> bool {
        self.messages.len() >= MAX_MESSAGES || self.buf.len() >= MAX_BATCH_BYTES
    }

    /// Lets `write` append what a machine's `poll_transmit` appends (one datagram, or a run
    /// of equal-sized ones) to the batch's buffer and return its [`Transmit`]; `None`
    /// (nothing to send) or an error must leave the buffer as it was. A driver batches either
    /// machine this way.
    pub fn push<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<Option<Transmit>, E>,
    ) -> Result<Option<Transmit>, E> {
        let start = self.buf.len();
        let transmit = write(&mut self.buf)?;
        match transmit {
            Some(transmit) => {
                // A run the machine cut itself goes out as its datagrams; each may still join
                // a GSO message.
                let end = self.buf.len();
                let run = Transmit {
                    size: end - start,
                    ..transmit
                };
                for (from, to) in run.datagrams() {
                    self.add(transmit.destination, start + from, start + to);
                }
            }
            None => self.buf.truncate(start),
        }
        Ok(transmit)
    }

    /// Adds the datagram at `start..end` of the buffer.
    fn add(&mut self, dest: SocketAddr, start: usize, end: usize) {
        let len = end - start;
        self.datagrams += 1;
        if self.gso && len > 0 {
            if let Some(last) = self.messages.last_mut() {
                let open = last.segment > 0 && last.len % last.segment == 0;
                if open
                    && last.dest == dest
                    && last.start + last.len == start
                    && len <= last.segment
                    && last.len / last.segment < MAX_GSO_SEGMENTS
                    && last.len + len <= MAX_GSO_BYTES
                {
                    last.len += len;
                    return;
                }
            }
        }
        self.messages.push(Message {
            dest,
            start,
            len,
            segment: len,
        });
    }

    /// Sends everything batched. A datagram the kernel refuses is reported to `on_error` and
    /// dropped: the protocol repairs lost datagrams, and a socket that cannot send at all
    /// shows up as clients timing out.
    pub fn flush(
        &mut self,
        socket: &UdpSocket,
        mut on_error: impl FnMut(SocketAddr, &io::Error),
    ) -> Flushed {
        let mut flushed = Flushed {
            datagrams: std::mem::take(&mut self.datagrams),
            gso_turned_off: false,
        };
        if self.messages.is_empty() {
            return flushed;
        }
        let gso_refused = send_messages(socket, &self.buf, &self.messages, &mut on_error);
        if gso_refused && self.gso {
            self.gso = false;
            flushed.gso_turned_off = true;
        }
        self.messages.clear();
        self.buf.clear();
        flushed
    }
}

/// Sends a message's datagrams one call each.
fn send_one_by_one(
    socket: &UdpSocket,
    buf: &[u8],
    message: &Message,
    on_error: &mut impl FnMut(SocketAddr, &io::Error),
) {
    for (from, to) in message.datagrams() {
        loop {
            match socket.send_to(&buf[from..to], message.dest) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => on_error(message.dest, &e),
                Ok(_) => {}
            }
            break;
        }
    }
}

/// Returns whether the kernel refused a GSO message (those are then sent one by one).
#[cfg(target_os = "linux")]
fn send_messages(
    socket: &UdpSocket,
    buf: &[u8],
    messages: &[Message],
    on_error: &mut impl FnMut(SocketAddr, &io::Error),
) -> bool {
    use std::os::fd::AsRawFd;
    /// Room for one `cmsghdr` carrying a u16, with alignment padding (24 bytes on 64-bit).
    type ControlSlot = [u64; 4];
    const _: () = assert!(std::mem::size_of::<ControlSlot>() >= 32);

    let count = messages.len();
    let addrs: Vec<socket2::SockAddr> = messages.iter().map(|m| m.dest.into()).collect();
    let mut iovecs: Vec<libc::iovec> = messages
        .iter()
        .map(|m| libc::iovec {
            // The kernel only reads through this pointer.
            iov_base: buf[m.start..].as_ptr().cast_mut().cast(),
            iov_len: m.len,
        })
        .collect();
    let mut controls: Vec<ControlSlot> = vec![[0; 4]; count];
    // SAFETY: all-zero is a valid `mmsghdr`.
    let mut headers: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; count];
    // Base pointers taken once: none of these vectors is touched again while headers point
    // into them.
    let iovec_base = iovecs.as_mut_ptr();
    let control_base = controls.as_mut_ptr();
    for i in 0..count {
        let header = &mut headers[i].msg_hdr;
        header.msg_name = addrs[i].as_ptr().cast_mut().cast();
        header.msg_namelen = addrs[i].len();
        // SAFETY: i < count = iovecs.len().
        header.msg_iov = unsafe { iovec_base.add(i) };
        header.msg_iovlen = 1;
        if messages[i].is_gso() {
            // SAFETY: i < controls.len(); the control slot is 8-byte aligned and larger than
            // CMSG_SPACE(2); the header points at it before CMSG_FIRSTHDR reads
            // msg_control/msg_controllen.
            unsafe {
                let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
                header.msg_control = control_base.add(i).cast();
                header.msg_controllen = space as _;
                let cmsg = libc::CMSG_FIRSTHDR(header);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
                let segment = messages[i].segment as u16;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
            }
        }
    }
    let mut gso_refused = false;
    let mut next = 0;
    while next < count {
        // SAFETY: headers[next..] point at live addresses, iovecs, control slots and `buf`,
        // all of which outlive the call.
        let sent = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers[next..].as_mut_ptr(),
                (count - next) as libc::c_uint,
                0,
            )
        };
        if sent > 0 {
            next += sent as usize;
            continue;
        }
        // 0 (never seen on Linux) would leave errno stale: report it rather than spin.
        let err = if sent == 0 {
            io::Error::new(io::ErrorKind::WriteZero, "sendmmsg sent nothing")
        } else {
            io::Error::last_os_error()
        };
        if err.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        let message = &messages[next];
        let gso_error = matches!(
            err.raw_os_error(),
            Some(libc::EINVAL | libc::EIO | libc::EMSGSIZE | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
        );
        if message.is_gso() && gso_error {
            gso_refused = true;
            send_one_by_one(socket, buf, message, on_error);
        } else {
            on_error(message.dest, &err);
        }
        next += 1;
    }
    gso_refused
}

#[cfg(not(target_os = "linux"))]
fn send_messages(
    socket: &UdpSocket,
    buf: &[u8],
    messages: &[Message],
    on_error: &mut impl FnMut(SocketAddr, &io::Error),
) -> bool {
    for message in messages {
        send_one_by_one(socket, buf, message, on_error);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_bytes(batch: &mut SendBatch, dest: SocketAddr, bytes: &[u8]) {
        batch
            .push::<()>(|buf| {
                buf.extend_from_slice(bytes);
                Ok(Some(Transmit::datagram(dest, bytes.len())))
            })
            .unwrap();
    }

    fn dest(port: u16) -> SocketAddr {
        SocketAddr::from(([239, 1, 2, 3], port))
    }

    #[test]
    fn equal_datagrams_to_one_destination_share_a_message_until_a_short_one_closes_it() {
        let mut batch = SendBatch::new(true);
        for _ in 0..3 {
            push_bytes(&mut batch, dest(1), &[1; 100]);
        }
        push_bytes(&mut batch, dest(1), &[2; 40]);
        push_bytes(&mut batch, dest(1), &[3; 100]);
        push_bytes(&mut batch, dest(2), &[4; 100]);
        push_bytes(&mut batch, dest(2), &[5; 120]);
        let shapes: Vec<_> = batch.messages.iter().map(|m| (m.len, m.segment)).collect();
        assert_eq!(shapes, [(340, 100), (100, 100), (100, 100), (120, 120)]);
        let cuts: Vec<_> = batch.messages[0].datagrams().collect();
        assert_eq!(cuts, [(0, 100), (100, 200), (200, 300), (300, 340)]);
    }

    #[test]
    fn without_gso_every_datagram_is_its_own_message() {
        let mut batch = SendBatch::new(false);
        for _ in 0..3 {
            push_bytes(&mut batch, dest(1), &[1; 100]);
        }
        assert_eq!(batch.messages.len(), 3);
    }

    #[test]
    fn gso_messages_respect_the_segment_and_byte_limits() {
        let mut batch = SendBatch::new(true);
        for _ in 0..(MAX_GSO_SEGMENTS + 1) {
            push_bytes(&mut batch, dest(1), &[1; 10]);
        }
        assert_eq!(batch.messages.len(), 2);
        let mut batch = SendBatch::new(true);
        for _ in 0..10 {
            push_bytes(&mut batch, dest(1), &[1; 9000]);
        }
        assert!(batch.messages.iter().all(|m| m.len <= MAX_GSO_BYTES));
        assert_eq!(batch.messages.len(), 2);
    }

    #[test]
    fn a_run_cut_by_the_machine_is_batched_as_its_datagrams() {
        let mut batch = SendBatch::new(false);
        batch
            .push::<()>(|buf| {
                buf.extend_from_slice(&[7; 250]);
                Ok(Some(Transmit {
                    destination: dest(1),
                    size: 250,
                    segment_size: Some(100),
                }))
            })
            .unwrap();
        let shapes: Vec<_> = batch.messages.iter().map(|m| (m.start, m.len)).collect();
        assert_eq!(shapes, [(0, 100), (100, 100), (200, 50)]);
    }

    #[test]
    fn nothing_to_send_or_an_error_leaves_the_batch_unchanged() {
        let mut batch = SendBatch::new(true);
        push_bytes(&mut batch, dest(1), &[1; 10]);
        let none = batch.push::<()>(|buf| {
            buf.push(9);
            Ok(None)
        });
        assert_eq!(none, Ok(None));
        let failed = batch.push(|_| Err("read failed"));
        assert_eq!(failed, Err("read failed"));
        assert_eq!(batch.buf.len(), 10);
        assert_eq!(batch.messages.len(), 1);
    }

    #[test]
    fn a_flush_delivers_every_datagram_intact_over_loopback() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let mut batch = SendBatch::new(crate::sys::socket::gso_supported(&sender));
        let mut sent = Vec::new();
        for i in 0..20u8 {
            let len = if i == 9 { 300 } else { 1200 };
            let bytes = vec![i; len];
            push_bytes(&mut batch, to, &bytes);
            sent.push(bytes);
        }
        let mut errors = 0;
        let flushed = batch.flush(&sender, |_, _| errors += 1);
        assert_eq!(flushed.datagrams, 20);
        assert_eq!(errors, 0);
        assert!(batch.is_empty());
        let mut buf = vec![0u8; 70_000];
        for expected in &sent {
            let n = receiver.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &expected[..]);
        }
    }
}
