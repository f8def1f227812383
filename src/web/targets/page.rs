//! One target's page with its backups, bulk recycle/restore/delete, and the deletes of the
//! target or its backups, each behind a confirmation.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

use super::super::render::{ago, size, when};
use super::super::{
    Chrome, ConfirmPage, Ctx, Form, PageError, PageResult, SortCol, block, enc, html, notice, see_other, sort_cols,
};
use crate::model::audit::Who;
use crate::model::backup::Backup;
use crate::model::target::{RecycleCriteria, Target, TargetType};
use crate::service::targets::Which;
use crate::state::AppState;

pub struct BackupRow {
    pub id: String,
    pub name: String,
    pub target_id: String,
    pub target_name: String,
    pub created: String,
    pub ago: String,
    pub manual: bool,
    pub size: String,
    pub hash: String,
    pub hash_short: String,
    pub mismatch: bool,
    /// When it went to the recycle bin, relative and exact; empty when active or not recorded.
    pub recycled_ago: String,
    pub recycled_when: String,
    /// Retention never takes it, and deleting it asks to unpin first.
    pub pinned: bool,
    /// What deleting it alone would free; empty when not known.
    pub frees: String,
}

impl BackupRow {
    pub fn of(b: &Backup, target_name: &str, now: chrono::DateTime<chrono::Utc>) -> BackupRow {
        BackupRow {
            id: b.id.clone(),
            name: b.name.clone(),
            target_id: b.target_id.clone(),
            target_name: target_name.to_string(),
            created: when(b.created_at),
            ago: ago(b.created_at, now),
            manual: b.manual,
            size: size(b.filesize),
            hash: b.hash.clone(),
            hash_short: b.hash.chars().take(12).collect(),
            mismatch: b.hash_mismatch,
            recycled_ago: b.recycled_at.map(|t| ago(t, now)).unwrap_or_default(),
            recycled_when: b.recycled_at.map(when).unwrap_or_default(),
            pinned: b.pinned,
            frees: b.exclusive_bytes.map(size).unwrap_or_default(),
        }
    }
}

/// A target as its page describes it.
struct TargetInfo {
    id: String,
    name: String,
    kind: &'static str,
    rule: String,
    location: String,
    name_template: String,
    alias: String,
    deduplicate: bool,
    tags: Vec<String>,
    storage: &'static str,
    logical: String,
    disk: String,
    /// Ready-to-copy `backupchan` commands for this target: (what it does, the command).
    commands: Vec<(&'static str, String)>,
}

/// The official CLI's commands for a target, by id (an alias would do too, but the id never
/// changes). Paths are placeholders the user replaces.
fn cli_commands(t: &Target) -> Vec<(&'static str, String)> {
    let id = &t.id;
    let what = if t.target_type == TargetType::Single { "/path/to/file" } else { "/path/to/folder" };
    let mut cmds = vec![
        ("Upload a backup", format!("backupchan backup upload {id} {what}")),
        ("Upload from a scheduled job (counts as automatic)", format!("backupchan backup upload -a {id} {what}")),
    ];
    if t.target_type == TargetType::Multi {
        cmds.push((
            "Upload a large folder file by file (resumable)",
            format!("backupchan backup upload -s {id} /path/to/folder"),
        ));
    }
    cmds.push(("Show this target and its backups", format!("backupchan target view {id}")));
    cmds
}

#[derive(Template)]
#[template(path = "target.html")]
struct TargetPage {
    c: Chrome,
    t: TargetInfo,
    active: Vec<BackupRow>,
    recycled: Vec<BackupRow>,
    cols: Vec<SortCol>,
    /// The current sort, for the sort form phones use.
    sort: &'static str,
    desc: bool,
    keys: Vec<super::keys::KeyRow>,
    health: HealthView,
    quota: Option<super::list::QuotaView>,
    /// Its quota's warning level, "warns at 90 %" (empty when it never warns).
    quota_warns_at: String,
    /// This page as sorted now: where the pin buttons come back to.
    back: String,
    /// The compare form: every backup, and the two newest proposed.
    target_id: String,
    choices: Vec<super::files::Choice>,
    from: String,
    to: String,
}

/// The target's health as its page tells it.
struct HealthView {
    state: &'static str,
    reason: String,
    since: String,
    next_due: String,
    /// "every 1 day" when bakch proposes an interval from the history of an unmonitored target.
    suggestion: String,
    strip: String,
}

impl HealthView {
    fn of(h: &crate::model::health::Health, attempts: &[crate::service::health::Attempt], name: &str) -> HealthView {
        HealthView {
            state: h.state.as_str(),
            reason: h.reason.clone(),
            since: h.since.map(when).unwrap_or_default(),
            next_due: h.next_due.map(when).unwrap_or_default(),
            suggestion: h
                .suggested_interval
                .map(|s| format!("every {}", crate::model::health::human(s)))
                .unwrap_or_default(),
            strip: if attempts.is_empty() {
                String::new()
            } else {
                super::super::render::history_strip(
                    attempts,
                    &format!("The last {} attempts of {name}", attempts.len()),
                )
            },
        }
    }
}

fn rule_text(t: &Target) -> String {
    let action = if t.recycle_action.as_str() == "delete" { "deleted" } else { "recycled" };
    let keep = if t.min_backups > 0 { format!(", keeping at least {}", t.min_backups) } else { String::new() };
    match t.recycle_criteria {
        RecycleCriteria::None => "Backups are kept until you remove them.".into(),
        RecycleCriteria::Count => {
            format!("The {} newest backups are kept; older ones are {action}{keep}.", t.recycle_value)
        }
        RecycleCriteria::Age => format!("Backups older than {} days are {action}{keep}.", t.recycle_value),
    }
}

pub(super) async fn view(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, req: HttpRequest) -> PageResult {
    let svc = state.service.clone();
    let (target, backups, usage, health, quota) = block(move || {
        let (t, b) = svc.target_with_backups(&id)?;
        let u = svc.target_usage(&t)?;
        let h = HealthView::of(&svc.target_health(&t)?, &svc.attempts(&t.id, 90)?, &t.name);
        let q = svc.quota_use(&t)?;
        Ok((t, b, u, h, q))
    })
    .await?;
    let keys = super::keys::uploaders(&state, &target.id).await?;
    let q = Form::from_query(&req);
    let sort = match q.get("sort") {
        Some("size") => "size",
        Some("frees") => "frees",
        _ => "date",
    };
    let desc = q.get("dir") != Some("asc");
    let mut backups = backups;
    backups.sort_by(|a, b| {
        let o = match sort {
            "size" => a.filesize.cmp(&b.filesize),
            "frees" => a.exclusive_bytes.cmp(&b.exclusive_bytes),
            _ => a.created_at.cmp(&b.created_at),
        };
        // Ties (equal sizes) fall back to the newest first, so the order never jumps.
        let o = if desc { o.reverse() } else { o };
        o.then_with(|| b.created_at.cmp(&a.created_at))
    });
    let now = crate::time::now();
    let (recycled, active): (Vec<&Backup>, Vec<&Backup>) = backups.iter().partition(|b| b.is_recycled);
    let path = format!("/targets/{}", enc(&target.id));
    let cols = sort_cols(
        &[("date", "Created", "desc"), ("size", "Size", "desc"), ("frees", "Frees", "desc")],
        sort,
        desc,
        &path,
        &[],
    );
    let choices = super::files::choices(&backups);
    let page = TargetPage {
        c: ctx.chrome(target.name.clone(), "targets").with_notice(notice(&req)),
        active: active.iter().map(|b| BackupRow::of(b, &target.name, now)).collect(),
        recycled: recycled.iter().map(|b| BackupRow::of(b, &target.name, now)).collect(),
        back: format!("{path}?sort={sort}&dir={}", if desc { "desc" } else { "asc" }),
        target_id: target.id.clone(),
        from: choices.get(1).map(|c| c.id.clone()).unwrap_or_default(),
        to: choices.first().map(|c| c.id.clone()).unwrap_or_default(),
        choices,
        cols,
        sort,
        desc,
        keys,
        health,
        quota: quota.as_ref().map(super::list::QuotaView::of),
        quota_warns_at: if target.quota_warning_percent > 0 {
            format!("warns at {} %", target.quota_warning_percent)
        } else {
            String::new()
        },
        t: TargetInfo {
            id: target.id.clone(),
            name: target.name.clone(),
            kind: if target.target_type == TargetType::Single { "single file" } else { "multiple files" },
            rule: rule_text(&target),
            location: target.location.clone(),
            name_template: target.name_template.clone(),
            alias: target.alias.clone().unwrap_or_default(),
            deduplicate: target.deduplicate,
            tags: target.tags.clone(),
            storage: usage.storage,
            logical: size(usage.logical),
            disk: size(usage.disk_used),
            commands: cli_commands(&target),
        },
    };
    html(&page)
}

/// Recycle, restore or delete the selected backups: first a confirmation page, then the work.
pub(super) async fn bulk(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    req: HttpRequest,
    by: Who,
    body: web::Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let action = form.text("action");
    let ids = form.all("backup");
    let svc = state.service.clone();
    let (target, backups) = block(move || svc.target_with_backups(&id)).await?;
    let back = format!("/targets/{}", enc(&target.id));
    if ids.is_empty() {
        return Ok(see_other(&format!("{back}?done=none-selected")));
    }
    let chosen: Vec<&Backup> = backups.iter().filter(|b| ids.contains(&b.id)).collect();
    if chosen.len() != ids.len() {
        return Err(PageError::new(StatusCode::NOT_FOUND, "A selected backup no longer belongs to this target."));
    }
    let (verb, done) = match action.as_str() {
        "recycle" => ("Recycle", "recycled"),
        "restore" => ("Restore", "restored"),
        "delete" => ("Delete", "deleted"),
        _ => return Err(PageError::new(StatusCode::BAD_REQUEST, "Unknown action.")),
    };
    // A pinned backup is never deleted: refuse the whole selection before anything happens.
    let pinned: Vec<&str> = chosen.iter().filter(|b| b.pinned).map(|b| b.name.as_str()).collect();
    if action == "delete" && !pinned.is_empty() {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            format!(
                "Pinned backups are never deleted; unpin them first (Unpin on the target's page): {}. Nothing was deleted.",
                pinned.join(", ")
            ),
        ));
    }
    let ids_text = ids.join(",");
    crate::web::audit::note(&req, |n| n.message = Some(format!("{action}: {ids_text}")));
    if !form.checked("confirm") {
        crate::web::audit::note(&req, |n| n.unchanged = true);
        let n = chosen.len();
        let mut hidden = vec![("action".to_string(), action.clone())];
        hidden.extend(ids.iter().map(|i| ("backup".to_string(), i.clone())));
        return html(&ConfirmPage {
            c: ctx.chrome(format!("{verb} backups"), "targets"),
            heading: format!("{verb} {n} backup{} of {}?", if n == 1 { "" } else { "s" }, target.name),
            text: match action.as_str() {
                "recycle" => "They move to the recycle bin, from where they can be restored.".into(),
                "restore" => "They move back to the target's folder.".into(),
                _ => crate::web::held::after_delete(&state.service.config),
            },
            items: chosen
                .iter()
                .map(|b| format!("{} ({}, {})", b.name, when(b.created_at), size(b.filesize)))
                .collect(),
            action: format!("/targets/{}/bulk", enc(&target.id)),
            hidden,
            files_choice: action == "delete",
            button: format!("{verb} {n}"),
            danger: action == "delete",
            cancel: back,
        });
    }
    let delete_files = form.checked("delete_files");
    let svc = state.service.clone();
    let n = ids.len();
    block(move || {
        for id in &ids {
            match action.as_str() {
                "recycle" => svc.set_recycled(id, true)?,
                "restore" => svc.set_recycled(id, false)?,
                _ => svc.delete_backup(id, delete_files, &by)?,
            }
        }
        Ok(())
    })
    .await?;
    Ok(see_other(&format!("{back}?done={done}&n={n}")))
}

/// Delete the target, all its backups, or its recycled ones: `what` = target | all | recycled.
pub(super) async fn delete_confirm(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    req: HttpRequest,
) -> PageResult {
    let what = Form::from_query(&req).text("what");
    let svc = state.service.clone();
    let (target, backups) = block(move || svc.target_with_backups(&id)).await?;
    let recycled = backups.iter().filter(|b| b.is_recycled).count();
    let (heading, text, button) = match what.as_str() {
        "target" => (
            format!("Delete the target {}?", target.name),
            format!("The target and its {} backup(s) are removed from bakch.", backups.len()),
            "Delete target",
        ),
        "all" => (
            format!("Delete all {} backups of {}?", backups.len(), target.name),
            "Active and recycled backups alike; the target stays.".to_string(),
            "Delete all backups",
        ),
        "recycled" => (
            format!("Delete the {recycled} recycled backups of {}?", target.name),
            "Only the backups in the recycle bin; active backups stay.".to_string(),
            "Delete recycled backups",
        ),
        _ => return Err(PageError::new(StatusCode::BAD_REQUEST, "Say what to delete: target, all or recycled.")),
    };
    let text = format!("{text} {}", crate::web::held::after_delete(&state.service.config));
    html(&ConfirmPage {
        c: ctx.chrome(heading.clone(), "targets"),
        heading,
        text,
        items: Vec::new(),
        action: format!("/targets/{}/delete", enc(&target.id)),
        hidden: vec![("what".into(), what)],
        files_choice: true,
        button: button.into(),
        danger: true,
        cancel: format!("/targets/{}", enc(&target.id)),
    })
}

pub(super) async fn delete(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    by: Who,
    body: web::Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let files = form.checked("delete_files");
    let what = form.text("what");
    let id = id.into_inner();
    let svc = state.service.clone();
    let back = format!("/targets/{}", enc(&id));
    match what.as_str() {
        "target" => {
            block(move || svc.delete_target(&id, files, &by)).await?;
            Ok(see_other("/targets?done=target-deleted"))
        }
        "all" | "recycled" => {
            let which = if what == "all" { Which::All } else { Which::Recycled };
            let n = block(move || svc.delete_target_backups(&id, which, files, &by)).await?;
            Ok(see_other(&format!("{back}?done=deleted&n={n}")))
        }
        _ => Err(PageError::new(StatusCode::BAD_REQUEST, "Say what to delete: target, all or recycled.")),
    }
}
