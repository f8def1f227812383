//! Uploading from the browser: a plain multipart form (works without JavaScript), which
//! `static/app.js` sends with XMLHttpRequest to show progress, speed and time left. Files
//! that carry relative paths (a folder picked or dropped) keep their tree.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::json;

use super::{Chrome, Ctx, Form, PageError, PageResult, block, enc, html, see_other};
use crate::http::multipart::Multipart;
use crate::http::upload::{Layout, Seen, UploadReader};
use crate::model::target::TargetType;
use crate::service::uploads::Part;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/targets/{id}/upload").route(web::get().to(form)).route(web::post().to(upload)));
}

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    c: Chrome,
    id: String,
    name: String,
    multi: bool,
    error: Option<String>,
}

async fn form(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>) -> PageResult {
    let svc = state.service.clone();
    let target = block(move || svc.target_for_upload(&id, None)).await?;
    html(&UploadPage {
        c: ctx.chrome(format!("Upload to {}", target.name), "targets"),
        id: target.id.clone(),
        name: target.name.clone(),
        multi: target.target_type == TargetType::Multi,
        error: None,
    })
}

/// The CSRF token first, `manual` (a checkbox), and any number of `backup_file` parts; an
/// empty file input is skipped.
const LAYOUT: Layout = Layout {
    file: "backup_file",
    max_files: usize::MAX,
    too_many_files: "",
    unnamed: None,
    texts: &["csrf", "manual"],
};

/// Answers in JSON to the script (it asks with `Accept: application/json`), else with a page.
async fn upload(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    req: HttpRequest,
    form: Multipart,
) -> PageResult {
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    match receive(&state, &ctx, id.into_inner(), &req, form).await {
        Ok(job) if wants_json => Ok(HttpResponse::Ok().json(json!({"job_id": job, "url": format!("/jobs/{job}")}))),
        Ok(job) => Ok(see_other(&format!("/jobs/{job}"))),
        Err(e) if wants_json => Ok(HttpResponse::build(e.status).json(json!({"error": e.message}))),
        Err(e) => Err(e),
    }
}

async fn receive(
    state: &web::Data<AppState>,
    ctx: &Ctx,
    id: String,
    req: &HttpRequest,
    form: Multipart,
) -> Result<i64, PageError> {
    // The same streaming, limits and timeouts as the API's uploads.
    let upload = UploadReader::new(&state.service.config.limits, req, form)?;
    let svc = state.service.clone();
    let lookup = id.clone();
    let known = crate::http::content_length(req);
    let target = block(move || svc.target_for_upload(&lookup, known)).await?;
    let mut csrf_ok = false;
    let mut manual = true;
    let received = upload
        .read(&state.service, &LAYOUT, |seen| match seen {
            Seen::Part("csrf") => Ok(()),
            Seen::Text("csrf", token) => {
                ctx.check(&Form(vec![("csrf".into(), token.to_string())]))?;
                csrf_ok = true;
                Ok(())
            }
            // The token comes first in the form, so nothing is stored for a forged request.
            _ if !csrf_ok => Err(super::csrf_refused()),
            Seen::Text("manual", text) => {
                manual = super::checkbox(text);
                Ok(())
            }
            _ => Ok(()),
        })
        .await?;
    if !csrf_ok {
        return Err(super::csrf_refused());
    }
    let parts = received.files;
    if parts.is_empty() {
        return Err(PageError::new(StatusCode::BAD_REQUEST, "Choose at least one file to upload."));
    }
    let svc = state.service.clone();
    let tree =
        target.target_type == TargetType::Multi && parts.iter().any(|(n, _)| n.trim_start_matches('/').contains('/'));
    let job = block(move || {
        if tree {
            svc.accept_tree_upload(&target.id, manual, parts)
        } else {
            let parts = parts.into_iter().map(|(filename, spooled)| Part { filename, spooled }).collect();
            svc.accept_upload(&target.id, manual, parts)
        }
    })
    .await?;
    tracing::info!("web upload for target {} queued as job {job}", enc(&id));
    Ok(job)
}
