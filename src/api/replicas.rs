//! `/api/replicas`: each configured replica's last sync, what is pending, the last error and
//! the last verification. Read-only: nothing over the network starts, stops or shortens
//! anything about a replica but `force_run/replica_job` (an admin's).

use actix_web::{HttpResponse, web};

use super::schema::ReplicaList;
use super::{block, ok, resource};
use crate::auth::grant::Need;
use crate::error::Result;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/replicas").get(Need::ReadAll, list));
}

/// Every configured replica's state.
#[utoipa::path(get, path = "/api/replicas", operation_id = "replicas", tag = "misc",
    responses((status = 200, description = "The replicas", body = ReplicaList)))]
async fn list(state: web::Data<AppState>) -> Result<HttpResponse> {
    let svc = state.service.clone();
    let replicas = block(move || svc.replica_states()).await?;
    Ok(ok(&ReplicaList::new(replicas)))
}
