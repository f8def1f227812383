//! Replies kept as bytes: the big, repeated reads (a page of targets, a target with all its
//! backups, the stats) are serialized once per database state and then answered from memory,
//! on the async thread, with an `ETag` (a client that sends it back gets a 304) and a gzip copy
//! made once for clients that accept it.
//!
//! A reply is tagged with the database's commit count read *before* it was built and served
//! only while the count is unchanged, so it is never older than the newest commit a reader could
//! see (every change goes through the database; see `service::read_cache` for the same rule).
//! After a commit, one request per key builds the new reply while the others asking for it wait
//! for that one instead of each building its own (the tail a burst of waiting requests made).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;

use super::block;
use crate::error::{Error, Result};
use crate::service::Service;

/// How long a reply is kept even when nothing commits: what changes with time alone (a health
/// reason's "for 3 days") is at most this old.
const MAX_AGE: Duration = Duration::from_secs(30);

/// Replies smaller than this are sent as they are: compressing them saves nothing worth a copy.
const GZIP_FROM: usize = 1024;

/// One kept reply.
struct Reply {
    body: Bytes,
    etag: HeaderValue,
    gzip: OnceLock<Option<Bytes>>,
}

#[derive(Default)]
struct Entries {
    commits: u64,
    born: Option<Instant>,
    replies: HashMap<String, Arc<Reply>>,
}

#[derive(Default)]
pub struct Replies {
    entries: Mutex<Entries>,
    /// One builder per key at a time (see the module comment).
    building: tokio::sync::Mutex<()>,
}

impl Replies {
    fn find(&self, key: &str, commits: u64) -> Option<Arc<Reply>> {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.commits != commits || e.born.is_none_or(|b| b.elapsed() > MAX_AGE) {
            *e = Entries { commits, born: Some(Instant::now()), replies: HashMap::new() };
        }
        e.replies.get(key).cloned()
    }

    /// Keeps `reply`, built at `commits`, if no commit came since (`now` is the count now).
    fn keep(&self, key: String, commits: u64, now: u64, reply: Arc<Reply>) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.commits == commits && now == commits {
            e.replies.insert(key, reply);
        }
    }
}

/// The process's kept replies (one API per process, like the database's commit count).
fn replies() -> &'static Replies {
    static REPLIES: OnceLock<Replies> = OnceLock::new();
    REPLIES.get_or_init(Replies::default)
}

/// Answers `key` from a kept reply, or builds it with `build` (JSON bytes of a 200) on a
/// blocking thread and keeps it.
pub(crate) async fn reply(
    svc: &Arc<Service>,
    req: &HttpRequest,
    key: String,
    build: impl FnOnce(&Service) -> Result<Vec<u8>> + Send + 'static,
) -> Result<HttpResponse> {
    let cache = replies();
    let commits = svc.commits();
    let reply = match cache.find(&key, commits) {
        Some(r) => r,
        None => {
            let _building = cache.building.lock().await;
            // Built by another request while this one waited?
            let commits = svc.commits();
            match cache.find(&key, commits) {
                Some(r) => r,
                None => {
                    let s = svc.clone();
                    let body = block(move || build(&s)).await?;
                    let tag = blake3::hash(&body).to_hex();
                    let etag = HeaderValue::from_str(&format!("\"{}\"", &tag[..32]))
                        .map_err(|e| Error::internal(format!("etag: {e}")))?;
                    let r = Arc::new(Reply { body: Bytes::from(body), etag, gzip: OnceLock::new() });
                    cache.keep(key, commits, svc.commits(), r.clone());
                    r
                }
            }
        }
    };
    Ok(respond(req, &reply))
}

fn respond(req: &HttpRequest, reply: &Reply) -> HttpResponse {
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == reply.etag));
    let mut res = if matches {
        HttpResponse::build(StatusCode::NOT_MODIFIED).finish()
    } else {
        let gzip = accepts_gzip(req).then(|| reply.gzip.get_or_init(|| gzip(&reply.body)).clone()).flatten();
        let mut b = HttpResponse::Ok();
        b.content_type(header::ContentType::json());
        match gzip {
            Some(z) => {
                b.insert_header((header::CONTENT_ENCODING, "gzip"));
                b.body(z)
            }
            None => b.body(reply.body.clone()),
        }
    };
    let h = res.headers_mut();
    h.insert(header::ETAG, reply.etag.clone());
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|part| {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim();
            let refused = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
    })
}

/// A gzip copy, or none when it would not be smaller (or the body is small).
fn gzip(body: &[u8]) -> Option<Bytes> {
    if body.len() < GZIP_FROM {
        return None;
    }
    let mut z = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    z.write_all(body).ok()?;
    let out = z.finish().ok()?;
    (out.len() < body.len()).then(|| Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_only_when_it_pays() {
        assert!(gzip(b"{}").is_none());
        let big = vec![b'a'; 10_000];
        let z = gzip(&big).unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&z[..]), &mut back).unwrap();
        assert_eq!(back, big);
    }
}
