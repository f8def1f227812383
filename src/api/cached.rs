//! Replies kept as bytes: the big, repeated reads (a page of targets, a target with all its
//! backups, the stats) are serialized once per database state and then answered from memory,
//! on the async thread, with an `ETag` (a client that sends it back gets a 304) and a gzip or
//! zstd copy made once for clients that accept it (`Accept-Encoding`, q-values honoured).
//!
//! A reply is tagged with the database's commit count read *before* it was built and with what
//! it shows (the targets it describes, or anything), and served only while no commit since has
//! changed that (`db::changes`), so it is never older than the newest commit a reader could see;
//! an upload to one target leaves the others' replies kept. After a change, one request per key
//! builds the new reply while the others asking for it wait for that one instead of each
//! building its own, and are woken together when it is done.

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
use crate::service::{Depends, Service};

/// How long a reply is kept even when nothing commits: what changes with time alone (a health
/// reason's "for 3 days") is at most this old.
const MAX_AGE: Duration = Duration::from_secs(30);

/// At most this many keys are kept; past it (and once the stale ones are dropped), replies are
/// built and sent without being kept.
const MAX_KEYS: usize = 4096;

/// Replies built at once, at most. A build takes pooled database connections; 64 builds of
/// different keys at once (a page each) would queue on the pool, whose waiters are served in
/// no order, so some waited hundreds of milliseconds. This queue is first come, first served.
const BUILDERS: usize = 4;

/// Replies smaller than this are sent as they are: compressing them saves nothing worth a copy.
const COMPRESS_FROM: usize = 1024;

/// zstd's level for the kept copy: made once per database state, so a little slower than the
/// fastest level is paid once and saves bytes on every reply sent.
const ZSTD_LEVEL: i32 = 3;

/// One kept reply.
struct Reply {
    /// What it shows, to tell whether a commit since its mark changed it.
    depends: Depends,
    body: Bytes,
    etag: HeaderValue,
    gzip: OnceLock<Option<Bytes>>,
    zstd: OnceLock<Option<Bytes>>,
}

/// The encodings a kept reply can be sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Zstd,
    Gzip,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }
}

/// A reply being built or kept; everyone asking for its key while it is built waits on it and
/// is woken together when it is set (one by one, a burst of 64 formed a queue of wake-ups).
type Slot = Arc<tokio::sync::OnceCell<Arc<Reply>>>;

/// A reply being built or kept, with the commit count read before its build began.
struct Kept {
    mark: u64,
    born: Instant,
    slot: Slot,
}

impl Kept {
    /// Whether it may still be served: young enough, and nothing it shows changed since its
    /// mark (while it is built, what it shows is not known yet: any change counts).
    fn fresh(&self, svc: &Service) -> bool {
        let depends = self.slot.get().map_or(&Depends::Anything, |r| &r.depends);
        self.born.elapsed() <= MAX_AGE && !svc.changed_since(self.mark, depends)
    }
}

#[derive(Default)]
pub struct Replies {
    kept: Mutex<HashMap<String, Kept>>,
}

impl Replies {
    /// The slot of `key`: the kept one while fresh, else a new one marked now (before its build
    /// reads anything). `None` when so many keys are kept that this one is built without keeping
    /// it (page numbers and ids are the client's to choose).
    fn slot(&self, svc: &Service, key: &str) -> Option<Slot> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = kept.get(key).filter(|k| k.fresh(svc)) {
            return Some(k.slot.clone());
        }
        if !kept.contains_key(key) && kept.len() >= MAX_KEYS {
            kept.retain(|_, k| k.fresh(svc));
            if kept.len() >= MAX_KEYS {
                return None;
            }
        }
        let slot = Slot::default();
        kept.insert(key.to_string(), Kept { mark: svc.commits(), born: Instant::now(), slot: slot.clone() });
        Some(slot)
    }
}

/// The process's kept replies (one API per process, like the database's commit count).
fn replies() -> &'static Replies {
    static REPLIES: OnceLock<Replies> = OnceLock::new();
    REPLIES.get_or_init(Replies::default)
}

/// Answers `key` from a kept reply, or builds it with `build` (JSON bytes of a 200, and what
/// they show) on a blocking thread and keeps it. While one request builds, the others asking
/// wait for its reply; a failed build (a 404, say) is not kept, and the next waiter tries its own.
pub(crate) async fn reply(
    svc: &Arc<Service>,
    req: &HttpRequest,
    key: String,
    build: impl FnOnce(&Service) -> Result<(Vec<u8>, Depends)> + Send + 'static,
) -> Result<HttpResponse> {
    let make = || async move {
        static BUILDING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(BUILDERS);
        let _turn = BUILDING.acquire().await.map_err(|e| Error::internal(format!("builders: {e}")))?;
        let s = svc.clone();
        let (body, depends) = block(move || build(&s)).await?;
        let tag = blake3::hash(&body).to_hex();
        let etag =
            HeaderValue::from_str(&format!("\"{}\"", &tag[..32])).map_err(|e| Error::internal(format!("etag: {e}")))?;
        Ok::<_, Error>(Arc::new(Reply {
            depends,
            body: Bytes::from(body),
            etag,
            gzip: OnceLock::new(),
            zstd: OnceLock::new(),
        }))
    };
    let reply = match replies().slot(svc, &key) {
        Some(slot) => match slot.get() {
            Some(r) => r.clone(),
            None => slot.get_or_try_init(make).await?.clone(),
        },
        None => make().await?,
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
        let mut b = HttpResponse::Ok();
        b.content_type(header::ContentType::json());
        match compressed(req, reply) {
            Some((encoding, z)) => {
                b.insert_header((header::CONTENT_ENCODING, encoding.name()));
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

/// The compressed copy to send, made on first use: the client's most preferred encoding that
/// has a copy (a small or incompressible reply has none, and goes as it is).
fn compressed(req: &HttpRequest, reply: &Reply) -> Option<(Encoding, Bytes)> {
    let mut accepted = String::new();
    for v in req.headers().get_all(header::ACCEPT_ENCODING) {
        accepted.push_str(v.to_str().unwrap_or(""));
        accepted.push(',');
    }
    preferred(&accepted).into_iter().find_map(|encoding| {
        let copy = match encoding {
            Encoding::Zstd => reply.zstd.get_or_init(|| zstd(&reply.body)),
            Encoding::Gzip => reply.gzip.get_or_init(|| gzip(&reply.body)),
        };
        copy.clone().map(|z| (encoding, z))
    })
}

/// The encodings an `Accept-Encoding` value accepts, most preferred first (zstd before gzip at
/// equal weight: smaller and faster to decode). `*` stands for any encoding not named; a weight
/// of 0, or one that cannot be read, refuses.
fn preferred(accepted: &str) -> Vec<Encoding> {
    let weight = |name: &str| -> Option<f32> {
        let mut star = None;
        for part in accepted.split(',') {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)))
                .unwrap_or(0.0);
            if coding.eq_ignore_ascii_case(name) {
                return Some(q);
            }
            if coding == "*" {
                star = Some(q);
            }
        }
        star
    };
    let mut found: Vec<(Encoding, f32)> = [Encoding::Zstd, Encoding::Gzip]
        .into_iter()
        .filter_map(|e| weight(e.name()).filter(|q| *q > 0.0).map(|q| (e, q)))
        .collect();
    // A stable sort keeps zstd first among equals.
    found.sort_by(|a, b| b.1.total_cmp(&a.1));
    found.into_iter().map(|(e, _)| e).collect()
}

/// A zstd copy, or none when it would not be smaller (or the body is small).
fn zstd(body: &[u8]) -> Option<Bytes> {
    if body.len() < COMPRESS_FROM {
        return None;
    }
    let out = zstd::bulk::compress(body, ZSTD_LEVEL).ok()?;
    (out.len() < body.len()).then(|| Bytes::from(out))
}

/// A gzip copy, or none when it would not be smaller (or the body is small).
fn gzip(body: &[u8]) -> Option<Bytes> {
    if body.len() < COMPRESS_FROM {
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

    #[test]
    fn zstd_only_when_it_pays() {
        assert!(zstd(b"{}").is_none());
        let big = vec![b'a'; 10_000];
        let z = zstd(&big).unwrap();
        assert_eq!(zstd::bulk::decompress(&z, big.len()).unwrap(), big);
    }

    #[test]
    fn preference_follows_q_values() {
        use Encoding::{Gzip, Zstd};
        assert_eq!(preferred(""), vec![]);
        assert_eq!(preferred("gzip"), vec![Gzip]);
        assert_eq!(preferred("gzip, deflate, br, zstd"), vec![Zstd, Gzip]);
        assert_eq!(preferred("zstd;q=0.5, gzip"), vec![Gzip, Zstd]);
        assert_eq!(preferred("zstd;q=0, gzip;q=0.1"), vec![Gzip]);
        assert_eq!(preferred("ZSTD ; q=0.9"), vec![Zstd]);
        assert_eq!(preferred("*"), vec![Zstd, Gzip]);
        assert_eq!(preferred("*;q=0.2, gzip;q=0.5"), vec![Gzip, Zstd]);
        assert_eq!(preferred("*;q=0, gzip"), vec![Gzip]);
        assert_eq!(preferred("identity"), vec![]);
        assert_eq!(preferred("zstd;q=abc, gzip;q=2"), vec![]);
        assert_eq!(preferred("gzip;q=0.000"), vec![]);
    }
}
