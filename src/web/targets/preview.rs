//! The retention preview on the edit form: what the recycle job would do under the policy as
//! typed, before it is saved. `GET /targets/{id}/retention-preview?keep_daily=…` answers an
//! HTML fragment that `static/app.js` puts under the form while the policy is edited; the
//! form's Preview button (no script needed) shows the same fragment on the form page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

use super::super::render::{ago, size, when};
use super::super::{Form, PageError, PageResult, block, html_status};
use crate::model::retention::Reason;
use crate::service::retention::Decision;
use crate::state::AppState;

/// One active backup in the preview.
pub struct PreviewRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub ago: String,
    pub size: String,
    pub frees: String,
    pub keep: bool,
    /// keep, recycle or delete.
    pub decision: &'static str,
    /// The rules that keep it, in words.
    pub why: String,
}

/// The preview as the page shows it: the outcome, or why the policy as typed cannot be read.
pub struct PreviewView {
    pub error: Option<String>,
    /// The saved policy (not one typed in the form).
    pub current: bool,
    pub kept: usize,
    pub taken: usize,
    /// "recycled" or "deleted".
    pub verb: &'static str,
    pub frees: String,
    pub utc_offset: String,
    /// The newest backups (at most [`MAX_ROWS`]); `total` counts them all.
    pub rows: Vec<PreviewRow>,
    pub total: usize,
}

/// The most backups the preview lists one by one (its counts cover them all), so that the
/// fragment stays small while it follows every keystroke.
pub const MAX_ROWS: usize = 200;

#[derive(Template)]
#[template(path = "retention_preview.html")]
struct Fragment {
    p: PreviewView,
}

fn reason_words(r: Reason) -> &'static str {
    match r {
        Reason::Pinned => "pinned",
        Reason::MinBackups => "always keep at least",
        Reason::NoRule => "no rule",
        Reason::Count => "count",
        Reason::Age => "age",
        Reason::Last => "last",
        Reason::Hourly => "hourly",
        Reason::Daily => "daily",
        Reason::Weekly => "weekly",
        Reason::Monthly => "monthly",
        Reason::Yearly => "yearly",
        Reason::Within => "within",
    }
}

/// Whether a form field is part of the retention policy (what a preview reads).
pub fn policy_field(key: &str) -> bool {
    matches!(key, "recycle_criteria" | "recycle_value" | "recycle_action" | "min_backups") || key.starts_with("keep_")
}

/// The preview of target `id` under the policy fields of `pairs` (the saved policy when there
/// are none). A policy that cannot be read is a preview with an error in the form's words; a
/// missing target or a server failure is an error.
pub async fn build(state: &AppState, id: &str, pairs: &[(String, String)]) -> Result<PreviewView, PageError> {
    let policy: Vec<(String, String)> = pairs.iter().filter(|(k, _)| policy_field(k)).cloned().collect();
    let svc = state.service.clone();
    let id = id.to_string();
    let result = block(move || {
        let (_, backups) = svc.target_with_backups(&id)?;
        Ok((svc.retention_preview(&id, &policy)?, backups))
    })
    .await;
    let (preview, backups) = match result {
        Ok(r) => r,
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let message = match (e.field.as_deref(), e.code) {
                (Some(field), Some(code)) => super::form::in_form_words(field, code, &e.message),
                _ => e.message.clone(),
            };
            return Ok(PreviewView {
                error: Some(message),
                current: false,
                kept: 0,
                taken: 0,
                verb: "recycled",
                frees: String::new(),
                utc_offset: String::new(),
                rows: Vec::new(),
                total: 0,
            });
        }
        Err(e) => return Err(e),
    };
    let now = crate::time::now();
    let rows = preview
        .backups
        .iter()
        .take(MAX_ROWS)
        .map(|b| PreviewRow {
            id: b.id.clone(),
            name: backups.iter().find(|x| x.id == b.id).map(|x| x.name.clone()).unwrap_or_else(|| b.id.clone()),
            created: when(b.created_at),
            ago: ago(b.created_at, now),
            size: size(b.filesize),
            frees: size(b.exclusive_bytes),
            keep: b.decision == Decision::Keep,
            decision: match b.decision {
                Decision::Keep => "keep",
                Decision::Recycle => "recycle",
                Decision::Delete => "delete",
            },
            why: b.reasons.iter().map(|r| reason_words(*r)).collect::<Vec<_>>().join(", "),
        })
        .collect();
    Ok(PreviewView {
        error: None,
        current: preview.current,
        kept: preview.kept,
        taken: preview.taken,
        verb: if matches!(preview.policy.recycle_action, crate::model::target::RecycleAction::Delete) {
            "deleted"
        } else {
            "recycled"
        },
        frees: size(preview.frees_bytes),
        utc_offset: preview.utc_offset,
        rows,
        total: preview.backups.len(),
    })
}

/// `GET /targets/{id}/retention-preview?…policy fields…`: the preview as an HTML fragment
/// (400 with the reason when the policy cannot be read).
pub(super) async fn fragment(state: web::Data<AppState>, id: web::Path<String>, req: HttpRequest) -> PageResult {
    let q = Form::from_query(&req);
    let p = build(&state, &id, q.pairs()).await?;
    let status = if p.error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    html_status(status, &Fragment { p })
}
