//! `POST /api/target/{id}/upload`: multipart `backup_file` part(s) and `manual`. The bytes are
//! streamed to disk while hashed; the reply names the job that builds the backup.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::multipart::{Field, Multipart};
use super::schema::{ErrorBody, JobQueued, UploadForm};
use super::targets::TargetId;
use super::{block, ok, resource};
use crate::config::Limits;
use crate::error::{Error, Result};
use crate::model::fields::{parse_bool, required};
use crate::service::uploads::Part;
use crate::state::AppState;
use crate::store::Store;
use crate::store::blob::{Spool, Spooled};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/target/{id}/upload", web::post().to(upload)));
}

/// Uploads a backup; the reply names the job that builds it.
#[utoipa::path(post, path = "/api/target/{id}/upload", operation_id = "upload_backup", tag = "targets", params(TargetId),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Received; the job was queued", body = JobQueued),
        (status = 400, description = "A part is missing or malformed, or the files do not fit the target's type", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 408, description = "The body stopped arriving for `body_idle_timeout_secs`", body = ErrorBody),
        (status = 409, description = "A backup of that name exists", body = ErrorBody),
        (status = 413, description = "The body is over `max_upload_bytes`", body = ErrorBody),
        (status = 507, description = "The disk is full; nothing was kept", body = ErrorBody),
    ))]
async fn upload(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
    mut form: Multipart,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let mut quota = Quota::new(&state.service.config.limits, &req)?;
    let svc = state.service.clone();
    let lookup = id.clone();
    block(move || svc.target_for_upload(&lookup)).await?;
    let mut manual = None;
    let mut parts = Vec::new();
    while let Some(mut field) = quota.next_field(&mut form).await? {
        match field.name() {
            "backup_file" => {
                let filename = field.filename().unwrap_or("upload").to_string();
                let spooled = spool_field(&state.service.store, &mut field, &mut quota).await?;
                parts.push(Part { filename, spooled });
            }
            "manual" => manual = Some(parse_manual(&text_field(&mut field, "manual", &quota).await?)?),
            _ => drain(&mut field, &quota).await?,
        }
    }
    let manual = manual.ok_or_else(|| required("manual"))?;
    let svc = state.service.clone();
    let job_id = block(move || svc.accept_upload(&id, manual, parts)).await?;
    Ok(ok(&JobQueued::new(job_id)))
}

/// What is left of one request's allowance (bytes, parts) while its body is read, and how long
/// the client may stay silent.
pub(crate) struct Quota {
    bytes_left: Option<u64>,
    max_bytes: u64,
    parts_left: usize,
    idle: Duration,
}

impl Quota {
    /// Refuses at once a body whose announced length is over the limit.
    pub(crate) fn new(limits: &Limits, req: &HttpRequest) -> Result<Quota> {
        let quota = Quota {
            bytes_left: (limits.max_upload_bytes > 0).then_some(limits.max_upload_bytes),
            max_bytes: limits.max_upload_bytes,
            parts_left: limits.max_upload_parts,
            idle: Duration::from_secs(limits.body_idle_timeout_secs.max(1)),
        };
        let announced =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if let (Some(len), Some(_)) = (announced, quota.bytes_left)
            && len > quota.max_bytes.saturating_add(1 << 20)
        {
            return Err(quota.too_large());
        }
        Ok(quota)
    }

    fn too_large(&self) -> Error {
        Error::TooLarge(format!(
            "The upload is larger than this server's limit of {} bytes (max_upload_bytes)",
            self.max_bytes
        ))
    }

    /// The next part, within the part limit and the idle timeout.
    pub(crate) async fn next_field<'f>(&mut self, form: &'f mut Multipart) -> Result<Option<Field<'f>>> {
        let next = tokio::time::timeout(self.idle, form.next_field()).await.map_err(|_| self.stalled())?;
        let Some(field) = next? else { return Ok(None) };
        if self.parts_left == 0 {
            return Err(Error::bad("The request has more parts than this server accepts (max_upload_parts)"));
        }
        self.parts_left -= 1;
        Ok(Some(field))
    }

    /// The next chunk of a part, within the idle timeout.
    async fn next_chunk(&self, field: &mut Field<'_>) -> Result<Option<bytes::Bytes>> {
        tokio::time::timeout(self.idle, field.chunk()).await.map_err(|_| self.stalled())?
    }

    fn stalled(&self) -> Error {
        Error::Timeout(format!("The client sent nothing for {} seconds; the upload was cut off", self.idle.as_secs()))
    }

    /// Counts file bytes against the limit.
    fn take(&mut self, n: usize) -> Result<()> {
        if let Some(left) = self.bytes_left {
            self.bytes_left = Some(left.checked_sub(n as u64).ok_or_else(|| self.too_large())?);
        }
        Ok(())
    }
}

pub(crate) fn parse_manual(text: &str) -> Result<bool> {
    parse_bool(text).ok_or_else(|| Error::bad("Parameter 'manual' must be 0, 1, true or false"))
}

/// Streams a file part into a spool on a blocking thread: the async side only forwards chunks,
/// so memory stays at a few chunks whatever the file size.
pub(crate) async fn spool_field(store: &Store, field: &mut Field<'_>, quota: &mut Quota) -> Result<Spooled> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(32);
    // Set once the part arrived whole: a cut-off upload is dropped without its costly fsync.
    let whole = Arc::new(AtomicBool::new(false));
    let store = store.clone();
    let arrived = whole.clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<Spooled> {
        let mut spool = Spool::create_hashing_aside(&store)?;
        while let Some(chunk) = rx.blocking_recv() {
            spool.write_chunk(chunk).map_err(|e| Error::io("store the upload in", &store.tmp, e))?;
        }
        if !arrived.load(Ordering::Acquire) {
            return Err(Error::bad("the upload was cut off")); // Replaced by the reader's error.
        }
        spool.finish()
    });
    let mut failure = None;
    loop {
        match quota.next_chunk(field).await.and_then(|c| c.map(|c| quota.take(c.len()).map(|_| c)).transpose()) {
            Ok(Some(chunk)) => {
                if tx.send(chunk).await.is_err() {
                    break; // The writer failed; its error is reported below.
                }
            }
            Ok(None) => {
                whole.store(true, Ordering::Release);
                break;
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(|e| Error::internal(format!("upload writer failed: {e}")))?;
    if let Some(err) = failure {
        return Err(err); // The spool, if any, is removed on drop.
    }
    written
}

/// A short text part (at most 4 KiB).
pub(crate) async fn text_field(field: &mut Field<'_>, name: &str, quota: &Quota) -> Result<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = quota.next_chunk(field).await? {
        if buf.len() + chunk.len() > 4096 {
            return Err(Error::bad(format!("Parameter '{name}' is too long")));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| Error::bad(format!("Parameter '{name}' is not valid UTF-8")))
}

/// Reads and drops a part nobody asked for.
pub(crate) async fn drain(field: &mut Field<'_>, quota: &Quota) -> Result<()> {
    while quota.next_chunk(field).await?.is_some() {}
    Ok(())
}
