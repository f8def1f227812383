//! The targets list: search, sort, pages and totals.

use actix_web::{HttpRequest, web};
use askama::Template;

use super::super::render::{ago, size, target_hint, when};
use super::super::{Chrome, Ctx, Form, PageResult, SortCol, block, html, notice, query, sort_cols};
use crate::model::target::Search;
use crate::service::targets::{TargetSort, TargetSummary, is_shared_name};
use crate::state::AppState;

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
        Search::from_pairs(&self.pairs())
    }

    /// Whether a filter beyond the name is set (the advanced part of the form opens then).
    fn advanced(&self) -> bool {
        self.pairs().iter().any(|(k, _)| k != "name")
    }
}

struct TargetRow {
    id: String,
    name: String,
    /// The alias (or, for a name another target shares, the alias or id): what tells it apart.
    hint: String,
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
    /// The sort as a small form too: on a phone the table's header (with its links) is hidden.
    sort: String,
    desc: bool,
    sort_options: Vec<(&'static str, &'static str)>,
    /// The search as hidden fields of that form, so sorting keeps it.
    keep: Vec<(String, String)>,
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

pub(super) async fn list(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest) -> PageResult {
    let q = Form::from_query(&req);
    let f = Filters::from(&q);
    let sort = q.get("sort").and_then(TargetSort::parse).unwrap_or(TargetSort::Name);
    let desc = q.get("dir") == Some("desc");
    let page = q.text("page").parse::<usize>().unwrap_or(1);
    let svc = state.service.clone();
    let search = f.search();
    let (listed, shared) =
        block(move || Ok((svc.target_list(search.as_ref(), sort, desc, page)?, svc.shared_target_names()?))).await?;
    let now = crate::time::now();
    let rows = listed.rows.iter().map(|s| row(s, is_shared_name(&shared, &s.target.name), now)).collect();
    let (page, pages) = (listed.page, listed.pages);
    let sort = sort.as_str().to_string();
    let mut base = f.pairs();
    let keep = base.clone();
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
        sort: sort.clone(),
        desc,
        sort_options: vec![
            ("name", "name"),
            ("backups", "number of backups"),
            ("size", "size"),
            ("last", "last backup"),
        ],
        keep,
        filtered: !f.pairs().is_empty(),
        advanced: f.advanced(),
        f,
        total_targets: listed.total_targets,
        total_backups: listed.total_backups,
        total_size: size(listed.total_size),
        page,
        pages,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
    };
    html(&page_view)
}

fn row(s: &TargetSummary, shared_name: bool, now: chrono::DateTime<chrono::Utc>) -> TargetRow {
    let (integrity, integrity_text) = match (s.active + s.recycled, s.damaged) {
        (0, _) => ("none", "no backups".to_string()),
        (_, 0) => ("ok", "ok".to_string()),
        (_, n) => ("bad", format!("{n} damaged")),
    };
    TargetRow {
        id: s.target.id.clone(),
        name: s.target.name.clone(),
        hint: match (&s.target.alias, shared_name) {
            (_, true) => target_hint(s.target.alias.as_deref(), &s.target.id),
            (Some(a), false) => a.clone(),
            (None, false) => String::new(),
        },
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
