//! Targets: the list (sort, search, pages, totals), create and edit forms, the target page with
//! its backups, bulk actions and deletes behind a confirmation.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde_json::{Map, Value, json};

use super::render::{ago, size, when};
use super::{
    Chrome, ConfirmPage, Ctx, Form, PageError, PageResult, SortCol, block, enc, html, html_status, notice, query,
    see_other, sort_cols,
};
use crate::db::targets::Search;
use crate::model::backup::Backup;
use crate::model::target::{RecycleCriteria, Target, TargetInput, TargetType};
use crate::service::targets::TargetSummary;
use crate::service::targets::Which;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/targets").route(web::get().to(list)))
        // Before `/targets/{id}`, so "new" is never taken for an id.
        .service(web::resource("/targets/new").route(web::get().to(new_form)).route(web::post().to(create)))
        .service(web::resource("/targets/{id}").route(web::get().to(view)))
        .service(web::resource("/targets/{id}/edit").route(web::get().to(edit_form)).route(web::post().to(edit)))
        .service(web::resource("/targets/{id}/bulk").route(web::post().to(bulk)))
        .service(
            web::resource("/targets/{id}/delete").route(web::get().to(delete_confirm)).route(web::post().to(delete)),
        );
}

// ---- the list ----

/// The search form's values, kept to refill it and to build links.
#[derive(Default)]
struct Filters {
    name: String,
    kind: String,
    recycle_criteria: String,
    recycle_action: String,
    location: String,
    name_template: String,
    alias: String,
    deduplicate: String,
    tags: String,
}

impl Filters {
    fn from(q: &Form) -> Filters {
        Filters {
            name: q.text("name"),
            kind: q.text("type"),
            recycle_criteria: q.text("recycle_criteria"),
            recycle_action: q.text("recycle_action"),
            location: q.text("location"),
            name_template: q.text("name_template"),
            alias: q.text("alias"),
            deduplicate: q.text("deduplicate"),
            tags: q.text("tags"),
        }
    }

    fn pairs(&self) -> Vec<(String, String)> {
        [
            ("name", &self.name),
            ("type", &self.kind),
            ("recycle_criteria", &self.recycle_criteria),
            ("recycle_action", &self.recycle_action),
            ("location", &self.location),
            ("name_template", &self.name_template),
            ("alias", &self.alias),
            ("deduplicate", &self.deduplicate),
            ("tags", &self.tags),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }

    /// The same search the API's `/api/target/search` runs; `None` with no filter.
    fn search(&self) -> Option<Search> {
        let opt = |s: &String| (!s.is_empty()).then(|| s.clone());
        let s = Search {
            name: opt(&self.name),
            target_type: opt(&self.kind).map(|s| s.to_ascii_lowercase()),
            recycle_criteria: opt(&self.recycle_criteria).map(|s| s.to_ascii_lowercase()),
            recycle_action: opt(&self.recycle_action).map(|s| s.to_ascii_lowercase()),
            location: opt(&self.location),
            name_template: opt(&self.name_template),
            alias: opt(&self.alias),
            deduplicate: match self.deduplicate.as_str() {
                "on" => Some(true),
                "off" => Some(false),
                _ => None,
            },
            tags: self.tags.split([' ', ',']).filter(|t| !t.is_empty()).map(str::to_string).collect(),
        };
        (!self.pairs().is_empty()).then_some(s)
    }

    /// Whether a filter beyond the name is set (the advanced part of the form opens then).
    fn advanced(&self) -> bool {
        self.pairs().iter().any(|(k, _)| k != "name")
    }
}

struct TargetRow {
    id: String,
    name: String,
    kind: &'static str,
    active: i64,
    recycled: i64,
    size: String,
    last_ago: String,
    last_when: String,
    integrity: &'static str,
    integrity_text: String,
    tags: Vec<String>,
}

#[derive(Template)]
#[template(path = "targets.html")]
struct TargetsPage {
    c: Chrome,
    rows: Vec<TargetRow>,
    cols: Vec<SortCol>,
    f: Filters,
    filtered: bool,
    advanced: bool,
    total_targets: usize,
    total_backups: i64,
    total_size: String,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
}

async fn list(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest) -> PageResult {
    let q = Form::from_query(&req);
    let f = Filters::from(&q);
    let sort = match q.get("sort") {
        Some(s @ ("name" | "size" | "backups" | "last")) => s.to_string(),
        _ => "name".into(),
    };
    let desc = q.get("dir") == Some("desc");
    let svc = state.service.clone();
    let search = f.search();
    let mut all = block(move || svc.target_summaries(search.as_ref())).await?;
    all.sort_by(|a, b| {
        let by_name = || a.target.name.to_lowercase().cmp(&b.target.name.to_lowercase());
        let o = match sort.as_str() {
            "size" => a.size.cmp(&b.size),
            "backups" => a.active.cmp(&b.active),
            "last" => a.last_backup.cmp(&b.last_backup),
            _ => by_name(),
        };
        let o = if desc { o.reverse() } else { o };
        o.then_with(by_name)
    });
    let per_page = state.service.config.page_size;
    let pages = all.len().div_ceil(per_page).max(1);
    let page = q.text("page").parse::<usize>().unwrap_or(1).clamp(1, pages);
    let total_backups = all.iter().map(|s| s.active).sum();
    let total_size = size(all.iter().map(|s| s.size).sum());
    let total_targets = all.len();
    let now = crate::time::now();
    let rows = all.iter().skip((page - 1) * per_page).take(per_page).map(|s| row(s, now)).collect();
    let mut base = f.pairs();
    let cols = sort_cols(
        &[
            ("name", "Name", "asc"),
            ("backups", "Backups", "desc"),
            ("size", "Size", "desc"),
            ("last", "Last backup", "desc"),
        ],
        &sort,
        desc,
        "/targets",
        &base,
    );
    base.push(("sort".into(), sort.clone()));
    base.push(("dir".into(), if desc { "desc" } else { "asc" }.into()));
    let link = |p: usize| {
        let mut q = base.clone();
        q.push(("page".into(), p.to_string()));
        format!("/targets?{}", query(&q))
    };
    let page_view = TargetsPage {
        c: ctx.chrome("Targets", "targets").with_notice(notice(&req)),
        rows,
        cols,
        filtered: !f.pairs().is_empty(),
        advanced: f.advanced(),
        f,
        total_targets,
        total_backups,
        total_size,
        page,
        pages,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
    };
    html(&page_view)
}

fn row(s: &TargetSummary, now: chrono::DateTime<chrono::Utc>) -> TargetRow {
    let (integrity, integrity_text) = match (s.active + s.recycled, s.damaged) {
        (0, _) => ("none", "no backups".to_string()),
        (_, 0) => ("ok", "ok".to_string()),
        (_, n) => ("bad", format!("{n} damaged")),
    };
    TargetRow {
        id: s.target.id.clone(),
        name: s.target.name.clone(),
        kind: s.target.target_type.as_str(),
        active: s.active,
        recycled: s.recycled,
        size: size(s.size),
        last_ago: s.last_backup.map(|t| ago(t, now)).unwrap_or_else(|| "never".into()),
        last_when: s.last_backup.map(when).unwrap_or_default(),
        integrity,
        integrity_text,
        tags: s.target.tags.clone(),
    }
}

// ---- create and edit ----

/// The form's fields as typed, so a refused form comes back as the user left it.
#[derive(Default, Clone)]
struct TargetFields {
    name: String,
    backup_type: String,
    recycle_criteria: String,
    recycle_value: String,
    recycle_action: String,
    location: String,
    name_template: String,
    deduplicate: bool,
    alias: String,
    min_backups: String,
    tags: String,
}

impl TargetFields {
    fn of(t: &Target) -> TargetFields {
        TargetFields {
            name: t.name.clone(),
            backup_type: t.target_type.as_str().into(),
            recycle_criteria: t.recycle_criteria.as_str().into(),
            recycle_value: t.recycle_value.to_string(),
            recycle_action: t.recycle_action.as_str().into(),
            location: t.location.clone(),
            name_template: t.name_template.clone(),
            deduplicate: t.deduplicate,
            alias: t.alias.clone().unwrap_or_default(),
            min_backups: t.min_backups.to_string(),
            tags: t.tags.join(" "),
        }
    }

    fn from_form(f: &Form) -> TargetFields {
        TargetFields {
            name: f.get("name").unwrap_or_default().to_string(),
            backup_type: f.text("backup_type"),
            recycle_criteria: f.text("recycle_criteria"),
            recycle_value: f.text("recycle_value"),
            recycle_action: f.text("recycle_action"),
            location: f.text("location"),
            name_template: f.text("name_template"),
            deduplicate: f.checked("deduplicate"),
            alias: f.text("alias"),
            min_backups: f.text("min_backups"),
            tags: f.get("tags").unwrap_or_default().to_string(),
        }
    }

    /// The same JSON the API takes, so the same rules apply. With criteria `none`, the
    /// recycle value and action are ignored (the form disables them).
    fn to_input(&self, new: bool) -> crate::error::Result<TargetInput> {
        let mut m = Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        };
        put("name", &self.name);
        if new {
            put("backup_type", &self.backup_type);
        }
        put("recycle_criteria", &self.recycle_criteria);
        if self.recycle_criteria != "none" {
            put("recycle_value", &self.recycle_value);
            put("recycle_action", &self.recycle_action);
        }
        put("location", &self.location);
        put("name_template", &self.name_template);
        put("min_backups", &self.min_backups);
        if new && self.name.is_empty() {
            m.insert("name".into(), json!(""));
        }
        m.insert("deduplicate".into(), json!(self.deduplicate));
        m.insert("alias".into(), if self.alias.is_empty() { Value::Null } else { json!(self.alias) });
        let tags: Vec<&str> = self.tags.split([' ', ',', '\t', '\n']).filter(|t| !t.trim().is_empty()).collect();
        m.insert("tags".into(), json!(tags));
        TargetInput::from_json(&Value::Object(m))
    }
}

/// Which field a service error is about, to show it beside that field.
fn error_field(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    const FIELDS: &[(&str, &str)] = &[
        ("name template", "name_template"),
        ("'name_template'", "name_template"),
        ("'name'", "name"),
        ("target name", "name"),
        ("recycle_value", "recycle_value"),
        ("recycle_action", "recycle_action"),
        ("recycle_criteria", "recycle_criteria"),
        ("min_backups", "min_backups"),
        ("num_backups", "min_backups"),
        ("backup_type", "backup_type"),
        ("location", "location"),
        ("alias", "alias"),
        ("tag", "tags"),
    ];
    FIELDS.iter().find(|(needle, _)| m.contains(needle)).map(|(_, f)| *f).unwrap_or("")
}

#[derive(Template)]
#[template(path = "target_form.html")]
struct TargetFormPage {
    c: Chrome,
    new: bool,
    action: String,
    cancel: String,
    v: TargetFields,
    error: Option<String>,
    field: &'static str,
}

impl TargetFormPage {
    fn err(&self, field: &str) -> Option<&str> {
        if self.field == field { self.error.as_deref() } else { None }
    }
}

async fn new_form(ctx: Ctx) -> PageResult {
    let v = TargetFields {
        backup_type: "multi".into(),
        recycle_criteria: "none".into(),
        recycle_value: "10".into(),
        recycle_action: "recycle".into(),
        min_backups: "0".into(),
        ..Default::default()
    };
    html(&TargetFormPage {
        c: ctx.chrome("New target", "targets"),
        new: true,
        action: "/targets/new".into(),
        cancel: "/targets".into(),
        v,
        error: None,
        field: "",
    })
}

async fn create(state: web::Data<AppState>, ctx: Ctx, body: web::Bytes) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let v = TargetFields::from_form(&form);
    let svc = state.service.clone();
    let fields = v.clone();
    let result = block(move || svc.create_target(fields.to_input(true)?)).await;
    match result {
        Ok(id) => Ok(see_other(&format!("/targets/{}?done=created", enc(&id)))),
        Err(e) => form_error(ctx.chrome("New target", "targets"), true, "/targets/new".into(), "/targets".into(), v, e),
    }
}

fn form_error(c: Chrome, new: bool, action: String, cancel: String, v: TargetFields, e: PageError) -> PageResult {
    if e.status == StatusCode::NOT_FOUND || e.status.is_server_error() {
        return Err(e);
    }
    let message = e.to_string();
    let page = TargetFormPage { c, new, action, cancel, v, field: error_field(&message), error: Some(message) };
    html_status(e.status, &page)
}

async fn edit_form(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>) -> PageResult {
    let svc = state.service.clone();
    let (target, _) = block(move || svc.target_with_backups(&id)).await?;
    html(&TargetFormPage {
        c: ctx.chrome(format!("Edit {}", target.name), "targets"),
        new: false,
        action: format!("/targets/{}/edit", enc(&target.id)),
        cancel: format!("/targets/{}", enc(&target.id)),
        v: TargetFields::of(&target),
        error: None,
        field: "",
    })
}

async fn edit(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let id = id.into_inner();
    let svc = state.service.clone();
    let lookup = id.clone();
    let (target, _) = block(move || svc.target_with_backups(&lookup)).await?;
    let mut v = TargetFields::from_form(&form);
    v.backup_type = target.target_type.as_str().into();
    let svc = state.service.clone();
    let fields = v.clone();
    let tid = target.id.clone();
    match block(move || svc.edit_target(&tid, fields.to_input(false)?)).await {
        Ok(()) => Ok(see_other(&format!("/targets/{}?done=saved", enc(&target.id)))),
        Err(e) => form_error(
            ctx.chrome(format!("Edit {}", target.name), "targets"),
            false,
            format!("/targets/{}/edit", enc(&target.id)),
            format!("/targets/{}", enc(&target.id)),
            v,
            e,
        ),
    }
}

// ---- one target ----

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
}

#[derive(Template)]
#[template(path = "target.html")]
struct TargetPage {
    c: Chrome,
    t: TargetInfo,
    active: Vec<BackupRow>,
    recycled: Vec<BackupRow>,
    cols: Vec<SortCol>,
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

async fn view(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, req: HttpRequest) -> PageResult {
    let svc = state.service.clone();
    let (target, backups, usage) = block(move || {
        let (t, b) = svc.target_with_backups(&id)?;
        let u = svc.target_usage(&t)?;
        Ok((t, b, u))
    })
    .await?;
    let q = Form::from_query(&req);
    let sort = if q.get("sort") == Some("size") { "size" } else { "date" };
    let desc = q.get("dir") != Some("asc");
    let mut backups = backups;
    backups.sort_by(|a, b| {
        let o = if sort == "size" { a.filesize.cmp(&b.filesize) } else { a.created_at.cmp(&b.created_at) };
        if desc { o.reverse() } else { o }
    });
    let now = crate::time::now();
    let (recycled, active): (Vec<&Backup>, Vec<&Backup>) = backups.iter().partition(|b| b.is_recycled);
    let path = format!("/targets/{}", enc(&target.id));
    let cols = sort_cols(&[("date", "Created", "desc"), ("size", "Size", "desc")], sort, desc, &path, &[]);
    let page = TargetPage {
        c: ctx.chrome(target.name.clone(), "targets").with_notice(notice(&req)),
        active: active.iter().map(|b| BackupRow::of(b, &target.name, now)).collect(),
        recycled: recycled.iter().map(|b| BackupRow::of(b, &target.name, now)).collect(),
        cols,
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
        },
    };
    html(&page)
}

/// Recycle, restore or delete the selected backups: first a confirmation page, then the work.
async fn bulk(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
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
    if !form.checked("confirm") {
        let n = chosen.len();
        let mut hidden = vec![("action".to_string(), action.clone())];
        hidden.extend(ids.iter().map(|i| ("backup".to_string(), i.clone())));
        return html(&ConfirmPage {
            c: ctx.chrome(format!("{verb} backups"), "targets"),
            heading: format!("{verb} {n} backup{} of {}?", if n == 1 { "" } else { "s" }, target.name),
            text: match action.as_str() {
                "recycle" => "They move to the recycle bin, from where they can be restored.".into(),
                "restore" => "They move back to the target's folder.".into(),
                _ => "Deleted backups cannot be restored.".into(),
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
                _ => svc.delete_backup(id, delete_files)?,
            }
        }
        Ok(())
    })
    .await?;
    Ok(see_other(&format!("{back}?done={done}&n={n}")))
}

/// Delete the target, all its backups, or its recycled ones: `what` = target | all | recycled.
async fn delete_confirm(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, req: HttpRequest) -> PageResult {
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

async fn delete(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let files = form.checked("delete_files");
    let what = form.text("what");
    let id = id.into_inner();
    let svc = state.service.clone();
    let back = format!("/targets/{}", enc(&id));
    match what.as_str() {
        "target" => {
            block(move || svc.delete_target(&id, files)).await?;
            Ok(see_other("/targets?done=target-deleted"))
        }
        "all" | "recycled" => {
            let which = if what == "all" { Which::All } else { Which::Recycled };
            let n = block(move || svc.delete_target_backups(&id, which, files)).await?;
            Ok(see_other(&format!("{back}?done=deleted&n={n}")))
        }
        _ => Err(PageError::new(StatusCode::BAD_REQUEST, "Say what to delete: target, all or recycled.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_find_their_field() {
        assert_eq!(error_field("Name template must contain $I"), "name_template");
        assert_eq!(error_field("Parameter 'name' required"), "name");
        assert_eq!(error_field("Target name cannot be blank"), "name");
        assert_eq!(error_field("Location /x cannot be created"), "location");
        assert_eq!(error_field("Alias 'a' is already used by another target"), "alias");
        assert_eq!(error_field("Parameter 'recycle_value' must be a non-negative integer"), "recycle_value");
    }
}
