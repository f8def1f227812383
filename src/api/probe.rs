//! What sits beside `/api` for monitoring: `GET /healthz` (no key, no data: bakch is up) and
//! `GET /metrics` (the Prometheus text; the API key as a bearer token, any role that may read
//! everything), and the middleware that counts HTTP requests for it. They are outside `/api`
//! because monitoring tools expect these paths; `/metrics` checks the key and its role with
//! the same [`Caller::decide`] as every API route.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};

use super::block;
use crate::auth::apikey::Access;
use crate::auth::grant::{Decision, Need};
use crate::error::Result;
use crate::state::AppState;

/// Registers `/healthz` and `/metrics` (GET only; other methods get the usual 404/405 of the
/// site).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz)).route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header(ContentType::json()).body(r#"{"success":true,"status":"up"}"#)
}

async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let refused = |status: StatusCode, text: &str| {
        HttpResponse::build(status)
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .content_type("text/plain; charset=utf-8")
            .body(text.to_string())
    };
    match state.apikey.check(auth) {
        Ok(Access::Allowed(caller)) if caller.decide(Need::ReadAll) == Decision::Allow => {}
        Ok(Access::Allowed(caller)) => {
            return Ok(refused(StatusCode::FORBIDDEN, &caller.refusal(Need::ReadAll, &[])));
        }
        Ok(Access::Unauthorized) => return Ok(refused(StatusCode::UNAUTHORIZED, "Unauthorized")),
        Ok(Access::Forbidden) => return Ok(refused(StatusCode::FORBIDDEN, "Invalid API key")),
        Err(e) => {
            tracing::error!("API key check failed: {e}");
            return Ok(refused(StatusCode::INTERNAL_SERVER_ERROR, "The API key file cannot be read; see the log"));
        }
    }
    let svc = state.service.clone();
    let text = block(move || svc.metrics_text()).await?;
    Ok(HttpResponse::Ok().content_type("application/openmetrics-text; version=1.0.0; charset=utf-8").body(text))
}

/// Counts every answered request by its route pattern, method and status.
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let res = next.call(req).await;
    if let Some(state) = state {
        let status = match &res {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        // The pattern is known only once routed; a request the router did not match keeps "unmatched".
        let route = match &res {
            Ok(r) => r.request().match_pattern().unwrap_or(route),
            Err(_) => route,
        };
        state.service.metrics.http_request(&route, &method, status);
    }
    res
}
