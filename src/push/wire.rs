//! The client's side of `/api/push`: JSON requests and streamed blob packs over ureq.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// A server to push to.
pub struct Server {
    agent: ureq::Agent,
    base: String,
    auth: String,
    /// Nanoseconds spent waiting for requests to be answered (the server's time, with loopback).
    pub waited: AtomicU64,
}

/// A failed request: the server's status and message, or a connection failure (status 0).
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            0 => write!(f, "{}", self.message),
            s => write!(f, "the server answered {s}: {}", self.message),
        }
    }
}

fn net(e: impl std::fmt::Display) -> Failure {
    Failure { status: 0, message: format!("cannot reach the server: {e}") }
}

/// One blob of a pack: its hash, size and the file to read it from.
#[derive(Debug, Clone)]
pub struct PackItem {
    pub hash: String,
    pub size: u64,
    pub file: PathBuf,
}

impl Server {
    pub fn new(url: &str, key: &str) -> Server {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        Server {
            agent,
            base: url.trim_end_matches('/').to_string(),
            auth: format!("Bearer {key}"),
            waited: AtomicU64::new(0),
        }
    }

    fn answer(
        &self,
        started: std::time::Instant,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, Failure> {
        let res = res.map_err(net)?;
        self.waited.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let status = res.status().as_u16();
        let text = res.into_body().with_config().limit(256 << 20).read_to_string().map_err(net)?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 200 {
            return Ok(value);
        }
        let message = value.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or(text);
        Err(Failure { status, message })
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        let started = std::time::Instant::now();
        let res = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json")
            .send(serde_json::to_vec(body).unwrap_or_default());
        self.answer(started, res)
    }

    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        let started = std::time::Instant::now();
        self.answer(started, self.agent.get(format!("{}{path}", self.base)).header("Authorization", &self.auth).call())
    }

    /// Streams one pack; `sent` counts the content bytes as they go.
    pub fn post_pack(&self, path: &str, items: Vec<PackItem>, sent: Arc<AtomicU64>) -> Result<Value, Failure> {
        let length: u64 = items.iter().map(|i| header(i).len() as u64 + i.size).sum();
        let started = std::time::Instant::now();
        let reader = PackReader { items: items.into_iter(), current: None, sent };
        let res = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", length.to_string())
            .send(ureq::SendBody::from_owned_reader(reader));
        self.answer(started, res)
    }

    /// Opens a push; (push id, most bytes and entries per page).
    pub fn begin(&self, target: &str, manual: bool) -> Result<(String, usize, usize), Failure> {
        let v = self.post_json(&format!("/api/push/{}/begin", enc(target)), &json!({ "manual": manual }))?;
        let id = v["push_id"].as_str().unwrap_or_default().to_string();
        let bytes = v["max_json_bytes"].as_u64().unwrap_or(1 << 20) as usize;
        let entries = v["max_page_entries"].as_u64().unwrap_or(5000) as usize;
        Ok((id, bytes, entries))
    }
}

fn header(item: &PackItem) -> String {
    format!("{} {}\n", item.hash, item.size)
}

/// A path segment, percent-encoded.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The body of a pack, read file by file as ureq sends it: exactly the announced size of each
/// file (a file that shrank meanwhile is padded, one that grew is cut; the server then refuses
/// the mismatch, or stores the content as it was when hashed).
struct PackReader {
    items: std::vec::IntoIter<PackItem>,
    current: Option<(io::Cursor<Vec<u8>>, Option<std::fs::File>, u64)>,
    sent: Arc<AtomicU64>,
}

impl Read for PackReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some((head, file, left)) = &mut self.current else {
                let Some(item) = self.items.next() else { return Ok(0) };
                let file = super::open_nofollow(&item.file).ok();
                self.current = Some((io::Cursor::new(header(&item).into_bytes()), file, item.size));
                continue;
            };
            let n = head.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if *left == 0 {
                self.current = None;
                continue;
            }
            let want = buf.len().min(*left as usize);
            let n = match file {
                Some(f) => f.read(&mut buf[..want])?,
                None => 0,
            };
            let n = if n == 0 {
                // Shorter than announced: pad, so the framing holds and the server refuses it.
                *file = None;
                buf[..want].fill(0);
                want
            } else {
                n
            };
            *left -= n as u64;
            self.sent.fetch_add(n as u64, Ordering::Relaxed);
            return Ok(n);
        }
    }
}
