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
    /// `ok`, `late`, `failed`, `damaged`, `never` or `unmonitored`, and why.
    state: &'static str,
    reason: String,
    last_success: String,
    last_attempt: String,
    /// The last attempts as an SVG strip (drawn here, so no script is needed).
    strip: String,
    quota: Option<QuotaView>,
}

/// A target's quota as the dashboard tells it.
pub(super) struct QuotaView {
    /// "9.2 GiB of 10.0 GiB quota (92 %)".
    pub text: String,
    pub percent: i64,
    /// At or past its warning level.
    pub warning: bool,
}

impl QuotaView {
    pub(super) fn of(q: &crate::service::health::QuotaUse) -> QuotaView {
        QuotaView {
            text: format!("{} of {} quota ({} %)", size(q.used_bytes), size(q.quota_bytes), q.percent),
            percent: q.percent.clamp(0, 100),
            warning: q.warning,
        }
    }
}

/// The answer to "are my backups OK?", above everything else.
struct Banner {
    ok: bool,
    title: String,
    problems: Vec<crate::service::health::Problem>,
    failing: Vec<crate::service::health::FailingDestination>,
    disk: Option<String>,
    /// (target id, name, its quota) of the targets nearly at their quota.
    quota: Vec<(String, String, QuotaView)>,
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
    banner: Banner,
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
    let (listed, shared, health, summary) = block(move || {
        let listed = svc.target_list(search.as_ref(), sort, desc, page)?;
        let mut health = Vec::with_capacity(listed.rows.len());
        for s in &listed.rows {
            health.push((svc.target_health(&s.target)?, svc.attempts(&s.target.id, STRIP)?, svc.quota_use(&s.target)?));
        }
        Ok((listed, svc.shared_target_names()?, health, svc.health_summary()?))
    })
    .await?;
    let now = crate::time::now();
    let rows = listed
        .rows
        .iter()
        .zip(health)
        .map(|(s, (h, attempts, quota))| {
            let mut r = row(s, is_shared_name(&shared, &s.target.name), &h, &attempts, now);
            r.quota = quota.as_ref().map(QuotaView::of);
            r
        })
        .collect();
    let banner = banner(summary);
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
        banner,
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

/// How many attempts a target's history strip shows.
const STRIP: usize = 40;

fn banner(summary: crate::service::health::Summary) -> Banner {
    let monitored: i64 = summary.counts.iter().filter(|(state, _)| **state != "unmonitored").map(|(_, n)| n).sum();
    let bad = summary.problems.len();
    let title = match (bad, monitored) {
        (0, 0) => "No target is monitored yet: give one an expected interval to be told when its backups stop.".into(),
        (0, 1) => "The monitored target is healthy.".into(),
        (0, n) => format!("All {n} monitored targets are healthy."),
        (1, _) => "1 target needs attention.".into(),
        (n, _) => format!("{n} targets need attention."),
    };
    let disk = summary.disk.low.then(|| {
        format!(
            "The data disk is low: {} of {} free{}.",
            size(summary.disk.free_bytes as i64),
            size(summary.disk.total_bytes as i64),
            if summary.disk.held_bytes > 0 {
                format!("; {} more is held from deleted backups (see Held)", size(summary.disk.held_bytes))
            } else {
                String::new()
            }
        )
    });
    let quota: Vec<_> =
        summary.quota_warnings.iter().map(|q| (q.target_id.clone(), q.target_name.clone(), QuotaView::of(q))).collect();
    Banner {
        ok: bad == 0 && disk.is_none() && summary.failing_destinations.is_empty() && quota.is_empty(),
        quota,
        title,
        problems: summary.problems,
        failing: summary.failing_destinations,
        disk,
    }
}

fn row(
    s: &TargetSummary,
    shared_name: bool,
    h: &crate::model::health::Health,
    attempts: &[crate::service::health::Attempt],
    now: chrono::DateTime<chrono::Utc>,
) -> TargetRow {
    let last_attempt = attempts.last().map(|a| a.at);
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
        state: h.state.as_str(),
        reason: h.reason.clone(),
        last_success: h.last_success.map(|t| ago(t, now)).unwrap_or_else(|| "never".into()),
        last_attempt: last_attempt.map(|t| ago(t, now)).unwrap_or_else(|| "never".into()),
        strip: if attempts.is_empty() {
            String::new()
        } else {
            super::super::render::history_strip(
                attempts,
                &format!("The last {} attempts of {}", attempts.len(), s.target.name),
            )
        },
        quota: None,
    }
}
