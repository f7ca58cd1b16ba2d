//! What can make a command fail, and the exit code each failure means.

use std::process::ExitCode;

/// Why a command did not do all it was asked to. Each kind has its own exit
/// code, so scripts can tell "fix your call" from "try again later".
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// A required variable or argument is missing or malformed: exit 2.
    #[error("configuration error: {0}")]
    Config(String),
    /// The broker or the database failed or did not answer: exit 1.
    #[error("{what}: {source}")]
    Unavailable {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Something the command was told to act on does not exist: exit 3.
    #[error("{0}")]
    NotFound(String),
    /// Ctrl-C (or SIGTERM) stopped it; nothing was left half-done: exit 130.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

impl CtlError {
    /// Wraps a source error with what was being done when it happened.
    pub fn unavailable(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        CtlError::Unavailable {
            what: what.into(),
            source: source.into(),
        }
    }

    /// The process exit code for this failure (documented in docs/operations.md).
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CtlError::Unavailable { .. } => 1,
            CtlError::Config(_) => 2,
            CtlError::NotFound(_) => 3,
            CtlError::Interrupted(_) => 130,
        })
    }
}

/// The result of every command.
pub type CtlResult<T> = Result<T, CtlError>;
