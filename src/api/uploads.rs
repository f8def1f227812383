//! `POST /api/target/{id}/upload`: multipart `backup_file` part(s) and `manual`. The bytes are
//! streamed to disk while hashed; the reply names the job that builds the backup.

use actix_web::{HttpRequest, HttpResponse, web};

use super::schema::{ErrorBody, JobQueued, UploadForm};
use super::targets::TargetId;
use super::{block, ok, resource};
use crate::auth::grant::Need;
use crate::error::{Code, Error, Result};
use crate::http::multipart::Multipart;
use crate::http::upload::{Layout, Seen, UploadReader};
use crate::model::audit::Action;
use crate::model::fields::{parse_bool, required};
use crate::service::uploads::Part;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/target/{id}/upload").post(Need::UploadTarget, Action::BackupUploaded, upload));
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
        (status = 413, description = "The body is over `max_upload_bytes`, or its length would take the target past `quota_bytes`", body = ErrorBody),
        (status = 507, description = "The disk is full; nothing was kept", body = ErrorBody),
    ))]
async fn upload(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
    form: Multipart,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let upload = UploadReader::new(&state.service.config.limits, &req, form)?;
    let svc = state.service.clone();
    let lookup = id.clone();
    let known = crate::http::content_length(&req);
    block(move || svc.target_for_upload(&lookup, known)).await?;
    let mut manual = None;
    let received = upload
        .read(&state.service, &LAYOUT, |seen| {
            if let Seen::Text("manual", text) = seen {
                manual = Some(parse_manual(text)?);
            }
            Ok::<_, Error>(())
        })
        .await?;
    let parts = received.files.into_iter().map(|(filename, spooled)| Part { filename, spooled }).collect();
    let manual = manual.ok_or_else(|| required("manual"))?;
    let svc = state.service.clone();
    let job_id = block(move || svc.accept_upload(&id, manual, parts)).await?;
    super::audit::note(&req, |n| n.job = Some(job_id.to_string()));
    Ok(ok(&JobQueued::new(job_id)))
}

fn parse_manual(text: &str) -> Result<bool> {
    parse_bool(text)
        .ok_or_else(|| Error::invalid("manual", Code::WrongType, "Parameter 'manual' must be 0, 1, true or false"))
}

/// Its `backup_file` parts (any number) and `manual`.
const LAYOUT: Layout = Layout {
    file: "backup_file",
    max_files: usize::MAX,
    too_many_files: "",
    unnamed: Some("upload"),
    texts: &["manual"],
};
