//! The web UI's audit trail: [`recorded`] wraps every page request in `guard`; a POST is
//! recorded with the action its route pattern maps to in [`action_of`], and a POST whose route
//! has none (and is not one of the few [`READS_BY_POST`]) is refused (500) before its handler
//! runs, so a new form cannot skip the trail.
//! The `/audit` page lists the trail.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use askama::Template;

use super::{Chrome, Ctx, Form, PageError, PageResult, block, enc, html};
use crate::auth::grant::Scope;
use crate::model::audit::{Action, Entry, Note, Query, Recorded, Who};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit").route(web::get().to(page)));
}

/// The action of each page route that changes something, and what its path's first parameter
/// names. Every POST route must be here (see the module comment).
pub fn action_of(pattern: &str) -> Option<(Action, Option<Scope>)> {
    use Action::*;
    Some(match pattern {
        "/login" => (Login, None),
        "/logout" => (Logout, None),
        "/targets/new" => (TargetCreated, None),
        "/targets/{id}/edit" => (TargetEdited, Some(Scope::Target)),
        "/targets/{id}/bulk" => (BackupsBulk, Some(Scope::Target)),
        "/targets/{id}/keys" => (KeyAdded, Some(Scope::Target)),
        "/targets/{id}/delete" => (TargetDeleted, Some(Scope::Target)),
        "/targets/{id}/upload" => (BackupUploaded, Some(Scope::Target)),
        "/backups/{id}/recycle" => (BackupRecycled, Some(Scope::Backup)),
        "/backups/{id}/restore" => (BackupRestored, Some(Scope::Backup)),
        "/backups/{id}/delete" => (BackupDeleted, Some(Scope::Backup)),
        "/backups/{id}/pin" => (BackupPinned, Some(Scope::Backup)),
        "/backups/{id}/unpin" => (BackupUnpinned, Some(Scope::Backup)),
        "/recycle-bin/empty" => (RecycleBinCleared, None),
        "/held/{id}/restore" => (HeldRestored, Some(Scope::Backup)),
        "/jobs/run/{name}" => (JobForced, None),
        "/jobs/{id}/retry" => (JobRetried, Some(Scope::Job)),
        "/uploads/{target}/cancel" => (SeqTerminated, Some(Scope::Target)),
        "/notify/test" => (NotifyTested, None),
        _ => return None,
    })
}

/// Page routes that only read but take POST, because what they are sent outgrows a URL (the
/// ticked paths of "Download selected"). Like every GET, they are not recorded.
const READS_BY_POST: &[&str] = &["/backups/{id}/select"];

/// Adds to the audit entry of this request.
pub fn note(req: &HttpRequest, f: impl FnOnce(&mut Note)) {
    let mut ext = req.extensions_mut();
    if ext.get::<Note>().is_none() {
        ext.insert(Note::default());
    }
    if let Some(n) = ext.get_mut::<Note>() {
        f(n);
    }
}

/// A short, stable tag of a session (from its CSRF token), so entries of one visit can be told
/// apart without storing anything that would let one act as that session.
fn session_tag(csrf: &str) -> String {
    blake3::hash(csrf.as_bytes()).to_hex()[..8].to_string()
}

/// Runs a page request, recording it when it is a POST (see the module comment).
pub async fn recorded(
    state: &AppState,
    req: ServiceRequest,
    csrf: &str,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let pattern = req.match_pattern().unwrap_or_default();
    if READS_BY_POST.contains(&pattern.as_str()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some((action, scope)) = action_of(&pattern) else {
        if req.match_pattern().is_none() {
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        tracing::error!("POST {pattern} has no audit action; add it to web::audit::action_of");
        let err = PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "This form declares no audit action; see the log.");
        return Ok(req.error_response(err));
    };
    let who = Who {
        name: "web".into(),
        session: Some(session_tag(csrf)),
        origin: req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into()),
    };
    req.extensions_mut().insert(who.clone());
    let mut entry = Entry::new(who, action);
    entry.route = Some(format!("{} {pattern}", req.method()));
    let id = req.match_info().iter().next().map(|(_, v)| v.to_string());
    if let (Some(scope), Some(id)) = (scope, id.clone()) {
        match scope {
            Scope::Backup => entry.backup = Some(id.clone()),
            Scope::Job => entry.job = Some(id.clone()),
            Scope::Target => entry.target = Some(id.clone()),
        }
        let svc = state.service.clone();
        // The target's id (not an alias), resolved while the object still exists.
        if let Ok(Some(target)) = crate::http::block(move || svc.target_of(scope, &id)).await {
            entry.target = Some(target);
        }
    } else if action == Action::JobForced {
        entry.job = id;
    }
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    entry.status = status.as_u16();
    let note = res.request().extensions().get::<Note>().cloned().unwrap_or_default();
    if note.unchanged && status.is_success() {
        return Ok(res);
    }
    entry.action = note.action.unwrap_or(entry.action);
    entry.target = note.target.or(entry.target);
    entry.backup = note.backup.or(entry.backup);
    entry.job = note.job.or(entry.job);
    if action == Action::TargetCreated && status.is_redirection() {
        // The new target's page is where the form leads.
        let location = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if let Some(id) = location.strip_prefix("/targets/") {
            entry.target = Some(id.split(['/', '?']).next().unwrap_or_default().to_string());
        }
    }
    if status.as_u16() >= 400 {
        entry.message = note.message.or_else(|| status.canonical_reason().map(str::to_string));
    }
    let svc = state.service.clone();
    // One small insert, awaited so the entry is there when the browser sees the reply.
    let _ = block(move || {
        svc.audit_logged(&entry);
        Ok(())
    })
    .await;
    Ok(res)
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    entries: Vec<Recorded>,
    target: String,
    who: String,
    action: String,
    actions: Vec<&'static str>,
    /// The link to the next (older) page.
    older: Option<String>,
}

const PAGE: usize = 50;

async fn page(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest) -> PageResult {
    let q = Form::from_query(&req);
    let (target, who, action) = (q.text("target"), q.text("who"), q.text("action"));
    let before = q.text("before").parse::<i64>().ok();
    let some = |s: &String| (!s.is_empty()).then(|| s.clone());
    let query = Query { limit: PAGE, before, target: some(&target), who: some(&who), action: some(&action) };
    let svc = state.service.clone();
    let entries = block(move || svc.audit_entries(&query)).await?;
    let older = (entries.len() == PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|id| format!("/audit?target={}&who={}&action={}&before={id}", enc(&target), enc(&who), enc(&action)));
    let actions = Action::ALL.iter().map(|a| a.as_str()).collect();
    html(&AuditPage { c: ctx.chrome("Audit", "audit"), entries, target, who, action, actions, older })
}
