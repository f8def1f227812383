//! `/api/jobs`: queued and scheduled jobs; `force_run`.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::{block, ok, resource};
use crate::db::jobs::JobRow;
use crate::error::{Error, Result};
use crate::service::jobs::display_name;
use crate::state::AppState;
use crate::time::{http_date, parse_iso};

/// How many queued jobs the list shows, newest first.
const LIST_LIMIT: usize = 200;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/jobs", web::get().to(list)))
        .service(resource("/jobs/force_run/{name}", web::get().to(force_run)))
        .service(resource("/jobs/{id}", web::get().to(get)))
        .service(resource("/jobs/{id}/retry", web::post().to(retry)));
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let scheduler = state.scheduler.clone();
    let (rows, scheduled) = block(move || Ok((svc.recent_jobs(LIST_LIMIT)?, scheduler.list()?))).await?;
    let delayed: Vec<Value> = rows.iter().map(job_json).collect();
    let scheduled: Vec<Value> = scheduled
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "display_name": s.display_name,
                "interval": s.interval,
                "next_run": s.next_run,
                "last_run": s.last_run.0,
                "last_outcome": s.last_run.1,
                "last_duration_ms": s.last_run.2,
            })
        })
        .collect();
    Ok(ok(json!({"delayed": delayed, "scheduled": scheduled})))
}

/// A queued job as JSON. The official client parses start_time/end_time as HTTP dates and
/// cannot take null, so a job not yet started or ended shows its last known time there; the ISO
/// fields beside them are honest (null until it happens).
fn job_json(j: &JobRow) -> Value {
    let created = parse_iso(&j.created_at).unwrap_or_default();
    let started = j.started_at.as_deref().and_then(parse_iso);
    let finished = j.finished_at.as_deref().and_then(parse_iso);
    let payload: Value = serde_json::from_str(&j.payload).unwrap_or_default();
    json!({
        "id": j.id,
        "name": j.kind,
        "display_name": display_name(&j.kind),
        "status": j.status,
        "start_time": http_date(started.unwrap_or(created)),
        "end_time": http_date(finished.or(started).unwrap_or(created)),
        "created_at": j.created_at,
        "started_at": j.started_at,
        "finished_at": j.finished_at,
        "attempts": j.attempts,
        "error": j.error,
        "target_id": payload["target_id"],
        "backup_id": payload["backup_id"],
    })
}

/// One queued job (bakch's own endpoint), for clients that follow a job.
async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let id: i64 = id.parse().map_err(|_| Error::not_found(format!("Job '{id}' not found")))?;
    let svc = state.service.clone();
    let job = block(move || svc.job(id)).await?;
    Ok(ok(json!({"job": job_json(&job)})))
}

/// Runs a scheduled job now and answers when it is done.
async fn force_run(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let outcome = state.scheduler.run(&name).await?;
    Ok(ok(json!({"outcome": outcome})))
}

/// Queues a failed job again (bakch's own endpoint).
async fn retry(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let id: i64 = id.parse().map_err(|_| Error::not_found(format!("Job '{id}' not found")))?;
    let svc = state.service.clone();
    block(move || svc.retry_job(id)).await?;
    Ok(ok(json!({})))
}
