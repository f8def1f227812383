//! `/api/held`: backups a deletion left held (see `service::held`), and bringing one back.
//! There is deliberately no route that ends a hold early.

use actix_web::{HttpResponse, web};

use super::schema::{ErrorBody, HeldList, HeldRestoredReply};
use super::{block, ok, resource};
use crate::auth::grant::Need;
use crate::error::Result;
use crate::model::audit::Action;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/held").get(Need::ReadAll, list)).service(resource("/held/{id}/restore").post(
        Need::Admin,
        Action::HeldRestored,
        restore,
    ));
}

/// Deleted backups whose content is still held, most recently deleted first, with who deleted
/// each and until when it is kept; also what space waits to be freed.
#[utoipa::path(get, path = "/api/held", operation_id = "held", tag = "backups",
    responses((status = 200, description = "The held backups", body = HeldList)))]
async fn list(state: web::Data<AppState>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let (held, usage) = block(move || Ok((svc.held()?, svc.held_usage()?))).await?;
    Ok(ok(&HeldList::new(held, usage)))
}

/// Brings a held backup back into its target under its old id (a new name if its old one is
/// taken; its target too, if that was deleted since).
#[utoipa::path(post, path = "/api/held/{id}/restore", operation_id = "restore_held", tag = "backups",
    params(("id" = String, Path, description = "The held (deleted) backup's id")),
    responses(
        (status = 200, description = "Restored", body = HeldRestoredReply),
        (status = 404, description = "No such held backup", body = ErrorBody),
        (status = 409, description = "It is back already, or its deleted target cannot be made again", body = ErrorBody),
        (status = 507, description = "The disk is full", body = ErrorBody),
    ))]
async fn restore(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let restored = block(move || svc.restore_held(&id)).await?;
    Ok(ok(&HeldRestoredReply::new(restored)))
}
