//! Targets: what they are, the rules a valid one follows, and name-template expansion.
//! What a client sends to make or change one is read by [`input`]; how targets are searched,
//! by [`search`]. Every refusal names the field at fault.

mod input;
mod search;

pub use input::{Intent, TargetInput};
pub use search::Search;

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Code, Error, Result};

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
                    _ => Err(Error::invalid($field, Code::NotAChoice, format!(
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
    /// Seconds within which a new backup is expected (plus a grace of a tenth of it); 0 = the
    /// target is not monitored. Official clients never send it, and an edit without it keeps it.
    #[serde(default)]
    pub expected_interval: i64,
    /// A GFS policy (restic's keep rules); when set it decides retention instead of
    /// `recycle_criteria`, which the official clients read and which keeps its value. Official
    /// clients never send it, and an edit without it keeps it.
    #[serde(default)]
    #[schema(required = true)]
    pub keep: Option<crate::model::retention::KeepPolicy>,
    /// The most disk its backups may use (bytes of distinct content, active and recycled); 0 =
    /// no quota.
    #[serde(default)]
    pub quota_bytes: i64,
    /// The share of the quota (percent) at which the target is reported as nearly full; 0 = no
    /// warning.
    #[serde(default = "default_quota_warning")]
    pub quota_warning_percent: i64,
}

fn default_quota_warning() -> i64 {
    DEFAULT_QUOTA_WARNING
}

/// The warning level a target gets when none is given.
pub const DEFAULT_QUOTA_WARNING: i64 = 90;

impl Target {
    /// Normalises fields (trimming, tag clean-up) and checks every rule that needs no database.
    /// `data_dir` is bakch's own folder, which no target may live in.
    pub fn normalize_and_validate(&mut self, data_dir: &Path) -> Result<()> {
        // Checked before trimming: these fields reach logs and pages, where a line break forges a line.
        refuse_control_chars("name", "Target name", &self.name)?;
        refuse_control_chars("name_template", "Name template", &self.name_template)?;
        refuse_control_chars("location", "Location", &self.location)?;
        if let Some(alias) = &self.alias {
            refuse_control_chars("alias", "Alias", alias)?;
        }
        for tag in &self.tags {
            refuse_control_chars("tags", "Tags", tag)?;
        }
        self.name = self.name.trim().to_string();
        if self.name.is_empty() {
            return Err(Error::invalid("name", Code::Invalid, "Target name cannot be blank"));
        }
        if self.name.chars().count() > 200 {
            return Err(Error::invalid("name", Code::Invalid, "Target name is longer than 200 characters"));
        }
        validate_name_template(&self.name_template)?;
        self.location = validate_location(&self.location, data_dir)?;
        if let Some(alias) = &self.alias {
            let alias = alias.trim().to_string();
            if alias.is_empty() {
                return Err(Error::invalid("alias", Code::Invalid, "Alias cannot be blank (send null for no alias)"));
            }
            if alias.len() > 64 || !alias.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(Error::invalid(
                    "alias",
                    Code::Invalid,
                    "Alias may only hold letters, digits, '-', '_' and '.', at most 64 of them",
                ));
            }
            self.alias = Some(alias);
        }
        self.tags = normalize_tags(&self.tags)?;
        if !(0..=MAX_EXPECTED_INTERVAL).contains(&self.expected_interval) {
            return Err(Error::invalid(
                "expected_interval",
                Code::Invalid,
                "Expected interval must be a whole number of seconds from 0 (not monitored) to 3153600000 (100 years)",
            ));
        }
        if self.quota_warning_percent > 100 {
            return Err(Error::invalid(
                "quota_warning_percent",
                Code::Invalid,
                "Quota warning must be a percentage from 0 (no warning) to 100",
            ));
        }
        if self.keep.is_some_and(|k| k.is_empty()) {
            self.keep = None;
        }
        if let Some(k) = &self.keep {
            for name in crate::model::retention::KeepPolicy::COUNTS {
                if k.count(name) > crate::model::retention::MAX_KEEP {
                    return Err(Error::invalid(
                        "keep",
                        Code::Invalid,
                        format!("Keep {name} must be at most {}", crate::model::retention::MAX_KEEP),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The retention policy the recycle job applies.
    pub fn policy(&self) -> crate::model::retention::Policy {
        crate::model::retention::Policy {
            rule: crate::model::retention::Rule {
                criteria: self.recycle_criteria,
                value: self.recycle_value,
                min_backups: self.min_backups,
            },
            keep: self.keep,
        }
    }

    /// Whether the recycle job has anything to do for it.
    pub fn has_retention(&self) -> bool {
        self.recycle_criteria != RecycleCriteria::None || self.keep.is_some()
    }
}

/// The longest `expected_interval`: 100 years, in seconds.
pub const MAX_EXPECTED_INTERVAL: i64 = 3_153_600_000;

/// Refuses a field holding a control character (line breaks, tabs, NUL, DEL, C1 codes);
/// `label` is how the message calls the field.
fn refuse_control_chars(field: &str, label: &str, value: &str) -> Result<()> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(Error::invalid(
            field,
            Code::Invalid,
            format!(
                "{label} cannot contain control characters such as line breaks or tabs (found {})",
                c.escape_default()
            ),
        )),
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
            return Err(Error::invalid("tags", Code::Invalid, format!("Tag '{tag}' is longer than 64 characters")));
        }
        out.push(tag.to_string());
    }
    if out.len() > 64 {
        return Err(Error::invalid("tags", Code::Invalid, "A target can carry at most 64 tags"));
    }
    Ok(out)
}

/// A name template must name each backup uniquely and stay one path component.
pub fn validate_name_template(template: &str) -> Result<()> {
    let bad = |msg: &str| Err(Error::invalid("name_template", Code::Invalid, msg));
    if template.trim().is_empty() {
        return bad("Name template cannot be blank");
    }
    if !template.contains("$I") && !template.contains("$D") {
        return bad(
            "Name template must contain $I (backup id) or $D (creation date) so that backups get distinct names",
        );
    }
    if template.contains('/') || template.contains('\\') || template.contains('\0') || template.contains("..") {
        return bad("Name template cannot contain '/', '\\', '..' or NUL");
    }
    if template.starts_with('.') {
        return bad("Name template cannot start with '.' (names starting with '.' are bakch's own)");
    }
    if template.len() > 200 {
        return bad("Name template is longer than 200 characters");
    }
    Ok(())
}

/// A location is an absolute folder outside bakch's data folder; returns it normalised.
pub fn validate_location(location: &str, data_dir: &Path) -> Result<String> {
    let bad = |msg: String| Error::invalid("location", Code::Invalid, msg);
    let raw = location.trim();
    if raw.is_empty() {
        return Err(bad("Location cannot be blank".into()));
    }
    if raw.contains('\0') {
        return Err(bad("Location cannot contain NUL".into()));
    }
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err(bad(format!("Location '{raw}' must be an absolute path")));
    }
    let mut clean = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::Normal(c) => clean.push(c),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(bad(format!("Location '{raw}' cannot contain '..'")));
            }
        }
    }
    if clean == Path::new("/") {
        return Err(bad("Location cannot be the root folder '/'".into()));
    }
    // The written form only: the resolved one (symlinks) is the ownership rule's, in the service.
    if clean.starts_with(data_dir) {
        return Err(bad(format!(
            "Location '{}' is inside bakch's data folder {}; choose a folder outside it",
            clean.display(),
            data_dir.display()
        )));
    }
    Ok(clean.to_string_lossy().into_owned())
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
        let full = json!({"name": "n", "backup_type": "multi", "recycle_criteria": "none", "location": "/tmp/x",
                          "name_template": "b-$I"});
        let valid = || TargetInput::from_json(&full).unwrap().into_new_target("id".into()).unwrap();
        assert!(valid().normalize_and_validate(&data()).is_ok());
        type Set = fn(&mut Target, String);
        let fields: [(&str, &str, Set); 5] = [
            ("Target name", "name", |t, v| t.name = format!("n{v}")),
            ("Name template", "name_template", |t, v| t.name_template = format!("b-$I{v}")),
            ("Location", "location", |t, v| t.location = format!("/tmp/x{v}")),
            ("Alias", "alias", |t, v| t.alias = Some(format!("a{v}"))),
            ("Tags", "tags", |t, v| t.tags = vec![format!("t{v}")]),
        ];
        for (label, key, set) in fields {
            for c in ["\n", "\r", "\t", "\0", "\u{7f}", "\u{85}", "\u{1b}"] {
                let mut t = valid();
                set(&mut t, c.to_string());
                let err = t.normalize_and_validate(&data()).unwrap_err();
                assert_eq!(err.field(), Some(key));
                let err = err.to_string();
                assert!(err.starts_with(&format!("{label} cannot contain control characters")), "{label} {c:?}: {err}");
            }
        }
    }

    #[test]
    fn tags_are_cleaned() {
        let tags: Vec<String> = ["a", ",", "b,c", " a ", ""].iter().map(|s| s.to_string()).collect();
        assert_eq!(normalize_tags(&tags).unwrap(), vec!["a", "b", "c"]);
    }
}
