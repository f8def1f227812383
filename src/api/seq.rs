//! `/api/seq/{id}`: sequential upload (begin, status, upload, finish, terminate).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::schema::{Done, ErrorBody, JobQueued, SeqBegin, SeqFileState, SeqStatus, SeqUploadForm};
use super::targets::TargetId;
use super::{block, json_body, ok, resource};
use crate::auth::grant::Need;
use crate::error::{Code, Error, Result};
use crate::http::multipart::Multipart;
use crate::http::upload::{Layout, UploadReader};
use crate::model::audit::Action;
use crate::model::fields::{Fields, required};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/seq/{id}").get(Need::ReadTarget, status))
        .service(resource("/seq/{id}/begin").post(Need::UploadTarget, Action::SeqBegun, begin))
        .service(resource("/seq/{id}/upload").post(Need::UploadTarget, Action::SeqPart, upload))
        .service(resource("/seq/{id}/finish").post(Need::UploadTarget, Action::SeqFinished, finish))
        // Abandoning one's own sequential upload is part of uploading.
        .service(resource("/seq/{id}/terminate").post(Need::UploadTarget, Action::SeqTerminated, terminate));
}

/// Opens a sequential upload for a multi-file target: the files to come, one request each.
#[utoipa::path(post, path = "/api/seq/{id}/begin", operation_id = "seq_begin", tag = "sequential upload", params(TargetId), request_body = SeqBegin,
    responses(
        (status = 200, description = "Opened", body = Done),
        (status = 400, description = "A field is missing or invalid, or the target is a single-file one", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 409, description = "A sequential upload is already open for the target", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
    ))]
async fn begin(state: web::Data<AppState>, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse> {
    let body = json_body(&body)?;
    let f = Fields::of(&body)?;
    let manual = f.required("manual", Fields::boolean)?;
    let list = match body.get("file_list") {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(Error::invalid(
                "file_list",
                Code::WrongType,
                "File list validation failed: 'file_list' must be a list",
            ));
        }
        None => return Err(required("file_list")),
    };
    // An entry's fault is the list's: the reply names `file_list`.
    let bad = |code, msg: &str| Error::invalid("file_list", code, format!("File list validation failed: {msg}"));
    let mut files = Vec::with_capacity(list.len());
    for item in list {
        let entry = Fields::of(item).map_err(|_| bad(Code::WrongType, "each entry must be an object"))?;
        let path = entry.string("path")?.ok_or_else(|| bad(Code::Required, "an entry has no 'path'"))?;
        let name = entry.string("name")?.ok_or_else(|| bad(Code::Required, "an entry has no 'name'"))?;
        files.push((path, name));
    }
    let svc = state.service.clone();
    block(move || svc.seq_begin(&id, manual, files)).await?;
    Ok(ok(&Done::default()))
}

/// The open sequential upload of a target.
#[utoipa::path(get, path = "/api/seq/{id}", operation_id = "seq_status", tag = "sequential upload", params(TargetId),
    responses(
        (status = 200, description = "The announced files and which have arrived", body = SeqStatus),
        (status = 404, description = "No such target, or no upload open", body = ErrorBody),
    ))]
async fn status(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let open = block(move || svc.seq_status(&id)).await?;
    let files = open
        .files
        .iter()
        .map(|f| SeqFileState { path: f.path.clone(), name: f.name.clone(), uploaded: f.blob.is_some() })
        .collect();
    Ok(ok(&SeqStatus::new(open.manual, open.created_at, open.updated_at, files)))
}

/// Sends one announced file.
#[utoipa::path(post, path = "/api/seq/{id}/upload", operation_id = "seq_upload", tag = "sequential upload", params(TargetId),
    request_body(content = SeqUploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Stored", body = Done),
        (status = 400, description = "A part is missing or malformed, the file was not announced, or no upload is open", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 408, description = "The body stopped arriving for `body_idle_timeout_secs`", body = ErrorBody),
        (status = 409, description = "The file was already uploaded", body = ErrorBody),
        (status = 413, description = "The body is over `max_upload_bytes`", body = ErrorBody),
        (status = 507, description = "The disk is full; nothing was kept", body = ErrorBody),
    ))]
async fn upload(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
    form: Multipart,
) -> Result<HttpResponse> {
    let upload = UploadReader::new(&state.service.config.limits, &req, form)?;
    let mut received = upload.read(&state.service, &UPLOAD_LAYOUT, |_| Ok::<_, Error>(())).await?;
    let path = received.text("path").ok_or_else(|| required("path"))?.to_string();
    let name = received.text("name").ok_or_else(|| required("name"))?.to_string();
    let (_, file) = received.files.pop().ok_or_else(|| Error::invalid("file", Code::Required, "No file given"))?;
    let svc = state.service.clone();
    block(move || svc.seq_upload(&id, &path, &name, file)).await?;
    Ok(ok(&Done::default()))
}

/// One announced `file`, named by `path` and `name`.
const UPLOAD_LAYOUT: Layout = Layout {
    file: "file",
    max_files: 1,
    too_many_files: "Send one 'file' per request",
    unnamed: Some(""),
    texts: &["path", "name"],
};

/// Closes a complete sequential upload and queues the job that builds its backup.
#[utoipa::path(post, path = "/api/seq/{id}/finish", operation_id = "seq_finish", tag = "sequential upload", params(TargetId),
    responses(
        (status = 200, description = "The job was queued", body = JobQueued),
        (status = 400, description = "No sequential upload is open for the target", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 409, description = "Announced files are still missing", body = ErrorBody),
        (status = 507, description = "The disk is full", body = ErrorBody),
    ))]
async fn finish(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let job_id = block(move || svc.seq_finish(&id)).await?;
    super::audit::note(&req, |n| n.job = Some(job_id.to_string()));
    Ok(ok(&JobQueued::new(job_id)))
}

/// Abandons a sequential upload and drops what it received.
#[utoipa::path(post, path = "/api/seq/{id}/terminate", operation_id = "seq_terminate", tag = "sequential upload", params(TargetId),
    responses(
        (status = 200, description = "Abandoned", body = Done),
        (status = 400, description = "No sequential upload is open for the target", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
    ))]
async fn terminate(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    block(move || svc.seq_terminate(&id)).await?;
    Ok(ok(&Done::default()))
}
