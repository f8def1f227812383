//! `/api/backup/{id}`: delete, recycle/restore, download; `/api/recycle_bin`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::audit::note;
use super::schema::{BackupList, Binary, DeleteFiles, Deleted, Done, ErrorBody, SetRecycled};
use super::{block, delete_files, json_body, ok, resource};
use crate::auth::grant::Need;
use crate::error::Result;
use crate::http::download::{attachment, download_response};
use crate::model::audit::{Action, Who};
use crate::model::fields::Fields;
use crate::service::files::Format;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/backup/{id}").patch(Need::Admin, Action::BackupEdited, edit).delete(
        Need::Admin,
        Action::BackupDeleted,
        delete,
    ))
    .service(resource("/backup/{id}/download").get(Need::ReadBackup, download))
    .service(resource("/backup/{id}/file").get(Need::ReadBackup, download_file))
    .service(resource("/backup/{id}/select").get(Need::ReadBackup, download_selection))
    .service(resource("/recycle_bin").get(Need::ReadAll, recycle_bin).delete(
        Need::Admin,
        Action::RecycleBinCleared,
        clear_recycle_bin,
    ));
}

/// Recycles or restores a backup, and/or pins or unpins it.
#[utoipa::path(patch, path = "/api/backup/{id}", operation_id = "set_backup_recycled", tag = "backups", params(BackupId), request_body = SetRecycled,
    responses(
        (status = 200, description = "Done", body = Done),
        (status = 400, description = "Neither `is_recycled` nor `pinned` is given, or one is not a boolean", body = ErrorBody),
        (status = 404, description = "No such backup", body = ErrorBody),
        (status = 409, description = "The backup's name is taken where it would go", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
        (status = 507, description = "The disk is full", body = ErrorBody),
    ))]
async fn edit(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let body = json_body(&body)?;
    let fields = Fields::of(&body)?;
    let pinned = fields.boolean("pinned")?;
    // `is_recycled` stays required for Backup-chan's clients unless the request pins.
    let recycled = match pinned {
        Some(_) => fields.boolean("is_recycled")?,
        None => Some(fields.required("is_recycled", Fields::boolean)?),
    };
    let action = match (recycled, pinned) {
        (Some(true), _) => Action::BackupRecycled,
        (Some(false), _) => Action::BackupRestored,
        (None, Some(true)) => Action::BackupPinned,
        (None, _) => Action::BackupUnpinned,
    };
    note(&req, |n| n.action = Some(action));
    let svc = state.service.clone();
    block(move || {
        // Pinning first: a request that pins and recycles leaves it pinned in the recycle bin.
        if let Some(p) = pinned {
            svc.set_pinned(&id, p)?;
        }
        match recycled {
            Some(r) => svc.set_recycled(&id, r),
            None => Ok(()),
        }
    })
    .await?;
    Ok(ok(&Done::default()))
}

/// Deletes a backup.
#[utoipa::path(delete, path = "/api/backup/{id}", operation_id = "delete_backup", tag = "backups", params(BackupId), request_body = DeleteFiles,
    responses(
        (status = 200, description = "Deleted", body = Done),
        (status = 400, description = "`delete_files` is missing or not a boolean", body = ErrorBody),
        (status = 404, description = "No such backup", body = ErrorBody),
        (status = 409, description = "The backup is pinned: unpin it first", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
    ))]
async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
    by: Who,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let files = delete_files(&body)?;
    let action = if files { Action::BackupDeletedWithFiles } else { Action::BackupDeleted };
    note(&req, |n| n.action = Some(action));
    let svc = state.service.clone();
    block(move || svc.delete_backup(&id, files, &by)).await?;
    Ok(ok(&Done::default()))
}

/// The recycled backups of every target.
#[utoipa::path(get, path = "/api/recycle_bin", operation_id = "recycle_bin", tag = "backups",
    responses((status = 200, description = "Recycled backups", body = BackupList)))]
async fn recycle_bin(state: web::Data<AppState>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let backups = block(move || svc.recycle_bin()).await?;
    Ok(ok(&BackupList::new(backups)))
}

/// Deletes every recycled backup.
#[utoipa::path(delete, path = "/api/recycle_bin", operation_id = "clear_recycle_bin", tag = "backups", request_body = DeleteFiles,
    responses(
        (status = 200, description = "How many were deleted", body = Deleted),
        (status = 400, description = "`delete_files` is missing or not a boolean", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
    ))]
async fn clear_recycle_bin(state: web::Data<AppState>, by: Who, body: web::Bytes) -> Result<HttpResponse> {
    let files = delete_files(&body)?;
    let svc = state.service.clone();
    let n = block(move || svc.clear_recycle_bin(files, &by)).await?;
    Ok(ok(&Deleted::new(n)))
}

/// Downloads a backup: a single-file backup as the file, a multi-file one as a tar stream.
#[utoipa::path(get, path = "/api/backup/{id}/download", operation_id = "download_backup", tag = "backups", params(BackupId),
    responses(
        (status = 200, description = "The content; `Content-Disposition` names it",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"...\"`")),
            content(
                (inline(Binary) = "application/octet-stream"),
                (inline(Binary) = "application/x-tar"),
            )),
        (status = 404, description = "No such backup", body = ErrorBody),
    ))]
async fn download(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let download = block(move || svc.download(&id)).await?;
    download_response(&state.service, download, attachment).await
}

/// Downloads one file of a backup (any version a file history lists).
#[utoipa::path(get, path = "/api/backup/{id}/file", operation_id = "download_backup_file", tag = "files",
    params(BackupId, ("path" = String, Query, description = "The file's path inside the backup")),
    responses(
        (status = 200, description = "The file",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"...\"`")),
            content((inline(Binary) = "application/octet-stream"))),
        (status = 400, description = "`path` is missing", body = ErrorBody),
        (status = 404, description = "No such backup, or no such file in it", body = ErrorBody),
    ))]
async fn download_file(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> Result<HttpResponse> {
    let path = super::query_pairs(&req).into_iter().rev().find(|(k, _)| k == "path").map(|(_, v)| v);
    let path = path.filter(|p| !p.is_empty()).ok_or_else(|| crate::model::fields::required("path"))?;
    let svc = state.service.clone();
    let (blob, size, name) = block(move || svc.backup_file(&id, &path)).await?;
    crate::http::download::file_response(&blob, size, attachment(&name)).await
}

/// Downloads chosen files and folders of a backup as one archive, built while it is sent.
#[utoipa::path(get, path = "/api/backup/{id}/select", operation_id = "download_selection", tag = "files",
    params(
        BackupId,
        ("path" = Vec<String>, Query, description = "A file or folder inside the backup; repeat for several"),
        ("format" = Option<String>, Query, description = "`tar` (the default) or `zip`"),
    ),
    responses(
        (status = 200, description = "The archive",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"...\"`")),
            content((inline(Binary) = "application/x-tar"), (inline(Binary) = "application/zip"))),
        (status = 400, description = "No `path`, or an unknown `format`", body = ErrorBody),
        (status = 404, description = "No such backup, or none of the paths is in it", body = ErrorBody),
    ))]
async fn download_selection(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse> {
    let pairs = super::query_pairs(&req);
    let paths: Vec<String> = pairs.iter().filter(|(k, _)| k == "path").map(|(_, v)| v.clone()).collect();
    let format = Format::parse(pairs.iter().rev().find(|(k, _)| k == "format").map(|(_, v)| v.as_str()))?;
    let svc = state.service.clone();
    let download = block(move || svc.download_selection(&id, &paths, format)).await?;
    download_response(&state.service, download, attachment).await
}

/// The `{id}` of a backup route.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only its description is used; handlers take `web::Path<String>`.
struct BackupId {
    /// The backup's id.
    id: String,
}
