//! Which backups retention takes, decided from their ids and server-assigned creation times.

use chrono::{DateTime, Duration, Utc};

use super::target::RecycleCriteria;

/// The rule of one target.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub criteria: RecycleCriteria,
    pub value: i64,
    pub min_backups: i64,
}

/// Returns the ids to recycle or delete among a target's active backups.
/// `count` keeps the `value` newest; `age` takes those older than `value` days; neither ever
/// leaves fewer than `min_backups` active.
pub fn select<'a>(rule: Rule, backups: &[(&'a str, DateTime<Utc>)], now: DateTime<Utc>) -> Vec<&'a str> {
    let mut newest_first: Vec<(&str, DateTime<Utc>)> = backups.to_vec();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(a.0)));
    let protected = rule.min_backups.max(0) as usize;
    match rule.criteria {
        RecycleCriteria::None => Vec::new(),
        RecycleCriteria::Count => {
            let keep = (rule.value.max(0) as usize).max(protected);
            newest_first.iter().skip(keep).map(|b| b.0).collect()
        }
        RecycleCriteria::Age => {
            let cutoff = now - Duration::days(rule.value.clamp(0, 1_000_000));
            newest_first.iter().skip(protected).filter(|b| b.1 < cutoff).map(|b| b.0).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap()
    }

    fn days_ago(ids: &[(&'static str, i64)]) -> Vec<(&'static str, DateTime<Utc>)> {
        ids.iter().map(|(id, d)| (*id, now() - Duration::days(*d))).collect()
    }

    fn sorted(mut v: Vec<&str>) -> Vec<&str> {
        v.sort();
        v
    }

    #[test]
    fn count_keeps_the_newest() {
        let b = days_ago(&[("a", 5), ("b", 1), ("c", 3), ("d", 2)]);
        let rule = Rule { criteria: RecycleCriteria::Count, value: 2, min_backups: 0 };
        assert_eq!(sorted(select(rule, &b, now())), vec!["a", "c"]);
    }

    #[test]
    fn count_never_goes_below_min_backups() {
        let b = days_ago(&[("a", 5), ("b", 1), ("c", 3)]);
        let rule = Rule { criteria: RecycleCriteria::Count, value: 0, min_backups: 2 };
        assert_eq!(select(rule, &b, now()), vec!["a"]);
    }

    #[test]
    fn age_takes_old_ones_but_keeps_min_backups() {
        let b = days_ago(&[("a", 40), ("b", 35), ("c", 1)]);
        let rule = Rule { criteria: RecycleCriteria::Age, value: 30, min_backups: 0 };
        assert_eq!(sorted(select(rule, &b, now())), vec!["a", "b"]);
        let rule = Rule { min_backups: 2, ..rule };
        assert_eq!(select(rule, &b, now()), vec!["a"]);
        let all_old = days_ago(&[("a", 40), ("b", 35)]);
        let rule = Rule { min_backups: 2, ..rule };
        assert!(select(rule, &all_old, now()).is_empty());
    }

    #[test]
    fn none_takes_nothing() {
        let b = days_ago(&[("a", 400)]);
        let rule = Rule { criteria: RecycleCriteria::None, value: 0, min_backups: 0 };
        assert!(select(rule, &b, now()).is_empty());
    }
}
