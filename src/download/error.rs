//! Why a download did not end with the object in place.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::transport::TransportError;

/// Why a download failed. Messages name the path, offset or value involved; they never name
/// command-line options (a front end adds its own hints).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The session itself failed (initiation, network, timeout, refusal, kick, cancel).
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot derive a file name from object {object:?}; give an output file name")]
    NoFileName { object: String },
    #[error("output {} is a folder; give a file name", .path.display())]
    TargetIsFolder { path: PathBuf },
    #[error("output file {} already exists", .path.display())]
    TargetExists { path: PathBuf },
    #[error("{} appeared during the download", .path.display())]
    TargetAppeared { path: PathBuf },
    #[error("cannot create output folder {}: {error}", .path.display())]
    CreateFolder { path: PathBuf, error: io::Error },
    #[error("cannot create a partial file in {}: {error}", .folder.display())]
    CreatePartial { folder: PathBuf, error: io::Error },
    #[error("cannot size {} to {size} bytes: {error}", .path.display())]
    Size {
        path: PathBuf,
        size: u64,
        error: io::Error,
    },
    #[error(
        "no room for {size} bytes in {}{}; free some space or choose another output folder",
        .folder.display(),
        .free.map(|f| format!(" ({f} bytes free)")).unwrap_or_default()
    )]
    NoSpace {
        folder: PathBuf,
        size: u64,
        free: Option<u64>,
    },
    #[error("cannot write {} at offset {offset}: {error}", .path.display())]
    Write {
        path: PathBuf,
        offset: u64,
        error: io::Error,
    },
    #[error("cannot write to the output stream: {error}")]
    StreamWrite { error: io::Error },
    #[error(
        "cannot use a spill file for out-of-order blocks in {}: {error}; point the temporary folder (TMPDIR, TEMP on Windows) at a folder with space",
        .folder.display()
    )]
    Spill { folder: PathBuf, error: io::Error },
    #[error("the stream ended at byte {at} of {size}; {waiting} blocks were still out of order")]
    ShortStream { at: u64, size: u64, waiting: usize },
    #[error("cannot sync {}: {error}", .path.display())]
    Sync { path: PathBuf, error: io::Error },
    #[error("cannot read back {}: {error}", .path.display())]
    ReadBack { path: PathBuf, error: io::Error },
    #[error(
        "SHA-256 mismatch: expected {}, got {}; {}",
        hex(.expected), hex(.actual),
        if *.streamed { "the data already went to the output stream" } else { "the data was discarded" }
    )]
    Integrity {
        expected: [u8; 32],
        actual: [u8; 32],
        streamed: bool,
    },
    #[error("cannot rename {} to {}: {error}", .from.display(), .to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        error: io::Error,
    },
    #[error("cancelled; the session did not confirm within {}", humantime::format_duration(*.grace))]
    CancelUnconfirmed { grace: Duration },
    #[error("cannot start the download's writer thread: {error}")]
    Thread { error: io::Error },
    #[error("the download's writer thread stopped unexpectedly")]
    WriterStopped,
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
