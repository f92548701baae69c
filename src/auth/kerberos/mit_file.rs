//! What MIT's keytab and credential cache files share: a size-bounded read into memory that
//! is wiped when dropped (both hold keys), and a big-endian cursor over the bytes.

use std::path::Path;

use zeroize::Zeroizing;

/// Largest keytab or credential cache read.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// The first [`MAX_FILE`] bytes of the file at `path`.
pub(super) fn read_bounded(path: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path)?
        .take(MAX_FILE)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A big-endian cursor; every read is `None` where the bytes run out.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    /// Offset of the next read, for the callers' "malformed at byte N" errors.
    pub(super) at: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8], at: usize) -> Cursor<'a> {
        Cursor { bytes, at }
    }

    pub(super) fn is_at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_be_bytes([s[0], s[1]]))
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Bytes after a 16-bit length, as keytabs count them.
    pub(super) fn u16_counted(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// Bytes after a 32-bit length, as credential caches count them.
    pub(super) fn u32_counted(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// A counted string's bytes as text; `None` when they are not UTF-8.
pub(super) fn utf8(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}
