//! Raw UDP multicast ceiling for the benchmark (tests/bench/run.sh): one side blasts
//! fixed-size datagrams at a group as fast as the kernel takes them, the other counts bytes.
//! No protocol, no disk, no checksum: what the host can move at that datagram size.
//!
//!   mcast_blast recv GROUP:PORT IFADDR [gro] [write=PATH:DATAGRAM]
//!                       prints `bytes seconds receives` when the sender's end marker arrives
//!                       (or 2 s idle)
//!   mcast_blast send GROUP:PORT IFADDR SIZE BYTES [gso]
//!
//! `gso` hands the kernel runs of datagrams per call (Linux UDP_SEGMENT) and `gro` takes them
//! back as runs (UDP_GRO): the same datagrams on the wire, far fewer trips through the stack.
//! wdsmc's server and client do this, so the benchmark reports both ceilings.
//!
//! `write=PATH:DATAGRAM` makes the receiver do the part of a download that is not protocol:
//! each DATAGRAM-sized datagram loses wdsmc's 57 header bytes, the rest is copied into 1 MiB
//! runs written to PATH (wdsmc's run size with its default cache), and the file
//! is synced at the end. `bytes` then counts the bytes written and `seconds` runs from the
//! first datagram to the end of the sync.
//!
//! Only for the benchmark's throwaway network namespace (the script passes 127.0.0.1 / lo).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// First byte of the datagram that tells the receiver the blast is over.
const END_MARKER: u8 = 0xEE;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["recv", group, iface, rest @ ..] if rest.len() <= 2 => parse(group, iface)
            .and_then(|(g, i)| {
                let mut gro = false;
                let mut writer = None;
                for option in rest {
                    match option.strip_prefix("write=") {
                        _ if *option == "gro" => gro = true,
                        Some(spec) => writer = Some(RunWriter::open(spec)?),
                        None => return Err(format!("unknown receive option {option:?}")),
                    }
                }
                receive(g, i, gro, writer)
            }),
        ["send", group, iface, size, total, rest @ ..] if matches!(rest, [] | ["gso"]) => {
            parse(group, iface).and_then(|(g, i)| {
            let size = size
                .parse()
                .map_err(|e| format!("bad SIZE {size:?}: {e}"))?;
            let total = total
                .parse()
                .map_err(|e| format!("bad BYTES {total:?}: {e}"))?;
                send(g, i, size, total, !rest.is_empty())
            })
        }
        _ => Err(
            "usage: mcast_blast recv GROUP:PORT IFADDR [gro] [write=PATH:DATAGRAM] | send GROUP:PORT IFADDR SIZE BYTES [gso]"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcast_blast: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(group: &str, iface: &str) -> Result<(SocketAddrV4, Ipv4Addr), String> {
    let group = group
        .parse()
        .map_err(|e| format!("bad GROUP:PORT {group:?}: {e}"))?;
    let iface = iface
        .parse()
        .map_err(|e| format!("bad IFADDR {iface:?}: {e}"))?;
    Ok((group, iface))
}

/// Bytes of a wdsmc DATA datagram that are not the block: MS-WDSMT security and session
/// headers (44) and the MS-WDSMA DATA header (13).
const WDSMC_DATA_OVERHEAD: usize = 57;
/// wdsmc's write size with its default 32 MiB cache (a cache-eighth, at most 1 MiB).
const RUN_BYTES: usize = 1 << 20;

/// The receiver's file side: datagram payloads copied into runs, runs written in order.
struct RunWriter {
    file: std::fs::File,
    datagram: usize,
    run: Vec<u8>,
    offset: u64,
}

impl RunWriter {
    fn open(spec: &str) -> Result<RunWriter, String> {
        let (path, datagram) = spec
            .rsplit_once(':')
            .ok_or_else(|| format!("write={spec}: expected PATH:DATAGRAM"))?;
        let datagram: usize = datagram
            .parse()
            .map_err(|e| format!("bad DATAGRAM {datagram:?}: {e}"))?;
        if datagram <= WDSMC_DATA_OVERHEAD {
            return Err(format!("DATAGRAM {datagram} leaves no payload"));
        }
        let file = std::fs::File::create_new(path).map_err(|e| format!("create {path}: {e}"))?;
        Ok(RunWriter {
            file,
            datagram,
            run: Vec::with_capacity(RUN_BYTES),
            offset: 0,
        })
    }

    /// Takes one receive (a GRO run of equal datagrams, perhaps with a short last one).
    fn take(&mut self, bytes: &[u8]) -> Result<u64, String> {
        let mut written = 0;
        for datagram in bytes.chunks(self.datagram) {
            // A short tail is an end marker GRO appended, never a block.
            if datagram.len() != self.datagram {
                continue;
            }
            let payload = &datagram[WDSMC_DATA_OVERHEAD..];
            if self.run.len() + payload.len() > RUN_BYTES {
                self.flush()?;
            }
            self.run.extend_from_slice(payload);
            written += payload.len() as u64;
        }
        Ok(written)
    }

    fn flush(&mut self) -> Result<(), String> {
        use std::io::Write;
        // In order, so a plain write lands where wdsmc's positional one would.
        self.file
            .write_all(&self.run)
            .map_err(|e| format!("write at {}: {e}", self.offset))?;
        self.offset += self.run.len() as u64;
        self.run.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<(), String> {
        self.flush()?;
        self.file.sync_all().map_err(|e| format!("sync: {e}"))
    }
}

fn receive(
    group: SocketAddrV4,
    iface: Ipv4Addr,
    gro: bool,
    mut writer: Option<RunWriter>,
) -> Result<(), String> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| format!("socket: {e}"))?;
    socket.set_reuse_address(true).map_err(|e| e.to_string())?;
    let _ = socket.set_recv_buffer_size(8 << 20);
    socket
        .bind(&SocketAddr::V4(group).into())
        .map_err(|e| format!("bind {group}: {e}"))?;
    socket
        .join_multicast_v4(group.ip(), &iface)
        .map_err(|e| format!("join {group} on {iface}: {e}"))?;
    if gro {
        set_udp_option(&socket, UDP_GRO, 1).map_err(|e| format!("UDP_GRO: {e}"))?;
    }
    let socket: UdpSocket = socket.into();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    // Ready: the script starts the sender once this line appears.
    println!("ready");
    let mut buf = vec![0u8; 65_536];
    let (mut bytes, mut datagrams) = (0u64, 0u64);
    let (mut first, mut last) = (None, Instant::now());
    loop {
        match socket.recv(&mut buf) {
            Ok(n) if n > 0 && buf[0] == END_MARKER => break,
            Ok(n) => {
                last = Instant::now();
                first.get_or_insert(last);
                bytes += match &mut writer {
                    Some(writer) => writer.take(&buf[..n])?,
                    None => n as u64,
                };
                datagrams += 1;
            }
            Err(_) if first.is_some() => break,
            Err(_) => {}
        }
    }
    if let Some(writer) = writer {
        writer.finish()?;
        last = Instant::now();
    }
    let seconds = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    println!("{bytes} {seconds:.6} {datagrams}");
    Ok(())
}

fn send(
    group: SocketAddrV4,
    iface: Ipv4Addr,
    size: usize,
    total: u64,
    gso: bool,
) -> Result<(), String> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| format!("socket: {e}"))?;
    let _ = socket.set_send_buffer_size(8 << 20);
    socket
        .set_multicast_if_v4(&iface)
        .map_err(|e| format!("IP_MULTICAST_IF {iface}: {e}"))?;
    socket.set_multicast_ttl_v4(1).map_err(|e| e.to_string())?;
    socket
        .set_multicast_loop_v4(true)
        .map_err(|e| e.to_string())?;
    let size = size.clamp(1, 65_507);
    // With GSO one send carries as many whole datagrams as fit in 64 KiB (at most 64).
    let per_send = if gso {
        set_udp_option(&socket, UDP_SEGMENT, size as i32)
            .map_err(|e| format!("UDP_SEGMENT: {e}"))?;
        (65_000 / size).clamp(1, 64)
    } else {
        1
    };
    let socket: UdpSocket = socket.into();
    let payload = vec![0x5Au8; size * per_send];
    let mut sent = 0u64;
    while sent < total {
        match socket.send_to(&payload, group) {
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("send to {group}: {e}")),
        }
    }
    // Several end markers: one may be dropped like any datagram.
    for _ in 0..20 {
        // Shorter than the segment size, so it is always one datagram.
        let _ = socket.send_to(&[END_MARKER], group);
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

#[cfg(target_os = "linux")]
const UDP_SEGMENT: i32 = libc::UDP_SEGMENT;
#[cfg(target_os = "linux")]
const UDP_GRO: i32 = libc::UDP_GRO;
#[cfg(not(target_os = "linux"))]
const UDP_SEGMENT: i32 = 103;
#[cfg(not(target_os = "linux"))]
const UDP_GRO: i32 = 104;

#[cfg(target_os = "linux")]
fn set_udp_option(socket: &Socket, option: i32, value: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `value` is a live int and the length matches it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            option,
            (&raw const value).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_udp_option(_socket: &Socket, _option: i32, _value: i32) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "UDP segmentation offload needs Linux",
    ))
}
