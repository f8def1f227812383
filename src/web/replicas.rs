//! The replicas page: each replica's last successful sync, what is pending, the last error and
//! the last verification. Read-only: syncing is the scheduler's (or `force_run`'s), and
//! nothing here can remove anything from a bucket.

use actix_web::web;
use askama::Template;

use super::render::{ago, size};
use super::{Chrome, Ctx, PageResult, block, html};
use crate::model::replica::ReplicaState;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/replicas").route(web::get().to(page)));
}

struct Row {
    s: ReplicaState,
    last_success: String,
    last_verify: String,
    pending: String,
    stored: String,
    delay: String,
    endpoint: String,
}

#[derive(Template)]
#[template(path = "replicas.html")]
struct ReplicasPage {
    c: Chrome,
    rows: Vec<Row>,
}

async fn page(state: web::Data<AppState>, ctx: Ctx) -> PageResult {
    let svc = state.service.clone();
    let states = block(move || svc.replica_states()).await?;
    let now = crate::time::now();
    let since = |t: &Option<String>| {
        t.as_deref().and_then(crate::time::parse_iso).map_or_else(|| "never".to_string(), |at| ago(at, now))
    };
    let config = &state.service.config;
    let rows = states
        .into_iter()
        .map(|s| {
            let r = config.replicas.iter().find(|r| r.name == s.name);
            Row {
                last_success: since(&s.last_success),
                last_verify: since(&s.last_verify),
                pending: format!("{} object(s), {}", s.pending_objects, size(s.pending_bytes)),
                stored: format!("{} object(s), {}", s.objects, size(s.bytes)),
                delay: r.map_or(String::new(), |r| format!("{:.1} days", r.delete_delay.as_secs_f64() / 86400.0)),
                endpoint: r.map_or(String::new(), |r| {
                    format!("{} bucket {} {}", r.endpoint.endpoint, r.endpoint.bucket, r.endpoint.prefix)
                }),
                s,
            }
        })
        .collect();
    html(&ReplicasPage { c: ctx.chrome("Replicas", "stats"), rows })
}
