//! File history in a target's backups: search by name or path fragment, the version timeline
//! of one path, and the comparison of two backups. Thin pages over `service::files`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, ResponseError, web};
use askama::Template;

use super::super::render::{ago, size, when};
use super::super::{Chrome, Ctx, Form, PageError, PageResult, block, enc, html, html_status, query};
use crate::state::AppState;

/// Results per page of a search.
const PAGE_SIZE: usize = 50;

/// One path found by a search.
struct FoundRow {
    path: String,
    backups: i64,
    /// Its timeline page.
    href: String,
}

#[derive(Template)]
#[template(path = "files.html")]
struct SearchPage {
    c: Chrome,
    target_id: String,
    target_name: String,
    q: String,
    /// Set once a search ran (an empty box shows only the form).
    searched: bool,
    error: Option<String>,
    rows: Vec<FoundRow>,
    page: usize,
    prev: Option<String>,
    next: Option<String>,
}

/// The timeline link of a path.
fn history_href(target: &str, path: &str) -> String {
    format!("/targets/{}/history?path={}", enc(target), enc(path))
}

/// `GET /targets/{id}/files?q=…&page=…`: the target's paths containing `q`, with how many
/// backups hold each.
pub(super) async fn search(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    req: HttpRequest,
) -> PageResult {
    let form = Form::from_query(&req);
    let q = form.text("q");
    let page: usize = form.text("page").parse().unwrap_or(1).max(1);
    let svc = state.service.clone();
    let query_text = q.clone();
    let (target, found) = block(move || {
        let t = svc.find_target(&id)?;
        let found =
            if query_text.is_empty() { None } else { Some(svc.search_files(&t.id, &query_text, page, PAGE_SIZE)) };
        Ok((t, found))
    })
    .await?;
    let mut view = SearchPage {
        c: ctx.chrome(format!("Files of {}", target.name), "targets"),
        target_id: target.id.clone(),
        target_name: target.name.clone(),
        q: q.clone(),
        searched: found.is_some(),
        error: None,
        rows: Vec::new(),
        page,
        prev: None,
        next: None,
    };
    let link = |p: usize| {
        format!(
            "/targets/{}/files?{}",
            enc(&target.id),
            query(&[("q".into(), q.clone()), ("page".into(), p.to_string())])
        )
    };
    match found {
        None => {}
        Some(Ok(found)) => {
            view.rows = found
                .paths
                .into_iter()
                .map(|f| FoundRow { href: history_href(&target.id, &f.path), path: f.path, backups: f.backups })
                .collect();
            view.prev = (page > 1).then(|| link(page - 1));
            view.next = found.more.then(|| link(page + 1));
        }
        Some(Err(e)) => {
            let e = PageError::from(e);
            if e.status_code() != StatusCode::BAD_REQUEST {
                return Err(e);
            }
            view.error = Some(e.to_string());
            return html_status(StatusCode::BAD_REQUEST, &view);
        }
    }
    html(&view)
}

/// One version of a path on its timeline.
struct VersionRow {
    backup_id: String,
    backup_name: String,
    created: String,
    ago: String,
    size: String,
    hash_short: String,
    changed: bool,
    recycled: bool,
    pinned: bool,
    download: String,
}

/// A line of the timeline: a version, or a run of versions with the content of the one below.
enum Line {
    Version(VersionRow),
    Same { count: usize, newest: String, oldest: String },
}

/// Runs of unchanged versions longer than this fold into one line (unless all are asked for):
/// a file kept for years in daily backups has thousands of versions and a handful of changes.
const FOLD_OVER: usize = 2;

/// The timeline's lines: the newest version and every change shown, and each run of more than
/// [`FOLD_OVER`] unchanged versions folded unless `all`.
fn timeline(versions: Vec<VersionRow>, all: bool) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut run: Vec<VersionRow> = Vec::new();
    let flush = |run: &mut Vec<VersionRow>, lines: &mut Vec<Line>| {
        if run.len() > FOLD_OVER {
            let (newest, oldest) = (run[0].created.clone(), run[run.len() - 1].created.clone());
            lines.push(Line::Same { count: run.len(), newest, oldest });
            run.clear();
        } else {
            lines.extend(run.drain(..).map(Line::Version));
        }
    };
    for (i, v) in versions.into_iter().enumerate() {
        if all || i == 0 || v.changed {
            flush(&mut run, &mut lines);
            lines.push(Line::Version(v));
        } else {
            run.push(v);
        }
    }
    flush(&mut run, &mut lines);
    lines
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    c: Chrome,
    target_id: String,
    target_name: String,
    path: String,
    lines: Vec<Line>,
    /// How many backups hold the path.
    held_in: usize,
    /// How many versions differ from the one before.
    distinct: usize,
    /// Every version is listed (`?all=1`).
    all: bool,
    /// Some run of versions is folded.
    folded: bool,
    /// This page with `all=1`, and without.
    all_href: String,
    changes_href: String,
}

/// `GET /targets/{id}/history?path=…`: every version of one path, newest first, each with a
/// download link.
pub(super) async fn history(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    req: HttpRequest,
) -> PageResult {
    let q = Form::from_query(&req);
    let path = q.value("path").to_string();
    let all = q.value("all") == "1";
    if path.is_empty() {
        return Err(PageError::new(StatusCode::BAD_REQUEST, "Say which file: ?path=folder/name."));
    }
    let svc = state.service.clone();
    let wanted = path.clone();
    let (target, backups, versions) = block(move || {
        let (t, b) = svc.target_with_backups(&id)?;
        let v = svc.file_history(&t.id, &wanted)?;
        Ok((t, b, v))
    })
    .await?;
    let now = crate::time::now();
    let names: std::collections::HashMap<&str, &str> =
        backups.iter().map(|b| (b.id.as_str(), b.name.as_str())).collect();
    let name_of = |id: &str| names.get(id).map(|n| n.to_string()).unwrap_or_default();
    let versions: Vec<VersionRow> = versions
        .into_iter()
        .map(|v| VersionRow {
            backup_name: name_of(&v.backup_id),
            download: format!("/backups/{}/file?path={}", enc(&v.backup_id), enc(&path)),
            backup_id: v.backup_id,
            created: when(v.created_at),
            ago: ago(v.created_at, now),
            size: size(v.size),
            hash_short: v.hash.chars().take(12).collect(),
            changed: v.changed,
            recycled: v.is_recycled,
            pinned: v.pinned,
        })
        .collect();
    let (held_in, distinct) = (versions.len(), versions.iter().filter(|v| v.changed).count());
    let lines = timeline(versions, all);
    let changes_href = history_href(&target.id, &path);
    html(&HistoryPage {
        c: ctx.chrome(format!("History of {path}"), "targets"),
        folded: lines.iter().any(|l| matches!(l, Line::Same { .. })),
        all_href: format!("{changes_href}&all=1"),
        changes_href,
        target_id: target.id,
        target_name: target.name,
        held_in,
        distinct,
        all,
        path,
        lines,
    })
}

/// A backup to choose in the compare form.
pub struct Choice {
    pub id: String,
    pub label: String,
}

/// The backups of a target as compare-form choices, newest first.
pub fn choices(backups: &[crate::model::backup::Backup]) -> Vec<Choice> {
    let mut sorted: Vec<&crate::model::backup::Backup> = backups.iter().collect();
    sorted.sort_by_key(|b| std::cmp::Reverse(b.created_at));
    sorted
        .into_iter()
        .map(|b| Choice {
            id: b.id.clone(),
            label: format!("{} ({}{})", b.name, when(b.created_at), if b.is_recycled { ", recycled" } else { "" }),
        })
        .collect()
}

/// A line of a comparison: a path with its sizes.
struct DiffRow {
    path: String,
    old_size: String,
    new_size: String,
    /// The timeline link of the path.
    href: String,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    c: Chrome,
    target_id: String,
    target_name: String,
    choices: Vec<Choice>,
    from: String,
    to: String,
    from_name: String,
    to_name: String,
    compared: bool,
    /// Added, removed, changed.
    sections: Vec<DiffSection>,
    unchanged: usize,
}

/// One list of a comparison.
struct DiffSection {
    title: &'static str,
    key: &'static str,
    rows: Vec<DiffRow>,
}

/// `GET /targets/{id}/compare?from=…&to=…`: what changed from one backup of the target to
/// another (added, removed, changed, with sizes); without both, the form to choose them.
pub(super) async fn compare(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    req: HttpRequest,
) -> PageResult {
    let form = Form::from_query(&req);
    let (from, to) = (form.text("from"), form.text("to"));
    let svc = state.service.clone();
    let (f, t) = (from.clone(), to.clone());
    let (target, backups, cmp) = block(move || {
        let (target, backups) = svc.target_with_backups(&id)?;
        let cmp = if f.is_empty() || t.is_empty() { None } else { Some(svc.compare(&target.id, &f, &t)?) };
        Ok((target, backups, cmp))
    })
    .await?;
    let name_of = |id: &str| backups.iter().find(|b| b.id == id).map(|b| b.name.clone()).unwrap_or_default();
    // Without a choice, the two newest backups are proposed (older first).
    let choices = choices(&backups);
    let from = if from.is_empty() { choices.get(1).map(|c| c.id.clone()).unwrap_or_default() } else { from };
    let to = if to.is_empty() { choices.first().map(|c| c.id.clone()).unwrap_or_default() } else { to };
    let mut page = ComparePage {
        c: ctx.chrome(format!("Compare backups of {}", target.name), "targets"),
        target_id: target.id.clone(),
        target_name: target.name.clone(),
        from_name: name_of(&from),
        to_name: name_of(&to),
        choices,
        from,
        to,
        compared: cmp.is_some(),
        sections: Vec::new(),
        unchanged: 0,
    };
    if let Some(cmp) = cmp {
        let row = |path: String, old: Option<i64>, new: Option<i64>| DiffRow {
            href: history_href(&target.id, &path),
            path,
            old_size: old.map(size).unwrap_or_default(),
            new_size: new.map(size).unwrap_or_default(),
        };
        let added = cmp.added.into_iter().map(|e| row(e.path, None, Some(e.size))).collect();
        let removed = cmp.removed.into_iter().map(|e| row(e.path, Some(e.size), None)).collect();
        let changed = cmp.changed.into_iter().map(|e| row(e.path, Some(e.old_size), Some(e.new_size))).collect();
        page.sections = vec![
            DiffSection { title: "Added", key: "added", rows: added },
            DiffSection { title: "Removed", key: "removed", rows: removed },
            DiffSection { title: "Changed", key: "changed", rows: changed },
        ];
        page.unchanged = cmp.unchanged;
    }
    html(&page)
}
