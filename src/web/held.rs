//! Held backups: what deletions left for `[protection] hold_days`, with who deleted each, and a
//! restore button. Nothing here shortens a hold (see `service::held`).

use actix_web::{HttpRequest, web};
use askama::Template;

use super::render::{ago, size, when};
use super::{Chrome, Ctx, Form, PageResult, block, html, notice, see_other};
use crate::config::Config;
use crate::model::held::Reclaimable;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/held").route(web::get().to(page)))
        .service(web::resource("/held/{id}/restore").route(web::post().to(restore)));
}

/// What a deletion's confirmation says happens to the content.
pub fn after_delete(config: &Config) -> String {
    if config.hold.is_zero() {
        return "Deleted backups cannot be restored: the hold on deletions is off ([protection] hold_days = 0).".into();
    }
    format!("Their content stays held for {} and can be restored from Held backups until then.", hold_text(config.hold))
}

/// `7 days`, `1 day`, `3 hours`: the largest whole unit.
fn hold_text(hold: std::time::Duration) -> String {
    crate::model::health::human(i64::try_from(hold.as_secs()).unwrap_or(i64::MAX))
}

struct HeldRow {
    id: String,
    name: String,
    target_id: String,
    target_name: String,
    size: String,
    files: usize,
    deleted: String,
    deleted_ago: String,
    until: String,
    until_in: String,
    by: String,
}

#[derive(Template)]
#[template(path = "held.html")]
struct HeldPage {
    c: Chrome,
    rows: Vec<HeldRow>,
    hold: String,
    reclaim: Reclaimable,
    held_bytes: String,
    unreferenced_bytes: String,
}

async fn page(state: web::Data<AppState>, ctx: Ctx, req: HttpRequest) -> PageResult {
    let svc = state.service.clone();
    let (held, reclaim) = block(move || Ok((svc.held()?, svc.reclaimable()?))).await?;
    let now = crate::time::now();
    let at = |s: &str| crate::time::parse_iso(s).unwrap_or(now);
    let rows = held
        .into_iter()
        .map(|h| HeldRow {
            size: size(h.size),
            deleted: when(at(&h.deleted_at)),
            deleted_ago: ago(at(&h.deleted_at), now),
            until: when(at(&h.hold_until)),
            until_in: ago(at(&h.hold_until), now),
            by: match &h.deleted_by.session {
                Some(s) => format!("{} (session {s}) from {}", h.deleted_by.who, h.deleted_by.from),
                None => format!("{} from {}", h.deleted_by.who, h.deleted_by.from),
            },
            id: h.id,
            name: h.name,
            target_id: h.target_id,
            target_name: h.target_name,
            files: h.files,
        })
        .collect();
    let hold = if state.service.config.hold.is_zero() { String::new() } else { hold_text(state.service.config.hold) };
    html(&HeldPage {
        c: ctx.chrome("Held backups", "held").with_notice(notice(&req)),
        rows,
        hold,
        held_bytes: size(reclaim.held_bytes),
        unreferenced_bytes: size(reclaim.unreferenced_bytes),
        reclaim,
    })
}

async fn restore(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let svc = state.service.clone();
    let restored = block(move || svc.restore_held(&id)).await?;
    Ok(see_other(&format!("/backups/{}?done=restored", super::enc(&restored.backup_id))))
}
