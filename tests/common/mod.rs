//! Test harness: starts the real `bakch` binary on a free loopback port with a temp data folder
//! and speaks HTTP to it. The server is killed when the harness is dropped.

#![allow(dead_code)] // Each test file uses a different part of the harness.

pub mod chaos;
pub mod garage;
pub mod routes;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_bakch");

pub struct TestServer {
    pub url: String,
    pub port: u16,
    /// Holds the data folder `data/` (so tests can put files beside it).
    pub data: TempDir,
    /// A folder outside the data folder for target locations.
    pub root: TempDir,
    pub key: Option<String>,
    child: Option<Child>,
    client: Client,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Polls `check` every 20 ms until it returns Some, or panics after `timeout`.
pub fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with_env(&[])
    }

    pub fn start_with_env(env: &[(&str, &str)]) -> TestServer {
        Self::start_with(env, None)
    }

    /// Starts with `<data>/config.toml` holding `toml`.
    pub fn start_with_config(toml: &str) -> TestServer {
        Self::start_with(&[], Some(toml))
    }

    /// Starts with environment variables and, if given, `<data>/config.toml`.
    pub fn start_with(env: &[(&str, &str)], config: Option<&str>) -> TestServer {
        let data = tempfile::tempdir().expect("temp data dir");
        std::fs::create_dir(data.path().join("data")).expect("create data dir");
        if let Some(toml) = config {
            std::fs::write(data.path().join("data").join("config.toml"), toml).expect("write config.toml");
        }
        let root = tempfile::tempdir().expect("temp root dir");
        let port = free_port();
        let mut server = TestServer {
            url: format!("http://127.0.0.1:{port}"),
            port,
            data,
            root,
            key: None,
            child: None,
            client: Client::builder().timeout(Duration::from_secs(60)).build().expect("client"),
        };
        server.spawn(env);
        server
    }

    fn spawn(&mut self, env: &[(&str, &str)]) {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--bind", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(self.data_path())
            .env("BAKCH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start bakch");
        let url = format!("{}/api/stats", self.url);
        poll("bakch to listen", Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("bakch exited early with {status}");
            }
            self.client.get(&url).send().ok().map(|_| ())
        });
        self.child = Some(child);
    }

    /// Kills the server with SIGKILL (no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills and starts again on the same data folder and port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn(&[]);
    }

    /// bakch's data folder.
    pub fn data_path(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// A fresh absolute folder path (not created) for a target location.
    pub fn location(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Runs `bakch newapikey` on this data folder and uses the key from then on.
    pub fn new_api_key(&mut self) -> String {
        let out = Command::new(BIN)
            .args(["newapikey", "--overwrite", "--data-dir"])
            .arg(self.data_path())
            .output()
            .expect("run newapikey");
        assert!(out.status.success(), "newapikey failed: {}", String::from_utf8_lossy(&out.stderr));
        let key = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
        self.key = Some(key.clone());
        key
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        req
    }

    fn send(req: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().expect("body");
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("reply is not JSON (status {status}): {text}"));
        assert!(body.get("success").is_some(), "reply without 'success': {body}");
        (status, body)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        Self::send(self.request(reqwest::Method::GET, path))
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        Self::send(self.request(reqwest::Method::POST, path).json(&body))
    }

    pub fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        Self::send(self.request(reqwest::Method::PATCH, path).json(&body))
    }

    pub fn delete(&self, path: &str, body: Value) -> (u16, Value) {
        Self::send(self.request(reqwest::Method::DELETE, path).json(&body))
    }

    /// Sends a raw body with a content type (for malformed-input tests).
    pub fn raw(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        Self::send(self.request(method, path).header("content-type", content_type).body(body.to_vec()))
    }

    /// Raw response (for downloads).
    pub fn get_raw(&self, path: &str) -> reqwest::blocking::Response {
        self.request(reqwest::Method::GET, path).send().expect("request")
    }

    pub fn multipart(&self, path: &str, form: multipart::Form) -> (u16, Value) {
        Self::send(self.request(reqwest::Method::POST, path).multipart(form))
    }

    /// Uploads files (name, bytes) with `manual`; returns the raw reply.
    pub fn upload(&self, target: &str, files: &[(&str, &[u8])], manual: &str) -> (u16, Value) {
        let mut form = multipart::Form::new().text("manual", manual.to_string());
        for (name, bytes) in files {
            form = form.part("backup_file", multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()));
        }
        self.multipart(&format!("/api/target/{target}/upload"), form)
    }

    /// Uploads and waits for the job; returns the finished job's JSON.
    pub fn upload_ok(&self, target: &str, files: &[(&str, &[u8])]) -> Value {
        let (status, body) = self.upload(target, files, "1");
        assert_eq!(status, 200, "upload refused: {body}");
        let job = self.wait_job(body["job_id"].as_i64().expect("job_id"));
        assert_eq!(job["status"], "FINISHED", "upload job failed: {job}");
        job
    }

    /// Polls `/api/jobs` until the job is FINISHED or ERROR.
    /// The bound is generous for a loaded CI machine: the poll returns as soon as the job ends.
    pub fn wait_job(&self, id: i64) -> Value {
        poll(&format!("job {id}"), Duration::from_secs(240), || {
            let (status, body) = self.get(&format!("/api/jobs/{id}"));
            assert_eq!(status, 200, "job {id} is unknown: {body}");
            let job = body["job"].clone();
            matches!(job["status"].as_str(), Some("FINISHED" | "ERROR")).then_some(job)
        })
    }

    /// Creates a target from defaults overridden by `fields`; returns its id.
    pub fn create_target(&self, fields: Value) -> String {
        let (status, body) = self.post("/api/target", target_body(self, fields));
        assert_eq!(status, 201, "create target failed: {body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// The target's JSON and its backups.
    pub fn target(&self, id: &str) -> (Value, Vec<Value>) {
        let (status, body) = self.get(&format!("/api/target/{id}"));
        assert_eq!(status, 200, "view target failed: {body}");
        (body["target"].clone(), body["backups"].as_array().cloned().unwrap_or_default())
    }
}

/// A complete create body: a multi-file target named `t` at a fresh location.
pub fn target_body(server: &TestServer, fields: Value) -> Value {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut body = json!({
        "name": format!("target {n}"),
        "backup_type": "multi",
        "recycle_criteria": "none",
        "recycle_value": 0,
        "recycle_action": "recycle",
        "location": server.location(&format!("loc{n}")).to_string_lossy(),
        "name_template": format!("t{n}-$I"),
        "deduplicate": false,
        "alias": null,
        "min_backups": 0,
        "tags": [],
    });
    if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
        b.extend(f);
    }
    body
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every regular file under `dir`, as (relative path, bytes), sorted; hidden names included.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap_or(&p).to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Names directly inside `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A .tar.gz of (path, bytes) entries.
pub fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(enc);
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, *bytes).expect("tar entry");
    }
    builder.into_inner().and_then(|e| e.finish()).expect("tar.gz")
}

/// The (path, content) pairs of a tar, sorted by path.
pub fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = tar::Archive::new(bytes)
        .entries()
        .expect("tar entries")
        .map(|e| {
            let mut e = e.expect("tar entry");
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).expect("tar entry content");
            (e.path().expect("tar path").to_string_lossy().into_owned(), data)
        })
        .collect();
    out.sort();
    out
}

/// A plain tar whose entry names are written as given (no checks), for hostile archives.
/// Each entry: (name, bytes, type, link target).
pub fn raw_tar(entries: &[(&str, &[u8], tar::EntryType, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes, kind, link) in entries {
        let mut header = tar::Header::new_old();
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(*kind);
        header.set_cksum();
        builder.append(&header, *bytes).expect("tar entry");
    }
    builder.into_inner().expect("tar")
}
