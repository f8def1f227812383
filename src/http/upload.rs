//! Reading an upload form: the one loop over a multipart body that every upload route uses
//! (`/api/target/{id}/upload`, `/api/seq/{id}/upload`, the web UI's upload). File parts are
//! streamed to disk while hashed, short text parts are kept, anything else is read and dropped;
//! the body's size, part count and idle time are held to the configured limits throughout.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;

use super::multipart::{Field, Multipart};
use crate::config::Limits;
use crate::error::{Code, Error, Result};
use crate::service::Service;
use crate::store::Store;
use crate::store::blob::{Spool, Spooled};

/// The most a text part may hold.
const MAX_TEXT: usize = 4096;

/// How one route's upload form is laid out.
pub struct Layout {
    /// The name of its file parts.
    pub file: &'static str,
    /// At most this many file parts; one more is refused with `too_many_files` (400).
    pub max_files: usize,
    pub too_many_files: &'static str,
    /// The name given to a file part that names no file; `None` skips such a part (a browser's
    /// empty file input sends one with an empty name).
    pub unnamed: Option<&'static str>,
    /// Its short text parts (at most 4 KiB each).
    pub texts: &'static [&'static str],
}

/// What the caller is shown while the form is read, so it can refuse early (before a file is
/// stored): every part as it begins, and every text part once read.
pub enum Seen<'a> {
    Part(&'a str),
    Text(&'a str, &'a str),
}

/// The form's text parts (the last of each name) and its files, in order, spooled.
pub struct Received {
    texts: Vec<(&'static str, String)>,
    /// File name and content of each file part.
    pub files: Vec<(String, Spooled)>,
}

impl Received {
    /// The last value of a text part.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.texts.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// An upload body about to be read, with what is left of the request's allowance.
pub struct UploadReader {
    quota: Quota,
    form: Multipart,
}

impl UploadReader {
    /// Refuses at once a body whose announced length is over the limit.
    pub fn new(limits: &Limits, req: &HttpRequest, form: Multipart) -> Result<UploadReader> {
        Ok(UploadReader { quota: Quota::new(limits, req)?, form })
    }

    /// Reads the whole body as `layout` says; `check` may refuse it at any part it is shown.
    pub async fn read<E: From<Error>>(
        mut self,
        service: &Service,
        layout: &Layout,
        mut check: impl FnMut(Seen<'_>) -> Result<(), E>,
    ) -> Result<Received, E> {
        let mut received = Received { texts: Vec::new(), files: Vec::new() };
        let quota = &mut self.quota;
        while let Some(mut field) = quota.next_field(&mut self.form).await? {
            let name = field.name().to_string();
            check(Seen::Part(&name))?;
            if let Some(text_name) = layout.texts.iter().find(|t| **t == name) {
                let text = text_field(&mut field, text_name, quota).await?;
                check(Seen::Text(&name, &text))?;
                received.texts.push((text_name, text));
            } else if name == layout.file {
                let filename = match (field.filename(), layout.unnamed) {
                    (Some(f), _) if !f.is_empty() || layout.unnamed.is_some() => f.to_string(),
                    (None, Some(default)) => default.to_string(),
                    _ => {
                        drain(&mut field, quota).await?;
                        continue;
                    }
                };
                if received.files.len() >= layout.max_files {
                    return Err(Error::invalid(layout.file, Code::Invalid, layout.too_many_files).into());
                }
                let spooled = spool_field(&service.store, &mut field, quota).await?;
                received.files.push((filename, spooled));
            } else {
                drain(&mut field, quota).await?;
            }
        }
        Ok(received)
    }
}

/// What is left of one request's allowance (bytes, parts) while its body is read, and how long
/// the client may stay silent.
struct Quota {
    bytes_left: Option<u64>,
    max_bytes: u64,
    parts_left: usize,
    idle: Duration,
}

impl Quota {
    fn new(limits: &Limits, req: &HttpRequest) -> Result<Quota> {
        let quota = Quota {
            bytes_left: (limits.max_upload_bytes > 0).then_some(limits.max_upload_bytes),
            max_bytes: limits.max_upload_bytes,
            parts_left: limits.max_upload_parts,
            idle: Duration::from_secs(limits.body_idle_timeout_secs.max(1)),
        };
        let announced =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if let (Some(len), Some(_)) = (announced, quota.bytes_left)
            && len > quota.max_bytes.saturating_add(1 << 20)
        {
            return Err(quota.too_large());
        }
        Ok(quota)
    }

    fn too_large(&self) -> Error {
        Error::TooLarge(format!(
            "The upload is larger than this server's limit of {} bytes (max_upload_bytes)",
            self.max_bytes
        ))
    }

    /// The next part, within the part limit and the idle timeout.
    async fn next_field<'f>(&mut self, form: &'f mut Multipart) -> Result<Option<Field<'f>>> {
        let next = tokio::time::timeout(self.idle, form.next_field()).await.map_err(|_| self.stalled())?;
        let Some(field) = next? else { return Ok(None) };
        if self.parts_left == 0 {
            return Err(Error::bad("The request has more parts than this server accepts (max_upload_parts)"));
        }
        self.parts_left -= 1;
        Ok(Some(field))
    }

    /// The next chunk of a part, within the idle timeout.
    async fn next_chunk(&self, field: &mut Field<'_>) -> Result<Option<bytes::Bytes>> {
        tokio::time::timeout(self.idle, field.chunk()).await.map_err(|_| self.stalled())?
    }

    fn stalled(&self) -> Error {
        Error::Timeout(format!("The client sent nothing for {} seconds; the upload was cut off", self.idle.as_secs()))
    }

    /// Counts file bytes against the limit.
    fn take(&mut self, n: usize) -> Result<()> {
        if let Some(left) = self.bytes_left {
            self.bytes_left = Some(left.checked_sub(n as u64).ok_or_else(|| self.too_large())?);
        }
        Ok(())
    }
}

/// Streams a file part into a spool on a blocking thread: the async side only forwards chunks,
/// so memory stays at a few chunks whatever the file size.
async fn spool_field(store: &Store, field: &mut Field<'_>, quota: &mut Quota) -> Result<Spooled> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(32);
    // Set once the part arrived whole: a cut-off upload is dropped without its costly fsync.
    let whole = Arc::new(AtomicBool::new(false));
    let store = store.clone();
    let arrived = whole.clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<Spooled> {
        let mut spool = Spool::create_hashing_aside(&store)?;
        while let Some(chunk) = rx.blocking_recv() {
            spool.write_chunk(chunk).map_err(|e| Error::io("store the upload in", &store.tmp, e))?;
        }
        if !arrived.load(Ordering::Acquire) {
            return Err(Error::bad("the upload was cut off")); // Replaced by the reader's error.
        }
        spool.finish()
    });
    let mut failure = None;
    loop {
        match quota.next_chunk(field).await.and_then(|c| c.map(|c| quota.take(c.len()).map(|_| c)).transpose()) {
            Ok(Some(chunk)) => {
                if tx.send(chunk).await.is_err() {
                    break; // The writer failed; its error is reported below.
                }
            }
            Ok(None) => {
                whole.store(true, Ordering::Release);
                break;
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(|e| Error::internal(format!("upload writer failed: {e}")))?;
    if let Some(err) = failure {
        return Err(err); // The spool, if any, is removed on drop.
    }
    written
}

/// A short text part.
async fn text_field(field: &mut Field<'_>, name: &str, quota: &Quota) -> Result<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = quota.next_chunk(field).await? {
        if buf.len() + chunk.len() > MAX_TEXT {
            return Err(Error::invalid(name, Code::Invalid, format!("Parameter '{name}' is too long")));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf)
        .map_err(|_| Error::invalid(name, Code::WrongType, format!("Parameter '{name}' is not valid UTF-8")))
}

/// Reads and drops a part nobody asked for.
async fn drain(field: &mut Field<'_>, quota: &Quota) -> Result<()> {
    while quota.next_chunk(field).await?.is_some() {}
    Ok(())
}

/// Reads a raw request body (not a form) on a blocking thread: `consume` gets it as a
/// [`std::io::BufRead`] while the async side forwards chunks, within `max_upload_bytes` and the
/// idle timeout. A body cut short reads as an I/O error at that point; the limit's or the
/// timeout's own error is then returned instead of `consume`'s, once `consume` has finished
/// (so it can keep what arrived whole before the cut).
pub async fn read_raw_body<T: Send + 'static>(
    limits: &Limits,
    req: &HttpRequest,
    mut payload: actix_web::web::Payload,
    consume: impl FnOnce(&mut dyn std::io::BufRead) -> Result<T> + Send + 'static,
) -> Result<T> {
    use futures_util::StreamExt;
    let mut quota = Quota::new(limits, req)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(32);
    let reader = tokio::task::spawn_blocking(move || {
        let mut body = std::io::BufReader::with_capacity(256 * 1024, ChannelReader { rx, chunk: bytes::Bytes::new() });
        consume(&mut body)
    });
    let mut failure = None;
    loop {
        let next = match tokio::time::timeout(quota.idle, payload.next()).await {
            Err(_) => Err(quota.stalled()),
            Ok(None) => break,
            Ok(Some(Err(e))) => Err(Error::bad(format!("The body could not be read: {e}"))),
            Ok(Some(Ok(chunk))) => quota.take(chunk.len()).map(|_| chunk),
        };
        match next {
            Ok(chunk) => {
                if tx.send(Ok(chunk)).await.is_err() {
                    break; // The reader stopped; its outcome says why.
                }
            }
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                failure = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let out = reader.await.map_err(|e| Error::internal(format!("body reader failed: {e}")))?;
    match failure {
        Some(e) => Err(e),
        None => out,
    }
}

/// The receiving end of [`read_raw_body`]'s chunks.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
