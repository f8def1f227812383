//! `/api/target`: list, create, search, view, edit, delete, bulk deletes.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{block, delete_files, json_body, method_not_allowed, ok, query_count, query_pairs, resource};
use crate::db::targets::Search;
use crate::error::Error;
use crate::model::target::{Target, TargetInput};
use crate::service::Service;
use crate::service::targets::Which;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/target")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(web::to(method_not_allowed)),
    )
    // Before `/target/{id}`, so "search" is never taken for an id.
    .service(resource("/target/search", web::get().to(search)))
    .service(
        web::resource("/target/{id}")
            .route(web::get().to(view))
            .route(web::patch().to(edit))
            .route(web::delete().to(delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(resource("/target/{id}/all", web::delete().to(delete_all)))
    .service(resource("/target/{id}/recycled", web::delete().to(delete_recycled)));
}

/// A target as JSON, with how its files reach the store (`hardlink` or `copy`) and its sizes.
pub(crate) fn target_json(svc: &Service, t: &Target) -> Result<Value, Error> {
    let mut v = serde_json::to_value(t).unwrap_or_else(|_| json!({}));
    let usage = svc.target_usage(t)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("storage".into(), json!(usage.storage));
        obj.insert("logical_size".into(), json!(usage.logical));
        obj.insert("disk_used".into(), json!(usage.disk_used));
        obj.insert("dedup_saved".into(), json!(usage.logical - usage.disk_used));
    }
    Ok(v)
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Error> {
    let page = query_count(&req, "page")?.unwrap_or(1);
    if page == 0 {
        return Err(Error::bad("Parameter 'page' must be 1 or more"));
    }
    let svc = state.service.clone();
    let targets = block(move || {
        let list = svc.list_targets(page as usize)?;
        list.iter().map(|t| target_json(&svc, t)).collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(ok(json!({"targets": targets, "page": page})))
}

async fn create(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, Error> {
    let input = TargetInput::from_json(&json_body(&body)?)?;
    let svc = state.service.clone();
    let id = block(move || svc.create_target(input)).await?;
    Ok(HttpResponse::Created().json(json!({"success": true, "id": id})))
}

async fn view(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, Error> {
    let svc = state.service.clone();
    let (target, backups) = block(move || {
        let (t, b) = svc.target_with_backups(&id)?;
        Ok((target_json(&svc, &t)?, b))
    })
    .await?;
    Ok(ok(json!({"target": target, "backups": backups})))
}

async fn edit(state: web::Data<AppState>, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, Error> {
    let input = TargetInput::from_json(&json_body(&body)?)?;
    let svc = state.service.clone();
    block(move || svc.edit_target(&id, input)).await?;
    Ok(ok(json!({})))
}

async fn delete(state: web::Data<AppState>, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, Error> {
    let files = delete_files(&body)?;
    let svc = state.service.clone();
    block(move || svc.delete_target(&id, files)).await?;
    Ok(ok(json!({})))
}

async fn delete_all(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    bulk_delete(state, id, body, Which::All).await
}

async fn delete_recycled(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    bulk_delete(state, id, body, Which::Recycled).await
}

async fn bulk_delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
    which: Which,
) -> Result<HttpResponse, Error> {
    let files = delete_files(&body)?;
    let svc = state.service.clone();
    let n = block(move || svc.delete_target_backups(&id, which, files)).await?;
    Ok(ok(json!({"deleted": n})))
}

async fn search(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Error> {
    let search = parse_search(query_pairs(&req))?;
    let svc = state.service.clone();
    let targets = block(move || {
        let list = svc.search_targets(&search)?;
        list.iter().map(|t| target_json(&svc, t)).collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(ok(json!({"targets": targets})))
}

/// Reads search filters; empty values are no filter (the official CLI always sends `alias=`).
fn parse_search(pairs: Vec<(String, String)>) -> Result<Search, Error> {
    let mut s = Search::default();
    let mut any = false;
    for (key, value) in pairs {
        let value = value.trim().to_string();
        if value.is_empty() {
            continue;
        }
        // The client library formats its enums as `BackupType.SINGLE`; keep the member name.
        let enum_value = || value.rsplit('.').next().unwrap_or(&value).to_ascii_lowercase();
        match key.as_str() {
            "name" => s.name = Some(value),
            "type" | "target_type" | "backup_type" => s.target_type = Some(enum_value()),
            "recycle_criteria" => s.recycle_criteria = Some(enum_value()),
            "recycle_action" => s.recycle_action = Some(enum_value()),
            "location" => s.location = Some(value),
            "name_template" => s.name_template = Some(value),
            "alias" => s.alias = Some(value),
            "deduplicate" => s.deduplicate = Some(matches!(value.to_ascii_lowercase().as_str(), "on" | "true" | "1")),
            "tags" => {
                s.tags = value.split_whitespace().map(str::to_string).collect();
            }
            _ => continue,
        }
        any = true;
    }
    if !any {
        return Err(Error::bad(
            "Give at least one search filter: name, type, recycle_criteria, recycle_action, location, name_template, alias, deduplicate or tags",
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn search_filters() {
        assert!(parse_search(pairs(&[("alias", "")])).is_err());
        let s = parse_search(pairs(&[("name", "foo"), ("alias", ""), ("type", "BackupType.SINGLE"), ("tags", "a b")]))
            .unwrap();
        assert_eq!(s.name.as_deref(), Some("foo"));
        assert_eq!(s.alias, None);
        assert_eq!(s.target_type.as_deref(), Some("single"));
        assert_eq!(s.tags, vec!["a", "b"]);
        assert_eq!(parse_search(pairs(&[("deduplicate", "off")])).unwrap().deduplicate, Some(false));
    }
}
