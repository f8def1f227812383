//! `/api/push/{id}/…`: the incremental protocol of `bakch push` (begin, file list pages, blob
//! packs, finish, abort). The handlers parse and render; `service::push` decides.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schema::{Done, ErrorBody, True};
use super::targets::TargetId;
use super::{block, json_body, ok, resource};
use crate::auth::grant::{Caller, Need, Role};
use crate::error::{Code, Error, Result};
use crate::model::audit::Action;
use crate::model::backup::PushFile;
use crate::model::fields::Fields;
use crate::service::push::{MAX_PAGE, Reach};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/push/{id}/begin").post(Need::UploadTarget, Action::PushBegun, begin))
        .service(resource("/push/{id}/{push}/files").post(Need::UploadTarget, Action::PushFiles, files))
        .service(resource("/push/{id}/{push}/blobs").post(Need::UploadTarget, Action::PushBlobs, blobs))
        .service(resource("/push/{id}/{push}/finish").post(Need::UploadTarget, Action::PushFinished, finish))
        .service(resource("/push/{id}/{push}/abort").post(Need::UploadTarget, Action::PushAborted, abort));
}

/// Whose content the caller may learn about: an upload key only its own targets'.
fn reach(caller: &Caller) -> Reach {
    match &caller.role {
        Role::Admin => None,
        Role::Upload(targets) => Some(targets.clone()),
        Role::Read => Some(Vec::new()),
    }
}

/// The push in the path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only its schema is used.
pub struct PushPath {
    /// Target id or alias.
    id: String,
    /// The push's id, from `begin`.
    push: String,
}

/// Opens a push (an incremental snapshot).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct PushBegin {
    /// Whether the backup counts as manual (default false).
    manual: Option<bool>,
}

/// An open push, and how large each page of its file list may be.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushBegun {
    success: True,
    /// Names the push in the following requests.
    push_id: String,
    /// The most bytes a page's JSON body may have (`[limits] max_json_bytes`).
    max_json_bytes: usize,
    /// The most entries a page may have.
    max_page_entries: usize,
}

/// One page of a push's file list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushFilesPage {
    /// Files of the snapshot; a path listed again replaces its entry (a file read again).
    #[serde(default)]
    files: Vec<PushEntry>,
    /// Paths to take out of the list (files that vanished or kept changing while read).
    #[serde(default)]
    removed: Vec<String>,
}

/// One file of the snapshot.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushEntry {
    /// Relative path inside the backup, `/`-separated.
    path: String,
    /// Size in bytes.
    size: u64,
    /// Unix permission bits.
    #[serde(default = "default_mode")]
    mode: u32,
    /// Modification time, Unix seconds.
    #[serde(default)]
    mtime: i64,
    /// blake3 of the content, 64 lowercase hex digits.
    hash: String,
}

fn default_mode() -> u32 {
    0o644
}

/// The hashes of the page that the server needs sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushMissing {
    success: True,
    missing: Vec<String>,
}

/// Blobs a pack stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushStored {
    success: True,
    blobs: usize,
    bytes: u64,
}

/// The finished push: its upload job, and what crossed the wire for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushFinished {
    success: True,
    /// The job that builds the backup (follow it with `GET /api/jobs/{id}`).
    job_id: i64,
    files: usize,
    /// Blobs and their bytes received by this push (content the server already had costs none).
    blobs_received: i64,
    bytes_received: i64,
}

/// Opens a push into a multi-file target. Then: list the files in pages (`files`), send what
/// the replies call missing (`blobs`), and `finish`.
#[utoipa::path(post, path = "/api/push/{id}/begin", operation_id = "push_begin", tag = "push", params(TargetId),
    request_body = PushBegin,
    responses(
        (status = 200, description = "Opened", body = PushBegun),
        (status = 400, description = "A field is invalid, or the target takes single files", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
    ))]
async fn begin(state: web::Data<AppState>, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse> {
    let body = json_body(&body)?;
    let manual = Fields::of(&body)?.boolean("manual")?.unwrap_or(false);
    let svc = state.service.clone();
    let push_id = block(move || svc.push_begin(&id, manual)).await?;
    let max_json_bytes = state.service.config.limits.max_json_bytes;
    Ok(ok(&PushBegun { success: True, push_id, max_json_bytes, max_page_entries: MAX_PAGE }))
}

/// Adds a page of the file list; answers which of its hashes must be sent. A hash is called
/// present only when a backup of one of the key's targets uses it, or a push into one of them
/// received it.
#[utoipa::path(post, path = "/api/push/{id}/{push}/files", operation_id = "push_files", tag = "push", params(PushPath),
    request_body = PushFilesPage,
    responses(
        (status = 200, description = "Listed", body = PushMissing),
        (status = 400, description = "The page is malformed: a path leaves the backup, a hash is not blake3 hex, a path is listed twice", body = ErrorBody),
        (status = 404, description = "No such target, or no such push open for it", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
    ))]
async fn files(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let page: PushFilesPage = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid("files", Code::Invalid, format!("The page is not a valid file list: {e}")))?;
    let listed = page
        .files
        .into_iter()
        .map(|e| PushFile {
            path: e.path,
            blob: e.hash,
            size: i64::try_from(e.size).unwrap_or(i64::MAX),
            mode: e.mode,
            mtime: e.mtime,
        })
        .collect();
    let (id, push) = path.into_inner();
    let (svc, reach) = (state.service.clone(), reach(&caller));
    let missing = block(move || svc.push_files(&id, &push, listed, page.removed, &reach)).await?;
    Ok(ok(&PushMissing { success: True, missing }))
}

/// A pack of blobs: each record is a line `<blake3 hex> <size>\n` followed by exactly that many
/// bytes of content. Each must be listed by the push with that size, and is verified against its
/// hash; those that arrived whole are kept even when the rest of the pack fails.
#[utoipa::path(post, path = "/api/push/{id}/{push}/blobs", operation_id = "push_blobs", tag = "push", params(PushPath),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored", body = PushStored),
        (status = 400, description = "A record is malformed, not listed, cut off, or its bytes do not match its hash", body = ErrorBody),
        (status = 404, description = "No such target, or no such push open for it", body = ErrorBody),
        (status = 408, description = "The body stopped arriving for `body_idle_timeout_secs`", body = ErrorBody),
        (status = 413, description = "The body is over `max_upload_bytes`", body = ErrorBody),
        (status = 507, description = "The disk is full", body = ErrorBody),
    ))]
async fn blobs(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let (id, push) = path.into_inner();
    let svc = state.service.clone();
    let stored = crate::http::upload::read_raw_body(&state.service.config.limits, &req, payload, move |body| {
        svc.push_receive(&id, &push, body)
    })
    .await?;
    Ok(ok(&PushStored { success: True, blobs: stored.blobs, bytes: stored.bytes }))
}

/// Queues the job that builds the backup from the list, once every listed blob is there.
#[utoipa::path(post, path = "/api/push/{id}/{push}/finish", operation_id = "push_finish", tag = "push", params(PushPath),
    responses(
        (status = 200, description = "The job was queued", body = PushFinished),
        (status = 400, description = "The list is empty, or holds a path both as file and folder", body = ErrorBody),
        (status = 404, description = "No such target, or no such push open for it", body = ErrorBody),
        (status = 409, description = "Listed blobs have not been sent", body = ErrorBody),
    ))]
async fn finish(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse> {
    let (id, push) = path.into_inner();
    let (svc, reach) = (state.service.clone(), reach(&caller));
    let done = block(move || svc.push_finish(&id, &push, &reach)).await?;
    super::audit::note(&req, |n| n.job = Some(done.job_id.to_string()));
    Ok(ok(&PushFinished {
        success: True,
        job_id: done.job_id,
        files: done.files,
        blobs_received: done.blobs_received,
        bytes_received: done.bytes_received,
    }))
}

/// Abandons a push.
#[utoipa::path(post, path = "/api/push/{id}/{push}/abort", operation_id = "push_abort", tag = "push", params(PushPath),
    responses(
        (status = 200, description = "Abandoned", body = Done),
        (status = 404, description = "No such target, or no such push open for it", body = ErrorBody),
    ))]
async fn abort(state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse> {
    let (id, push) = path.into_inner();
    let svc = state.service.clone();
    block(move || svc.push_abort(&id, &push)).await?;
    Ok(ok(&Done::default()))
}
