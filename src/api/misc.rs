//! `/api/stats`, `/api/health` and `/api/log`.

use actix_web::{HttpRequest, HttpResponse, web};

use actix_web::http::StatusCode;

use super::schema::{ErrorBody, HealthReply, LogReply, StatsReply};
use super::{block, ok, query_count, reply, resource};
use crate::auth::grant::Need;
use crate::error::Result;
use crate::service::Depends;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/stats").get(Need::ReadAll, stats))
        .service(resource("/health").get(Need::ReadAll, health))
        .service(resource("/log").get(Need::ReadAll, log));
}

/// Totals over all targets and what deduplication saves.
#[utoipa::path(get, path = "/api/stats", operation_id = "stats", tag = "misc",
    responses(
        (status = 200, description = "The totals", body = StatsReply),
        (status = 304, description = "Not modified: the `ETag` sent in `If-None-Match` still holds"),
    ))]
async fn stats(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    super::cached::reply(&state.service, &req, "stats".into(), |svc| {
        Ok((super::json_bytes(&StatsReply::new(svc.stats()?))?, Depends::Anything))
    })
    .await
}

/// Whether every backup is healthy: 200 when every monitored target is `ok` and the data disk
/// is not low, 503 otherwise (so an uptime monitor can watch this one URL).
#[utoipa::path(get, path = "/api/health", operation_id = "health", tag = "misc",
    responses(
        (status = 200, description = "Everything monitored is ok", body = HealthReply),
        (status = 503, description = "A target is late, failed, damaged or has never sent a backup, or the disk is low", body = HealthReply),
    ))]
async fn health(state: web::Data<AppState>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let summary = block(move || svc.health_summary()).await?;
    if summary.status == "ok" {
        return Ok(ok(&HealthReply { success: true, message: None, summary }));
    }
    let mut parts: Vec<String> =
        summary.problems.iter().map(|p| format!("{} is {}", p.target_name, p.state.as_str())).collect();
    if summary.disk.low {
        parts.push("the data disk is low".into());
    }
    let message = format!("Not healthy: {}", parts.join(", "));
    Ok(reply(StatusCode::SERVICE_UNAVAILABLE, &HealthReply { success: false, message: Some(message), summary }))
}

/// The end of the server's log.
#[utoipa::path(get, path = "/api/log", operation_id = "log", tag = "misc",
    params(("tail" = Option<u64>, Query, minimum = 0, description = "How many lines; 0 or left out for all the server reads (its last MiBs)")),
    responses(
        (status = 200, description = "Log lines", body = LogReply),
        (status = 400, description = "`tail` is not a non-negative integer", body = ErrorBody),
    ))]
async fn log(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    let tail = query_count(&req, "tail")?.unwrap_or(0) as usize;
    let dir = state.service.config.log_dir();
    let text = block(move || crate::logging::tail(&dir, tail)).await?;
    Ok(ok(&LogReply::new(text)))
}
