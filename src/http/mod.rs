//! What the JSON API and the web UI share about HTTP: the streaming multipart reader, the one
//! upload-form reader, download responses, and the hop from a handler to a blocking thread.
//! `api/` and `web/` both build on this module and never on each other.

pub mod download;
pub mod multipart;
pub mod upload;

use crate::error::{Error, Result};

/// Runs blocking work (a service call, argon2) on the blocking pool, off the async executor.
pub async fn block<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("background task failed: {e}")))?
}
