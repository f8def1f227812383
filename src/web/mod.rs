//! The web UI: server-rendered askama pages over the same `Service` the JSON API uses.
//!
//! Every page route sits behind [`guard`], which reads the signed session cookie, decides
//! whether the visitor may in (see `auth::session` for the rules), puts a [`Ctx`] in the request and
//! adds the security headers. Every POST checks the session's CSRF token ([`Ctx::check`]).
//! Pages work without JavaScript; `static/app.js` only adds upload progress, drag and drop,
//! select-all, the recycle-field toggle and the live retention preview of the edit form. No inline script anywhere, so the CSP forbids it.

mod assets;
mod audit;
mod auth;
mod backups;
mod held;
mod jobs;
mod pages;
mod render;
mod replicas;
mod targets;
mod upload;

use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use subtle::ConstantTimeEq;

use crate::auth::session::{self, Access, Verdict};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Registered after `/api`, so this catch-all scope only sees page paths.
    cfg.service(
        web::scope("")
            .wrap(from_fn(guard))
            .app_data(web::PayloadConfig::new(4 << 20))
            .configure(assets::routes)
            .configure(auth::routes)
            .configure(targets::routes)
            .configure(upload::routes)
            .configure(backups::routes)
            .configure(held::routes)
            .configure(replicas::routes)
            .configure(jobs::routes)
            .configure(pages::routes)
            .configure(audit::routes)
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> PageResult {
    Err(PageError::new(StatusCode::NOT_FOUND, "There is no such page."))
}

/// What a page handler knows about the visitor.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// A real login (so a "Log out" button makes sense).
    pub logged_in: bool,
    /// A warning shown on every page (no password, no API key).
    pub banner: Option<String>,
    /// Uploads that failed recently (shown in the menu).
    pub failed_jobs: i64,
}

impl Ctx {
    /// Fails unless the form carries this session's CSRF token.
    pub fn check(&self, form: &Form) -> Result<(), PageError> {
        let sent = form.get("csrf").unwrap_or_default();
        if !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes())) {
            return Ok(());
        }
        Err(csrf_refused())
    }

    /// The layout values of a page.
    pub fn chrome(&self, title: impl Into<String>, section: &'static str) -> Chrome {
        Chrome {
            title: title.into(),
            section,
            csrf: self.csrf.clone(),
            banner: self.banner.clone(),
            logged_in: self.logged_in,
            notice: None,
            failed_jobs: self.failed_jobs,
        }
    }
}

impl FromRequest for Ctx {
    type Error = PageError;
    type Future = Ready<Result<Ctx, PageError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Ctx>()
                .cloned()
                .ok_or_else(|| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "session missing")),
        )
    }
}

/// The refusal of a form without this session's CSRF token.
pub fn csrf_refused() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from this bakch. Go back, reload the page and try again.",
    )
}

/// What the layout (`base.html`) shows around every page.
pub struct Chrome {
    pub title: String,
    /// Which navigation entry is current.
    pub section: &'static str,
    pub csrf: String,
    pub banner: Option<String>,
    pub logged_in: bool,
    /// A one-line confirmation of what just happened ("3 backups recycled").
    pub notice: Option<String>,
    /// Uploads that failed recently (the Jobs entry of the menu counts them).
    pub failed_jobs: i64,
}

impl Chrome {
    pub fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    pub fn with_notice(mut self, notice: Option<String>) -> Chrome {
        self.notice = notice;
        self
    }
}

/// An url-encoded form body; fields may repeat (bulk selection).
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }
    pub fn from_query(req: &HttpRequest) -> Form {
        Form::parse(req.query_string().as_bytes())
    }
    /// The last value of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    /// A field's value as sent, `""` when absent.
    pub fn value(&self, key: &str) -> &str {
        self.get(key).unwrap_or_default()
    }
    /// A field's value, trimmed, `""` when absent.
    pub fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().trim().to_string()
    }
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }
    pub fn checked(&self, key: &str) -> bool {
        self.get(key).is_some_and(checkbox)
    }
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
    /// Sets a field (a later value wins over an earlier one).
    pub fn set(&mut self, key: &str, value: &str) {
        self.0.push((key.to_string(), value.to_string()));
    }
}

pub use crate::model::fields::checkbox;

/// A failure shown as an HTML page with its status (or, on a form, beside its field).
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
    /// The form field at fault, when the error names one.
    field: Option<String>,
    /// What kind of fault, when the service said (a form words its message by it).
    code: Option<crate::error::Code>,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError { status, message: message.into(), field: None, code: None }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::error::Error> for PageError {
    fn from(e: crate::error::Error) -> PageError {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        PageError { status, message: e.to_string(), field: e.field().map(str::to_string), code: Some(e.code()) }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse<BoxBody> {
        let page = ErrorPage {
            status: self.status.as_u16(),
            reason: self.status.canonical_reason().unwrap_or("Error"),
            message: &self.message,
        };
        let html = page.render().unwrap_or_else(|_| self.message.clone());
        HttpResponse::build(self.status).content_type("text/html; charset=utf-8").body(html)
    }
}

pub type PageResult = Result<HttpResponse, PageError>;

/// Renders a template as a 200 page.
pub fn html<T: Template>(page: &T) -> PageResult {
    html_status(StatusCode::OK, page)
}

pub fn html_status<T: Template>(status: StatusCode, page: &T) -> PageResult {
    let body = page
        .render()
        .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("page could not be drawn: {e}")))?;
    Ok(HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body))
}

/// 303 See Other: where a form post lands (so reload does not post again).
pub fn see_other(location: &str) -> HttpResponse {
    // A value that is no valid header falls back to the home page rather than failing the answer.
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    HttpResponse::SeeOther().insert_header((header::LOCATION, value)).finish()
}

/// A redirect target the client named (`next`, `back`), if it is a path on this site made of
/// safe characters: one leading `/` (not `//` or `/\`, which browsers read as another host),
/// then visible ASCII without `\`. A query string is fine.
pub fn local_path(candidate: &str) -> Option<&str> {
    let rest = candidate.strip_prefix('/')?;
    let safe = |c: char| c.is_ascii_graphic() && c != '\\';
    (!rest.starts_with('/') && candidate.chars().all(safe)).then_some(candidate)
}

/// [`local_path`], or the home page when the client named none or an unsafe one.
pub fn local_redirect(candidate: &str) -> String {
    local_path(candidate).unwrap_or("/").to_string()
}

/// Runs a service call on a blocking thread, turning its error into a page error.
pub async fn block<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, PageError> {
    Ok(crate::http::block(f).await?)
}

/// A path segment or query value, percent-encoded (unreserved characters stay as they are).
pub fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Adds the session and the security headers to every page; sends visitors who may not in to
/// the login page (or, with no password on a non-loopback bind, to the explanation).
async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "application state missing").into());
    };
    if req.path().starts_with("/static/") {
        let res = next.call(req).await?.map_into_boxed_body();
        return Ok(secure_headers(res, false));
    }
    let peer_loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    let https = req.connection_info().scheme() == "https";
    let verdict = state.sessions.admit(req.cookie(session::COOKIE), https, peer_loopback, state.apikey.exists());
    let Verdict { access, csrf, logged_in, banner, new_cookie } = match verdict {
        Ok(v) => v,
        Err(message) => {
            tracing::error!("web session check failed: {message}");
            let err =
                PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "The password file cannot be read; see the log.");
            return Ok(req.error_response(err));
        }
    };
    let public = matches!(req.path(), "/login" | "/logout");
    let res = match access {
        Access::Allowed => None,
        _ if public => None,
        Access::Login => {
            let target = match req.query_string() {
                "" => req.path().to_string(),
                q => format!("{}?{q}", req.path()),
            };
            let next_page = if req.method() == actix_web::http::Method::GET { target } else { "/".into() };
            Some(see_other(&format!("/login?next={}", enc(&next_page))))
        }
        Access::NoPassword => Some(auth::no_password_page()),
    };
    let mut res = match res {
        Some(res) => {
            let (req, _) = req.into_parts();
            ServiceResponse::new(req, res)
        }
        None => {
            // The menu's failed-upload count: one small query, for pages (not for forms).
            let failed_jobs = if req.method() == actix_web::http::Method::GET && !public {
                let svc = state.service.clone();
                block(move || svc.failed_upload_count()).await.unwrap_or(0)
            } else {
                0
            };
            req.extensions_mut().insert(Ctx { csrf: csrf.clone(), logged_in, banner, failed_jobs });
            audit::recorded(&state, req, &csrf, next).await?
        }
    };
    let handler_set_cookie = res.response().cookies().any(|c| c.name() == session::COOKIE);
    if let Some(cookie) = new_cookie
        && !handler_set_cookie
    {
        let _ = res.response_mut().add_cookie(&cookie);
    }
    Ok(secure_headers(res, true))
}

/// Headers that keep pages out of frames, scripts to our own files, and types unsniffed.
fn secure_headers(mut res: ServiceResponse<BoxBody>, page: bool) -> ServiceResponse<BoxBody> {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if page {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// A yes/no page before anything is deleted or moved in bulk. Its form posts `confirm=1`, the
/// hidden fields, and (when offered) whether to delete the files too.
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub c: Chrome,
    pub heading: String,
    pub text: String,
    pub items: Vec<String>,
    pub action: String,
    pub hidden: Vec<(String, String)>,
    /// Offer "also delete the files".
    pub files_choice: bool,
    pub button: String,
    pub danger: bool,
    pub cancel: String,
}

/// The one-line notice for `?done=<what>&n=<count>` after a form landed.
pub fn notice(req: &HttpRequest) -> Option<String> {
    let q = Form::from_query(req);
    let n: usize = q.text("n").parse().unwrap_or(1);
    let count = |one: &str, many: &str| if n == 1 { one.to_string() } else { many.replace("{n}", &n.to_string()) };
    Some(match q.get("done")? {
        "created" => "Target created.".into(),
        "saved" => "Changes saved.".into(),
        "recycled" => count("Backup moved to the recycle bin.", "{n} backups moved to the recycle bin."),
        "restored" => count("Backup restored.", "{n} backups restored."),
        "deleted" => count("Backup deleted.", "{n} backups deleted."),
        "target-deleted" => "Target deleted.".into(),
        "emptied" => count("Recycle bin emptied: 1 backup deleted.", "Recycle bin emptied: {n} backups deleted."),
        "cancelled" => "Sequential upload cancelled.".into(),
        "notify-test" => count(
            "A test notification is queued for 1 destination.",
            "A test notification is queued for {n} destinations.",
        ),
        "pinned" => "Backup pinned: retention never takes it.".into(),
        "unpinned" => "Backup unpinned.".into(),
        "none-ticked" => "Tick at least one file or folder first.".into(),
        "none-selected" => "Select at least one backup first.".into(),
        _ => return None,
    })
}

/// Sortable table header: its link toggles the direction when already sorted by it.
pub struct SortCol {
    pub label: &'static str,
    pub href: String,
    /// `ascending`, `descending` or `none`, for `aria-sort`.
    pub aria: &'static str,
    pub mark: &'static str,
}

/// Header links for `cols` (key, label, default direction) given the current sort; `base` is
/// the page's query without `sort`/`dir`/`page`.
pub fn sort_cols(
    cols: &[(&'static str, &'static str, &'static str)],
    sort: &str,
    desc: bool,
    path: &str,
    base: &[(String, String)],
) -> Vec<SortCol> {
    cols.iter()
        .map(|(key, label, default_dir)| {
            let current = *key == sort;
            let dir = if current { if desc { "asc" } else { "desc" } } else { default_dir };
            let mut q: Vec<(String, String)> = base.to_vec();
            q.push(("sort".into(), key.to_string()));
            q.push(("dir".into(), dir.into()));
            SortCol {
                label,
                href: format!("{path}?{}", query(&q)),
                aria: match (current, desc) {
                    (false, _) => "none",
                    (true, true) => "descending",
                    (true, false) => "ascending",
                },
                mark: match (current, desc) {
                    (false, _) => "",
                    (true, true) => " ▼",
                    (true, false) => " ▲",
                },
            }
        })
        .collect()
}

/// An url-encoded query string.
pub fn query(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_paths_of_safe_characters_are_redirect_targets() {
        for good in ["/", "/targets?page=2&sort=name", "/backups/abc%0A", "/recycle-bin#x"] {
            assert_eq!(local_redirect(good), good);
        }
        for bad in [
            "",
            "targets",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example/",
            "/\n/x",
            "/a\rb",
            "/a\0",
            "/a b",
            "/a\\b",
            "/a\u{7f}",
            "https://evil.example",
            "/caf\u{e9}",
            "/a\u{85}",
        ] {
            assert_eq!(local_redirect(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn a_redirect_never_fails_to_build() {
        let res = see_other("/a\nb");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/"));
    }
}
