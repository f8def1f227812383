//! Jobs: scheduled jobs (last run, outcome, next run, run now), queued upload jobs, open
//! sequential uploads (cancel), and one job's page that refreshes itself until the job ends.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

use super::render::{ago, duration, size, target_hint};
use super::{Chrome, Ctx, Form, PageError, PageResult, block, enc, html, notice, see_other};
use crate::service::jobs::{JobAbout, JobRow};
use crate::state::AppState;
use crate::time::parse_iso;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/jobs").route(web::get().to(list)))
        .service(web::resource("/jobs/run/{name}").route(web::post().to(run_now)))
        .service(web::resource("/jobs/{id}").route(web::get().to(view)))
        .service(web::resource("/jobs/{id}/retry").route(web::post().to(retry)))
        .service(web::resource("/uploads/{target}/cancel").route(web::post().to(cancel_seq)))
        .service(web::resource("/notify/test").route(web::post().to(notify_test)));
}

/// A notification destination as the jobs page lists it.
struct DestinationRow {
    name: String,
    kind: &'static str,
    /// The newest delivery's failure, if it failed.
    error: Option<String>,
}

/// Queues a test event to every `[[notify]]` destination; the deliveries show as jobs.
async fn notify_test(state: web::Data<AppState>, ctx: Ctx, body: web::Bytes) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let svc = state.service.clone();
    let n = block(move || svc.queue_test_notifications()).await?;
    Ok(see_other(&format!("/jobs?done=notify-test&n={n}#notifications")))
}

struct ScheduledRow {
    name: String,
    display_name: String,
    last_run: String,
    outcome: String,
    failed: bool,
    duration: String,
    next_run: String,
}

struct JobRowView {
    id: i64,
    display_name: String,
    status: String,
    created: String,
    error: String,
    /// What it is about: target, files, size, how long it took.
    d: JobDescription,
}

/// A job as a person asks about it: which target, which files, how big, how long.
struct JobDescription {
    target_id: String,
    /// The target's name (with its alias or id), or a note that it is gone.
    target: String,
    target_exists: bool,
    files: String,
    size: String,
    duration: String,
    backup_id: Option<String>,
    retriable: bool,
}

impl JobDescription {
    fn of(row: &JobRow, about: &JobAbout, now: chrono::DateTime<chrono::Utc>) -> JobDescription {
        let target = match &about.target_name {
            Some(name) => format!("{name} ({})", target_hint(about.target_alias.as_deref(), &about.target_id)),
            None if about.target_id.is_empty() => String::new(),
            None => "a deleted target".into(),
        };
        let more = about.file_count.saturating_sub(about.files.len());
        let files = match more {
            0 => about.files.join(", "),
            n => format!("{} and {n} more", about.files.join(", ")),
        };
        let started = row.started_at.as_deref().and_then(parse_iso);
        let ended = row.finished_at.as_deref().and_then(parse_iso);
        let duration = match (started, ended) {
            (Some(s), Some(e)) => duration((e - s).num_milliseconds() as f64 / 1000.0),
            (Some(s), None) => format!("{} so far", duration((now - s).num_milliseconds() as f64 / 1000.0)),
            _ => String::new(),
        };
        JobDescription {
            target_id: about.target_id.clone(),
            target,
            target_exists: about.target_name.is_some(),
            files,
            size: about.bytes.map(size).unwrap_or_default(),
            duration,
            backup_id: about.backup_id.clone(),
            retriable: about.retriable,
        }
    }
}

/// A job's error for a page: the API's hint on how to retry becomes the page's Retry button.
fn error_for_page(error: &str) -> String {
    match error.find(" (the uploaded data is kept") {
        Some(at) => format!("{}. The uploaded data is kept: fix the cause, then retry.", &error[..at]),
        None => error.to_string(),
    }
}

struct SeqRow {
    target_id: String,
    target_name: String,
    progress: String,
    started: String,
    updated: String,
}

/// A backup the integrity check flagged, with what it found.
struct Finding {
    backup_id: String,
    backup_name: String,
    target_id: String,
    target: String,
    findings: Vec<String>,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    c: Chrome,
    findings: Vec<Finding>,
    scheduled: Vec<ScheduledRow>,
    jobs: Vec<JobRowView>,
    seq: Vec<SeqRow>,
    destinations: Vec<DestinationRow>,
}

fn iso_ago(s: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    parse_iso(s).map(|t| ago(t, now)).unwrap_or_default()
}

async fn list(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest) -> PageResult {
    let svc = state.service.clone();
    let scheduler = state.scheduler.clone();
    let (scheduled, rows, about, seq, damaged, destinations) = block(move || {
        let rows = svc.recent_jobs(50)?;
        let about = svc.jobs_about(&rows)?;
        let destinations = svc
            .destinations()?
            .into_iter()
            .map(|(name, kind, error)| DestinationRow { name, kind, error })
            .collect::<Vec<_>>();
        Ok((scheduler.list()?, rows, about, svc.open_seq_uploads()?, svc.damaged_backups()?, destinations))
    })
    .await?;
    let now = crate::time::now();
    let q = Form::from_query(&req);
    let note = match (q.get("done"), q.get("job")) {
        (Some("ran"), Some(job)) => Some(format!("{job} ran; its outcome is below.")),
        _ => notice(&req),
    };
    let page = JobsPage {
        c: ctx.chrome("Jobs", "jobs").with_notice(note),
        destinations,
        findings: damaged
            .into_iter()
            .map(|(t, b, findings)| Finding {
                backup_id: b.id,
                backup_name: b.name,
                target_id: t.id.clone(),
                target: format!("{} ({})", t.name, target_hint(t.alias.as_deref(), &t.id)),
                findings,
            })
            .collect(),
        scheduled: scheduled
            .iter()
            .map(|s| {
                let (at, outcome, ms) = &s.last_run;
                ScheduledRow {
                    name: s.name.to_string(),
                    display_name: s.display_name.to_string(),
                    last_run: at.as_deref().map(|a| iso_ago(a, now)).unwrap_or_else(|| "never".into()),
                    // A failed run, or an integrity check that found damage: both in red.
                    failed: outcome.as_deref().is_some_and(|o| o.starts_with("error") || o.contains(" damaged: ")),
                    outcome: outcome.clone().unwrap_or_default(),
                    duration: ms.map(|ms| format!("{:.1} s", ms as f64 / 1000.0)).unwrap_or_default(),
                    next_run: chrono::DateTime::from_timestamp(s.next_run, 0).map(|t| ago(t, now)).unwrap_or_default(),
                }
            })
            .collect(),
        jobs: rows
            .iter()
            .zip(&about)
            .map(|(j, a)| JobRowView {
                id: j.id,
                display_name: j.kind.display_name().to_string(),
                status: j.status.as_str().to_string(),
                created: iso_ago(&j.created_at, now),
                error: j.error.as_deref().map(error_for_page).unwrap_or_default(),
                d: JobDescription::of(j, a, now),
            })
            .collect(),
        seq: seq
            .iter()
            .map(|s| SeqRow {
                target_id: s.target_id.clone(),
                target_name: s.target_name.clone(),
                progress: format!("{} of {} files", s.uploaded, s.files),
                started: iso_ago(&s.created_at, now),
                updated: iso_ago(&s.updated_at, now),
            })
            .collect(),
    };
    html(&page)
}

/// Runs a scheduled job now and comes back when it has finished.
async fn run_now(state: web::Data<AppState>, ctx: Ctx, name: web::Path<String>, body: web::Bytes) -> PageResult {
    ctx.check(&Form::parse(&body))?;
    let name = name.into_inner();
    // A failed run is recorded with its outcome and shown in the table; only an unknown job is an error here.
    if let Err(e) = state.scheduler.run(&name).await {
        let e = PageError::from(e);
        if e.status == StatusCode::NOT_FOUND {
            return Err(e);
        }
    }
    Ok(see_other(&format!("/jobs?done=ran&job={}", enc(&name))))
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    c: Chrome,
    id: i64,
    display_name: String,
    status: String,
    done: bool,
    error: Option<String>,
    created: String,
    started: String,
    finished: String,
    d: JobDescription,
}

fn job_id(id: &str) -> Result<i64, PageError> {
    id.parse().map_err(|_| PageError::new(StatusCode::NOT_FOUND, "There is no such job."))
}

async fn view(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, req: HttpRequest) -> PageResult {
    let id = job_id(&id)?;
    let svc = state.service.clone();
    let (job, about) = block(move || {
        let job = svc.job(id)?;
        let about = svc.jobs_about(std::slice::from_ref(&job))?.pop().unwrap_or_default();
        Ok((job, about))
    })
    .await?;
    let now = crate::time::now();
    let t = |s: &Option<String>| s.as_deref().map(|s| iso_ago(s, now)).unwrap_or_else(|| "—".into());
    let note = match Form::from_query(&req).get("done") {
        Some("retried") => Some("Queued again; this page follows the new attempt.".to_string()),
        _ => None,
    };
    html(&JobPage {
        c: ctx.chrome(format!("Job {id}"), "jobs").with_notice(note),
        id,
        display_name: job.kind.display_name().to_string(),
        done: job.status.is_done(),
        status: job.status.as_str().to_string(),
        error: job.error.as_deref().map(error_for_page),
        created: iso_ago(&job.created_at, now),
        started: t(&job.started_at),
        finished: t(&job.finished_at),
        d: JobDescription::of(&job, &about, now),
    })
}

/// Queues a failed job again; its page then follows the new attempt.
async fn retry(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
    ctx.check(&Form::parse(&body))?;
    let id = job_id(&id)?;
    let svc = state.service.clone();
    block(move || svc.retry_job(id)).await?;
    Ok(see_other(&format!("/jobs/{id}?done=retried")))
}

async fn cancel_seq(state: web::Data<AppState>, ctx: Ctx, target: web::Path<String>, body: web::Bytes) -> PageResult {
    ctx.check(&Form::parse(&body))?;
    let svc = state.service.clone();
    block(move || svc.seq_terminate(&target)).await?;
    Ok(see_other("/jobs?done=cancelled"))
}
