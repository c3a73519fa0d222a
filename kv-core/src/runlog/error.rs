//! Errors of reading and writing the experiments record.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Everything that can go wrong reading or writing the experiments record.
#[derive(Debug, Error)]
pub enum RunLogError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(
        "{}:{line}: schema_version {found} is newer than this build understands \
         (up to {supported}); update kvlab to read this log",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        line: u64,
        found: u32,
        supported: u32,
    },
}

impl RunLogError {
    pub(super) fn io(path: &Path, source: io::Error) -> Self {
        RunLogError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(super) fn malformed(path: &Path, line: u64, message: impl Into<String>) -> Self {
        RunLogError::Malformed {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// True when the file simply does not exist (no run recorded yet).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RunLogError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}
