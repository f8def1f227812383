//! Targets: what they are, the rules a valid one follows, and name-template expansion.

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fields::{Fields, required};
use crate::error::{Error, Result};

/// Whether a backup is one file or a folder tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    Single,
    Multi,
}

/// What makes a backup old enough to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecycleCriteria {
    None,
    Count,
    Age,
}

/// What happens to a backup that retention selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecycleAction {
    Recycle,
    Delete,
}

macro_rules! str_enum {
    ($ty:ident, $field:literal, $($s:literal => $v:ident),+) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$v => $s),+ }
            }
            pub fn parse(s: &str) -> Result<Self> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($s => Ok($ty::$v),)+
                    _ => Err(Error::bad(format!(
                        concat!("Parameter '", $field, "' must be one of: {}"),
                        [$($s),+].join(", ")
                    ))),
                }
            }
        }
    };
}
str_enum!(TargetType, "backup_type", "single" => Single, "multi" => Multi);
str_enum!(RecycleCriteria, "recycle_criteria", "none" => None, "count" => Count, "age" => Age);
str_enum!(RecycleAction, "recycle_action", "recycle" => Recycle, "delete" => Delete);

/// A target as stored and as shown in JSON; also the body of its definition file (see
/// [`super::manifest`]), so a field added later needs `#[serde(default)]` to read older files.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    /// A UUID.
    pub id: String,
    pub name: String,
    pub target_type: TargetType,
    pub recycle_criteria: RecycleCriteria,
    pub recycle_value: i64,
    pub recycle_action: RecycleAction,
    pub location: String,
    pub name_template: String,
    pub deduplicate: bool,
    #[schema(required = true)]
    pub alias: Option<String>,
    pub min_backups: i64,
    pub tags: Vec<String>,
}

/// Fields a client sent to create or edit a target; `None` means "not given".
#[derive(Debug, Default, Clone)]
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
}

impl TargetInput {
    /// Reads the JSON body of `POST`/`PATCH /api/target`.
    pub fn from_json(body: &Value) -> Result<TargetInput> {
        let f = Fields::of(body)?;
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
        };
        Ok(target)
    }

    /// Applies an edit to an existing target; fields left out keep their value.
    pub fn apply_to(self, existing: &Target) -> Result<Target> {
        if let Some(t) = self.target_type
            && t != existing.target_type
        {
            return Err(Error::bad("A target's type cannot be changed after creation"));
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
        Ok(t)
    }
}

impl Target {
    /// Normalises fields (trimming, tag clean-up) and checks every rule that needs no database.
    /// `data_dir` is bakch's own folder, which no target may live in.
    pub fn normalize_and_validate(&mut self, data_dir: &Path) -> Result<()> {
        // Checked before trimming: these fields reach logs and pages, where a line break forges a line.
        refuse_control_chars("Target name", &self.name)?;
        refuse_control_chars("Name template", &self.name_template)?;
        refuse_control_chars("Location", &self.location)?;
        if let Some(alias) = &self.alias {
            refuse_control_chars("Alias", alias)?;
        }
        for tag in &self.tags {
            refuse_control_chars("Tags", tag)?;
        }
        self.name = self.name.trim().to_string();
        if self.name.is_empty() {
            return Err(Error::bad("Target name cannot be blank"));
        }
        if self.name.chars().count() > 200 {
            return Err(Error::bad("Target name is longer than 200 characters"));
        }
        validate_name_template(&self.name_template)?;
        self.location = validate_location(&self.location, data_dir)?;
        if let Some(alias) = &self.alias {
            let alias = alias.trim().to_string();
            if alias.is_empty() {
                return Err(Error::bad("Alias cannot be blank (send null for no alias)"));
            }
            if alias.len() > 64 || !alias.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(Error::bad("Alias may only hold letters, digits, '-', '_' and '.', at most 64 of them"));
            }
            self.alias = Some(alias);
        }
        self.tags = normalize_tags(&self.tags)?;
        Ok(())
    }
}

/// Refuses a field holding a control character (line breaks, tabs, NUL, DEL, C1 codes).
fn refuse_control_chars(field: &str, value: &str) -> Result<()> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(Error::bad(format!(
            "{field} cannot contain control characters such as line breaks or tabs (found {})",
            c.escape_default()
        ))),
        None => Ok(()),
    }
}

/// Cleans a tag list: splits on commas and whitespace (a client quirk sends `","` as a tag),
/// drops empties and repeats, keeps the first order.
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags.iter().flat_map(|t| t.split(|c: char| c == ',' || c.is_whitespace())) {
        if tag.is_empty() || out.iter().any(|t| t == tag) {
            continue;
        }
        if tag.chars().count() > 64 {
            return Err(Error::bad(format!("Tag '{tag}' is longer than 64 characters")));
        }
        out.push(tag.to_string());
    }
    if out.len() > 64 {
        return Err(Error::bad("A target can carry at most 64 tags"));
    }
    Ok(out)
}

/// A name template must name each backup uniquely and stay one path component.
pub fn validate_name_template(template: &str) -> Result<()> {
    if template.trim().is_empty() {
        return Err(Error::bad("Name template cannot be blank"));
    }
    if !template.contains("$I") && !template.contains("$D") {
        return Err(Error::bad(
            "Name template must contain $I (backup id) or $D (creation date) so that backups get distinct names",
        ));
    }
    if template.contains('/') || template.contains('\\') || template.contains('\0') || template.contains("..") {
        return Err(Error::bad("Name template cannot contain '/', '\\', '..' or NUL"));
    }
    if template.starts_with('.') {
        return Err(Error::bad("Name template cannot start with '.' (names starting with '.' are bakch's own)"));
    }
    if template.len() > 200 {
        return Err(Error::bad("Name template is longer than 200 characters"));
    }
    Ok(())
}

/// A location is an absolute folder outside bakch's data folder; returns it normalised.
pub fn validate_location(location: &str, data_dir: &Path) -> Result<String> {
    let raw = location.trim();
    if raw.is_empty() {
        return Err(Error::bad("Location cannot be blank"));
    }
    if raw.contains('\0') {
        return Err(Error::bad("Location cannot contain NUL"));
    }
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err(Error::bad(format!("Location '{raw}' must be an absolute path")));
    }
    let mut clean = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::Normal(c) => clean.push(c),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::bad(format!("Location '{raw}' cannot contain '..'")));
            }
        }
    }
    if clean == Path::new("/") {
        return Err(Error::bad("Location cannot be the root folder '/'"));
    }
    // Compare both the written and the resolved form so a symlink cannot smuggle it in.
    let resolved = resolve_existing_prefix(&clean);
    let data_resolved = resolve_existing_prefix(data_dir);
    if clean.starts_with(data_dir) || resolved.starts_with(&data_resolved) {
        return Err(Error::bad(format!(
            "Location '{}' is inside bakch's data folder {}; choose a folder outside it",
            clean.display(),
            data_dir.display()
        )));
    }
    Ok(clean.to_string_lossy().into_owned())
}

/// Canonicalises the longest existing prefix of `path` and appends the rest.
pub fn resolve_existing_prefix(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name().map(|s| s.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    for part in rest.into_iter().rev() {
        out.push(part);
    }
    out
}

/// `$D` in names: no ':' so names work on SMB shares.
pub const DATE_FORMAT: &str = "%Y-%m-%d_%H-%M-%S";

/// Expands `$I` (backup id), `$D` (creation date, UTC) and `$M` (`manual`/`auto`).
pub fn expand_name_template(template: &str, backup_id: &str, created_at: DateTime<Utc>, manual: bool) -> String {
    template
        .replace("$I", backup_id)
        .replace("$D", &created_at.format(DATE_FORMAT).to_string())
        .replace("$M", if manual { "manual" } else { "auto" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn data() -> PathBuf {
        PathBuf::from("/srv/bakch-data")
    }

    #[test]
    fn expands_every_placeholder() {
        let at = Utc.with_ymd_and_hms(2025, 7, 11, 12, 57, 17).unwrap();
        assert_eq!(expand_name_template("b-$I-$D-$M", "abc", at, true), "b-abc-2025-07-11_12-57-17-manual");
        assert_eq!(expand_name_template("$D$M", "x", at, false), "2025-07-11_12-57-17auto");
    }

    #[test]
    fn name_template_rules() {
        assert!(validate_name_template("backup-$I").is_ok());
        assert!(validate_name_template("backup-$D").is_ok());
        for bad in ["", "  ", "backup", "a/$I", "..$I", "a\\$I", ".hidden-$I"] {
            assert!(validate_name_template(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn location_rules() {
        assert_eq!(validate_location("/var/backups//x/./", &data()).unwrap(), "/var/backups/x");
        for bad in ["", "relative/path", "/", "/var/../etc", "/srv/bakch-data", "/srv/bakch-data/store/x"] {
            assert!(validate_location(bad, &data()).is_err(), "{bad:?} should be refused");
        }
        assert!(validate_location("/srv/bakch-data-other", &data()).is_ok());
    }

    #[test]
    fn control_characters_are_refused_in_every_name_like_field() {
        let valid = || TargetInput::from_json(&full()).unwrap().into_new_target("id".into()).unwrap();
        assert!(valid().normalize_and_validate(&data()).is_ok());
        type Set = fn(&mut Target, String);
        let fields: [(&str, Set); 5] = [
            ("Target name", |t, v| t.name = format!("n{v}")),
            ("Name template", |t, v| t.name_template = format!("b-$I{v}")),
            ("Location", |t, v| t.location = format!("/tmp/x{v}")),
            ("Alias", |t, v| t.alias = Some(format!("a{v}"))),
            ("Tags", |t, v| t.tags = vec![format!("t{v}")]),
        ];
        for (field, set) in fields {
            for c in ["\n", "\r", "\t", "\0", "\u{7f}", "\u{85}", "\u{1b}"] {
                let mut t = valid();
                set(&mut t, c.to_string());
                let err = t.normalize_and_validate(&data()).unwrap_err().to_string();
                assert!(err.starts_with(&format!("{field} cannot contain control characters")), "{field} {c:?}: {err}");
            }
        }
    }

    #[test]
    fn tags_are_cleaned() {
        let tags: Vec<String> = ["a", ",", "b,c", " a ", ""].iter().map(|s| s.to_string()).collect();
        assert_eq!(normalize_tags(&tags).unwrap(), vec!["a", "b", "c"]);
    }

    fn full() -> serde_json::Value {
        json!({"name": "n", "backup_type": "multi", "recycle_criteria": "count", "recycle_value": 3,
               "recycle_action": "recycle", "location": "/tmp/x", "name_template": "b-$I",
               "deduplicate": false, "alias": null, "min_backups": 1})
    }

    #[test]
    fn create_requires_each_field() {
        for key in
            ["name", "backup_type", "recycle_criteria", "recycle_value", "recycle_action", "location", "name_template"]
        {
            let mut body = full();
            body.as_object_mut().unwrap().remove(key);
            let err = TargetInput::from_json(&body).and_then(|i| i.into_new_target("id".into()));
            assert_eq!(err.unwrap_err().to_string(), format!("Parameter '{key}' required"));
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
        let change = TargetInput::from_json(&json!({"backup_type": "single"})).unwrap().apply_to(&t);
        assert!(change.is_err());
        let bad = TargetInput::from_json(&json!({"recycle_value": "many"}));
        assert!(bad.unwrap_err().to_string().contains("recycle_value"));
    }
}
