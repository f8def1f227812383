//! The create and edit forms. The form is read by `TargetInput::from_form`, the same rules as
//! the API's JSON; a refused form comes back as the user left it, the error beside the field
//! the error names.

use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;

use super::super::{Chrome, Ctx, Form, PageError, PageResult, block, enc, html, html_status, see_other};
use crate::model::target::{Intent, Target, TargetInput};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "target_form.html")]
struct TargetFormPage {
    c: Chrome,
    new: bool,
    action: String,
    cancel: String,
    /// The values shown: the target's, the defaults, or the form as it was sent.
    v: Form,
    error: Option<String>,
    /// The field the error is about, `""` for none.
    field: String,
}

impl TargetFormPage {
    fn err(&self, field: &str) -> Option<&str> {
        if self.field == field { self.error.as_deref() } else { None }
    }
}

/// A target's values as the form shows them.
fn values_of(t: &Target) -> Form {
    let mut v = Form::parse(b"");
    v.set("name", &t.name);
    v.set("backup_type", t.target_type.as_str());
    v.set("recycle_criteria", t.recycle_criteria.as_str());
    v.set("recycle_value", &t.recycle_value.to_string());
    v.set("recycle_action", t.recycle_action.as_str());
    v.set("location", &t.location);
    v.set("name_template", &t.name_template);
    v.set("deduplicate", if t.deduplicate { "1" } else { "0" });
    v.set("alias", t.alias.as_deref().unwrap_or_default());
    v.set("min_backups", &t.min_backups.to_string());
    v.set("tags", &t.tags.join(" "));
    v
}

pub(super) async fn new_form(ctx: Ctx) -> PageResult {
    let mut v = Form::parse(b"");
    let defaults = [
        ("backup_type", "multi"),
        ("recycle_criteria", "none"),
        ("recycle_value", "10"),
        ("recycle_action", "recycle"),
        ("min_backups", "0"),
    ];
    for (key, value) in defaults {
        v.set(key, value);
    }
    html(&TargetFormPage {
        c: ctx.chrome("New target", "targets"),
        new: true,
        action: "/targets/new".into(),
        cancel: "/targets".into(),
        v,
        error: None,
        field: String::new(),
    })
}

pub(super) async fn create(state: web::Data<AppState>, ctx: Ctx, body: web::Bytes) -> PageResult {
    let form = Form::parse(&body);
    ctx.check(&form)?;
    let svc = state.service.clone();
    let pairs = form.pairs().to_vec();
    let result = block(move || svc.create_target(TargetInput::from_form(&pairs, Intent::Create)?)).await;
    match result {
        Ok(id) => Ok(see_other(&format!("/targets/{}?done=created", enc(&id)))),
        Err(e) => {
            form_error(ctx.chrome("New target", "targets"), true, "/targets/new".into(), "/targets".into(), form, e)
        }
    }
}

/// The form again, with the error beside its field; a missing target or a server failure is a
/// page of its own.
fn form_error(c: Chrome, new: bool, action: String, cancel: String, v: Form, e: PageError) -> PageResult {
    if e.status == StatusCode::NOT_FOUND || e.status.is_server_error() {
        return Err(e);
    }
    let field = e.field.clone().unwrap_or_default();
    let page = TargetFormPage { c, new, action, cancel, v, field, error: Some(e.message) };
    html_status(e.status, &page)
}

pub(super) async fn edit_form(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>) -> PageResult {
    let svc = state.service.clone();
    let (target, _) = block(move || svc.target_with_backups(&id)).await?;
    html(&TargetFormPage {
        c: ctx.chrome(format!("Edit {}", target.name), "targets"),
        new: false,
        action: format!("/targets/{}/edit", enc(&target.id)),
        cancel: format!("/targets/{}", enc(&target.id)),
        v: values_of(&target),
        error: None,
        field: String::new(),
    })
}

pub(super) async fn edit(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>, body: web::Bytes) -> PageResult {
    let mut form = Form::parse(&body);
    ctx.check(&form)?;
    let id = id.into_inner();
    let svc = state.service.clone();
    let lookup = id.clone();
    let (target, _) = block(move || svc.target_with_backups(&lookup)).await?;
    let svc = state.service.clone();
    let pairs = form.pairs().to_vec();
    let tid = target.id.clone();
    let result = block(move || svc.edit_target(&tid, TargetInput::from_form(&pairs, Intent::Edit)?)).await;
    match result {
        Ok(()) => Ok(see_other(&format!("/targets/{}?done=saved", enc(&target.id)))),
        Err(e) => {
            // The type select is disabled on an edit, so the browser did not send it.
            form.set("backup_type", target.target_type.as_str());
            form_error(
                ctx.chrome(format!("Edit {}", target.name), "targets"),
                false,
                format!("/targets/{}/edit", enc(&target.id)),
                format!("/targets/{}", enc(&target.id)),
                form,
                e,
            )
        }
    }
}
