//! `/api/stats` and `/api/log`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::schema::{ErrorBody, LogReply, StatsReply};
use super::{block, ok, query_count, resource};
use crate::auth::grant::Need;
use crate::error::Result;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/stats").get(Need::ReadAll, stats)).service(resource("/log").get(Need::ReadAll, log));
}

/// Totals over all targets and what deduplication saves.
#[utoipa::path(get, path = "/api/stats", operation_id = "stats", tag = "misc",
    responses((status = 200, description = "The totals", body = StatsReply)))]
async fn stats(state: web::Data<AppState>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let stats = block(move || svc.stats()).await?;
    Ok(ok(&StatsReply::new(stats)))
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
