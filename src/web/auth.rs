//! Who may use the web UI, and the login that decides it.
//!
//! - The password is set with `bakch passwd` and kept as an argon2 hash in
//!   `<data>/webpassword.json` (0600, written atomically). The server re-reads it when it
//!   changes, so a new password takes effect without a restart and ends older sessions.
//! - The session is a signed cookie (HMAC with `<data>/session.key`, 0600, made once and kept,
//!   so sessions survive restarts), `HttpOnly`, `SameSite=Strict`. It holds whether the visitor
//!   logged in, when, a CSRF token, and a fingerprint of the password hash it logged in with.
//!   Every visitor gets one, logged in or not, so that every form (the login form too) has a token.
//! - With no password set, pages are open only while bakch listens on loopback, and every
//!   page says so; listening beyond loopback, pages explain how to set a password instead.
//! - `web_loopback_bypass` lets clients on this machine in without the password.
//! - Wrong passwords from one address are slowed down: from the third in a row, each locks
//!   that address out for 1, 2, 4, ... up to 60 seconds. Every success and failure is logged.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use askama::Template;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{Ctx, Form, PageResult, html_status, local_redirect, see_other};
use crate::config::Config;
use crate::state::AppState;
use crate::store::durable;
use crate::watched::WatchedFile;

pub const COOKIE: &str = "bakch_session";
/// A login lasts this long, then the password is asked again.
const SESSION_SECS: i64 = 7 * 24 * 3600;
/// Shortest password `bakch passwd` accepts.
const MIN_PASSWORD: usize = 8;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::get().to(login_form)).route(web::post().to(login)))
        .service(web::resource("/logout").route(web::post().to(logout)));
}

pub fn password_path(data_dir: &Path) -> PathBuf {
    data_dir.join("webpassword.json")
}

#[derive(Serialize, Deserialize)]
struct PasswordFile {
    hash: String,
}

/// `bakch passwd`: asks for the password twice on a terminal, else reads one line from stdin.
pub fn passwd(data_dir: &Path) -> Result<(), String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New web password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Once more: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the two passwords differ; nothing was changed".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("the password must be at least {MIN_PASSWORD} characters long; nothing was changed"));
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| format!("cannot hash the password: {e}"))?
        .to_string();
    crate::store::perms::own_data_dir_cli(data_dir)?;
    let path = password_path(data_dir);
    let json = serde_json::to_string(&PasswordFile { hash }).map_err(|e| e.to_string())?;
    durable::write_file(&path, json.as_bytes(), 0o600).map_err(|e| e.to_string())?;
    println!("Web password written to {}; sessions logged in with an older password have ended.", path.display());
    Ok(())
}

struct Failures {
    count: u32,
    last: Instant,
    locked_until: Instant,
}

/// The web UI's shared state: password, session key, login throttle.
pub struct WebState {
    /// The argon2 hash, re-read when the password file changes.
    password: WatchedFile<String>,
    key: Key,
    loopback_bind: bool,
    bypass: bool,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

/// Whether a request may reach a page.
pub enum Access {
    Allowed,
    /// A password is set and the visitor has not logged in.
    Login,
    /// No password is set and bakch listens beyond loopback.
    NoPassword,
}

pub struct Verdict {
    pub ctx: Ctx,
    pub access: Access,
    /// A cookie to set: a visitor without a valid session gets a fresh one.
    pub new_cookie: Option<Cookie<'static>>,
}

/// The signed cookie's content.
struct Session {
    logged_in: bool,
    issued: i64,
    csrf: String,
    /// Fingerprint of the password hash the login used ("-" when not logged in).
    password: String,
}

impl Session {
    fn anonymous() -> Session {
        Session { logged_in: false, issued: now(), csrf: random_hex(24), password: "-".into() }
    }
    fn encode(&self) -> String {
        format!("{}.{}.{}.{}", u8::from(self.logged_in), self.issued, self.csrf, self.password)
    }
    fn decode(s: &str) -> Option<Session> {
        let mut it = s.split('.');
        let logged_in = it.next()? == "1";
        let issued = it.next()?.parse().ok()?;
        let csrf = it.next()?.to_string();
        let password = it.next()?.to_string();
        if csrf.len() < 32 || it.next().is_some() {
            return None;
        }
        Some(Session { logged_in, issued, csrf, password })
    }
}

impl WebState {
    /// Loads (or makes, once) the session key.
    pub fn open(config: &Config) -> Result<WebState, String> {
        let key_path = config.data_dir.join("session.key");
        let bytes = match std::fs::read(&key_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = vec![0u8; 64];
                rand::rng().fill_bytes(&mut b);
                durable::write_file(&key_path, &b, 0o600).map_err(|e| e.to_string())?;
                b
            }
            Err(e) => return Err(format!("cannot read {}: {e}", key_path.display())),
        };
        if bytes.len() < 64 {
            return Err(format!(
                "{} is damaged (shorter than 64 bytes); remove it to make a new one",
                key_path.display()
            ));
        }
        Ok(WebState {
            password: WatchedFile::new(password_path(&config.data_dir)),
            key: Key::from(&bytes),
            loopback_bind: config.bind.ip().is_loopback(),
            bypass: config.web_loopback_bypass,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// The argon2 hash, `None` when no password is set; re-read when the file changes.
    fn password_hash(&self) -> Result<Option<String>, String> {
        self.password.get(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let file: PasswordFile = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a valid password file: {e}", path.display()))?;
            PasswordHash::new(&file.hash).map_err(|e| format!("{} holds no valid argon2 hash: {e}", path.display()))?;
            Ok(file.hash)
        })
    }

    /// Decides about one request; see the module comment for the rules.
    pub fn admit(&self, req: &ServiceRequest, peer_loopback: bool, has_api_key: bool) -> Result<Verdict, String> {
        let hash = self.password_hash()?;
        let fingerprint = hash.as_deref().map(fingerprint);
        let existing = req.cookie(COOKIE).and_then(|c| self.read(c));
        let (session, new_cookie) = match existing {
            Some(s) => (s, None),
            None => {
                let s = Session::anonymous();
                let cookie = self.cookie(&s, req.connection_info().scheme() == "https");
                (s, Some(cookie))
            }
        };
        let logged_in = session.logged_in
            && fingerprint.as_deref() == Some(session.password.as_str())
            && session.issued + SESSION_SECS > now();
        let access = match &fingerprint {
            _ if logged_in => Access::Allowed,
            Some(_) if self.bypass && peer_loopback => Access::Allowed,
            Some(_) => Access::Login,
            None if self.loopback_bind || (self.bypass && peer_loopback) => Access::Allowed,
            None => Access::NoPassword,
        };
        let banner = match (fingerprint.is_some(), has_api_key) {
            (true, _) => None,
            (false, false) => Some(
                "Neither a web password nor an API key protects this server: anyone who can reach it can read and \
                 delete backups. Run `bakch passwd` and `bakch newapikey`."
                    .to_string(),
            ),
            (false, true) => Some("No web password is set: run `bakch passwd` to require one for these pages.".into()),
        };
        Ok(Verdict { ctx: Ctx { csrf: session.csrf.clone(), logged_in, banner }, access, new_cookie })
    }

    fn has_password(&self) -> bool {
        matches!(self.password_hash(), Ok(Some(_)))
    }

    fn read(&self, cookie: Cookie<'static>) -> Option<Session> {
        let mut jar = CookieJar::new();
        jar.add_original(cookie);
        let verified = jar.signed(&self.key).get(COOKIE)?;
        Session::decode(verified.value())
    }

    /// The signed session cookie; `Secure` when the page was served over https (directly or,
    /// as the proxy says, through a reverse proxy).
    fn cookie(&self, s: &Session, https: bool) -> Cookie<'static> {
        let mut jar = CookieJar::new();
        let cookie =
            Cookie::build(COOKIE, s.encode()).path("/").http_only(true).same_site(SameSite::Strict).secure(https);
        jar.signed_mut(&self.key).add(cookie.finish());
        jar.get(COOKIE).cloned().unwrap_or_else(|| Cookie::new(COOKIE, ""))
    }

    /// How long this address must still wait before it may try a password.
    fn locked_for(&self, ip: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let f = failures.get(&ip)?;
        f.locked_until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    fn record(&self, ip: IpAddr, ok: bool) {
        let Ok(mut failures) = self.failures.lock() else { return };
        let now = Instant::now();
        // Forget old failures, so the map stays small and a user's typo from yesterday is gone.
        failures.retain(|_, f| now.duration_since(f.last) < Duration::from_secs(900));
        if ok {
            failures.remove(&ip);
            return;
        }
        let f = failures.entry(ip).or_insert(Failures { count: 0, last: now, locked_until: now });
        f.count += 1;
        f.last = now;
        if f.count >= 3 {
            let secs = 1u64 << (f.count - 3).min(6);
            f.locked_until = now + Duration::from_secs(secs.min(60));
        }
    }
}

fn fingerprint(hash: &str) -> String {
    blake3::hash(hash.as_bytes()).to_hex()[..16].to_string()
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "no_password.html")]
struct NoPasswordPage;

/// Shown instead of every page when no password is set and bakch listens beyond loopback.
pub fn no_password_page() -> HttpResponse {
    html_status(StatusCode::FORBIDDEN, &NoPasswordPage).unwrap_or_else(|e| actix_web::ResponseError::error_response(&e))
}

async fn login_form(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest) -> PageResult {
    let next = local_redirect(&Form::from_query(&req).text("next"));
    if ctx.logged_in || !state.web.has_password() {
        if !state.web.has_password() && !state.web.loopback_bind {
            return Ok(no_password_page());
        }
        return Ok(see_other(&next));
    }
    html_status(StatusCode::OK, &LoginPage { csrf: ctx.csrf, next, error: None })
}

async fn login(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest, body: web::Bytes) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let next = local_redirect(&form.text("next"));
    let ip = req.peer_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let page = |status, error: String| {
        html_status(status, &LoginPage { csrf: ctx.csrf.clone(), next: next.clone(), error: Some(error) })
    };
    if let Some(wait) = state.web.locked_for(ip) {
        tracing::warn!("web login from {ip} refused: too many wrong passwords, locked for {}s", wait.as_secs() + 1);
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong passwords. Wait {} seconds and try again.", wait.as_secs() + 1),
        );
    }
    let Some(hash) =
        state.web.password_hash().map_err(|e| super::PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
    else {
        return Ok(see_other(&next));
    };
    let password = form.get("password").unwrap_or_default().to_string();
    // argon2 is slow on purpose; keep it off the async executor.
    let ok = super::block(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| crate::error::Error::internal(e.to_string()))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await?;
    state.web.record(ip, ok);
    if !ok {
        tracing::warn!("web login from {ip} failed: wrong password");
        return page(StatusCode::UNAUTHORIZED, "Wrong password.".into());
    }
    tracing::info!("web login from {ip} succeeded");
    let fp = fingerprint(&state.web.password_hash().ok().flatten().unwrap_or_default());
    let session = Session { logged_in: true, issued: now(), csrf: random_hex(24), password: fp };
    let mut res = see_other(&next);
    let https = req.connection_info().scheme() == "https";
    res.add_cookie(&state.web.cookie(&session, https))
        .map_err(|e| super::PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(res)
}

async fn logout(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest, body: web::Bytes) -> PageResult {
    ctx.check(&Form::parse(&body))?;
    let ip = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    tracing::info!("web logout from {ip}");
    let mut res = see_other("/login");
    let https = req.connection_info().scheme() == "https";
    res.add_cookie(&state.web.cookie(&Session::anonymous(), https))
        .map_err(|e| super::PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_round_trip() {
        let s = Session { logged_in: true, issued: 5, csrf: "a".repeat(48), password: "abc".into() };
        let d = Session::decode(&s.encode()).unwrap();
        assert!(d.logged_in && d.issued == 5 && d.csrf == s.csrf && d.password == "abc");
        assert!(Session::decode("1.5.short.x").is_none());
    }
}
