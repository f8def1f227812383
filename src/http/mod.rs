//! What the JSON API and the web UI share about HTTP: the streaming multipart reader, the one
//! upload-form reader, download responses, the hop from a handler to a blocking thread, and
//! who is asking (a [`Who`], put in the request by each side's audit middleware).
//! `api/` and `web/` both build on this module and never on each other.

pub mod download;
pub mod multipart;
pub mod upload;

use crate::error::{Error, Result};

/// Runs blocking work (a service call, argon2) on the blocking pool, off the async executor.
pub async fn block<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("background task failed: {e}")))?
}

/// The caller of a request that changes something, as the API's or the web UI's audit
/// middleware named it (a key's name or `web`, the session, the address); handlers that record
/// who did something (a deletion's hold) take it.
impl actix_web::FromRequest for crate::model::audit::Who {
    type Error = Error;
    type Future = std::future::Ready<Result<Self>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        std::future::ready(
            req.extensions()
                .get::<Self>()
                .cloned()
                .ok_or_else(|| Error::internal("no caller recorded for this request")),
        )
    }
}

/// The body's length, when the client said it (`Content-Length`); a chunked body has none.
pub fn content_length(req: &actix_web::HttpRequest) -> Option<u64> {
    req.headers().get(actix_web::http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}
