//! Jobs: scheduled jobs (last run, outcome, next run, run now), queued upload jobs, open
//! sequential uploads (cancel), and one job's page that refreshes itself until the job ends.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

use super::render::ago;
use super::{Chrome, Ctx, Form, PageError, PageResult, block, enc, html, notice, see_other};
use crate::state::AppState;
use crate::time::parse_iso;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/jobs").route(web::get().to(list)))
        .service(web::resource("/jobs/run/{name}").route(web::post().to(run_now)))
        .service(web::resource("/jobs/{id}").route(web::get().to(view)))
        .service(web::resource("/uploads/{target}/cancel").route(web::post().to(cancel_seq)));
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
}

struct SeqRow {
    target_id: String,
    target_name: String,
    progress: String,
    started: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    c: Chrome,
    scheduled: Vec<ScheduledRow>,
    jobs: Vec<JobRowView>,
    seq: Vec<SeqRow>,
}

fn iso_ago(s: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    parse_iso(s).map(|t| ago(t, now)).unwrap_or_default()
}

async fn list(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest) -> PageResult {
    let svc = state.service.clone();
    let scheduler = state.scheduler.clone();
    let (scheduled, rows, seq) =
        block(move || Ok((scheduler.list()?, svc.recent_jobs(50)?, svc.open_seq_uploads()?))).await?;
    let now = crate::time::now();
    let q = Form::from_query(&req);
    let note = match (q.get("done"), q.get("job")) {
        (Some("ran"), Some(job)) => Some(format!("{job} ran; its outcome is below.")),
        _ => notice(&req),
    };
    let page = JobsPage {
        c: ctx.chrome("Jobs", "jobs").with_notice(note),
        scheduled: scheduled
            .iter()
            .map(|s| {
                let (at, outcome, ms) = &s.last_run;
                ScheduledRow {
                    name: s.name.to_string(),
                    display_name: s.display_name.to_string(),
                    last_run: at.as_deref().map(|a| iso_ago(a, now)).unwrap_or_else(|| "never".into()),
                    failed: outcome.as_deref().is_some_and(|o| o.starts_with("error")),
                    outcome: outcome.clone().unwrap_or_default(),
                    duration: ms.map(|ms| format!("{:.1} s", ms as f64 / 1000.0)).unwrap_or_default(),
                    next_run: chrono::DateTime::from_timestamp(s.next_run, 0).map(|t| ago(t, now)).unwrap_or_default(),
                }
            })
            .collect(),
        jobs: rows
            .iter()
            .map(|j| JobRowView {
                id: j.id,
                display_name: j.kind.display_name().to_string(),
                status: j.status.as_str().to_string(),
                created: iso_ago(&j.created_at, now),
                error: j.error.clone().unwrap_or_default(),
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
    target_id: Option<String>,
    created: String,
    started: String,
    finished: String,
}

async fn view(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>) -> PageResult {
    let id: i64 = id.parse().map_err(|_| PageError::new(StatusCode::NOT_FOUND, "There is no such job."))?;
    let svc = state.service.clone();
    let job = block(move || svc.job(id)).await?;
    let target_id = job.job().ok().and_then(|q| q.target_id().map(str::to_string));
    let now = crate::time::now();
    let t = |s: &Option<String>| s.as_deref().map(|s| iso_ago(s, now)).unwrap_or_else(|| "—".into());
    html(&JobPage {
        c: ctx.chrome(format!("Job {id}"), "jobs"),
        id,
        display_name: job.kind.display_name().to_string(),
        done: job.status.is_done(),
        status: job.status.as_str().to_string(),
        error: job.error.clone(),
        target_id,
        created: iso_ago(&job.created_at, now),
        started: t(&job.started_at),
        finished: t(&job.finished_at),
    })
}

async fn cancel_seq(state: web::Data<AppState>, ctx: Ctx, target: web::Path<String>, body: web::Bytes) -> PageResult {
    ctx.check(&Form::parse(&body))?;
    let svc = state.service.clone();
    block(move || svc.seq_terminate(&target)).await?;
    Ok(see_other("/jobs?done=cancelled"))
}
