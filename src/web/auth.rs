//! The login and logout pages. Who may in, and how sessions and the password file work, is
//! decided in `auth::session` and `auth::password`; wrong passwords and logins are logged here.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{Ctx, Form, PageError, PageResult, block, html_status, local_redirect, see_other};
use crate::auth::password;
use crate::model::audit::Action;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::get().to(login_form)).route(web::post().to(login)))
        .service(web::resource("/logout").route(web::post().to(logout)));
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
    if ctx.logged_in || !state.sessions.has_password() {
        if !state.sessions.has_password() && !state.sessions.loopback_bind() {
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
    if let Some(wait) = state.sessions.locked_for(ip) {
        tracing::warn!("web login from {ip} refused: too many wrong passwords, locked for {}s", wait.as_secs() + 1);
        super::audit::note(&req, |n| {
            n.action = Some(Action::LoginFailed);
            n.message = Some("too many wrong passwords".into());
        });
        return page(StatusCode::TOO_MANY_REQUESTS, format!("Too many wrong passwords. {}", wait_words(wait)));
    }
    let Some(hash) =
        state.sessions.password_hash().map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
    else {
        return Ok(see_other(&next));
    };
    let password = form.get("password").unwrap_or_default().to_string();
    // argon2 is slow on purpose; keep it off the async executor.
    let ok = block(move || password::verify(&hash, &password)).await?;
    state.sessions.record(ip, ok);
    if !ok {
        tracing::warn!("web login from {ip} failed: wrong password");
        super::audit::note(&req, |n| {
            n.action = Some(Action::LoginFailed);
            n.message = Some("wrong password".into());
        });
        return page(StatusCode::UNAUTHORIZED, "Wrong password.".into());
    }
    tracing::info!("web login from {ip} succeeded");
    let mut res = see_other(&next);
    let https = req.connection_info().scheme() == "https";
    res.add_cookie(&state.sessions.login_cookie(https))
        .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(res)
}

async fn logout(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest, body: web::Bytes) -> PageResult {
    ctx.check(&Form::parse(&body))?;
    let ip = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    tracing::info!("web logout from {ip}");
    let mut res = see_other("/login");
    let https = req.connection_info().scheme() == "https";
    res.add_cookie(&state.sessions.logout_cookie(https))
        .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(res)
}

/// "Wait 1 second and try again.", "Wait 4 seconds …": whole seconds, rounded up, so the
/// page never says 0 and a try after the time said is let in.
fn wait_words(wait: std::time::Duration) -> String {
    let secs = wait.as_millis().div_ceil(1000).max(1);
    let unit = if secs == 1 { "second" } else { "seconds" };
    format!("Wait {secs} {unit} and try again.")
}

#[cfg(test)]
mod tests {
    use super::wait_words;
    use std::time::Duration;

    #[test]
    fn the_wait_is_said_in_whole_seconds_with_the_right_number() {
        assert_eq!(wait_words(Duration::from_millis(400)), "Wait 1 second and try again.");
        assert_eq!(wait_words(Duration::from_millis(1000)), "Wait 1 second and try again.");
        assert_eq!(wait_words(Duration::from_millis(1001)), "Wait 2 seconds and try again.");
        assert_eq!(wait_words(Duration::ZERO), "Wait 1 second and try again.");
    }
}
