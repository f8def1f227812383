//! The JSON API under `/api`, compatible with Backup-chan's clients.
//!
//! Every reply is JSON with `success`; failures carry `message`. Handlers parse, make one hop
//! to a blocking thread into `Service`, and render. A middleware turns any non-JSON error the
//! framework itself produces (unknown route, wrong method, oversized body) into that shape.
//! Replies are the typed structs of `schema`, from which `openapi` derives `/api/openapi.json`.

mod audit;
mod backups;
mod cached;
mod held;
mod jobs;
mod misc;
mod openapi;
pub mod probe;
mod push;
mod replicas;
pub(crate) mod schema;
mod seq;
mod targets;
mod uploads;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{HttpServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::apikey::Access;
use crate::auth::grant::{Caller, Decision, Need, Role};
use crate::error::{Code, Error};
use crate::model::audit::Action;
use crate::state::AppState;

/// Registers `/api`; `json_limit` caps JSON bodies (a larger one gets a 413).
pub fn configure(cfg: &mut web::ServiceConfig, json_limit: usize) {
    cfg.service(
        web::scope("/api")
            .wrap(from_fn(require_key))
            .wrap(from_fn(json_errors))
            .app_data(web::PayloadConfig::new(json_limit))
            .configure(targets::routes)
            .configure(uploads::routes)
            .configure(seq::routes)
            .configure(push::routes)
            .configure(backups::routes)
            .configure(held::routes)
            .configure(replicas::routes)
            .configure(jobs::routes)
            .configure(misc::routes)
            .configure(audit::routes)
            .configure(openapi::routes)
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> Result<HttpResponse, Error> {
    Err(Error::not_found("No such API endpoint"))
}

/// A path whose methods are added with what each needs (`.get(Need::ReadAll, handler)`) and,
/// for a method that changes something, the audit [`Action`] it is recorded as
/// (`.post(Need::Admin, Action::TargetCreated, handler)`; `.run` for a GET that runs a job); any
/// other method gets a JSON 405. This is the only way a route is registered: a method cannot be
/// added without its [`Need`], nor a changing one without its action, and [`authorize`] checks
/// the need before the handler runs and records the outcome after.
pub(crate) fn resource(path: &str) -> Guarded {
    Guarded { resource: web::resource(path), needs: Vec::new() }
}

pub(crate) struct Guarded {
    resource: actix_web::Resource,
    needs: Vec<(Method, Need, Option<Action>)>,
}

/// The needs (and audit actions) of one resource's methods, as its `app_data`.
struct Needs(Vec<(Method, Need, Option<Action>)>);

/// Put in a request's extensions once [`authorize`] has let it through.
struct Authorized;

macro_rules! guarded_method {
    ($name:ident, $method:ident, $route:ident) => {
        pub(crate) fn $name<F, Args>(mut self, need: Need, action: Action, handler: F) -> Self
        where
            F: actix_web::Handler<Args>,
            Args: actix_web::FromRequest + 'static,
            F::Output: actix_web::Responder + 'static,
        {
            self.needs.push((Method::$method, need, Some(action)));
            self.resource = self.resource.route(web::$route().to(handler));
            self
        }
    };
}

impl Guarded {
    /// A read: not recorded unless refused.
    pub(crate) fn get<F, Args>(mut self, need: Need, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.needs.push((Method::GET, need, None));
        self.resource = self.resource.route(web::get().to(handler));
        self
    }

    guarded_method!(run, GET, get);
    guarded_method!(post, POST, post);
    guarded_method!(patch, PATCH, patch);
    guarded_method!(delete, DELETE, delete);
}

impl HttpServiceFactory for Guarded {
    fn register(self, config: &mut actix_web::dev::AppService) {
        self.resource
            .default_service(web::to(method_not_allowed))
            .app_data(Needs(self.needs))
            .wrap(from_fn(authorize))
            .register(config)
    }
}

/// Answers a known path with an unsupported method, naming the ones it takes (RFC 9110 `Allow`).
pub(crate) async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut res = error_body(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed on this endpoint");
    if let Some(allow) = req.match_pattern().and_then(|p| openapi::allowed_methods(&p))
        && let Ok(value) = HeaderValue::from_str(allow)
    {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

/// Finds who is asking (the key in `Authorization`, or anyone when no key file exists) and puts
/// the [`Caller`] in the request; [`authorize`] then checks the route's need. A route that was
/// answered without passing [`authorize`] is a bug, turned into a 500 and an error in the log.
async fn require_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // The API's description holds no data, so a client may read it before it has a key.
    if req.path() == openapi::PATH {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state else {
        return Err(Error::internal("application state missing").into());
    };
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = match state.apikey.check(header) {
        Ok(Access::Allowed(caller)) => caller,
        Ok(Access::Unauthorized) => {
            return Ok(req.into_response(error_body(StatusCode::UNAUTHORIZED, "Unauthorized")));
        }
        Ok(Access::Forbidden) => return Ok(req.into_response(error_body(StatusCode::FORBIDDEN, "Invalid API key"))),
        Err(e) => {
            tracing::error!("API key check failed: {e}");
            return Ok(req.into_response(error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The API key file cannot be read; see the log",
            )));
        }
    };
    if caller != Caller::open() {
        note_use(&state, &caller.name, req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default());
    }
    let routed = req.match_pattern().is_some();
    req.extensions_mut().insert(caller);
    let res = next.call(req).await?.map_into_boxed_body();
    if routed && !res.request().extensions().contains::<Authorized>() {
        tracing::error!(
            "{} {} was answered without an access check; register it with api::resource",
            res.request().method(),
            res.request().path()
        );
        let (req, _) = res.into_parts();
        return Ok(ServiceResponse::new(
            req,
            error_body(StatusCode::INTERNAL_SERVER_ERROR, "This route declares no access requirement; see the log"),
        ));
    }
    Ok(res)
}

/// Records a key's use off the request's path, and only when it is due (at most once a minute
/// per key and address), so requests never wait for the write.
fn note_use(state: &AppState, name: &str, address: String) {
    if !state.service.key_use_due(name, &address) {
        return;
    }
    let (svc, name) = (state.service.clone(), name.to_string());
    actix_web::rt::task::spawn_blocking(move || {
        if let Err(e) = svc.key_used(&name, &address) {
            tracing::warn!("cannot record the use of key '{name}': {e}");
        }
    });
}

/// Checks the caller against what the route needs for this method; a refused request reaches
/// no handler, so nothing changes. A key scoped to targets learns nothing about other targets:
/// an object that does not exist and one of another target get the same 403.
async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let declared = req.app_data::<Needs>().and_then(|n| n.0.iter().find(|(m, ..)| m == req.method())).cloned();
    req.extensions_mut().insert(Authorized);
    // A method the path does not take: the 405 answers, and no handler runs.
    let Some((_, need, action)) = declared else { return Ok(next.call(req).await?.map_into_boxed_body()) };
    if need == Need::Public {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let caller = req.extensions().get::<Caller>().cloned();
    let (Some(caller), Some(state)) = (caller, req.app_data::<web::Data<AppState>>().cloned()) else {
        return Err(Error::internal("no caller for an API request").into());
    };
    let allowed = match caller.decide(need) {
        Decision::Allow => true,
        Decision::Deny => false,
        Decision::IfTargetIn(targets) => {
            let (scope, id) = (need.scoped_by(), req.match_info().get("id").map(str::to_string));
            match (scope, id) {
                (Some(scope), Some(id)) => {
                    let svc = state.service.clone();
                    let target = block(move || svc.target_of(scope, &id)).await?;
                    target.is_some_and(|t| targets.contains(&t))
                }
                _ => false,
            }
        }
    };
    if allowed {
        // A plain read is not recorded: no write per GET.
        let Some(action) = action else { return Ok(next.call(req).await?.map_into_boxed_body()) };
        let entry = audit::start(&state, &req, &caller, action, need.scoped_by()).await;
        req.extensions_mut().insert(entry.who.clone());
        let res = next.call(req).await?.map_into_boxed_body();
        return audit::record(&state, entry, res).await;
    }
    let names = match &caller.role {
        Role::Upload(ids) => {
            let (svc, ids) = (state.service.clone(), ids.clone());
            block(move || svc.target_names(&ids)).await?
        }
        _ => Vec::new(),
    };
    let message = caller.refusal(need, &names);
    let entry = audit::start(&state, &req, &caller, action.unwrap_or(Action::Read), need.scoped_by()).await;
    audit::record(&state, entry, req.into_response(error_body(StatusCode::FORBIDDEN, &message))).await
}

/// Handlers that narrow what they show (target lists) take the caller.
impl actix_web::FromRequest for Caller {
    type Error = Error;
    type Future = std::future::Ready<Result<Caller, Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions().get::<Caller>().cloned().ok_or_else(|| Error::internal("no caller for an API request")),
        )
    }
}

/// Rewrites framework errors (text or empty bodies) as `{"success": false, "message": ...}`.
async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(err) => {
            let resp = err.error_response();
            return Err(actix_web::error::InternalError::from_response(err, to_json_error(resp).await).into());
        }
    };
    let is_json =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if res.status() == StatusCode::INSUFFICIENT_STORAGE {
        return Ok(with_space_advice(res).await);
    }
    if res.status().as_u16() < 400 || is_json {
        return Ok(res);
    }
    let (req, resp) = res.into_parts();
    Ok(ServiceResponse::new(req, to_json_error(resp).await))
}

/// A full disk's reply also says what space is held or waits for collection, when it frees
/// itself and how to free it now (people delete backups when the disk is full, and a deletion
/// is held: without this, freeing nothing looks like a bug). The same goes to the log.
async fn with_space_advice(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let Some(state) = res.request().app_data::<web::Data<AppState>>().cloned() else { return res };
    let (req, resp) = res.into_parts();
    let status = resp.status();
    let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "The disk is full".to_string());
    let svc = state.service.clone();
    let advice = block(move || svc.reclaimable()).await.ok().and_then(|r| r.advice());
    let message = match advice {
        Some(advice) => {
            tracing::warn!("disk full: {advice}");
            format!("{message}. {advice}")
        }
        None => message,
    };
    ServiceResponse::new(req, error_body(status, &message))
}

async fn to_json_error(resp: HttpResponse) -> HttpResponse {
    let status = resp.status();
    let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let message = if text.is_empty() || text.len() > 500 {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        text
    };
    error_body(status, &message)
}

/// An error reply that names no field; its code follows from the status.
fn error_body(status: StatusCode, message: &str) -> HttpResponse {
    reply(status, &schema::ErrorBody::new(message, Code::of_status(status.as_u16()), None))
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse<BoxBody> {
        reply(self.status_code(), &schema::ErrorBody::new(&self.to_string(), self.code(), self.field()))
    }
}

/// A 200 with a typed reply (one of `schema`'s, which the OpenAPI document describes).
pub(crate) fn ok(body: &impl Serialize) -> HttpResponse {
    reply(StatusCode::OK, body)
}

/// Any reply as JSON, written straight from its type: building a `Value` first (which also
/// sorted the keys) was a third of the time of a page of targets.
pub(crate) fn reply(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => HttpResponse::build(status).content_type(actix_web::http::header::ContentType::json()).body(bytes),
        Err(e) => {
            tracing::error!("cannot render a reply: {e}");
            HttpResponse::InternalServerError()
                .json(json!({"success": false, "message": "The reply could not be rendered; see the log", "code": Code::Internal}))
        }
    }
}

/// A reply's JSON bytes (for [`cached`]).
pub(crate) fn json_bytes(body: &impl Serialize) -> crate::error::Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| Error::internal(format!("the reply could not be rendered: {e}")))
}

/// Runs a service call on a blocking thread.
pub(crate) async fn block<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, Error> {
    crate::http::block(f).await
}

/// A JSON object body; an empty body counts as `{}` (clients send none on some calls).
pub(crate) fn json_body(body: &web::Bytes) -> Result<Value, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Error::bad(format!("Request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::bad("Request body must be a JSON object"));
    }
    Ok(value)
}

/// `delete_files` from a DELETE body: required, a boolean.
pub(crate) fn delete_files(body: &web::Bytes) -> Result<bool, Error> {
    let value = json_body(body)?;
    let fields = crate::model::fields::Fields::of(&value)?;
    fields.required("delete_files", crate::model::fields::Fields::boolean)
}

/// Query pairs, percent-decoded but with `+` kept as a plus (the clients do not encode it).
pub(crate) fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    req.query_string()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

/// A non-negative integer query parameter.
pub(crate) fn query_count(req: &HttpRequest, key: &str) -> Result<Option<u64>, Error> {
    match query_pairs(req).into_iter().rev().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, v)) if v.trim().is_empty() => Ok(None),
        Some((_, v)) => v.trim().parse::<u64>().map(Some).map_err(|_| {
            Error::invalid(key, Code::WrongType, format!("Parameter '{key}' must be a non-negative integer"))
        }),
    }
}
