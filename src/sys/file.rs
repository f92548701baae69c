//! Positional file I/O on every platform: Unix has whole-buffer `read_exact_at` and
//! `write_all_at`; Windows only has single-call `seek_read`/`seek_write`, looped here.

use std::fs::File;
use std::io;

/// Reads exactly `buf.len()` bytes at `offset`; a file that ends first is `UnexpectedEof`.
#[cfg(unix)]
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Writes all of `bytes` at `offset`.
#[cfg(unix)]
pub fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(windows)]
pub fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file ends before offset {offset}"),
                ));
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(windows)]
pub fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        match file.seek_write(bytes, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the disk accepted no bytes",
                ));
            }
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Starts writing `len` bytes at `offset` back to the device without waiting for it (Linux
/// `sync_file_range` with `SYNC_FILE_RANGE_WRITE`). Elsewhere, and on filesystems without
/// writeback (tmpfs), it does nothing.
#[cfg(target_os = "linux")]
pub fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    sync_file_range(file, offset, len, libc::SYNC_FILE_RANGE_WRITE)
}

/// Waits until `len` bytes at `offset` have reached the device, writing back any that are
/// still dirty first.
#[cfg(target_os = "linux")]
pub fn wait_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    sync_file_range(
        file,
        offset,
        len,
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
    )
}

#[cfg(target_os = "linux")]
fn sync_file_range(file: &File, offset: u64, len: u64, flags: libc::c_uint) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (offset.try_into(), len.try_into()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    loop {
        // SAFETY: the descriptor is open for as long as `file` is borrowed, and the call
        // only reads its arguments.
        let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
        if rc == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Windows has no per-range writeback call (its cache manager's lazy writer already writes
/// dirty pages back in the background); other systems get the final sync only.
#[cfg(not(target_os = "linux"))]
pub fn start_writeback(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn wait_writeback(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}

/// Reserves `len` bytes of space for `file` (Linux `fallocate`), so a full filesystem shows
/// before any data arrives and writes land in space already allocated. `Ok(false)` where the
/// filesystem or platform has no such call, and on memory-backed filesystems (tmpfs, ramfs),
/// where reserving means clearing every page up front (about 85 ms per GiB, on the session's
/// thread) and gains no layout: the file then fills as it is written, and the caller checks
/// the free space instead.
#[cfg(target_os = "linux")]
pub fn preallocate(file: &File, len: u64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let Ok(len) = len.try_into() else {
        return Err(io::Error::from(io::ErrorKind::FileTooLarge));
    };
    if len == 0 {
        return Ok(true);
    }
    if memory_backed(file) {
        return Ok(false);
    }
    loop {
        // SAFETY: the descriptor is open for as long as `file` is borrowed; mode 0 only
        // allocates blocks.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(true);
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => return Ok(false),
            _ => return Err(error),
        }
    }
}

/// Whether `file` lives on tmpfs or ramfs (Linux `fstatfs`).
#[cfg(target_os = "linux")]
fn memory_backed(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    // SAFETY: an all-zero statfs is a valid value for the call to fill in.
    let mut stats: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open and `stats` is a live statfs.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &raw mut stats) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)] // f_type's type differs between architectures
    let kind = stats.f_type as i64;
    kind == TMPFS_MAGIC || kind == RAMFS_MAGIC
}

/// Windows reserves the space when the file is sized; elsewhere the file fills as written.
#[cfg(not(target_os = "linux"))]
pub fn preallocate(_file: &File, _len: u64) -> io::Result<bool> {
    Ok(false)
}

/// Bytes an unprivileged writer may still use on `file`'s filesystem, where the system says.
#[cfg(unix)]
pub fn free_space(file: &File) -> Option<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero statvfs is a valid value for the call to fill in.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open and `stats` is a live statvfs.
    if unsafe { libc::fstatvfs(file.as_raw_fd(), &raw mut stats) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn free_space(_file: &File) -> Option<u64> {
    None
}
