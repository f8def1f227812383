//! What a client sends to create or edit a target, read from the API's JSON or the web form
//! by the same code: [`TargetInput::read`] names each field once, with its parser, and the two
//! [`Source`]s only say how a field's raw value is found.

use serde_json::Value;

use super::{DEFAULT_QUOTA_WARNING, RecycleAction, RecycleCriteria, Target, TargetType};
use crate::error::{Code, Error, Result};
use crate::model::fields::{Fields, checkbox, parse_count, parse_size, required};
use crate::model::retention::{KeepPolicy, MAX_KEEP, Within};

/// Fields a client sent to create or edit a target; `None` means "not given".
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TargetInput {
    pub name: Option<String>,
    pub target_type: Option<TargetType>,
    pub recycle_criteria: Option<RecycleCriteria>,
    pub recycle_value: Option<i64>,
    pub recycle_action: Option<RecycleAction>,
    pub location: Option<String>,
    pub name_template: Option<String>,
    pub deduplicate: Option<bool>,
    /// `Some(None)` clears the alias.
    pub alias: Option<Option<String>>,
    pub min_backups: Option<i64>,
    pub tags: Option<Vec<String>>,
    /// Seconds; 0 stops monitoring.
    pub expected_interval: Option<i64>,
    /// `Some(None)` removes the keep policy.
    pub keep: Option<Option<KeepPolicy>>,
    pub quota_bytes: Option<i64>,
    pub quota_warning_percent: Option<i64>,
}

/// Whether an input makes a new target or changes one (a web form says it by its page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Create,
    Edit,
}

/// Where a target's fields are read from. A value that is not there is `Ok(None)`; one that is
/// there but unreadable is an error naming the field.
trait Source {
    fn has(&self, key: &str) -> bool;
    fn string(&self, key: &str) -> Result<Option<String>>;
    fn count(&self, key: &str) -> Result<Option<i64>>;
    fn boolean(&self, key: &str) -> Result<Option<bool>>;
    fn strings(&self, key: &str) -> Result<Option<Vec<String>>>;
    /// The keep policy: `None` not given, `Some(None)` none.
    fn keep(&self) -> Result<Option<Option<KeepPolicy>>>;
    /// A size in bytes (the form also takes units: `10G`).
    fn size(&self, key: &str) -> Result<Option<i64>>;
}

/// A keep count read as text or a JSON number; `field` names it in errors.
fn keep_count(field: &str, value: &Value) -> Result<u32> {
    let bad = || {
        Error::invalid(
            field,
            Code::WrongType,
            format!("Parameter '{field}' must be a whole number from 0 to {MAX_KEEP}"),
        )
    };
    let n = match value {
        Value::Number(n) => n.as_u64().ok_or_else(bad)?,
        Value::String(s) => s.trim().parse::<u64>().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    u32::try_from(n).ok().filter(|n| *n <= MAX_KEEP).ok_or_else(bad)
}

impl Source for Fields<'_> {
    fn has(&self, key: &str) -> bool {
        Fields::has(self, key)
    }
    fn string(&self, key: &str) -> Result<Option<String>> {
        Fields::string(self, key)
    }
    fn count(&self, key: &str) -> Result<Option<i64>> {
        Fields::count(self, key)
    }
    fn boolean(&self, key: &str) -> Result<Option<bool>> {
        Fields::boolean(self, key)
    }
    fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        Fields::strings(self, key)
    }
    fn keep(&self) -> Result<Option<Option<KeepPolicy>>> {
        let Some(value) = self.raw("keep") else { return Ok(None) };
        let Some(rules) = value.as_object() else {
            if value.is_null() {
                return Ok(Some(None));
            }
            return Err(Error::invalid(
                "keep",
                Code::WrongType,
                "Parameter 'keep' must be an object such as {\"daily\": 7, \"weekly\": 4} or null",
            ));
        };
        let mut keep = KeepPolicy::default();
        for (name, v) in rules {
            let field = format!("keep.{name}");
            if v.is_null() {
                continue;
            }
            if name == "within" {
                let text = v.as_str().ok_or_else(|| {
                    Error::invalid(&field, Code::WrongType, "Parameter 'keep.within' must be a string such as \"30d\"")
                })?;
                keep.within = Some(Within::parse(&field, text)?);
            } else if let Some(slot) = keep.count_mut(name) {
                *slot = keep_count(&field, v)?;
            } else {
                return Err(Error::invalid(
                    &field,
                    Code::NotAChoice,
                    format!(
                        "'{name}' is not a keep rule; the rules are last, hourly, daily, weekly, monthly, yearly and within"
                    ),
                ));
            }
        }
        Ok(Some(Some(keep).filter(|k| !k.is_empty())))
    }
    fn size(&self, key: &str) -> Result<Option<i64>> {
        Fields::count(self, key)
    }
}

/// A web form's fields (url-encoded pairs; the last of a repeated key counts). Every field is
/// text: an empty one is not given, except as the form's page says:
/// - an empty name is sent as blank (the name is required, and this says why), on an edit too;
/// - an edit never changes the type (the form shows it disabled);
/// - with criteria `none`, the recycle value and action are ignored (the form disables them);
/// - the `deduplicate` checkbox and the tag and alias inputs are always sent: unchecked is off,
///   no tags clears them, an empty alias clears it.
struct FormSource<'a> {
    pairs: &'a [(String, String)],
    intent: Intent,
}

impl FormSource<'_> {
    /// A field's text, trimmed (the name untrimmed, as JSON sends it, so a control character at
    /// its ends is refused the same way); `None` when absent, empty or ignored.
    fn text(&self, key: &str) -> Option<&str> {
        let ignored = match key {
            "backup_type" => self.intent == Intent::Edit,
            "recycle_value" | "recycle_action" => self.raw("recycle_criteria").map(str::trim) == Some("none"),
            // The form has only the current spellings.
            k => !TargetInput::FIELDS.contains(&k),
        };
        let raw = self.raw(key).filter(|_| !ignored)?;
        let value = if key == "name" { raw } else { raw.trim() };
        (!value.is_empty()).then_some(value)
    }

    fn raw(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Source for FormSource<'_> {
    fn has(&self, key: &str) -> bool {
        key == "alias"
    }
    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.text(key) {
            // A name cleared on the edit form is refused like a blank new one, not taken as "keep".
            None if key == "name" && (self.intent == Intent::Create || self.raw(key).is_some()) => {
                Ok(Some(String::new()))
            }
            text => Ok(text.map(str::to_string)),
        }
    }
    fn count(&self, key: &str) -> Result<Option<i64>> {
        self.text(key).map(|t| parse_count(key, t)).transpose()
    }
    fn boolean(&self, key: &str) -> Result<Option<bool>> {
        Ok(Some(self.raw(key).is_some_and(checkbox)))
    }
    fn keep(&self) -> Result<Option<Option<KeepPolicy>>> {
        let names = KeepPolicy::COUNTS.iter().chain(["within"].iter());
        if !names.clone().any(|n| self.raw(&format!("keep_{n}")).is_some()) {
            return Ok(None);
        }
        let mut keep = KeepPolicy::default();
        for name in names {
            let field = format!("keep_{name}");
            let Some(text) = self.raw(&field).map(str::trim).filter(|t| !t.is_empty()) else { continue };
            if *name == "within" {
                keep.within = Some(Within::parse(&field, text)?);
            } else if let Some(slot) = keep.count_mut(name) {
                *slot = keep_count(&field, &Value::String(text.to_string()))?;
            }
        }
        Ok(Some(Some(keep).filter(|k| !k.is_empty())))
    }
    fn size(&self, key: &str) -> Result<Option<i64>> {
        self.text(key).map(|t| parse_size(key, t)).transpose()
    }
    fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        let text = self.raw(key).unwrap_or_default();
        let tags = text.split([' ', ',', '\t', '\n']).filter(|t| !t.trim().is_empty()).map(str::to_string).collect();
        Ok(Some(tags))
    }
}

impl TargetInput {
    /// Every field a target takes, by the name clients send (the API's JSON keys, the web
    /// form's inputs). `target_type` and `num_backups` are older spellings the API also reads.
    pub const FIELDS: [&'static str; 15] = [
        "name",
        "backup_type",
        "recycle_criteria",
        "recycle_value",
        "recycle_action",
        "location",
        "name_template",
        "deduplicate",
        "alias",
        "min_backups",
        "tags",
        "expected_interval",
        "keep",
        "quota_bytes",
        "quota_warning_percent",
    ];

    /// Reads the JSON body of `POST`/`PATCH /api/target`.
    pub fn from_json(body: &Value) -> Result<TargetInput> {
        TargetInput::read(&Fields::of(body)?)
    }

    /// Reads the web UI's target form (see [`FormSource`] for what an empty field means).
    pub fn from_form(pairs: &[(String, String)], intent: Intent) -> Result<TargetInput> {
        TargetInput::read(&FormSource { pairs, intent })
    }

    /// The one description of a target's fields: each is read here, in this order.
    fn read(f: &impl Source) -> Result<TargetInput> {
        let target_type = match f.string("backup_type")? {
            Some(s) => Some(TargetType::parse(&s)?),
            None => f.string("target_type")?.map(|s| TargetType::parse(&s)).transpose()?,
        };
        Ok(TargetInput {
            name: f.string("name")?,
            target_type,
            recycle_criteria: f.string("recycle_criteria")?.map(|s| RecycleCriteria::parse(&s)).transpose()?,
            recycle_value: f.count("recycle_value")?,
            recycle_action: f.string("recycle_action")?.map(|s| RecycleAction::parse(&s)).transpose()?,
            location: f.string("location")?,
            name_template: f.string("name_template")?,
            deduplicate: f.boolean("deduplicate")?,
            alias: if f.has("alias") { Some(f.string("alias")?) } else { None },
            // `num_backups` is the old spelling the edit endpoint still receives.
            min_backups: match f.count("min_backups")? {
                Some(n) => Some(n),
                None => f.count("num_backups")?,
            },
            tags: f.strings("tags")?,
            expected_interval: f.count("expected_interval")?,
            keep: f.keep()?,
            quota_bytes: f.size("quota_bytes")?,
            quota_warning_percent: f.count("quota_warning_percent")?,
        })
    }

    /// Builds a new target; the fields a target cannot do without must be present.
    pub fn into_new_target(self, id: String) -> Result<Target> {
        let criteria = self.recycle_criteria.ok_or_else(|| required("recycle_criteria"))?;
        let needs_rules = criteria != RecycleCriteria::None;
        let target = Target {
            id,
            name: self.name.ok_or_else(|| required("name"))?,
            target_type: self.target_type.ok_or_else(|| required("backup_type"))?,
            recycle_criteria: criteria,
            recycle_value: match self.recycle_value {
                Some(v) => v,
                None if needs_rules => return Err(required("recycle_value")),
                None => 0,
            },
            recycle_action: match self.recycle_action {
                Some(a) => a,
                None if needs_rules => return Err(required("recycle_action")),
                None => RecycleAction::Recycle,
            },
            location: self.location.ok_or_else(|| required("location"))?,
            name_template: self.name_template.ok_or_else(|| required("name_template"))?,
            deduplicate: self.deduplicate.unwrap_or(false),
            alias: self.alias.flatten(),
            min_backups: self.min_backups.unwrap_or(0),
            tags: self.tags.unwrap_or_default(),
            expected_interval: self.expected_interval.unwrap_or(0),
            keep: self.keep.flatten(),
            quota_bytes: self.quota_bytes.unwrap_or(0),
            quota_warning_percent: self.quota_warning_percent.unwrap_or(DEFAULT_QUOTA_WARNING),
        };
        Ok(target)
    }

    /// Applies an edit to an existing target; fields left out keep their value.
    pub fn apply_to(self, existing: &Target) -> Result<Target> {
        if let Some(t) = self.target_type
            && t != existing.target_type
        {
            return Err(Error::invalid(
                "backup_type",
                Code::Immutable,
                "A target's type cannot be changed after creation",
            ));
        }
        let mut t = existing.clone();
        if let Some(v) = self.name {
            t.name = v;
        }
        if let Some(v) = self.recycle_criteria {
            t.recycle_criteria = v;
        }
        if let Some(v) = self.recycle_value {
            t.recycle_value = v;
        }
        if let Some(v) = self.recycle_action {
            t.recycle_action = v;
        }
        if let Some(v) = self.location {
            t.location = v;
        }
        if let Some(v) = self.name_template {
            t.name_template = v;
        }
        if let Some(v) = self.deduplicate {
            t.deduplicate = v;
        }
        if let Some(v) = self.alias {
            t.alias = v;
        }
        if let Some(v) = self.min_backups {
            t.min_backups = v;
        }
        if let Some(v) = self.tags {
            t.tags = v;
        }
        if let Some(v) = self.expected_interval {
            t.expected_interval = v;
        }
        if let Some(v) = self.keep {
            t.keep = v;
        }
        if let Some(v) = self.quota_bytes {
            t.quota_bytes = v;
        }
        if let Some(v) = self.quota_warning_percent {
            t.quota_warning_percent = v;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> serde_json::Value {
        json!({"name": "n", "backup_type": "multi", "recycle_criteria": "count", "recycle_value": 3,
               "recycle_action": "recycle", "location": "/tmp/x", "name_template": "b-$I",
               "deduplicate": false, "alias": null, "min_backups": 1})
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn create_requires_each_field() {
        for key in
            ["name", "backup_type", "recycle_criteria", "recycle_value", "recycle_action", "location", "name_template"]
        {
            let mut body = full();
            body.as_object_mut().unwrap().remove(key);
            let err = TargetInput::from_json(&body).and_then(|i| i.into_new_target("id".into())).unwrap_err();
            assert_eq!(err.to_string(), format!("Parameter '{key}' required"));
            assert_eq!((err.field(), err.code()), (Some(key), Code::Required));
        }
        let t = TargetInput::from_json(&full()).unwrap().into_new_target("id".into()).unwrap();
        assert_eq!(t.recycle_value, 3);
        assert_eq!(t.alias, None);
    }

    #[test]
    fn edit_keeps_unsent_fields_and_refuses_type_change() {
        let t = TargetInput::from_json(&full()).unwrap().into_new_target("id".into()).unwrap();
        let edited = TargetInput::from_json(&json!({"name": "m", "num_backups": 5})).unwrap().apply_to(&t).unwrap();
        assert_eq!((edited.name.as_str(), edited.min_backups, edited.recycle_value), ("m", 5, 3));
        let change = TargetInput::from_json(&json!({"backup_type": "single"})).unwrap().apply_to(&t).unwrap_err();
        assert_eq!((change.field(), change.code()), (Some("backup_type"), Code::Immutable));
        let bad = TargetInput::from_json(&json!({"recycle_value": "many"})).unwrap_err();
        assert!(bad.to_string().contains("recycle_value"));
    }

    #[test]
    fn a_form_and_its_json_read_the_same() {
        let json = TargetInput::from_json(&json!({"name": "Photos", "backup_type": "single",
            "recycle_criteria": "count", "recycle_value": 7, "recycle_action": "delete", "location": "/srv/p",
            "name_template": "p-$D", "deduplicate": true, "alias": "photos", "min_backups": 2,
            "tags": ["a", "b", "c"]}))
        .unwrap();
        let form = TargetInput::from_form(
            &form(&[
                ("csrf", "x"),
                ("name", "Photos"),
                ("backup_type", "single"),
                ("recycle_criteria", "count"),
                ("recycle_value", " 7 "),
                ("recycle_action", "delete"),
                ("location", "/srv/p "),
                ("name_template", "p-$D"),
                ("deduplicate", "on"),
                ("alias", "photos"),
                ("min_backups", "2"),
                ("tags", "a, b c"),
            ]),
            Intent::Create,
        )
        .unwrap();
        assert_eq!(form, json);
    }

    #[test]
    fn keep_reads_from_json_and_form_alike_and_an_edit_without_it_keeps_it() {
        let json = TargetInput::from_json(&json!({"keep": {"daily": 7, "weekly": "4", "within": "30d"},
            "quota_bytes": 1048576}))
        .unwrap();
        let from_form = TargetInput::from_form(
            &form(&[
                ("keep_daily", "7"),
                ("keep_weekly", " 4"),
                ("keep_last", ""),
                ("keep_within", "30d"),
                ("quota_bytes", "1M"),
            ]),
            Intent::Edit,
        )
        .unwrap();
        assert_eq!((json.keep, json.quota_bytes), (from_form.keep, from_form.quota_bytes));
        let keep = json.keep.flatten().unwrap();
        assert_eq!((keep.daily, keep.weekly, keep.within.map(|w| w.days)), (7, 4, Some(30)));
        let t = TargetInput::from_json(&full()).unwrap().into_new_target("id".into()).unwrap();
        let with = json.apply_to(&t).unwrap();
        // What an official client sends on edit: every Backup-chan field, never `keep`.
        let edited = TargetInput::from_json(&full()).unwrap().apply_to(&with).unwrap();
        assert_eq!(edited.keep, with.keep);
        let cleared = TargetInput::from_json(&json!({"keep": null})).unwrap().apply_to(&with).unwrap();
        assert_eq!(cleared.keep, None);
        let emptied = TargetInput::from_form(&form(&[("keep_daily", "")]), Intent::Edit).unwrap();
        assert_eq!(emptied.keep, Some(None));
        for (body, field) in [
            (json!({"keep": {"dayly": 3}}), "keep.dayly"),
            (json!({"keep": {"daily": -3}}), "keep.daily"),
            (json!({"keep": {"within": "3w"}}), "keep.within"),
            (json!({"keep": 5}), "keep"),
            (json!({"quota_bytes": "big"}), "quota_bytes"),
        ] {
            assert_eq!(TargetInput::from_json(&body).unwrap_err().field(), Some(field), "{body}");
        }
        let bad = TargetInput::from_form(&form(&[("keep_monthly", "x")]), Intent::Edit).unwrap_err();
        assert_eq!(bad.field(), Some("keep_monthly"));
    }

    #[test]
    fn a_form_leaves_out_what_its_page_disables() {
        let pairs = form(&[
            ("name", ""),
            ("backup_type", "single"),
            ("recycle_criteria", "none"),
            ("recycle_value", "junk"),
            ("recycle_action", "nonsense"),
            ("location", ""),
            ("num_backups", "4"),
        ]);
        let create = TargetInput::from_form(&pairs, Intent::Create).unwrap();
        assert_eq!(create.name.as_deref(), Some(""), "a blank name is sent, to be refused as blank");
        assert_eq!(create.target_type, Some(TargetType::Single));
        assert_eq!((create.recycle_value, create.recycle_action), (None, None));
        assert_eq!((create.location, create.min_backups), (None, None));
        assert_eq!((create.deduplicate, create.alias, create.tags), (Some(false), Some(None), Some(vec![])));
        let edit = TargetInput::from_form(&pairs, Intent::Edit).unwrap();
        assert_eq!((edit.name.as_deref(), edit.target_type), (Some(""), None), "a cleared name is refused too");
        let unnamed = TargetInput::from_form(&form(&[("recycle_criteria", "none")]), Intent::Edit).unwrap();
        assert_eq!(unnamed.name, None, "a form without the field keeps the name");
    }

    #[test]
    fn form_and_json_errors_name_the_same_field() {
        let cases: [(&str, Value, &str, Code); 4] = [
            ("recycle_value", json!("ten"), "ten", Code::WrongType),
            ("min_backups", json!("-1"), "-1", Code::WrongType),
            ("recycle_criteria", json!("weekly"), "weekly", Code::NotAChoice),
            ("backup_type", json!("both"), "both", Code::NotAChoice),
        ];
        for (key, json_value, text, code) in cases {
            let from_json = TargetInput::from_json(&json!({ key: json_value })).unwrap_err();
            let from_form =
                TargetInput::from_form(&form(&[("recycle_criteria", "count"), (key, text)]), Intent::Create)
                    .unwrap_err();
            assert_eq!(from_json.to_string(), from_form.to_string(), "{key}");
            assert_eq!((from_json.field(), from_json.code()), (Some(key), code), "{key}");
            assert_eq!((from_form.field(), from_form.code()), (Some(key), code), "{key}");
        }
    }
}
