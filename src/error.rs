//! The one error type of bakch.
//!
//! Rules: every fallible operation in `service`, `store` and `db` returns [`Error`]. A variant
//! says how the failure is shown to a client (its status code); the message is written for the
//! user. Causes that the user cannot act on (I/O, SQLite) are logged where they are converted and
//! shown as a short message with the failing path, never as a panic or a bare 500 for bad input.

use std::path::Path;

/// What went wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A missing, ill-typed or invalid field (400).
    #[error("{0}")]
    BadRequest(String),
    /// An unknown target, backup, job or upload (404).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is larger than a configured limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The client stopped sending in the middle of a body (408).
    #[error("{0}")]
    Timeout(String),
    /// The disk is full (507): nothing was kept, the client may retry once there is room.
    #[error("{0}")]
    DiskFull(String),
    /// A failure of the disk, the database or bakch itself (500).
    #[error("{0}")]
    Internal(String),
}

/// Linux errno for "no space left on device".
pub const ENOSPC: i32 = 28;

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Error::Conflict(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
    /// An I/O failure on `path`, with the action that failed ("create folder", ...).
    pub fn io(action: &str, path: &Path, err: std::io::Error) -> Self {
        if err.raw_os_error() == Some(ENOSPC) {
            return Error::DiskFull(format!("the disk is full: cannot {action} {}", path.display()));
        }
        Error::Internal(format!("cannot {action} {}: {err}", path.display()))
    }
    /// The HTTP status this error is shown with.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::DiskFull(_) => 507,
            Error::TooLarge(_) => 413,
            Error::Timeout(_) => 408,
            Error::Internal(_) => 500,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        tracing::error!("database error: {err}");
        Error::Internal(format!("database error: {err}"))
    }
}

impl From<r2d2::Error> for Error {
    fn from(err: r2d2::Error) -> Self {
        tracing::error!("database pool error: {err}");
        Error::Internal(format!("database unavailable: {err}"))
    }
}

/// Attaches a path and an action to an I/O result.
pub trait IoContext<T> {
    fn ctx(self, action: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}
