//! The one error type of bakch.
//!
//! Rules: every fallible operation in `service`, `store` and `db` returns [`Error`]. A variant
//! says how the failure is shown to a client (its status code); the message is written for the
//! user. Causes that the user cannot act on (I/O, SQLite) are logged where they are converted and
//! shown as a short message with the failing path, never as a panic or a bare 500 for bad input.
//! Every error has a stable [`Code`]; an error about one input field also names that field (the
//! key the client sent), so the API reply and the web form can point at it without reading the
//! message.

use std::path::Path;

use serde::Serialize;

/// A stable, machine-readable name for what went wrong (`code` in the API's error replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// A field the request must carry is missing.
    Required,
    /// A field has the wrong type or shape (not a string, a non-negative integer, a boolean, a list).
    WrongType,
    /// A field is not one of the values it can take.
    NotAChoice,
    /// A field breaks one of its rules (blank, too long, control characters, an unusable folder...).
    Invalid,
    /// A field that must be unique holds another target's value.
    Taken,
    /// A field that cannot change after creation.
    Immutable,
    /// A malformed request that is no one field's fault.
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Timeout,
    Conflict,
    TooLarge,
    DiskFull,
    Internal,
}

impl Code {
    /// The code of a reply that carries only a status (the framework's own errors, the key check).
    pub fn of_status(status: u16) -> Code {
        match status {
            401 => Code::Unauthorized,
            403 => Code::Forbidden,
            404 => Code::NotFound,
            405 => Code::MethodNotAllowed,
            408 => Code::Timeout,
            409 => Code::Conflict,
            413 => Code::TooLarge,
            507 => Code::DiskFull,
            400..500 => Code::BadRequest,
            _ => Code::Internal,
        }
    }
}

/// What went wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A missing, ill-typed or invalid field (400), named when it is one field's fault.
    #[error("{message}")]
    BadRequest { message: String, field: Option<String>, code: Code },
    /// An unknown target, backup, job or upload (404).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// A field that must be unique holds another target's value (409).
    #[error("{message}")]
    Taken { message: String, field: String },
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
    /// A malformed request that names no field.
    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest { message: msg.into(), field: None, code: Code::BadRequest }
    }
    /// A bad value in one input field (`field` is the key the client sent).
    pub fn invalid(field: &str, code: Code, msg: impl Into<String>) -> Self {
        Error::BadRequest { message: msg.into(), field: Some(field.to_string()), code }
    }
    /// A unique field whose value another target holds.
    pub fn taken(field: &str, msg: impl Into<String>) -> Self {
        Error::Taken { message: msg.into(), field: field.to_string() }
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
            Error::BadRequest { .. } => 400,
            Error::NotFound(_) => 404,
            Error::Conflict(_) | Error::Taken { .. } => 409,
            Error::DiskFull(_) => 507,
            Error::TooLarge(_) => 413,
            Error::Timeout(_) => 408,
            Error::Internal(_) => 500,
        }
    }
}

impl Error {
    /// The input field at fault, when the error is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::BadRequest { field, .. } => field.as_deref(),
            Error::Taken { field, .. } => Some(field),
            _ => None,
        }
    }
    /// The stable code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::BadRequest { code, .. } => *code,
            Error::Taken { .. } => Code::Taken,
            e => Code::of_status(e.status()),
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
