//! Time formats: ISO 8601 in rows and JSON, HTTP dates where the official client expects them.

use chrono::{DateTime, SecondsFormat, Utc};

/// The server's clock. Debug builds read `BAKCH_TEST_CLOCK_FILE` (a file holding an RFC 3339
/// time) at every call when it is set, so tests can make a year of daily backups in seconds;
/// a release binary ignores the variable, like the fault seam in `store::fault`.
pub fn now() -> DateTime<Utc> {
    #[cfg(debug_assertions)]
    if let Some(at) = test_clock::read() {
        return at;
    }
    Utc::now()
}

#[cfg(debug_assertions)]
mod test_clock {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use chrono::{DateTime, Utc};

    /// The time in the clock file, when the variable is set and the file holds one.
    pub fn read() -> Option<DateTime<Utc>> {
        static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
        let file = FILE.get_or_init(|| std::env::var_os("BAKCH_TEST_CLOCK_FILE").map(PathBuf::from)).as_ref()?;
        let text = std::fs::read_to_string(file).ok()?;
        super::parse_iso(text.trim())
    }
}

/// `2025-07-11T12:57:17.123456+00:00`: sortable as text, so rows keep sub-second order.
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, false)
}

pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

/// `Mon, 11 Aug 2025 17:33:29 GMT`, parsed by the official client with a fixed format.
pub fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats() {
        let at = Utc.with_ymd_and_hms(2025, 8, 11, 17, 33, 29).unwrap();
        assert_eq!(http_date(at), "Mon, 11 Aug 2025 17:33:29 GMT");
        assert_eq!(iso(at), "2025-08-11T17:33:29.000000+00:00");
        assert_eq!(parse_iso(&iso(at)), Some(at));
    }
}
