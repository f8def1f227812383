//! Reading typed fields out of a JSON object (or a form's text) with the contract's error
//! messages (`Parameter 'name' required`, `Parameter 'x' must be ...`); each error names its field.

use serde_json::{Map, Value};

use crate::error::{Code, Error, Result};

/// A JSON object whose fields are read one by one.
pub struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// Fails unless the body is a JSON object.
    pub fn of(value: &'a Value) -> Result<Fields<'a>> {
        value.as_object().map(Fields).ok_or_else(|| Error::bad("Request body must be a JSON object"))
    }

    /// True when the key is present (even as null).
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The raw value of a key, null included.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }

    /// Present and not null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    pub fn required<T>(&self, key: &str, read: fn(&Self, &str) -> Result<Option<T>>) -> Result<T> {
        read(self, key)?.ok_or_else(|| required(key))
    }

    pub fn string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::invalid(key, Code::WrongType, format!("Parameter '{key}' must be a string"))),
        }
    }

    /// A non-negative integer; integral floats (`3.0`) and digit strings are accepted.
    pub fn count(&self, key: &str) -> Result<Option<i64>> {
        let n = match self.get(key) {
            None => return Ok(None),
            Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i,
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
                _ => return Err(not_count(key)),
            },
            Some(Value::String(s)) => return parse_count(key, s).map(Some),
            Some(_) => return Err(not_count(key)),
        };
        if n < 0 {
            return Err(not_count(key));
        }
        Ok(Some(n))
    }

    /// A boolean; also `0`/`1` and the strings the Python clients send (see [`parse_bool`]).
    pub fn boolean(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
            Some(Value::String(s)) => parse_bool(s).map(Some).ok_or_else(|| not_bool(key)),
            Some(_) => Err(not_bool(key)),
        }
    }

    /// A list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        let bad = || Error::invalid(key, Code::WrongType, format!("Parameter '{key}' must be a list of strings"));
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }
}

/// The error for a missing field, worded as the official server does.
pub fn required(key: &str) -> Error {
    Error::invalid(key, Code::Required, format!("Parameter '{key}' required"))
}

/// The error for a field that is not one of the boolean forms.
fn not_bool(key: &str) -> Error {
    Error::invalid(key, Code::WrongType, format!("Parameter '{key}' must be true or false (or 1 or 0)"))
}

fn not_count(key: &str) -> Error {
    Error::invalid(key, Code::WrongType, format!("Parameter '{key}' must be a non-negative integer"))
}

/// A non-negative integer written as text (digits, surrounding spaces allowed).
pub fn parse_count(key: &str, text: &str) -> Result<i64> {
    text.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| not_count(key))
}

/// A size in bytes written by a person: digits with an optional binary unit (`500M`, `10 GiB`,
/// `1.5T`; `K`, `M`, `G`, `T` are powers of 1024).
pub fn parse_size(key: &str, text: &str) -> Result<i64> {
    let bad = || {
        Error::invalid(
            key,
            Code::WrongType,
            format!("Parameter '{key}' must be a size in bytes, such as 1073741824, 500M or 10G"),
        )
    };
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = (t[..split].trim(), t[split..].trim().to_ascii_uppercase());
    let scale: f64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024f64.powi(2),
        "G" => 1024f64.powi(3),
        "T" => 1024f64.powi(4),
        _ => return Err(bad()),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let bytes = (n * scale).round();
    if !(0.0..9.0e18).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// A web form's checkbox: browsers send `on` (or the input's value) when checked and nothing
/// when not; an explicit `0`/`false`/`off` (a hidden input before the box) reads as unchecked.
pub fn checkbox(value: &str) -> bool {
    parse_bool(value).unwrap_or(!value.is_empty() && !value.trim().eq_ignore_ascii_case("off"))
}

/// `0`/`1` and `true`/`false` in any case, as the Python clients send them. Other words
/// (`yes`, `on`, `y`) are refused: a typo must not turn into a silent choice. Web checkboxes,
/// which send `on`, are read by [`checkbox`].
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" => Some(true),
        "0" => Some(false),
        t if t.eq_ignore_ascii_case("true") => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_typed_fields_and_names_the_bad_one() {
        let v = json!({"n": 3, "f": 2.0, "s": "x", "b": "True", "neg": -1, "l": ["a", 1]});
        let f = Fields::of(&v).unwrap();
        assert_eq!(f.count("n").unwrap(), Some(3));
        assert_eq!(f.count("f").unwrap(), Some(2));
        assert_eq!(f.string("s").unwrap().as_deref(), Some("x"));
        assert_eq!(f.boolean("b").unwrap(), Some(true));
        assert_eq!(f.count("missing").unwrap(), None);
        assert!(f.count("neg").unwrap_err().to_string().contains("'neg'"));
        assert!(f.strings("l").is_err());
        assert_eq!(f.required("missing", Fields::string).unwrap_err().to_string(), "Parameter 'missing' required");
        assert!(Fields::of(&json!([1])).is_err());
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("q", "1024").unwrap(), 1024);
        assert_eq!(parse_size("q", "500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("q", "10 GiB").unwrap(), 10 << 30);
        assert_eq!(parse_size("q", "1.5k").unwrap(), 1536);
        for bad in ["", "x", "-1", "5Q", "1e9"] {
            assert_eq!(parse_size("q", bad).unwrap_err().field(), Some("q"), "{bad}");
        }
    }

    #[test]
    fn booleans_are_only_true_false_one_zero() {
        for (text, want) in [("1", true), ("0", false), ("true", true), ("False", false), ("TRUE", true)] {
            assert_eq!(parse_bool(text), Some(want), "{text}");
        }
        for text in ["yes", "no", "on", "off", "y", "2", "", "truthy"] {
            assert_eq!(parse_bool(text), None, "{text}");
        }
        let v = json!({"a": 2, "b": "yes", "c": [true]});
        let f = Fields::of(&v).unwrap();
        for key in ["a", "b", "c"] {
            assert!(f.boolean(key).unwrap_err().to_string().contains(&format!("'{key}'")), "{key}");
        }
    }
}
