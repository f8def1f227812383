//! A target's upload keys: which keys may upload to it, and a new upload key in one click,
//! shown once with the client configuration that uses it.

use actix_web::{HttpRequest, web};
use askama::Template;

use super::super::{Chrome, Ctx, Form, PageError, PageResult, block, html};
use crate::auth::keys::{self, RoleName};
use crate::state::AppState;

/// One key that may upload to the target.
pub struct KeyRow {
    pub name: String,
    pub role: &'static str,
    pub used: String,
}

/// The live keys that may upload to `target_id`: its upload keys and every admin key.
pub(super) async fn uploaders(state: &AppState, target_id: &str) -> Result<Vec<KeyRow>, PageError> {
    let svc = state.service.clone();
    let (dir, target_id) = (state.service.config.data_dir.clone(), target_id.to_string());
    block(move || {
        let uses = svc.key_uses()?;
        let used = |name: &str| uses.get(name).map_or("never".to_string(), |(at, addr)| format!("{at} from {addr}"));
        let mut rows = Vec::new();
        if svc.config.apikey_path().exists() {
            rows.push(KeyRow {
                name: crate::auth::apikey::NAME.into(),
                role: "admin",
                used: used(crate::auth::apikey::NAME),
            });
        }
        let all = keys::list(&keys::path(&dir)).map_err(crate::error::Error::internal)?;
        for k in all.iter().filter(|k| k.revoked.is_none()) {
            let may = k.role == RoleName::Admin || (k.role == RoleName::Upload && k.targets.contains(&target_id));
            if may {
                rows.push(KeyRow { name: k.name.clone(), role: k.role.as_str(), used: used(&k.name) });
            }
        }
        Ok(rows)
    })
    .await
}

#[derive(Template)]
#[template(path = "new_key.html")]
struct NewKeyPage {
    c: Chrome,
    target_id: String,
    target_name: String,
    name: String,
    key: String,
    config: String,
}

/// Creates an upload key for this target (name from the form, or one made up) and shows it once.
pub(super) async fn new_upload_key(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let svc = state.service.clone();
    let target = block(move || svc.find_target(&id)).await?;
    let name = match form.text("name").trim() {
        "" => format!(
            "upload-{}-{}",
            target.alias.clone().unwrap_or_else(|| target.name.clone()),
            &keys::hash(&crate::time::iso(crate::time::now()))[..6]
        ),
        given => given.to_string(),
    };
    let path = keys::path(&state.service.config.data_dir);
    let (key_name, target_id) = (name.clone(), target.id.clone());
    let key =
        block(move || keys::add(&path, &key_name, RoleName::Upload, vec![target_id]).map_err(crate::error::Error::bad))
            .await?;
    let info = req.connection_info();
    let host = info.host();
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h.to_string(), p.to_string()),
        _ => (host.to_string(), if info.scheme() == "https" { "443".into() } else { "80".into() }),
    };
    let config = format!("backupchan config new -H {host} -p {port} -a {key}");
    html(&NewKeyPage {
        c: ctx.chrome("New upload key", "targets"),
        target_id: target.id.clone(),
        target_name: target.name.clone(),
        name,
        key,
        config,
    })
}
