//! The create and edit forms. The form is read by `TargetInput::from_form`, the same rules as
//! the API's JSON; a refused form comes back as the user left it, the error beside the field
//! the error names.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

use super::super::render::target_hint;
use super::super::{Chrome, Ctx, Form, PageError, PageResult, block, enc, html, html_status, see_other};
use crate::error::Code;
use crate::model::target::{Intent, Target, TargetInput};
use crate::state::AppState;

/// The fields the form shows, each with the label it carries there. An error about one of them
/// is shown beside it (once); any other error above the form.
const FIELDS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("backup_type", "Type"),
    ("location", "Location"),
    ("name_template", "Name template"),
    ("recycle_criteria", "Recycle criteria"),
    ("recycle_value", "N"),
    ("recycle_action", "Then"),
    ("min_backups", "Always keep at least"),
    ("expected_interval", "Expect a backup"),
    ("keep_last", "Keep last"),
    ("keep_hourly", "Hourly"),
    ("keep_daily", "Daily"),
    ("keep_weekly", "Weekly"),
    ("keep_monthly", "Monthly"),
    ("keep_yearly", "Yearly"),
    ("keep_within", "Keep all within"),
    ("quota_bytes", "Quota"),
    ("quota_warning_percent", "Warn at (%)"),
    ("alias", "Alias"),
    ("tags", "Tags"),
];

/// The retention fields with the values a new target starts with.
const DEFAULTS: &[(&str, &str)] = &[
    ("backup_type", "multi"),
    ("recycle_criteria", "none"),
    ("recycle_value", "10"),
    ("recycle_action", "recycle"),
    ("min_backups", "0"),
];

fn label_of(field: &str) -> Option<&'static str> {
    FIELDS.iter().find(|(f, _)| *f == field).map(|(_, l)| *l)
}

/// An error message in the form's own words: its labels instead of the API's parameter names,
/// "a whole number ≥ 0" instead of "non-negative integer", and no operating-system error codes.
pub(super) fn in_form_words(field: &str, code: Code, message: &str) -> String {
    let label = label_of(field).unwrap_or("This field");
    let text = match code {
        Code::Required => format!("{label} is required."),
        Code::WrongType
            if matches!(field, "recycle_value" | "min_backups" | "quota_warning_percent")
                || field.starts_with("keep_") && field != "keep_within" =>
        {
            format!("{label} must be a whole number ≥ 0.")
        }
        Code::WrongType => format!("{label} holds a value this form cannot read."),
        Code::NotAChoice => format!("Choose one of the offered values for {label}."),
        _ => message.replace(&format!("Parameter '{field}'"), label),
    };
    without_os_codes(&text)
}

/// Drops the ` (os error N)` that Rust adds to I/O messages: the words before it say it.
fn without_os_codes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" (os error ") {
        out.push_str(&rest[..at]);
        match rest[at..].find(')') {
            Some(end) => rest = &rest[at + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

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
    /// Targets already carrying the name typed (a create asks again before adding another).
    same_name: Vec<String>,
    /// The edit form's retention preview (none on the create form).
    preview: Option<super::preview::PreviewView>,
    /// Where `app.js` asks for the preview while the policy is edited; empty on create.
    preview_url: String,
}

impl TargetFormPage {
    /// The error beside `field`, when it is about that field.
    fn err(&self, field: &str) -> Option<&str> {
        if self.field == field { self.error.as_deref() } else { None }
    }

    /// The error above the form: one that is about no field the form shows.
    fn general_error(&self) -> Option<&str> {
        if label_of(&self.field).is_some() { None } else { self.error.as_deref() }
    }

    /// The choices of "Expect a backup" as (seconds, label, selected); a value set through the
    /// API that is none of them is offered too, so an edit keeps it.
    fn interval_choices(&self) -> Vec<(String, String, bool)> {
        const PRESETS: &[(i64, &str)] = &[
            (0, "not monitored"),
            (3_600, "every hour"),
            (21_600, "every 6 hours"),
            (86_400, "every day"),
            (604_800, "every week"),
            (2_592_000, "every 30 days"),
        ];
        let current = self.v.value("expected_interval");
        let current: i64 = current.trim().parse().unwrap_or(0);
        let mut out: Vec<(String, String, bool)> =
            PRESETS.iter().map(|(s, label)| (s.to_string(), label.to_string(), *s == current)).collect();
        if !PRESETS.iter().any(|(s, _)| *s == current) {
            out.push((current.to_string(), format!("every {}", crate::model::health::human(current)), true));
        }
        out
    }

    /// The keep policy's inputs: (name, label).
    fn keep_fields(&self) -> Vec<(String, String)> {
        FIELDS.iter().filter(|(f, _)| f.starts_with("keep_")).map(|(f, l)| (f.to_string(), l.to_string())).collect()
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
    v.set("expected_interval", &t.expected_interval.to_string());
    v.set("tags", &t.tags.join(" "));
    if let Some(k) = t.keep {
        for name in crate::model::retention::KeepPolicy::COUNTS {
            if k.count(name) > 0 {
                v.set(&format!("keep_{name}"), &k.count(name).to_string());
            }
        }
        if let Some(w) = k.within {
            v.set("keep_within", &w.to_string());
        }
    }
    if t.quota_bytes > 0 {
        v.set("quota_bytes", &t.quota_bytes.to_string());
    }
    v.set("quota_warning_percent", &t.quota_warning_percent.to_string());
    v
}

pub(super) async fn new_form(ctx: Ctx) -> PageResult {
    let mut v = Form::parse(b"");
    for (key, value) in DEFAULTS {
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
        same_name: Vec::new(),
        preview: None,
        preview_url: String::new(),
    })
}

pub(super) async fn create(state: web::Data<AppState>, ctx: Ctx, body: web::Bytes) -> PageResult {
    let mut form = Form::parse(&body);
    ctx.check(&form)?;
    let svc = state.service.clone();
    let pairs = form.pairs().to_vec();
    // A second target of the same name is allowed (the API allows it), but asked for: lists
    // would show two alike names. The form comes back once with the others named.
    let ask_first = !form.checked("same_name_ok");
    let result = block(move || {
        let input = TargetInput::from_form(&pairs, Intent::Create)?;
        if ask_first {
            let name = pairs.iter().rev().find(|(k, _)| k == "name").map(|(_, v)| v.as_str()).unwrap_or_default();
            let others = svc.targets_named(name)?;
            if !others.is_empty() {
                return Ok(Err(others));
            }
        }
        svc.create_target(input).map(Ok)
    })
    .await;
    let (c, action, cancel) = (ctx.chrome("New target", "targets"), "/targets/new".to_string(), "/targets".to_string());
    match result {
        Ok(Ok(id)) => Ok(see_other(&format!("/targets/{}?done=created", enc(&id)))),
        Ok(Err(others)) => {
            keep_retention(&mut form, None);
            let same_name =
                others.iter().map(|t| format!("{} ({})", t.name, target_hint(t.alias.as_deref(), &t.id))).collect();
            let page = TargetFormPage {
                c,
                new: true,
                action,
                cancel,
                v: form,
                error: None,
                field: String::new(),
                same_name,
                preview: None,
                preview_url: String::new(),
            };
            html(&page)
        }
        Err(e) => form_error(c, true, action, cancel, form, e, String::new()),
    }
}

/// Fills the retention fields the browser did not send (a disabled field is not sent) from the
/// target's values, or the defaults, so a form that comes back never shows them blank.
fn keep_retention(form: &mut Form, target: Option<&Target>) {
    let from = target.map(values_of).unwrap_or_else(|| {
        let mut v = Form::parse(b"");
        DEFAULTS.iter().for_each(|(k, val)| v.set(k, val));
        v
    });
    for key in ["recycle_criteria", "recycle_value", "recycle_action", "min_backups"] {
        if form.get(key).is_none()
            && let Some(value) = from.get(key)
        {
            form.set(key, value);
        }
    }
}

/// The form again, with the error beside its field in the form's words; a missing target or a
/// server failure is a page of its own.
fn form_error(
    c: Chrome,
    new: bool,
    action: String,
    cancel: String,
    mut v: Form,
    e: PageError,
    preview_url: String,
) -> PageResult {
    if e.status == StatusCode::NOT_FOUND || e.status.is_server_error() {
        return Err(e);
    }
    if new {
        keep_retention(&mut v, None);
    }
    let field = e.field.clone().unwrap_or_default();
    let message = match e.code {
        Some(code) if !field.is_empty() => in_form_words(&field, code, &e.message),
        _ => without_os_codes(&e.message),
    };
    let page = TargetFormPage {
        c,
        new,
        action,
        cancel,
        v,
        field,
        error: Some(message),
        same_name: Vec::new(),
        preview: None,
        preview_url,
    };
    html_status(e.status, &page)
}

/// Where the edit form of target `id` asks for its retention preview.
fn preview_url(id: &str) -> String {
    format!("/targets/{}/retention-preview", enc(id))
}

pub(super) async fn edit_form(state: web::Data<AppState>, ctx: Ctx, id: web::Path<String>) -> PageResult {
    let svc = state.service.clone();
    let target = block(move || svc.find_target(&id)).await?;
    // The saved policy's preview, which the script (or the Preview button) replaces.
    let preview = super::preview::build(&state, &target.id, &[]).await?;
    html(&TargetFormPage {
        c: ctx.chrome(format!("Edit {}", target.name), "targets"),
        new: false,
        action: format!("/targets/{}/edit", enc(&target.id)),
        cancel: format!("/targets/{}", enc(&target.id)),
        v: values_of(&target),
        error: None,
        field: String::new(),
        same_name: Vec::new(),
        preview: Some(preview),
        preview_url: preview_url(&target.id),
    })
}

/// Saves the edit form; with `preview` (the Preview button), shows the retention preview of
/// the policy as typed instead, on the form as it was sent, and saves nothing.
pub(super) async fn edit(
    state: web::Data<AppState>,
    ctx: Ctx,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> PageResult {
    let mut form = Form::parse(&body);
    ctx.check(&form)?;
    let id = id.into_inner();
    let svc = state.service.clone();
    let lookup = id.clone();
    let target = block(move || svc.find_target(&lookup)).await?;
    if form.get("preview").is_some() {
        crate::web::audit::note(&req, |n| n.unchanged = true);
        form.set("backup_type", target.target_type.as_str());
        let preview = super::preview::build(&state, &target.id, form.pairs()).await?;
        let status = if preview.error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        return html_status(
            status,
            &TargetFormPage {
                c: ctx.chrome(format!("Edit {}", target.name), "targets"),
                new: false,
                action: format!("/targets/{}/edit", enc(&target.id)),
                cancel: format!("/targets/{}", enc(&target.id)),
                v: form,
                error: None,
                field: String::new(),
                same_name: Vec::new(),
                preview: Some(preview),
                preview_url: preview_url(&target.id),
            },
        );
    }
    let svc = state.service.clone();
    let pairs = form.pairs().to_vec();
    let tid = target.id.clone();
    let result = block(move || svc.edit_target(&tid, TargetInput::from_form(&pairs, Intent::Edit)?)).await;
    match result {
        Ok(()) => Ok(see_other(&format!("/targets/{}?done=saved", enc(&target.id)))),
        Err(e) => {
            // The type select is disabled on an edit, so the browser did not send it.
            form.set("backup_type", target.target_type.as_str());
            keep_retention(&mut form, Some(&target));
            form_error(
                ctx.chrome(format!("Edit {}", target.name), "targets"),
                false,
                format!("/targets/{}/edit", enc(&target.id)),
                format!("/targets/{}", enc(&target.id)),
                form,
                e,
                preview_url(&target.id),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_speak_the_forms_words() {
        let n =
            in_form_words("recycle_value", Code::WrongType, "Parameter 'recycle_value' must be a non-negative integer");
        assert_eq!(n, "N must be a whole number ≥ 0.");
        assert_eq!(in_form_words("name", Code::Required, "Parameter 'name' required"), "Name is required.");
        let io = in_form_words(
            "location",
            Code::Invalid,
            "Location /x cannot be created: No such file or directory (os error 2)",
        );
        assert_eq!(io, "Location /x cannot be created: No such file or directory");
        assert_eq!(without_os_codes("a (os error 13) b (os error 2)"), "a b");
    }
}
