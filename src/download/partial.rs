//! The partial file: where a download is written until it is complete, beside its target so
//! that the final rename stays on one filesystem.
//!
//! [`PartialFile`] is the one owner of that file. Dropping it removes the file, so every
//! failure path (an error, a cancel, a panic that unwinds) cleans up; only [`PartialFile::persist`]
//! (the finished download) and [`PartialFile::keep`] (the caller asked to keep partial data)
//! leave it on disk. The rename refuses to replace a file that appeared under the target name
//! meanwhile unless replacing was asked for, in one step (no check-then-rename race).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::DownloadError;

pub(super) struct PartialFile {
    file: NamedTempFile<File>,
    target: PathBuf,
}

impl PartialFile {
    /// Creates `.NAME.wdsmc-partial-XXXXXX` in the target's folder.
    pub(super) fn create(target: &Path) -> Result<PartialFile, DownloadError> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "download".into());
        let folder = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Opened by hand rather than by tempfile's defaults, so the finished file gets the
        // usual permissions (0666 less the umask) and no "temporary" attribute on Windows.
        let file = tempfile::Builder::new()
            .prefix(&format!(".{name}.wdsmc-partial-"))
            .rand_bytes(6)
            .make_in(&folder, |path| {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(path)
            })
            .map_err(|error| DownloadError::CreatePartial { folder, error })?;
        Ok(PartialFile {
            file,
            target: target.to_path_buf(),
        })
    }

    pub(super) fn path(&self) -> &Path {
        self.file.path()
    }

    pub(super) fn target(&self) -> &Path {
        &self.target
    }

    /// A second handle for positional writes from the session's thread.
    pub(super) fn writer(&self) -> io::Result<File> {
        self.file.as_file().try_clone()
    }

    pub(super) fn sync(&self) -> Result<(), DownloadError> {
        self.file
            .as_file()
            .sync_all()
            .map_err(|error| DownloadError::Sync {
                path: self.path().to_path_buf(),
                error,
            })
    }

    /// The SHA-256 of what is on disk, read back through the open handle.
    pub(super) fn sha256(&self) -> Result<[u8; 32], DownloadError> {
        let fail = |error| DownloadError::ReadBack {
            path: self.path().to_path_buf(),
            error,
        };
        let mut file = self.file.as_file();
        file.seek(SeekFrom::Start(0)).map_err(fail)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = file.read(&mut buffer).map_err(fail)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(hasher.finalize().into())
    }

    /// Renames the file to its target; `replace` allows an existing target to be replaced.
    /// On failure the partial file comes back with the error.
    pub(super) fn persist(
        self,
        replace: bool,
    ) -> Result<PathBuf, Box<(DownloadError, PartialFile)>> {
        let target = self.target;
        let persisted = if replace {
            self.file.persist(&target)
        } else {
            self.file.persist_noclobber(&target)
        };
        match persisted {
            Ok(_) => {
                sync_parent(&target);
                Ok(target)
            }
            Err(failed) => {
                let error = if failed.error.kind() == io::ErrorKind::AlreadyExists {
                    DownloadError::TargetAppeared {
                        path: target.clone(),
                    }
                } else {
                    DownloadError::Rename {
                        from: failed.file.path().to_path_buf(),
                        to: target.clone(),
                        error: failed.error,
                    }
                };
                Err(Box::new((
                    error,
                    PartialFile {
                        file: failed.file,
                        target,
                    },
                )))
            }
        }
    }

    /// Leaves the partial file on disk and returns where it is.
    pub(super) fn keep(self) -> Option<PathBuf> {
        self.file.keep().ok().map(|(_, path)| path)
    }
}

/// Makes the rename durable where the platform allows syncing a folder.
fn sync_parent(target: &Path) {
    #[cfg(unix)]
    if let Some(parent) = target.parent() {
        let folder = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(dir) = File::open(folder) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = target;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partial_file_sits_beside_the_target_and_goes_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("install.wim");
        let partial = PartialFile::create(&target).unwrap();
        assert_eq!(partial.path().parent(), Some(dir.path()));
        let name = partial
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with(".install.wim.wdsmc-partial-"), "{name}");
        let path = partial.path().to_path_buf();
        assert!(path.exists());
        drop(partial);
        assert!(!path.exists(), "dropping removes the partial file");
    }

    #[test]
    fn persist_refuses_a_target_that_appeared_unless_replacing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.bin");
        let partial = PartialFile::create(&target).unwrap();
        crate::sys::file::write_all_at(&partial.writer().unwrap(), b"new", 0).unwrap();
        std::fs::write(&target, b"old").unwrap();
        let (error, partial) = *partial.persist(false).unwrap_err();
        assert!(
            matches!(error, DownloadError::TargetAppeared { .. }),
            "{error}"
        );
        drop(partial);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "partial removed"
        );

        let partial = PartialFile::create(&target).unwrap();
        crate::sys::file::write_all_at(&partial.writer().unwrap(), b"new", 0).unwrap();
        assert_eq!(
            partial.sha256().unwrap(),
            <[u8; 32]>::from(Sha256::digest(b"new"))
        );
        assert_eq!(partial.persist(true).ok(), Some(target.clone()));
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }
}
