//! The API's audit trail: [`record`] is called by `authorize` (in `mod.rs`) for every request
//! that changes something and every refused one, with the action its route declared; handlers
//! add what only they know with [`note`]. `GET /api/audit` reads the trail.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use super::schema::{AuditList, ErrorBody};
use super::{block, ok, query_count, query_pairs, resource};
use crate::auth::grant::{Caller, Need, Scope};
use crate::error::{Error, Result};
use crate::model::audit::{Action, Entry, Note, Query, Who};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/audit").get(Need::Admin, list));
}

/// Adds to the audit entry of this request.
pub(crate) fn note(req: &HttpRequest, f: impl FnOnce(&mut Note)) {
    let mut ext = req.extensions_mut();
    if ext.get::<Note>().is_none() {
        ext.insert(Note::default());
    }
    if let Some(n) = ext.get_mut::<Note>() {
        f(n);
    }
}

/// Which kind of object the `{id}` of a route with this action names.
fn scope_of(action: Action) -> Option<Scope> {
    use Action::*;
    match action {
        BackupEdited
        | BackupRecycled
        | BackupRestored
        | BackupPinned
        | BackupUnpinned
        | BackupDeleted
        | BackupDeletedWithFiles
        | HeldRestored => Some(Scope::Backup),
        JobRetried => Some(Scope::Job),
        JobForced | RecycleBinCleared | HeldPurged | NotifyTested | TargetCreated | KeyAdded | KeyRevoked | Login
        | LoginFailed | Logout | PasswordChanged | AuditPurged => None,
        _ => Some(Scope::Target),
    }
}

/// The entry of a request, before its handler runs: who, the route, and what its path names
/// (the target resolved from an alias, a backup or a job, while they still exist).
pub(crate) async fn start(
    state: &AppState,
    req: &actix_web::dev::ServiceRequest,
    caller: &Caller,
    action: Action,
    scope: Option<Scope>,
) -> Entry {
    let who = Who {
        name: caller.name.clone(),
        session: None,
        origin: req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into()),
    };
    let mut entry = Entry::new(who, action);
    entry.route = Some(format!("{} {}", req.method(), req.match_pattern().unwrap_or_default()));
    let id = req.match_info().get("id").map(str::to_string);
    if let Some(name) = req.match_info().get("name") {
        entry.job = Some(name.to_string());
    }
    let scope = if action == Action::Read { scope } else { scope_of(action) };
    let (Some(scope), Some(id)) = (scope, id) else { return entry };
    match scope {
        Scope::Target => entry.target = Some(id.clone()),
        Scope::Backup => entry.backup = Some(id.clone()),
        Scope::Job => entry.job = Some(id.clone()),
    }
    let svc = state.service.clone();
    // The target's id (not an alias), so a target's audit filter finds all of it.
    if let Ok(Some(target)) = block(move || svc.target_of(scope, &id)).await {
        entry.target = Some(target);
    }
    entry
}

/// Finishes and stores the entry of a request once it is answered: the outcome, the refusal's
/// message (read from the small JSON error body, which is put back), and the handler's notes.
pub(crate) async fn record(
    state: &AppState,
    mut entry: Entry,
    res: ServiceResponse<BoxBody>,
) -> std::result::Result<ServiceResponse<BoxBody>, actix_web::Error> {
    entry.status = res.status().as_u16();
    if let Some(n) = res.request().extensions().get::<Note>().cloned() {
        entry.action = n.action.unwrap_or(entry.action);
        entry.target = n.target.or(entry.target);
        entry.backup = n.backup.or(entry.backup);
        entry.job = n.job.or(entry.job);
    }
    let res = if entry.status >= 400 {
        let (req, resp) = res.into_parts();
        let (head, body) = resp.into_parts();
        let body = actix_web::body::to_bytes(body).await.unwrap_or_default();
        let resp = head;
        entry.message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string));
        ServiceResponse::new(req, resp.set_body(BoxBody::new(body)))
    } else {
        res
    };
    let svc = state.service.clone();
    // One small insert, awaited so the entry is there when the client sees the reply.
    let _ = block(move || {
        svc.audit_logged(&entry);
        Ok(())
    })
    .await;
    Ok(res.map_into_boxed_body())
}

/// A page of the audit trail, newest first.
#[utoipa::path(get, path = "/api/audit", operation_id = "audit", tag = "misc",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 500, description = "How many entries (default 100)"),
        ("before" = Option<u64>, Query, minimum = 0, description = "Only entries older than this id (the previous page's `before`)"),
        ("target" = Option<String>, Query, description = "Only entries about this target (its id)"),
        ("who" = Option<String>, Query, description = "Only entries by this key name, `web`, `cli` or `bakch`"),
        ("action" = Option<String>, Query, description = "Only entries of this action (e.g. `backup_recycled`)"),
    ),
    responses(
        (status = 200, description = "The entries", body = AuditList),
        (status = 400, description = "A parameter is not valid", body = ErrorBody),
    ))]
async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    let query = parse_query(&req)?;
    let svc = state.service.clone();
    let limit = query.limit;
    let entries = block(move || svc.audit_entries(&query)).await?;
    let before = if entries.len() == limit { entries.last().map(|e| e.id) } else { None };
    Ok(ok(&AuditList::new(entries, before)))
}

fn parse_query(req: &HttpRequest) -> Result<Query> {
    let limit = query_count(req, "limit")?.unwrap_or(100) as usize;
    if !(1..=crate::service::audit::MAX_PAGE).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            crate::error::Code::Invalid,
            format!("Parameter 'limit' must be between 1 and {}", crate::service::audit::MAX_PAGE),
        ));
    }
    let before = query_count(req, "before")?.map(|n| n.min(i64::MAX as u64) as i64);
    let text = |key: &str| {
        query_pairs(req).into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| !v.is_empty())
    };
    let action = text("action");
    if let Some(a) = &action
        && Action::parse(a).is_none()
    {
        return Err(Error::invalid("action", crate::error::Code::NotAChoice, format!("Unknown action '{a}'")));
    }
    Ok(Query { limit, before, target: text("target"), who: text("who"), action })
}
