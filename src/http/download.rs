//! Download responses: a stored file with its exact length, or a multi-file backup as a tar
//! built while it is sent; and the `Content-Disposition` that names them.

use std::path::Path;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use futures_util::stream;

use crate::error::{Error, Result};
use crate::service::Service;
use crate::service::backups::Download;
use crate::store::tarstream::{self, ChannelWriter};

/// Streams a backup: the file itself, or a tar of the tree built while it is sent.
/// `disposition` names it ([`attachment`] for the API, [`attachment_utf8`] for browsers).
pub async fn download_response(
    service: &Service,
    download: Download,
    disposition: fn(&str) -> HeaderValue,
) -> Result<HttpResponse> {
    match download {
        Download::File { path, size, filename } => file_response(&path, size, disposition(&filename)).await,
        Download::Tree { files, filename, mtime } => {
            let (tx, rx) = tokio::sync::mpsc::channel(tarstream::CHANNEL_DEPTH);
            let store = service.store.clone();
            let header = disposition(&filename);
            tokio::task::spawn_blocking(move || {
                let out = ChannelWriter::new(tx.clone());
                if let Err(e) = tarstream::write_tar(&store, &files, mtime, out) {
                    tracing::warn!("download of {filename} stopped: {e}");
                    ChannelWriter::new(tx).fail(e);
                }
            });
            let body = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
            Ok(HttpResponse::Ok()
                .content_type("application/x-tar")
                .insert_header((header::CONTENT_DISPOSITION, header))
                .streaming(body))
        }
        Download::Zip { files, filename, mtime } => {
            let (tx, rx) = tokio::sync::mpsc::channel(tarstream::CHANNEL_DEPTH);
            let store = service.store.clone();
            let header = disposition(&filename);
            tokio::task::spawn_blocking(move || {
                let out = ChannelWriter::new(tx.clone());
                if let Err(e) = tarstream::write_zip(&store, &files, mtime, out) {
                    tracing::warn!("download of {filename} stopped: {e}");
                    ChannelWriter::new(tx).fail(e);
                }
            });
            let body = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
            Ok(HttpResponse::Ok()
                .content_type("application/zip")
                .insert_header((header::CONTENT_DISPOSITION, header))
                .streaming(body))
        }
    }
}

/// Streams one stored file with its exact length.
pub async fn file_response(path: &Path, size: u64, disposition: HeaderValue) -> Result<HttpResponse> {
    let file = tokio::fs::File::open(path).await.map_err(|e| Error::io("open", path, e))?;
    let body = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .no_chunking(size)
        .streaming(body))
}

/// A name a client can write as is: ASCII, no separators, no leading dot.
fn safe_name(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-+".contains(c) { c } else { '_' }).collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() { "backup".to_string() } else { safe.to_string() }
}

/// `attachment; filename="..."` with the ASCII-safe name only (the official client cannot read
/// the UTF-8 form).
pub fn attachment(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("attachment; filename=\"{}\"", safe_name(name)))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment; filename=\"backup\""))
}

/// [`attachment`] with the exact UTF-8 name beside it, which browsers prefer.
pub fn attachment_utf8(name: &str) -> HeaderValue {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    let exact = percent_encoding::utf8_percent_encode(name, SET);
    let value = format!("attachment; filename=\"{}\"; filename*=UTF-8''{exact}", safe_name(name));
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_safe() {
        assert_eq!(attachment("../a b.tar").to_str().unwrap(), "attachment; filename=\"_a_b.tar\"");
        assert_eq!(attachment("...").to_str().unwrap(), "attachment; filename=\"backup\"");
        assert_eq!(
            attachment_utf8("café.txt").to_str().unwrap(),
            "attachment; filename=\"caf_.txt\"; filename*=UTF-8''caf%C3%A9.txt"
        );
    }
}
