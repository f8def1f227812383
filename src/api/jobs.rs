//! `/api/jobs`: queued and scheduled jobs; `force_run`.

use actix_web::{HttpResponse, web};

use super::schema::{Done, ErrorBody, JobList, JobReply, JobView, Outcome, ScheduledJob, ScheduledView};
use super::{block, ok, resource};
use crate::auth::grant::Need;
use crate::error::{Error, Result};
use crate::model::audit::Action;
use crate::state::AppState;

/// How many queued jobs the list shows, newest first.
const LIST_LIMIT: usize = 200;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/jobs").get(Need::ReadAll, list))
        // A GET that runs a job (retention deletes backups): the admin role, like any change.
        .service(resource("/jobs/force_run/{name}").run(Need::Admin, Action::JobForced, force_run))
        .service(resource("/jobs/{id}").get(Need::ReadJob, get))
        .service(resource("/jobs/{id}/retry").post(Need::Admin, Action::JobRetried, retry));
}

/// Queued jobs (newest first) and scheduled ones.
#[utoipa::path(get, path = "/api/jobs", operation_id = "list_jobs", tag = "jobs",
    responses((status = 200, description = "The jobs", body = JobList)))]
async fn list(state: web::Data<AppState>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let scheduler = state.scheduler.clone();
    let (rows, scheduled) = block(move || Ok((svc.recent_jobs(LIST_LIMIT)?, scheduler.list()?))).await?;
    let delayed = rows.iter().map(JobView::of).collect();
    let scheduled = scheduled.iter().map(ScheduledView::of).collect();
    Ok(ok(&JobList::new(delayed, scheduled)))
}

/// One queued job (bakch's own endpoint), for clients that follow a job.
#[utoipa::path(get, path = "/api/jobs/{id}", operation_id = "get_job", tag = "jobs",
    params(JobId),
    responses(
        (status = 200, description = "The job", body = JobReply),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let id = job_id(&id)?;
    let svc = state.service.clone();
    let job = block(move || svc.job(id)).await?;
    Ok(ok(&JobReply::new(JobView::of(&job))))
}

/// Runs a scheduled job now and answers when it is done.
#[utoipa::path(get, path = "/api/jobs/force_run/{name}", operation_id = "force_run_job", tag = "jobs",
    params(("name" = ScheduledJob, Path, description = "The scheduled job")),
    responses(
        (status = 200, description = "What the run did", body = Outcome),
        (status = 404, description = "No scheduled job of that name", body = ErrorBody),
        (status = 507, description = "The disk is full", body = ErrorBody),
    ))]
async fn force_run(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let outcome = state.scheduler.run(&name).await?;
    Ok(ok(&Outcome::new(outcome)))
}

/// Queues a failed job again (bakch's own endpoint).
#[utoipa::path(post, path = "/api/jobs/{id}/retry", operation_id = "retry_job", tag = "jobs",
    params(JobId),
    responses(
        (status = 200, description = "Queued again", body = Done),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job did not fail", body = ErrorBody),
    ))]
async fn retry(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let id = job_id(&id)?;
    let svc = state.service.clone();
    block(move || svc.retry_job(id)).await?;
    Ok(ok(&Done::default()))
}

/// The `{id}` of a job route.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only its description is used; handlers take `web::Path<String>`.
struct JobId {
    /// The job's id.
    id: i64,
}

/// A job id from the path; one that is not a number names no job.
fn job_id(raw: &str) -> Result<i64> {
    raw.parse().map_err(|_| Error::not_found(format!("Job '{raw}' not found")))
}
