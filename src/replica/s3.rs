//! A small, blocking S3 client: requests are signed by `rusty-s3` (presigned URLs, the AWS
//! signature v4 that every S3 engine understands) and sent by `ureq`, which bakch already uses
//! for notifications. Blocking on purpose: replica jobs run on worker threads like every other
//! job, and concurrency is a few threads, not an async runtime. Every request is retried with
//! exponential backoff on network errors, 5xx and 429; a 4xx other than that is final.

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusty_s3::actions::{CreateMultipartUpload, ListObjectsV2};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::error::{Error, Result};

/// How long a signed URL is valid: one request, with room for a slow body.
const SIGNED_FOR: Duration = Duration::from_secs(3600);

/// Where and how to reach one bucket.
#[derive(Clone)]
pub struct Endpoint {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Put before every object name (`""` or ending in `/`).
    pub prefix: String,
    pub access_key_id: String,
    pub secret_key: String,
    /// `https://host/bucket/key` rather than `https://bucket.host/key`.
    pub path_style: bool,
    /// Tries per request (at least 1).
    pub attempts: u32,
    /// The first retry waits this long; each next one twice as long (at most 30 s).
    pub backoff: Duration,
    /// Bytes per second for all uploads of this client together; 0 = no limit.
    pub bandwidth_limit: u64,
}

impl std::fmt::Debug for Endpoint {
    /// Everything but the secret key, so a logged config never shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_key", &"<redacted>")
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

/// One bucket, shareable between threads.
pub struct Client {
    bucket: Bucket,
    credentials: Credentials,
    agent: ureq::Agent,
    prefix: String,
    attempts: u32,
    backoff: Duration,
    throttle: Option<Throttle>,
}

/// An object as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its name without the prefix.
    pub name: String,
    pub size: u64,
}

/// A failed request: whether trying again may help, and what happened.
struct Failure {
    transient: bool,
    message: String,
}

impl Client {
    pub fn new(e: &Endpoint) -> Result<Client> {
        let url: url::Url =
            e.endpoint.parse().map_err(|err| Error::bad(format!("endpoint '{}' is not a URL: {err}", e.endpoint)))?;
        let style = if e.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(url, style, e.bucket.clone(), e.region.clone())
            .map_err(|err| Error::bad(format!("bucket '{}' at '{}' cannot be used: {err}", e.bucket, e.endpoint)))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .build()
            .into();
        Ok(Client {
            bucket,
            credentials: Credentials::new(e.access_key_id.clone(), e.secret_key.clone()),
            agent,
            prefix: e.prefix.clone(),
            attempts: e.attempts.max(1),
            backoff: e.backoff,
            throttle: (e.bandwidth_limit > 0).then(|| Throttle::new(e.bandwidth_limit)),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs `request` until it succeeds, fails for good, or the tries are used up.
    fn retry<T>(&self, what: &str, mut request: impl FnMut() -> std::result::Result<T, Failure>) -> Result<T> {
        let mut wait = self.backoff;
        for attempt in 1..=self.attempts {
            match request() {
                Ok(v) => return Ok(v),
                Err(f) if f.transient && attempt < self.attempts => {
                    tracing::debug!("replica: {what} failed ({}); retrying in {:?}", f.message, wait);
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(f) => {
                    return Err(Error::internal(format!("{what} failed after {attempt} attempt(s): {}", f.message)));
                }
            }
        }
        Err(Error::internal(format!("{what} was not tried")))
    }

    /// Every object whose name starts with `prefix` (after the client's own prefix).
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let full = self.key(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_prefix(full.as_str());
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let url = action.sign(SIGNED_FOR);
            let text = self.retry("listing the bucket", || {
                let resp = self.agent.get(url.as_str()).call().map_err(transport)?;
                let (status, body) = read_text(resp)?;
                check(status, &body)?;
                Ok(body)
            })?;
            let page = ListObjectsV2::parse_response(&text)
                .map_err(|e| Error::internal(format!("the bucket's listing cannot be read: {e}")))?;
            for c in page.contents {
                if let Some(name) = c.key.strip_prefix(&self.prefix) {
                    out.push(Listed { name: name.to_string(), size: c.size.unwrap_or(0) });
                }
            }
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The whole object, or `None` when there is none.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let mut bytes = Vec::new();
        let found = self.get_into(name, |body| {
            // A retry reads from the start again.
            bytes.clear();
            body.read_to_end(&mut bytes).map(|_| ())
        })?;
        Ok(found.then_some(bytes))
    }

    /// Reads an object through `sink` (called with the body; a retry calls it again from the
    /// start, so it must start over). `Ok(false)` when there is no such object.
    pub fn get_into(&self, name: &str, mut sink: impl FnMut(&mut dyn Read) -> std::io::Result<()>) -> Result<bool> {
        let key = self.key(name);
        let url = self.bucket.get_object(Some(&self.credentials), &key).sign(SIGNED_FOR);
        self.retry(&format!("reading {name}"), || {
            let resp = self.agent.get(url.as_str()).call().map_err(transport)?;
            let status = resp.status().as_u16();
            if status == 404 {
                return Ok(false);
            }
            if !(200..300).contains(&status) {
                let (status, body) = read_text(resp)?;
                check(status, &body)?;
                return Err(Failure { transient: false, message: format!("HTTP {status}") });
            }
            let mut reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
            sink(&mut reader).map_err(|e| Failure { transient: true, message: e.to_string() })?;
            Ok(true)
        })
    }

    /// Writes an object whole (for objects up to one part).
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let key = self.key(name);
        let url = self.bucket.put_object(Some(&self.credentials), &key).sign(SIGNED_FOR);
        self.retry(&format!("writing {name}"), || {
            self.throttle(bytes.len());
            let resp = self.agent.put(url.as_str()).send(bytes).map_err(transport)?;
            let (status, body) = read_text(resp)?;
            check(status, &body)
        })
    }

    /// Starts a multipart upload; its id.
    pub fn start_multipart(&self, name: &str) -> Result<String> {
        let key = self.key(name);
        let url = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), &key).sign(SIGNED_FOR);
        let text = self.retry(&format!("starting an upload of {name}"), || {
            let resp = self.agent.post(url.as_str()).send(&[] as &[u8]).map_err(transport)?;
            let (status, body) = read_text(resp)?;
            check(status, &body)?;
            Ok(body)
        })?;
        let parsed = CreateMultipartUpload::parse_response(&text)
            .map_err(|e| Error::internal(format!("the reply to a multipart upload cannot be read: {e}")))?;
        Ok(parsed.upload_id().to_string())
    }

    /// Uploads part `number` (from 1) of a multipart upload; its ETag.
    pub fn put_part(&self, name: &str, upload_id: &str, number: u16, bytes: &[u8]) -> Result<String> {
        let key = self.key(name);
        let url = self.bucket.upload_part(Some(&self.credentials), &key, number, upload_id).sign(SIGNED_FOR);
        self.retry(&format!("writing part {number} of {name}"), || {
            self.throttle(bytes.len());
            let resp = self.agent.put(url.as_str()).send(bytes).map_err(transport)?;
            let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
            let (status, body) = read_text(resp)?;
            check(status, &body)?;
            etag.ok_or_else(|| Failure { transient: false, message: "the reply to a part has no ETag".into() })
        })
    }

    /// Ends a multipart upload with its parts' ETags, in order.
    pub fn finish_multipart(&self, name: &str, upload_id: &str, etags: &[String]) -> Result<()> {
        let key = self.key(name);
        let action = self.bucket.complete_multipart_upload(
            Some(&self.credentials),
            &key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGNED_FOR);
        let body = action.body();
        self.retry(&format!("finishing the upload of {name}"), || {
            let resp = self.agent.post(url.as_str()).send(body.as_bytes()).map_err(transport)?;
            let (status, text) = read_text(resp)?;
            check(status, &text)?;
            // A 200 can still carry an error (S3 says so for CompleteMultipartUpload).
            if text.contains("<Error>") {
                return Err(Failure { transient: true, message: text });
            }
            Ok(())
        })
    }

    /// Gives up a multipart upload (best effort: the engine removes abandoned ones anyway).
    pub fn abort_multipart(&self, name: &str, upload_id: &str) {
        let key = self.key(name);
        let url = self.bucket.abort_multipart_upload(Some(&self.credentials), &key, upload_id).sign(SIGNED_FOR);
        if let Err(e) = self.agent.delete(url.as_str()).call() {
            tracing::debug!("replica: aborting an upload of {name}: {e}");
        }
    }

    /// Removes an object (no error when it is already gone).
    pub fn delete(&self, name: &str) -> Result<()> {
        let key = self.key(name);
        let url = self.bucket.delete_object(Some(&self.credentials), &key).sign(SIGNED_FOR);
        self.retry(&format!("removing {name}"), || {
            let resp = self.agent.delete(url.as_str()).call().map_err(transport)?;
            let (status, body) = read_text(resp)?;
            if status == 404 {
                return Ok(());
            }
            check(status, &body)
        })
    }

    fn throttle(&self, bytes: usize) {
        if let Some(t) = &self.throttle {
            t.take(bytes as u64);
        }
    }
}

fn transport(e: ureq::Error) -> Failure {
    Failure { transient: true, message: e.to_string() }
}

fn read_text(resp: ureq::http::Response<ureq::Body>) -> std::result::Result<(u16, String), Failure> {
    let status = resp.status().as_u16();
    let text = resp
        .into_body()
        .into_with_config()
        .limit(16 << 20)
        .lossy_utf8(true)
        .read_to_string()
        .map_err(|e| Failure { transient: true, message: e.to_string() })?;
    Ok((status, text))
}

/// A reply's status as a failure: 5xx, 429 and 408 are worth a retry; other 4xx are not.
fn check(status: u16, body: &str) -> std::result::Result<(), Failure> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let code = between(body, "<Code>", "</Code>").unwrap_or("");
    let message = between(body, "<Message>", "</Message>").unwrap_or("");
    Err(Failure {
        transient: status >= 500 || status == 429 || status == 408,
        message: format!("HTTP {status} {code} {message}").trim().to_string(),
    })
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// A limit on bytes per second shared by every upload thread: each request reserves its bytes
/// and waits until the line reaches it. Coarse (a whole part at a time) but never faster.
struct Throttle {
    rate: u64,
    next_free: Mutex<Instant>,
}

impl Throttle {
    fn new(rate: u64) -> Throttle {
        Throttle { rate, next_free: Mutex::new(Instant::now()) }
    }

    fn take(&self, bytes: u64) {
        let cost = Duration::from_secs_f64(bytes as f64 / self.rate as f64);
        let start = {
            let mut next = self.next_free.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + cost;
            start
        };
        let now = Instant::now();
        if start > now {
            std::thread::sleep(start - now);
        }
    }
}
