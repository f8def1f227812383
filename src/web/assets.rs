//! The stylesheet and the script, compiled into the binary.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");
const ICON: &str = include_str!("../../static/icon.svg");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/app.css", web::get().to(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/static/app.js", web::get().to(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .route("/static/icon.svg", web::get().to(|| async { asset("image/svg+xml", ICON) }));
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    // Links carry `?v=<version>`, so a new release is fetched anew despite the cache.
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body)
}
