//! Target search: the filters, and the one reading of them that the API's
//! `/api/target/search` and the web UI's targets list share.

/// Search filters; every given one must match.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Search {
    /// Part of the name (as for the location, name template and alias below).
    pub name: Option<String>,
    pub target_type: Option<String>,
    pub recycle_criteria: Option<String>,
    pub recycle_action: Option<String>,
    pub location: Option<String>,
    pub name_template: Option<String>,
    pub alias: Option<String>,
    pub deduplicate: Option<bool>,
    /// Tags the target must all carry.
    pub tags: Vec<String>,
}

impl Search {
    /// Reads filters from query pairs; `None` when none is given. The rules:
    /// - an empty value is no filter (the official CLI always sends `alias=`);
    /// - `type` is also read as `target_type` or `backup_type`; the enum filters are lower-cased,
    ///   and a client library's `BackupType.SINGLE` counts as `single`;
    /// - `deduplicate`: `on`, `true` or `1` (any case) is on, any other value off;
    /// - `tags`: split on spaces and commas (`a b`, `a,b` and `a, b` are the same two tags);
    /// - unknown keys (paging, sorting) are ignored.
    pub fn from_pairs(pairs: &[(String, String)]) -> Option<Search> {
        let mut s = Search::default();
        let mut any = false;
        for (key, value) in pairs {
            let value = value.trim().to_string();
            if value.is_empty() {
                continue;
            }
            let enum_value = || value.rsplit('.').next().unwrap_or(&value).to_ascii_lowercase();
            match key.as_str() {
                "name" => s.name = Some(value),
                "type" | "target_type" | "backup_type" => s.target_type = Some(enum_value()),
                "recycle_criteria" => s.recycle_criteria = Some(enum_value()),
                "recycle_action" => s.recycle_action = Some(enum_value()),
                "location" => s.location = Some(value),
                "name_template" => s.name_template = Some(value),
                "alias" => s.alias = Some(value),
                "deduplicate" => {
                    s.deduplicate = Some(matches!(value.to_ascii_lowercase().as_str(), "on" | "true" | "1"))
                }
                "tags" => s.tags = split_tags(&value),
                _ => continue,
            }
            any = true;
        }
        any.then_some(s)
    }
}

/// The tags of a search: split on spaces and commas, empties dropped.
fn split_tags(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn filters_and_their_rules() {
        assert_eq!(Search::from_pairs(&pairs(&[("alias", ""), ("page", "2")])), None);
        let s = Search::from_pairs(&pairs(&[("name", "foo"), ("alias", ""), ("type", "BackupType.SINGLE")])).unwrap();
        assert_eq!(s.name.as_deref(), Some("foo"));
        assert_eq!(s.alias, None);
        assert_eq!(s.target_type.as_deref(), Some("single"));
        for (text, want) in [("on", true), ("TRUE", true), ("1", true), ("off", false), ("no", false)] {
            assert_eq!(Search::from_pairs(&pairs(&[("deduplicate", text)])).unwrap().deduplicate, Some(want), "{text}");
        }
    }

    #[test]
    fn tags_split_on_spaces_and_commas() {
        for text in ["a b", "a,b", "a, b", " a,,b "] {
            assert_eq!(Search::from_pairs(&pairs(&[("tags", text)])).unwrap().tags, vec!["a", "b"], "{text}");
        }
    }

    #[test]
    fn the_api_and_the_web_list_read_the_same_search() {
        // The web list's query also carries sorting and paging, which are no filters.
        let api = pairs(&[("backup_type", "multi"), ("deduplicate", "on"), ("tags", "x y")]);
        let mut web = pairs(&[("type", "multi"), ("deduplicate", "on"), ("tags", "x,y")]);
        web.extend(pairs(&[("sort", "size"), ("dir", "desc"), ("page", "2")]));
        assert_eq!(Search::from_pairs(&api), Search::from_pairs(&web));
    }
}
