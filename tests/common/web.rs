//! Helpers for the web UI tests: set the password with `bakch passwd`, and a cookie-keeping
//! HTTP client that does not follow redirects (so tests see them).
//! Included with `#[path = "common/web.rs"] mod web;` beside `mod common;`.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::blocking::{Client, multipart};

use super::common::{BIN, TestServer};

/// Runs `bakch passwd` for the server's data folder, the password on stdin.
pub fn set_password(server: &TestServer, password: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["passwd", "--data-dir"])
        .arg(server.data_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run passwd");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write password");
    child.wait_with_output().expect("passwd output")
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub struct Web {
    pub base: String,
    pub client: Client,
}

/// A reply: status, `Location` header, body.
pub struct Page {
    pub status: u16,
    pub location: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Web {
    pub fn new(server: &TestServer) -> Web {
        let client = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Web { base: server.url.clone(), client }
    }

    fn page(resp: reqwest::blocking::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let location = headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        Page { status, location, headers, body: resp.text().unwrap_or_default() }
    }

    pub fn get(&self, path: &str) -> Page {
        Self::page(self.client.get(format!("{}{path}", self.base)).send().expect("GET"))
    }

    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        Self::page(self.client.post(format!("{}{path}", self.base)).form(fields).send().expect("POST"))
    }

    pub fn post_multipart(&self, path: &str, form: multipart::Form) -> Page {
        Self::page(self.client.post(format!("{}{path}", self.base)).multipart(form).send().expect("POST"))
    }

    /// The CSRF token of this session (from any page with a form).
    pub fn csrf(&self) -> String {
        let page = self.get("/login");
        let page = if page.body.contains("name=\"csrf\"") { page } else { self.get("/targets") };
        csrf_in(&page.body).expect("a csrf field")
    }

    /// Logs in; panics unless it worked.
    pub fn login(&self, password: &str) {
        let csrf = self.csrf();
        let page = self.post("/login", &[("csrf", &csrf), ("password", password), ("next", "/targets")]);
        assert_eq!(page.status, 303, "login failed: {}", page.body);
        assert_eq!(page.location, "/targets");
    }
}

/// The value of the first `name="csrf"` hidden field.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}
