//! `/api/stats` and `/api/log`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{block, ok, query_count, resource};
use crate::error::Result;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/stats", web::get().to(stats))).service(resource("/log", web::get().to(log)));
}

async fn stats(state: web::Data<AppState>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let stats = block(move || svc.stats()).await?;
    Ok(ok(serde_json::to_value(stats).unwrap_or_default()))
}

async fn log(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    let tail = query_count(&req, "tail")?.unwrap_or(0) as usize;
    let dir = state.service.config.log_dir();
    let text = block(move || crate::logging::tail(&dir, tail)).await?;
    Ok(ok(json!({"log": text})))
}
