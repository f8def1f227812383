//! `/api/target`: list, create, search, view, edit, delete, bulk deletes.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::schema::{
    CompareReply, Created, DeleteFiles, Deleted, Done, ErrorBody, FilesReply, HistoryReply, NewTarget, RetentionReply,
    Storage, TargetDetail, TargetEdit, TargetList, TargetMatches, TargetView,
};
use super::{block, delete_files, json_body, ok, query_count, query_pairs, reply, resource};
use crate::auth::grant::{Caller, Need, Role};
use crate::error::{Code, Error};
use crate::model::audit::{Action, Who};
use crate::model::target::{Search, Target, TargetInput};
use crate::service::targets::Which;
use crate::service::{Depends, Service};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/target").get(Need::ListTargets, list).post(Need::Admin, Action::TargetCreated, create))
        // Before `/target/{id}`, so "search" is never taken for an id.
        .service(resource("/target/search").get(Need::ListTargets, search))
        .service(
            resource("/target/{id}").get(Need::ReadTarget, view).patch(Need::Admin, Action::TargetEdited, edit).delete(
                Need::Admin,
                Action::TargetDeleted,
                delete,
            ),
        )
        .service(resource("/target/{id}/retention").get(Need::ReadTarget, retention))
        .service(resource("/target/{id}/files").get(Need::ReadTarget, files))
        .service(resource("/target/{id}/history").get(Need::ReadTarget, history))
        .service(resource("/target/{id}/compare").get(Need::ReadTarget, compare))
        .service(resource("/target/{id}/all").delete(Need::Admin, Action::TargetBackupsDeleted, delete_all))
        .service(resource("/target/{id}/recycled").delete(Need::Admin, Action::TargetRecycledDeleted, delete_recycled));
}

/// Targets as JSON, with how their files reach the store (`hardlink` or `copy`), their sizes
/// and health (read over one database connection for them all).
pub(crate) fn target_views(svc: &Service, targets: &[Target]) -> Result<Vec<TargetView>, Error> {
    let figures = svc.usage_and_health(targets)?;
    Ok(targets
        .iter()
        .zip(figures)
        .map(|(t, (usage, health))| TargetView {
            target: t.clone(),
            storage: Storage::of(usage.storage),
            logical_size: usage.logical,
            disk_used: usage.disk_used,
            dedup_saved: usage.logical - usage.disk_used,
            health,
        })
        .collect())
}

/// Lists targets, a page at a time (`page_size` per page).
#[utoipa::path(get, path = "/api/target", operation_id = "list_targets", tag = "targets",
    params(("page" = Option<u64>, Query, minimum = 1, description = "1 when left out")),
    responses(
        (status = 200, description = "One page; past the end it is empty", body = TargetList),
        (status = 304, description = "Not modified: the `ETag` sent in `If-None-Match` still holds"),
        (status = 400, description = "`page` is not a positive integer", body = ErrorBody),
    ))]
async fn list(state: web::Data<AppState>, req: HttpRequest, caller: Caller) -> Result<HttpResponse, Error> {
    let page = query_count(&req, "page")?.unwrap_or(1);
    if page == 0 {
        return Err(Error::invalid("page", Code::Invalid, "Parameter 'page' must be 1 or more"));
    }
    let svc = state.service.clone();
    if let Role::Upload(ids) = &caller.role {
        // Narrowed to the key's own targets: not shared, so not kept.
        let ids = ids.clone();
        let targets = block(move || {
            let list = svc.targets_among(&ids, page as usize)?;
            target_views(&svc, &list)
        })
        .await?;
        return Ok(ok(&TargetList::new(targets, page)));
    }
    super::cached::reply(&state.service, &req, format!("list:{page}"), move |svc| {
        let list = svc.list_targets(page as usize)?;
        // A page shows its targets; which targets are on it changes with a target's row (`*`).
        let depends = Depends::Targets(list.iter().map(|t| t.id.clone()).collect());
        Ok((super::json_bytes(&TargetList::new(target_views(svc, &list)?, page))?, depends))
    })
    .await
}

/// Creates a target (and its folder).
#[utoipa::path(post, path = "/api/target", operation_id = "create_target", tag = "targets", request_body = NewTarget,
    responses(
        (status = 201, description = "Created", body = Created),
        (status = 400, description = "A field is missing or invalid, or the location cannot be used", body = ErrorBody),
        (status = 409, description = "The name template or the alias is taken", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
    ))]
async fn create(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, Error> {
    let input = TargetInput::from_json(&json_body(&body)?)?;
    let svc = state.service.clone();
    let id = block(move || svc.create_target(input)).await?;
    super::audit::note(&req, |n| n.target = Some(id.clone()));
    Ok(reply(StatusCode::CREATED, &Created::new(id)))
}

/// A target and all its backups.
#[utoipa::path(get, path = "/api/target/{id}", operation_id = "get_target", tag = "targets", params(TargetId),
    responses(
        (status = 200, description = "The target", body = TargetDetail),
        (status = 304, description = "Not modified: the `ETag` sent in `If-None-Match` still holds"),
        (status = 404, description = "No such target", body = ErrorBody),
    ))]
async fn view(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> Result<HttpResponse, Error> {
    // The same bytes whoever asks: a key that may not read this target was refused before.
    let id = id.into_inner();
    super::cached::reply(&state.service, &req, format!("target:{id}"), move |svc| {
        let (t, b) = svc.target_with_backups(&id)?;
        let view = target_views(svc, std::slice::from_ref(&t))?.pop().ok_or_else(|| Error::internal("no view"))?;
        let depends = Depends::Targets(vec![t.id.clone()]);
        Ok((super::json_bytes(&TargetDetail::new(view, b))?, depends))
    })
    .await
}

/// Changes a target.
#[utoipa::path(patch, path = "/api/target/{id}", operation_id = "edit_target", tag = "targets", params(TargetId), request_body = TargetEdit,
    responses(
        (status = 200, description = "Changed", body = Done),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 409, description = "The name template or the alias is taken", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
        (status = 507, description = "The disk is full (moving the backups)", body = ErrorBody),
    ))]
async fn edit(state: web::Data<AppState>, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, Error> {
    let input = TargetInput::from_json(&json_body(&body)?)?;
    let svc = state.service.clone();
    block(move || svc.edit_target(&id, input)).await?;
    Ok(ok(&Done::default()))
}

/// Deletes a target and its backups.
#[utoipa::path(delete, path = "/api/target/{id}", operation_id = "delete_target", tag = "targets", params(TargetId), request_body = DeleteFiles,
    responses(
        (status = 200, description = "Deleted", body = Done),
        (status = 400, description = "`delete_files` is missing or not a boolean", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 409, description = "Backups of the target are being uploaded or built, or one is pinned: unpin it first", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
    ))]
async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
    by: Who,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    let files = delete_files(&body)?;
    let svc = state.service.clone();
    block(move || svc.delete_target(&id, files, &by)).await?;
    Ok(ok(&Done::default()))
}

/// Deletes all of a target's backups, active and recycled.
#[utoipa::path(delete, path = "/api/target/{id}/all", operation_id = "delete_target_backups", tag = "targets", params(TargetId), request_body = DeleteFiles,
    responses(
        (status = 200, description = "How many were deleted", body = Deleted),
        (status = 400, description = "`delete_files` is missing or not a boolean", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 409, description = "One of the backups it would take is pinned: unpin it first (nothing is deleted)", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
    ))]
async fn delete_all(
    state: web::Data<AppState>,
    id: web::Path<String>,
    by: Who,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    bulk_delete(state, id, by, body, Which::All).await
}

/// Deletes a target's recycled backups.
#[utoipa::path(delete, path = "/api/target/{id}/recycled", operation_id = "delete_target_recycled", tag = "targets", params(TargetId), request_body = DeleteFiles,
    responses(
        (status = 200, description = "How many were deleted", body = Deleted),
        (status = 400, description = "`delete_files` is missing or not a boolean", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 409, description = "One of the backups it would take is pinned: unpin it first (nothing is deleted)", body = ErrorBody),
        (status = 413, description = "The body is over `max_json_bytes`", body = ErrorBody),
    ))]
async fn delete_recycled(
    state: web::Data<AppState>,
    id: web::Path<String>,
    by: Who,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    bulk_delete(state, id, by, body, Which::Recycled).await
}

async fn bulk_delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
    by: Who,
    body: web::Bytes,
    which: Which,
) -> Result<HttpResponse, Error> {
    let files = delete_files(&body)?;
    let svc = state.service.clone();
    let n = block(move || svc.delete_target_backups(&id, which, files, &by)).await?;
    Ok(ok(&Deleted::new(n)))
}

/// What the recycle job would do to the target's active backups now: each with `keep`,
/// `recycle` or `delete` and the rules that keep it, and the bytes the run would free. Without
/// policy parameters, for the saved policy; with any, for that policy (the rest from the saved
/// one). Nothing is changed.
#[utoipa::path(get, path = "/api/target/{id}/retention", operation_id = "preview_retention", tag = "targets",
    params(
        TargetId,
        ("recycle_criteria" = Option<crate::model::target::RecycleCriteria>, Query),
        ("recycle_value" = Option<u64>, Query),
        ("recycle_action" = Option<crate::model::target::RecycleAction>, Query),
        ("min_backups" = Option<u64>, Query),
        ("keep_last" = Option<u32>, Query, description = "Keep the n newest backups"),
        ("keep_hourly" = Option<u32>, Query, description = "Keep the newest backup of each of the n newest hours that have one"),
        ("keep_daily" = Option<u32>, Query),
        ("keep_weekly" = Option<u32>, Query, description = "ISO weeks"),
        ("keep_monthly" = Option<u32>, Query),
        ("keep_yearly" = Option<u32>, Query),
        ("keep_within" = Option<String>, Query, description = "Keep every backup within this span of the newest one: `30d`, `1y6m`, `12h`"),
    ),
    responses(
        (status = 200, description = "The preview", body = RetentionReply),
        (status = 400, description = "A policy parameter is invalid", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
    ))]
async fn retention(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> Result<HttpResponse, Error> {
    let pairs = query_pairs(&req);
    let svc = state.service.clone();
    let preview = block(move || svc.retention_preview(&id, &pairs)).await?;
    Ok(ok(&RetentionReply::new(preview)))
}

/// The last value of a query parameter.
fn query_value(req: &HttpRequest, key: &str) -> Option<String> {
    query_pairs(req).into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Searches the paths of a target's backups (active and recycled) for a file name or a part
/// of a path, a page at a time, from the file index.
#[utoipa::path(get, path = "/api/target/{id}/files", operation_id = "search_files", tag = "files",
    params(
        TargetId,
        ("q" = String, Query, description = "A file name or part of a path (case-insensitive for ASCII)"),
        ("page" = Option<u64>, Query, minimum = 1),
        ("page_size" = Option<u64>, Query, minimum = 1, maximum = 200, description = "50 when left out"),
    ),
    responses(
        (status = 200, description = "One page of matching paths", body = FilesReply),
        (status = 400, description = "`q` is missing, or `page` is not a positive integer", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
    ))]
async fn files(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> Result<HttpResponse, Error> {
    let q = query_value(&req, "q").unwrap_or_default();
    let page = query_count(&req, "page")?.unwrap_or(1);
    if page == 0 {
        return Err(Error::invalid("page", Code::Invalid, "Parameter 'page' must be 1 or more"));
    }
    let size = query_count(&req, "page_size")?.unwrap_or(50);
    let svc = state.service.clone();
    let found = block(move || svc.search_files(&id, &q, page as usize, size as usize)).await?;
    Ok(ok(&FilesReply::new(found)))
}

/// The versions of one path across the target's backups, newest first: backup, time, size,
/// hash, and whether it changed since the next older version. Any version downloads from
/// `GET /api/backup/{backup_id}/file?path=...`.
#[utoipa::path(get, path = "/api/target/{id}/history", operation_id = "file_history", tag = "files",
    params(TargetId, ("path" = String, Query, description = "The file's path inside a backup")),
    responses(
        (status = 200, description = "Its versions (none when no backup holds it)", body = HistoryReply),
        (status = 400, description = "`path` is missing", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
    ))]
async fn history(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> Result<HttpResponse, Error> {
    let path = query_value(&req, "path").unwrap_or_default();
    let svc = state.service.clone();
    let shown = path.clone();
    let versions = block(move || svc.file_history(&id, &path)).await?;
    Ok(ok(&HistoryReply::new(shown, versions)))
}

/// What changed from one backup of the target to another: files added, removed and changed,
/// with sizes.
#[utoipa::path(get, path = "/api/target/{id}/compare", operation_id = "compare_backups", tag = "files",
    params(
        TargetId,
        ("from" = String, Query, description = "The older backup's id"),
        ("to" = String, Query, description = "The newer backup's id"),
    ),
    responses(
        (status = 200, description = "The differences", body = CompareReply),
        (status = 400, description = "`from` or `to` is missing", body = ErrorBody),
        (status = 404, description = "No such target, or a backup that is not one of it", body = ErrorBody),
    ))]
async fn compare(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> Result<HttpResponse, Error> {
    let from =
        query_value(&req, "from").filter(|v| !v.is_empty()).ok_or_else(|| crate::model::fields::required("from"))?;
    let to = query_value(&req, "to").filter(|v| !v.is_empty()).ok_or_else(|| crate::model::fields::required("to"))?;
    let svc = state.service.clone();
    let comparison = block(move || svc.compare(&id, &from, &to)).await?;
    Ok(ok(&CompareReply::new(comparison)))
}

/// Finds targets; every filter given must match. Empty values are no filter.
#[utoipa::path(get, path = "/api/target/search", operation_id = "search_targets", tag = "targets",
    params(
        ("name" = Option<String>, Query, description = "Part of the name"),
        ("type" = Option<crate::model::target::TargetType>, Query,
            description = "Also read as `target_type` or `backup_type`; `BackupType.SINGLE` counts as `single`"),
        ("recycle_criteria" = Option<crate::model::target::RecycleCriteria>, Query),
        ("recycle_action" = Option<crate::model::target::RecycleAction>, Query),
        ("location" = Option<String>, Query, description = "Part of the location"),
        ("name_template" = Option<String>, Query, description = "Part of the name template"),
        ("alias" = Option<String>, Query, description = "Part of the alias"),
        ("deduplicate" = Option<bool>, Query, description = "`true`, `1` or `on` for on; anything else for off"),
        ("tags" = Option<String>, Query, description = "Tags the target must all carry, separated by spaces or commas"),
    ),
    responses(
        (status = 200, description = "The matching targets", body = TargetMatches),
        (status = 400, description = "No filter was given", body = ErrorBody),
    ))]
async fn search(state: web::Data<AppState>, req: HttpRequest, caller: Caller) -> Result<HttpResponse, Error> {
    let search = parse_search(&query_pairs(&req))?;
    let svc = state.service.clone();
    let targets = block(move || {
        let list = svc.search_targets(&search)?;
        let seen: Vec<Target> = list.into_iter().filter(|t| caller.sees(&t.id)).collect();
        target_views(&svc, &seen)
    })
    .await?;
    Ok(ok(&TargetMatches::new(targets)))
}

/// The `{id}` of a target route: the target's id or its alias.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only its description is used; handlers take `web::Path<String>`.
pub(crate) struct TargetId {
    /// The target's id or its alias.
    #[param(example = "photos")]
    id: String,
}

/// Reads search filters (the rules are [`Search::from_pairs`]'s); at least one must be given.
fn parse_search(pairs: &[(String, String)]) -> Result<Search, Error> {
    Search::from_pairs(pairs).ok_or_else(|| {
        Error::bad(
            "Give at least one search filter: name, type, recycle_criteria, recycle_action, location, name_template, alias, deduplicate or tags",
        )
    })
}
