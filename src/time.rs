//! Time formats: ISO 8601 in rows and JSON, HTTP dates where the official client expects them.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn now() -> DateTime<Utc> {
    Utc::now()
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
