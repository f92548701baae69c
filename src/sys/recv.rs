//! Batched receive: at least one datagram per call (waiting up to the socket's read timeout)
//! and whatever else is queued, one per buffer, with one `recvmmsg` call on Linux, where the
//! multicast socket may also hand over a UDP GRO run (several datagrams in one buffer, split
//! by [`Received::datagrams`]). Elsewhere one `recv_from` per call.

use std::net::{SocketAddr, UdpSocket};

/// Most buffers one receive call fills.
const RECV_BATCH: usize = 32;
/// Buffers per receive call when each may hold a 64 KiB GRO run (about 60 datagrams of 8 KiB
/// blocks per call).
const GRO_RECV_BATCH: usize = 8;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// Receive buffer length for a session: a data packet (block plus 57 header bytes) with room to
/// spare for the largest control packet, instead of 64 KiB each. With a few hundred buffers
/// pooled, this is most of the client's memory beyond the cache.
fn datagram_buffer_len(block_size: u32) -> usize {
    (block_size as usize + 1024).clamp(16 * 1024, MAX_DATAGRAM)
}

/// How a receive thread reads: buffer size and buffers per receive call.
#[derive(Debug, Clone, Copy)]
pub struct RecvShape {
    pub buffer_len: usize,
    pub batch: usize,
}

impl RecvShape {
    /// With GRO a buffer may hold a whole 64 KiB run, so buffers are full-size and fewer
    /// per call; memory in flight stays about the same (a few MiB).
    pub fn new(block_size: u32, gro: bool) -> Self {
        // Without recvmmsg a receive fills one buffer, so more would only cost memory.
        let batched = cfg!(target_os = "linux");
        if gro {
            Self {
                buffer_len: MAX_DATAGRAM,
                batch: if batched { GRO_RECV_BATCH } else { 1 },
            }
        } else {
            Self {
                buffer_len: datagram_buffer_len(block_size),
                batch: if batched { RECV_BATCH } else { 1 },
            }
        }
    }
}

/// What one receive filled: `len` bytes from `from`, made of datagrams of `segment` bytes each
/// (the last may be shorter) when the kernel coalesced a GRO run, else one datagram.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    len: usize,
    pub from: SocketAddr,
    segment: Option<usize>,
}

impl Received {
    /// The datagrams in `buf`, the buffer this describes.
    pub fn datagrams<'b>(&self, buf: &'b [u8]) -> impl Iterator<Item = &'b [u8]> {
        let bytes = &buf[..self.len.min(buf.len())];
        let segment = match self.segment {
            Some(segment) if segment > 0 => segment,
            _ => bytes.len().max(1),
        };
        // An empty datagram is still one datagram (the protocol counts and ignores it).
        let whole = bytes.is_empty().then_some(bytes);
        bytes.chunks(segment).chain(whole)
    }
}

/// Receives at least one datagram (waiting up to the socket's read timeout) and whatever else
/// is already queued, up to one per buffer, with a single `recvmmsg` call: at gigabit rates and
/// above, one system call per datagram is a large part of the receive cost.
#[cfg(target_os = "linux")]
pub fn recv_batch(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    received: &mut Vec<Received>,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    /// Room for the UDP_GRO control message (an int), 8-byte aligned.
    type ControlSlot = [u64; 8];
    let count = bufs.len().min(RECV_BATCH);
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut addrs: [libc::sockaddr_storage; RECV_BATCH] = unsafe { std::mem::zeroed() };
    let mut iovecs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
    let mut headers: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
    let mut controls: [ControlSlot; RECV_BATCH] = [[0; 8]; RECV_BATCH];
    for i in 0..count {
        iovecs[i] = libc::iovec {
            iov_base: bufs[i].as_mut_ptr().cast(),
            iov_len: bufs[i].len(),
        };
        headers[i].msg_hdr.msg_name = (&raw mut addrs[i]).cast();
        headers[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
        headers[i].msg_hdr.msg_iov = &raw mut iovecs[i];
        headers[i].msg_hdr.msg_iovlen = 1;
        headers[i].msg_hdr.msg_control = controls[i].as_mut_ptr().cast();
        headers[i].msg_hdr.msg_controllen = std::mem::size_of::<ControlSlot>() as _;
    }
    // SAFETY: every header points at a live buffer, address slot and iovec of this frame, and
    // `count` does not exceed the arrays. MSG_WAITFORONE: block for the first datagram only.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            count as _,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    for i in 0..n as usize {
        // SAFETY: the kernel filled `msg_namelen` bytes of a sockaddr_storage.
        let addr = unsafe {
            socket2::SockAddr::new(addrs[i], headers[i].msg_hdr.msg_namelen as libc::socklen_t)
        };
        // SAFETY: the kernel wrote `msg_controllen` bytes of control messages into the slot
        // this header points at; the CMSG macros stay within that length.
        let segment = unsafe { gro_segment(&headers[i].msg_hdr) };
        // Without its control data a GRO run cannot be split safely; drop it (the protocol
        // repairs it) rather than treat a run as one datagram. The slot is sized so that the
        // kernel never truncates it.
        let control_lost = headers[i].msg_hdr.msg_flags & libc::MSG_CTRUNC != 0;
        // A non-IP source (never expected on a UDP socket) is passed on as an empty datagram,
        // which the protocol ignores, so entries stay paired with their buffers.
        received.push(match addr.as_socket() {
            Some(from) if !control_lost => Received {
                len: headers[i].msg_len as usize,
                from,
                segment,
            },
            _ => Received {
                len: 0,
                from: SocketAddr::from(([0, 0, 0, 0], 0)),
                segment: None,
            },
        });
    }
    Ok(())
}

/// The segment size of a GRO run, from a received message's UDP_GRO control message.
///
/// # Safety
/// `header` must describe control data the kernel filled in.
#[cfg(target_os = "linux")]
unsafe fn gro_segment(header: &libc::msghdr) -> Option<usize> {
    // SAFETY: per the caller; CMSG_FIRSTHDR/NXTHDR bound every step by msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return usize::try_from(size).ok().filter(|&s| s > 0);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// One datagram per call where `recvmmsg` is not available.
#[cfg(not(target_os = "linux"))]
pub fn recv_batch(
    socket: &UdpSocket,
    bufs: &mut [Vec<u8>],
    received: &mut Vec<Received>,
) -> std::io::Result<()> {
    let (len, from) = socket.recv_from(&mut bufs[0])?;
    received.push(Received {
        len,
        from,
        segment: None,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(len: usize, segment: Option<usize>) -> Received {
        Received {
            len,
            from: SocketAddr::from(([127, 0, 0, 1], 9)),
            segment,
        }
    }

    #[test]
    fn a_gro_run_splits_into_its_segments_and_a_plain_buffer_is_one_datagram() {
        let buf: Vec<u8> = (0..100).collect();
        let lens = |r: Received| r.datagrams(&buf).map(<[u8]>::len).collect::<Vec<_>>();
        assert_eq!(lens(received(70, Some(30))), [30, 30, 10]);
        assert_eq!(lens(received(60, Some(30))), [30, 30]);
        assert_eq!(lens(received(70, None)), [70]);
        assert_eq!(lens(received(20, Some(30))), [20]);
        // An empty datagram is still delivered (and ignored by the protocol) exactly once.
        assert_eq!(lens(received(0, None)), [0]);
        assert_eq!(lens(received(0, Some(30))), [0]);
        // A length beyond the buffer (never from the kernel) is cut to the buffer.
        assert_eq!(lens(received(500, Some(64))), [64, 36]);
        let first = received(70, Some(30))
            .datagrams(&buf)
            .nth(1)
            .unwrap()
            .to_vec();
        assert_eq!(first, (30..60).collect::<Vec<u8>>());
    }
}
