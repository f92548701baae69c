//! The content provider: namespace -> folder, object name -> file inside that folder.

use std::fs::File;
use std::path::{Component, Path, PathBuf};

use super::{NamespaceConfig, ServerError};

/// A file a session can serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedContent {
    /// Namespace name as configured.
    pub namespace: String,
    /// Canonical path of the file (inside the namespace's canonical root).
    pub path: PathBuf,
    pub size: u64,
}

/// Why a request names nothing the server can serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("namespace {0:?} is not served here")]
    NamespaceNotFound(String),
    #[error("object {object:?} not found in namespace {namespace:?}: {reason}")]
    ContentNotFound {
        namespace: String,
        object: String,
        reason: String,
    },
    /// The name points outside the namespace folder (`..`, absolute path, symlink out).
    #[error("object {object:?} in namespace {namespace:?} escapes the namespace folder: {reason}")]
    Escape {
        namespace: String,
        object: String,
        reason: String,
    },
}

/// Maps namespaces to canonical folders.
#[derive(Debug, Clone)]
pub struct ContentProvider {
    namespaces: Vec<(String, PathBuf)>,
}

impl ContentProvider {
    /// Checks that every namespace folder exists and is a readable directory.
    pub fn new(namespaces: &[NamespaceConfig]) -> Result<Self, ServerError> {
        let mut resolved = Vec::with_capacity(namespaces.len());
        for ns in namespaces {
            let error = |error| ServerError::Namespace {
                name: ns.name.clone(),
                root: ns.root.clone(),
                error,
            };
            let root = ns.root.canonicalize().map_err(error)?;
            std::fs::read_dir(&root).map_err(error)?;
            resolved.push((ns.name.clone(), root));
        }
        Ok(Self {
            namespaces: resolved,
        })
    }

    /// The namespaces as (name, canonical folder), in the configured order.
    pub fn namespaces(&self) -> &[(String, PathBuf)] {
        &self.namespaces
    }

    /// Finds `object` in `namespace`. Names use `/` or `\` as separators and are always
    /// relative to the namespace folder; nothing outside that folder is ever served.
    pub fn resolve(&self, namespace: &str, object: &str) -> Result<ResolvedContent, ContentError> {
        let (name, root) = self
            .namespaces
            .iter()
            .find(|(name, _)| name == namespace)
            .or_else(|| {
                self.namespaces
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(namespace))
            })
            .ok_or_else(|| ContentError::NamespaceNotFound(namespace.to_string()))?;
        let not_found = |reason: String| ContentError::ContentNotFound {
            namespace: name.clone(),
            object: object.to_string(),
            reason,
        };
        let escape = |reason: &str| ContentError::Escape {
            namespace: name.clone(),
            object: object.to_string(),
            reason: reason.to_string(),
        };
        let relative = object.replace('\\', "/");
        if relative.contains('\0') {
            return Err(escape("contains NUL"));
        }
        if relative.starts_with('/') || relative.contains(':') {
            return Err(escape("absolute path or drive prefix"));
        }
        let mut path = root.clone();
        let mut parts = 0;
        for component in Path::new(&relative).components() {
            match component {
                Component::Normal(part) => {
                    path.push(part);
                    parts += 1;
                }
                Component::CurDir => {}
                Component::ParentDir => return Err(escape("contains '..'")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(escape("absolute path"));
                }
            }
        }
        if parts == 0 {
            return Err(not_found("empty object name".to_string()));
        }
        let canonical = path.canonicalize().map_err(|e| not_found(e.to_string()))?;
        if !canonical.starts_with(root) {
            return Err(escape(
                "resolves (through a symbolic link) outside the folder",
            ));
        }
        let metadata = canonical.metadata().map_err(|e| not_found(e.to_string()))?;
        if !metadata.is_file() {
            return Err(not_found("not a regular file".to_string()));
        }
        File::open(&canonical).map_err(|e| not_found(format!("cannot open: {e}")))?;
        Ok(ResolvedContent {
            namespace: name.clone(),
            path: canonical,
            size: metadata.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> (tempfile::TempDir, tempfile::TempDir, ContentProvider) {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(root.path().join("sub/a.wim"), b"hello").unwrap();
        std::fs::write(outside.path().join("secret"), b"nope").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link"))
            .unwrap();
        let provider = ContentProvider::new(&[NamespaceConfig {
            name: "WDS:test".into(),
            root: root.path().to_path_buf(),
        }])
        .unwrap();
        (root, outside, provider)
    }

    #[test]
    fn resolves_files_and_refuses_escapes() {
        let (_root, outside, provider) = provider();
        let found = provider.resolve("WDS:test", "sub\\a.wim").unwrap();
        assert_eq!(found.size, 5);
        assert_eq!(provider.resolve("wds:TEST", "./sub/a.wim").unwrap(), found);
        assert!(matches!(
            provider.resolve("other", "sub/a.wim"),
            Err(ContentError::NamespaceNotFound(_))
        ));
        for bad in [
            "../x",
            "sub/../../x",
            "/etc/passwd",
            "\\etc\\passwd",
            "C:\\x",
        ] {
            assert!(
                matches!(
                    provider.resolve("WDS:test", bad),
                    Err(ContentError::Escape { .. })
                ),
                "{bad}"
            );
        }
        let absolute = outside.path().join("secret");
        assert!(matches!(
            provider.resolve("WDS:test", absolute.to_str().unwrap()),
            Err(ContentError::Escape { .. })
        ));
        #[cfg(unix)]
        assert!(matches!(
            provider.resolve("WDS:test", "link"),
            Err(ContentError::Escape { .. })
        ));
        for missing in ["sub", "nope.wim", "", "."] {
            assert!(
                matches!(
                    provider.resolve("WDS:test", missing),
                    Err(ContentError::ContentNotFound { .. })
                ),
                "{missing}"
            );
        }
    }
}
