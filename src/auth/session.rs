//! Web sessions and who may see the pages.
//!
//! - The session is a signed cookie (HMAC with `<data>/session.key`, 0600, made once and kept,
//!   so sessions survive restarts), `HttpOnly`, `SameSite=Strict`. It holds whether the visitor
//!   logged in, when, a CSRF token, and a fingerprint of the password hash it logged in with.
//!   Every visitor gets one, logged in or not, so that every form (the login form too) has a token.
//! - With no password set, pages are open only while bakch listens on loopback, and every
//!   page says so; listening beyond loopback, pages explain how to set a password instead.
//! - `web_loopback_bypass` lets clients on this machine in without the password.
//! - Wrong passwords from one address are slowed down: from the third in a row, each locks
//!   that address out for 1, 2, 4, ... up to 60 seconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use rand::RngCore;

use super::password::Password;
use crate::config::Config;
use crate::store::durable;

pub const COOKIE: &str = "bakch_session";
/// A login lasts this long, then the password is asked again.
const SESSION_SECS: i64 = 7 * 24 * 3600;

struct Failures {
    count: u32,
    last: Instant,
    locked_until: Instant,
}

/// The web UI's shared state: password, session key, login throttle.
pub struct Sessions {
    password: Password,
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

/// The decision about one request, and what a page needs to know of its session.
pub struct Verdict {
    pub access: Access,
    /// The session's CSRF token.
    pub csrf: String,
    /// A real login (so a "Log out" button makes sense).
    pub logged_in: bool,
    /// A warning for every page (no password, no API key).
    pub banner: Option<String>,
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

impl Sessions {
    /// Loads (or makes, once) the session key.
    pub fn open(config: &Config) -> Result<Sessions, String> {
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
        Ok(Sessions {
            password: Password::new(&config.data_dir),
            key: Key::from(&bytes),
            loopback_bind: config.bind.ip().is_loopback(),
            bypass: config.web_loopback_bypass,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// The argon2 hash, `None` when no password is set; re-read when the file changes.
    pub fn password_hash(&self) -> Result<Option<String>, String> {
        self.password.hash()
    }

    /// Decides about one request from its session cookie (see the module comment for the rules).
    pub fn admit(
        &self,
        cookie: Option<Cookie<'static>>,
        https: bool,
        peer_loopback: bool,
        has_api_key: bool,
    ) -> Result<Verdict, String> {
        let hash = self.password_hash()?;
        let fingerprint = hash.as_deref().map(fingerprint);
        let existing = cookie.and_then(|c| self.read(c));
        let (session, new_cookie) = match existing {
            Some(s) => (s, None),
            None => {
                let s = Session::anonymous();
                let cookie = self.cookie(&s, https);
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
        Ok(Verdict { access, csrf: session.csrf, logged_in, banner, new_cookie })
    }

    pub fn has_password(&self) -> bool {
        matches!(self.password_hash(), Ok(Some(_)))
    }

    /// Whether bakch listens on loopback only.
    pub fn loopback_bind(&self) -> bool {
        self.loopback_bind
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

    /// A fresh session logged in with the current password (and a new CSRF token).
    pub fn login_cookie(&self, https: bool) -> Cookie<'static> {
        let fp = fingerprint(&self.password_hash().ok().flatten().unwrap_or_default());
        let session = Session { logged_in: true, issued: now(), csrf: random_hex(24), password: fp };
        self.cookie(&session, https)
    }

    /// A fresh anonymous session, which ends a login.
    pub fn logout_cookie(&self, https: bool) -> Cookie<'static> {
        self.cookie(&Session::anonymous(), https)
    }

    /// How long this address must still wait before it may try a password.
    pub fn locked_for(&self, ip: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let f = failures.get(&ip)?;
        f.locked_until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    /// Counts a password attempt from `ip`.
    pub fn record(&self, ip: IpAddr, ok: bool) {
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
