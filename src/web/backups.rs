//! One backup (its files as a tree, downloads), recycle/restore/delete, and the recycle bin.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

use super::render::file_tree;
use super::targets::BackupRow;
use super::{
    Chrome, ConfirmPage, Ctx, Form, PageError, PageResult, block, enc, html, html_status, local_path, notice, see_other,
};
use crate::http::download::{attachment_utf8, download_response, file_response};
use crate::model::audit::Who;
use crate::model::target::TargetType;
use crate::service::files::Format;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/backups/{id}").route(web::get().to(view)))
        .service(web::resource("/backups/{id}/recycle").route(web::post().to(recycle)))
        .service(web::resource("/backups/{id}/restore").route(web::post().to(restore)))
        .service(web::resource("/backups/{id}/pin").route(web::post().to(pin)))
        .service(web::resource("/backups/{id}/unpin").route(web::post().to(unpin)))
        .service(
            web::resource("/backups/{id}/delete").route(web::get().to(delete_confirm)).route(web::post().to(delete)),
        )
        .service(web::resource("/backups/{id}/download").route(web::get().to(download)))
        .service(web::resource("/backups/{id}/file").route(web::get().to(download_file)))
        .service(
            web::resource("/backups/{id}/select")
                .route(web::get().to(download_selected_link))
                .route(web::post().to(download_selected)),
        )
        .service(web::resource("/recycle-bin").route(web::get().to(recycle_bin)))
        .service(web::resource("/recycle-bin/empty").route(web::get().to(empty_confirm)).route(web::post().to(empty)));
}

#[derive(Template)]
#[template(path = "backup.html")]
struct BackupPage {
    c: Chrome,
    b: BackupRow,
    recycled: bool,
    pinned: bool,
    single: bool,
    file_count: usize,
    tree: String,
    /// What the integrity check found wrong, one finding per entry.
    findings: Vec<String>,
}

async fn view(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, req: HttpRequest) -> PageResult {
    let svc = state.service.clone();
    let (target, backup, files, findings) = block(move || {
        let (t, mut b, f) = svc.backup_details(&id)?;
        let findings = if b.hash_mismatch { svc.backup_damage(&b.id)? } else { Vec::new() };
        // What deleting it alone frees: the target's listing knows it.
        b.exclusive_bytes =
            svc.target_with_backups(&t.id)?.1.iter().find(|x| x.id == b.id).and_then(|x| x.exclusive_bytes);
        Ok((t, b, f, findings))
    })
    .await?;
    let single = target.target_type == TargetType::Single;
    html(&BackupPage {
        findings,
        c: ctx.chrome(backup.name.clone(), "targets").with_notice(notice(&req)),
        b: BackupRow::of(&backup, &target.name, crate::time::now()),
        recycled: backup.is_recycled,
        pinned: backup.pinned,
        single,
        file_count: files.len(),
        tree: if single { String::new() } else { file_tree(&backup.id, &files) },
    })
}

/// The safe local path a form names in `back`, read before the form acts so that a hostile
/// value can only change where the user lands (their target's page instead).
fn back_from(form: &Form) -> Option<String> {
    local_path(&form.text("back")).map(str::to_string)
}

/// `back` with `?done=...` appended (or `&done=...` when it has a query already).
fn with_done(back: &str, done: &str) -> String {
    let sep = if back.contains('?') { '&' } else { '?' };
    format!("{back}{sep}done={done}")
}

async fn set_recycled(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: String,
    body: web::Bytes,
    recycled: bool,
) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let back = back_from(&form);
    let svc = state.service.clone();
    let target_id = block(move || {
        let (t, b, _) = svc.backup_details(&id)?;
        svc.set_recycled(&b.id, recycled)?;
        Ok(t.id)
    })
    .await?;
    let done = if recycled { "recycled" } else { "restored" };
    let back = back.unwrap_or_else(|| format!("/targets/{}", enc(&target_id)));
    Ok(see_other(&with_done(&back, done)))
}

async fn recycle(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
    set_recycled(state, ctx, id.into_inner(), body, true).await
}

async fn restore(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
    set_recycled(state, ctx, id.into_inner(), body, false).await
}

/// Pins (`pinned`) or unpins a backup, then back where the form came from.
async fn set_pinned(state: web::Data<AppState>, ctx: Ctx, id: String, body: web::Bytes, pinned: bool) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let back = back_from(&form);
    let svc = state.service.clone();
    let id = block(move || {
        svc.set_pinned(&id, pinned)?;
        let (_, b, _) = svc.backup_details(&id)?;
        Ok(b.id)
    })
    .await?;
    let back = back.unwrap_or_else(|| format!("/backups/{}", enc(&id)));
    Ok(see_other(&with_done(&back, if pinned { "pinned" } else { "unpinned" })))
}

async fn pin(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
    set_pinned(state, ctx, id.into_inner(), body, true).await
}

async fn unpin(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
    set_pinned(state, ctx, id.into_inner(), body, false).await
}

async fn delete_confirm(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, req: HttpRequest) -> PageResult {
    let svc = state.service.clone();
    let (target, backup, _) = block(move || svc.backup_details(&id)).await?;
    let back = back_from(&Form::from_query(&req)).unwrap_or_else(|| format!("/targets/{}", enc(&target.id)));
    if backup.pinned {
        // Asks to unpin first; unpinning comes back here, to the delete confirmation.
        let here = format!("/backups/{}/delete?back={}", enc(&backup.id), enc(&back));
        return html_status(
            actix_web::http::StatusCode::CONFLICT,
            &ConfirmPage {
                c: ctx.chrome("Unpin first", "targets"),
                heading: format!("The backup {} is pinned", backup.name),
                text: "A pinned backup is never deleted, by retention or by hand. Unpin it first, then delete it."
                    .into(),
                items: Vec::new(),
                action: format!("/backups/{}/unpin", enc(&backup.id)),
                hidden: vec![("back".into(), here)],
                files_choice: false,
                button: "Unpin".into(),
                danger: false,
                cancel: format!("/backups/{}", enc(&backup.id)),
            },
        );
    }
    html(&ConfirmPage {
        c: ctx.chrome("Delete backup", "targets"),
        heading: format!("Delete the backup {}?", backup.name),
        text: format!("It is removed from {}. {}", target.name, super::held::after_delete(&state.service.config)),
        items: Vec::new(),
        action: format!("/backups/{}/delete", enc(&backup.id)),
        hidden: vec![("back".into(), back.clone())],
        files_choice: true,
        button: "Delete backup".into(),
        danger: true,
        cancel: format!("/backups/{}", enc(&backup.id)),
    })
}

async fn delete(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    req: HttpRequest,
    by: Who,
    body: web::Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let files = form.checked("delete_files");
    if files {
        super::audit::note(&req, |n| n.action = Some(crate::model::audit::Action::BackupDeletedWithFiles));
    }
    // The deleted backup's own page is gone, so `back` may not lead to a backup page.
    let back = back_from(&form).filter(|b| !b.starts_with("/backups/"));
    let svc = state.service.clone();
    let target_id = block(move || {
        let (t, b, _) = svc.backup_details(&id)?;
        svc.delete_backup(&b.id, files, &by)?;
        Ok(t.id)
    })
    .await?;
    let back = back.unwrap_or_else(|| format!("/targets/{}", enc(&target_id)));
    Ok(see_other(&with_done(&back, "deleted")))
}

/// The whole backup: the file itself, or a tar of the tree built while it is sent.
async fn download(state: web::Data<AppState>, id: web::Path<String>) -> PageResult {
    let svc = state.service.clone();
    let download = block(move || svc.download(&id)).await?;
    Ok(download_response(&state.service, download, attachment_utf8).await?)
}

/// One file of a multi-file backup: `?path=dir/file`.
async fn download_file(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> PageResult {
    let path = Form::from_query(&req).get("path").unwrap_or_default().to_string();
    let svc = state.service.clone();
    let (blob, size, name) = block(move || svc.backup_file(&id, &path)).await?;
    stream_file(blob, size, &name).await
}

/// The ticked files and folders of a multi-file backup as one archive (`path` repeated,
/// `format=tar|zip`), streamed as the API's selection is. The page's form posts them, so thousands
/// of ticked paths never meet a URL length limit.
async fn download_selected(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    body: web::Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    selection(state, id.into_inner(), &form).await
}

/// The same as a link (`?path=…&format=…`), for a selection short enough to bookmark.
async fn download_selected_link(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> PageResult {
    selection(state, id.into_inner(), &Form::from_query(&req)).await
}

async fn selection(state: web::Data<AppState>, id: String, form: &Form) -> PageResult {
    let paths = form.all("path");
    if paths.is_empty() {
        return Ok(see_other(&format!("/backups/{}?done=none-ticked", enc(&id))));
    }
    let format = match form.text("format").as_str() {
        "" | "tar" => Format::Tar,
        "zip" => Format::Zip,
        _ => return Err(PageError::new(StatusCode::BAD_REQUEST, "Choose .tar or .zip as the archive format.")),
    };
    let svc = state.service.clone();
    let download = block(move || svc.download_selection(&id, &paths, format)).await?;
    Ok(download_response(&state.service, download, attachment_utf8).await?)
}

async fn stream_file(path: std::path::PathBuf, size: u64, filename: &str) -> PageResult {
    Ok(file_response(&path, size, attachment_utf8(filename)).await?)
}

#[derive(Template)]
#[template(path = "recycle_bin.html")]
struct RecycleBinPage {
    c: Chrome,
    rows: Vec<BackupRow>,
    total: String,
}

async fn recycle_bin(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest) -> PageResult {
    let svc = state.service.clone();
    let (backups, names) = block(move || {
        let backups = svc.recycle_bin()?;
        let names: std::collections::HashMap<String, String> =
            svc.target_summaries(None)?.into_iter().map(|s| (s.target.id, s.target.name)).collect();
        Ok((backups, names))
    })
    .await?;
    let now = crate::time::now();
    let total = super::render::size(backups.iter().map(|b| b.filesize).sum());
    let rows = backups
        .iter()
        .map(|b| BackupRow::of(b, names.get(&b.target_id).map(String::as_str).unwrap_or("?"), now))
        .collect();
    html(&RecycleBinPage { c: ctx.chrome("Recycle bin", "recycle").with_notice(notice(&req)), rows, total })
}

async fn empty_confirm(state: web::Data<AppState>, ctx: Ctx) -> PageResult {
    let svc = state.service.clone();
    let n = block(move || svc.recycle_bin()).await?.len();
    html(&ConfirmPage {
        c: ctx.chrome("Empty the recycle bin", "recycle"),
        heading: "Empty the recycle bin?".into(),
        text: format!(
            "{n} recycled backup(s) of every target are deleted. {}",
            super::held::after_delete(&state.service.config)
        ),
        items: Vec::new(),
        action: "/recycle-bin/empty".into(),
        hidden: Vec::new(),
        files_choice: true,
        button: "Empty the recycle bin".into(),
        danger: true,
        cancel: "/recycle-bin".into(),
    })
}

async fn empty(state: web::Data<AppState>, ctx: Ctx, by: Who, body: web::Bytes) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let files = form.checked("delete_files");
    let svc = state.service.clone();
    let n = block(move || svc.clear_recycle_bin(files, &by)).await?;
    Ok(see_other(&format!("/recycle-bin?done=emptied&n={n}")))
}
