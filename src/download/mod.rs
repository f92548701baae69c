//! A download of one object to a file, a folder or a stream, written safely.
//!
//! ```text
//! Output::create(destination, object, options)   decide the file, create its partial file
//! Download::start(request, output, on_event)     run the session; events arrive in on_event
//! download.wait(timeout) / cancel() / close()    as the transport's Session
//! ```
//!
//! What it guarantees: nothing appears under the final name unless it is complete, synced and
//! (with [`DownloadOptions::sha256`]) verified; the partial file beside the target is removed on
//! every failure path (errors, cancel, a cancel the session does not confirm in time, panics)
//! unless [`DownloadOptions::keep_partial`] asks to keep it; memory stays within the request's
//! `cache_size` plus one run of joined blocks. For files, blocks are written at
//! their offsets from the session's own thread, joined into runs of up to 1 MiB; for a stream
//! they are put in order on a writer thread, with blocks that arrive early held in memory up to
//! `cache_size` and beyond that in an unnamed temporary file.
//!
//! Close and cancel are separate, as in the transport: [`Download::cancel`] stops the transfer
//! (the session sends LEAVE with reason CANCELLED) and the download still finishes, with
//! [`crate::transport::TransportError::Cancelled`]; [`Download::close`] only releases the handle
//! and a running download goes on to its end. [`DownloadEvent::Finished`] is always the last
//! event, delivered exactly once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod coalesce;
mod engine;
mod error;
mod name;
mod partial;
mod stream;
mod writeback;

pub use engine::Download;
pub use error::{DownloadError, hex};
pub use name::default_file_name;

use crate::transport::{Event, Stats};
use partial::PartialFile;

/// How long a cancelled session gets to send its LEAVE and complete before the download gives
/// up on it (and removes its partial file) anyway.
pub const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// Where the object goes.
pub enum Destination {
    /// This file.
    File(PathBuf),
    /// The object's [`default_file_name`] in this folder, which is created if missing.
    Folder(PathBuf),
    /// A stream, written in order (for example stdout).
    Stream(Box<dyn Write + Send>),
}

/// How a download treats its output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Replace a file that already exists at the target.
    pub replace_existing: bool,
    /// Keep the partial file when the download fails or is cancelled (never after a SHA-256
    /// mismatch).
    pub keep_partial: bool,
    /// The object's expected SHA-256; a mismatch fails the download and discards the data.
    pub sha256: Option<[u8; 32]>,
}

/// A destination made ready: the file name decided, the target checked and the partial file
/// created, all before any network activity. Dropping it removes the partial file.
pub struct Output {
    sink: Sink,
    options: DownloadOptions,
}

enum Sink {
    File(PartialFile),
    Stream(Box<dyn Write + Send>),
}

impl Output {
    /// Prepares `destination` for `object`. Refuses a target that is a folder, and an existing
    /// file unless [`DownloadOptions::replace_existing`].
    pub fn create(
        destination: Destination,
        object: &str,
        options: DownloadOptions,
    ) -> Result<Output, DownloadError> {
        let target = match destination {
            Destination::Stream(writer) => {
                return Ok(Output {
                    sink: Sink::Stream(writer),
                    options,
                });
            }
            Destination::File(path) => path,
            Destination::Folder(folder) => {
                let name = default_file_name(object).ok_or_else(|| DownloadError::NoFileName {
                    object: object.to_string(),
                })?;
                std::fs::create_dir_all(&folder).map_err(|error| DownloadError::CreateFolder {
                    path: folder.clone(),
                    error,
                })?;
                folder.join(name)
            }
        };
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => {
                return Err(DownloadError::TargetIsFolder { path: target });
            }
            Ok(_) if !options.replace_existing => {
                return Err(DownloadError::TargetExists { path: target });
            }
            _ => {}
        }
        Ok(Output {
            sink: Sink::File(PartialFile::create(&target)?),
            options,
        })
    }

    /// Where the finished file will be; `None` for a stream.
    pub fn target(&self) -> Option<&Path> {
        match &self.sink {
            Sink::File(partial) => Some(partial.target()),
            Sink::Stream(_) => None,
        }
    }

    /// Where the data is written until it is complete; `None` for a stream.
    pub fn partial_path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::File(partial) => Some(partial.path()),
            Sink::Stream(_) => None,
        }
    }
}

/// What a download reports to its caller.
#[derive(Debug)]
pub enum DownloadEvent<'a> {
    /// A transport event other than delivered contents and the session's completion, which the
    /// download consumes itself (from the session's thread).
    Transport(Event<'a>),
    /// The download ended: always the last event.
    Finished(&'a Outcome),
}

/// How a download ended.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Saved, DownloadError>,
    /// The session's counters: final on success, the last progress report otherwise.
    pub stats: Option<Stats>,
    /// From the session's start (the initiation reply) to the end.
    pub elapsed: Duration,
    /// From the transport's end (the last block in) to the end of the download: the final
    /// sync, the SHA-256 read-back when one was asked for, and the rename. Zero when the
    /// transport never ended (a failure or cancel before it).
    pub finishing: Duration,
    /// Where the partial data was kept, with [`DownloadOptions::keep_partial`].
    pub kept_partial: Option<PathBuf>,
}

/// Where a finished download went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    File(PathBuf),
    Stream,
}
