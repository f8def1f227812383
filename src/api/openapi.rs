//! `GET /api/openapi.json`: the OpenAPI 3.1 description of `/api`, derived from the handlers'
//! `#[utoipa::path]` attributes and the reply types of `schema`. It is served without the API
//! key (it holds no data), so a client can read it before it has one.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::schema::ErrorBody;
use super::{audit, backups, held, jobs, misc, push, replicas, resource, seq, targets, uploads};
use crate::auth::grant::Need;
use crate::error::{Error, Result};

/// The document's path, which `require_key` lets through.
pub(crate) const PATH: &str = "/api/openapi.json";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/openapi.json").get(Need::Public, document));
}

#[derive(OpenApi)]
#[openapi(
    info(description = "The Backup-chan JSON API as bakch speaks it. Every JSON reply has `success`; \
        every error is an `ErrorBody` (a method a path does not take gets a 405, an unknown path a 404). \
        With an API key set, every operation but this document needs `Authorization: Bearer <key>`."),
    paths(
        targets::list, targets::create, targets::search, targets::view, targets::edit, targets::delete,
        targets::delete_all, targets::delete_recycled, targets::retention, targets::files, targets::history, targets::compare, uploads::upload,
        seq::status, seq::begin, seq::upload, seq::finish, seq::terminate,
        push::begin, push::files, push::blobs, push::finish, push::abort,
        backups::edit, backups::delete, backups::download, backups::download_file, backups::download_selection, backups::recycle_bin, backups::clear_recycle_bin,
        jobs::list, jobs::get, jobs::force_run, jobs::retry,
        held::list, held::restore, replicas::list, misc::stats, misc::health, misc::log, audit::list, document,
    ),
    modifiers(&KeyAndFailures),
)]
struct ApiDoc;

/// Declares the key (a bearer token) and adds the replies every operation can give: 401 and
/// 403 where the key applies, 500 everywhere.
struct KeyAndFailures;

impl Modify for KeyAndFailures {
    fn modify(&self, doc: &mut Document) {
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The key from `bakch newapikey` (admin) or `bakch key add` (admin, read or upload); with no key file the API is open",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("api_key", SecurityScheme::Http(bearer));
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("api_key", Vec::<String>::new())]);
        let error = |description: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new().schema(Some(ErrorBody::schema_ref())).build(),
                )
                .build()
                .into()
        };
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for op in ops.into_iter().flatten() {
                // `security(())` on an operation (the document itself) means no key is needed.
                let open = op.security.as_ref().is_some_and(|s| s.iter().all(|r| *r == Default::default()));
                let responses = &mut op.responses.responses;
                if !open {
                    responses.insert("401".into(), error("No `Authorization: Bearer` header (only when a key is set)"));
                    responses.insert(
                        "403".into(),
                        error("Wrong API key, or the key's role does not allow this request (the message says what it allows)"),
                    );
                }
                responses.insert("500".into(), error("The disk, the database or the key file failed; see the log"));
            }
        }
    }
}

trait SchemaRef {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema>;
}

impl<T: utoipa::ToSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

/// The methods a route pattern (`/api/target/{id}`) takes, for the `Allow` header of a 405.
/// Read from the document, which a test holds equal to the registered routes.
pub(crate) fn allowed_methods(pattern: &str) -> Option<&'static str> {
    static ALLOW: OnceLock<HashMap<String, String>> = OnceLock::new();
    let table = ALLOW.get_or_init(|| {
        let doc = ApiDoc::openapi();
        doc.paths
            .paths
            .iter()
            .map(|(path, item)| {
                let ops = [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("PATCH", &item.patch)];
                let ops = ops.into_iter().chain([("DELETE", &item.delete)]);
                let methods: Vec<&str> = ops.filter(|(_, op)| op.is_some()).map(|(m, _)| m).collect();
                (path.clone(), methods.join(", "))
            })
            .collect()
    });
    table.get(pattern).map(String::as_str)
}

/// The whole document, rendered once.
fn rendered() -> Result<&'static str> {
    static JSON: OnceLock<String> = OnceLock::new();
    if let Some(json) = JSON.get() {
        return Ok(json);
    }
    let json = ApiDoc::openapi().to_pretty_json().map_err(|e| Error::internal(format!("OpenAPI document: {e}")))?;
    Ok(JSON.get_or_init(|| json))
}

/// This document: the OpenAPI 3.1 description of `/api`.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi", tag = "misc", security(()),
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn document() -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().insert_header(ContentType::json()).body(rendered()?))
}
