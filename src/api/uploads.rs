//! `POST /api/target/{id}/upload`: multipart `backup_file` part(s) and `manual`. The bytes are
//! streamed to disk while hashed; the reply names the job that builds the backup.

use actix_multipart::{Field, Multipart};
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;

use super::{block, ok, resource};
use crate::error::{Error, Result};
use crate::model::fields::{parse_bool, required};
use crate::service::uploads::Part;
use crate::state::AppState;
use crate::store::Store;
use crate::store::blob::{Spool, Spooled};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/target/{id}/upload", web::post().to(upload)));
}

async fn upload(state: web::Data<AppState>, id: web::Path<String>, mut form: Multipart) -> Result<HttpResponse> {
    let id = id.into_inner();
    let svc = state.service.clone();
    let lookup = id.clone();
    block(move || svc.target_for_upload(&lookup)).await?;
    let mut manual = None;
    let mut parts = Vec::new();
    while let Some(field) = form.next().await {
        let mut field = field.map_err(multipart_error)?;
        match field.name().unwrap_or_default() {
            "backup_file" => {
                let filename =
                    field.content_disposition().and_then(|cd| cd.get_filename()).unwrap_or("upload").to_string();
                let spooled = spool_field(&state.service.store, &mut field).await?;
                parts.push(Part { filename, spooled });
            }
            "manual" => manual = Some(parse_manual(&text_field(&mut field, "manual").await?)?),
            _ => drain(&mut field).await?,
        }
    }
    let manual = manual.ok_or_else(|| required("manual"))?;
    let svc = state.service.clone();
    let job_id = block(move || svc.accept_upload(&id, manual, parts)).await?;
    Ok(ok(json!({"job_id": job_id})))
}

pub(crate) fn parse_manual(text: &str) -> Result<bool> {
    parse_bool(text).ok_or_else(|| Error::bad("Parameter 'manual' must be 0, 1, true or false"))
}

pub(crate) fn multipart_error(e: actix_multipart::MultipartError) -> Error {
    Error::bad(format!("Malformed multipart body: {e}"))
}

/// Streams a file part into a spool on a blocking thread: the async side only forwards chunks,
/// so memory stays at a few chunks whatever the file size.
pub(crate) async fn spool_field(store: &Store, field: &mut Field) -> Result<Spooled> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(32);
    let store = store.clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<Spooled> {
        use std::io::Write;
        let mut spool = Spool::create(&store)?;
        while let Some(chunk) = rx.blocking_recv() {
            spool.write_all(&chunk).map_err(|e| Error::io("store the upload in", &store.tmp, e))?;
        }
        spool.finish()
    });
    let mut failure = None;
    while let Some(chunk) = field.next().await {
        match chunk {
            Ok(chunk) => {
                if tx.send(chunk).await.is_err() {
                    break; // The writer failed; its error is reported below.
                }
            }
            Err(e) => {
                failure = Some(multipart_error(e));
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

/// A short text part (at most 4 KiB).
pub(crate) async fn text_field(field: &mut Field, name: &str) -> Result<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(multipart_error)?;
        if buf.len() + chunk.len() > 4096 {
            return Err(Error::bad(format!("Parameter '{name}' is too long")));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| Error::bad(format!("Parameter '{name}' is not valid UTF-8")))
}

pub(crate) async fn drain(field: &mut Field) -> Result<()> {
    while let Some(chunk) = field.next().await {
        chunk.map_err(multipart_error)?;
    }
    Ok(())
}
