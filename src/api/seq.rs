//! `/api/seq/{id}`: sequential upload (begin, status, upload, finish, terminate).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::multipart::Multipart;
use super::uploads::{Quota, drain, spool_field, text_field};
use super::{block, json_body, ok, resource};
use crate::error::{Error, Result};
use crate::model::fields::{Fields, required};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/seq/{id}", web::get().to(status)))
        .service(resource("/seq/{id}/begin", web::post().to(begin)))
        .service(resource("/seq/{id}/upload", web::post().to(upload)))
        .service(resource("/seq/{id}/finish", web::post().to(finish)))
        .service(resource("/seq/{id}/terminate", web::post().to(terminate)));
}

async fn begin(state: web::Data<AppState>, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse> {
    let body = json_body(&body)?;
    let f = Fields::of(&body)?;
    let manual = f.required("manual", Fields::boolean)?;
    let list = match body.get("file_list") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Error::bad("File list validation failed: 'file_list' must be a list")),
        None => return Err(required("file_list")),
    };
    let mut files = Vec::with_capacity(list.len());
    for item in list {
        let entry =
            Fields::of(item).map_err(|_| Error::bad("File list validation failed: each entry must be an object"))?;
        let path =
            entry.string("path")?.ok_or_else(|| Error::bad("File list validation failed: an entry has no 'path'"))?;
        let name =
            entry.string("name")?.ok_or_else(|| Error::bad("File list validation failed: an entry has no 'name'"))?;
        files.push((path, name));
    }
    let svc = state.service.clone();
    block(move || svc.seq_begin(&id, manual, files)).await?;
    Ok(ok(json!({})))
}

async fn status(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let open = block(move || svc.seq_status(&id)).await?;
    let files: Vec<Value> =
        open.files.iter().map(|f| json!({"path": f.path, "name": f.name, "uploaded": f.blob.is_some()})).collect();
    Ok(ok(
        json!({"manual": open.manual, "created_at": open.created_at, "updated_at": open.updated_at, "file_list": files}),
    ))
}

async fn upload(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
    mut form: Multipart,
) -> Result<HttpResponse> {
    let mut quota = Quota::new(&state.service.config.limits, &req)?;
    let (mut path, mut name, mut file) = (None, None, None);
    while let Some(mut field) = quota.next_field(&mut form).await? {
        match field.name() {
            "path" => path = Some(text_field(&mut field, "path", &quota).await?),
            "name" => name = Some(text_field(&mut field, "name", &quota).await?),
            "file" => {
                if file.is_some() {
                    return Err(Error::bad("Send one 'file' per request"));
                }
                file = Some(spool_field(&state.service.store, &mut field, &mut quota).await?);
            }
            _ => drain(&mut field, &quota).await?,
        }
    }
    let path = path.ok_or_else(|| required("path"))?;
    let name = name.ok_or_else(|| required("name"))?;
    let file = file.ok_or_else(|| Error::bad("No file given"))?;
    let svc = state.service.clone();
    block(move || svc.seq_upload(&id, &path, &name, file)).await?;
    Ok(ok(json!({})))
}

async fn finish(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let job_id = block(move || svc.seq_finish(&id)).await?;
    Ok(ok(json!({"job_id": job_id})))
}

async fn terminate(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    block(move || svc.seq_terminate(&id)).await?;
    Ok(ok(json!({})))
}
