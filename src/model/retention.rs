//! Which backups retention takes, decided from their ids and server-assigned creation times:
//! Backup-chan's `count`/`age` criteria, or a GFS `keep` policy with restic's semantics.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::target::RecycleCriteria;
use crate::error::{Code, Error, Result};

/// The rule of one target.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub criteria: RecycleCriteria,
    pub value: i64,
    pub min_backups: i64,
}

/// The largest count a keep rule takes (more backups than any target will hold).
pub const MAX_KEEP: u32 = 1_000_000;

/// A GFS policy, as restic's `forget --keep-*` options: a backup is kept when any rule keeps it.
/// `last` keeps the newest n; `hourly`..`yearly` keep the newest backup of each of the newest n
/// hours, days, ISO weeks, months and years that have one (in the server's time zone), and the
/// oldest backup as well while a rule has counts left; `within` keeps every backup younger
/// than that span before the newest backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeepPolicy {
    #[serde(default)]
    pub last: u32,
    #[serde(default)]
    pub hourly: u32,
    #[serde(default)]
    pub daily: u32,
    #[serde(default)]
    pub weekly: u32,
    #[serde(default)]
    pub monthly: u32,
    #[serde(default)]
    pub yearly: u32,
    /// restic's duration: `1y6m`, `30d`, `12h` (years, months, days, hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "30d")]
    pub within: Option<Within>,
}

impl KeepPolicy {
    /// The counts by the names clients use (`keep.daily`, the form's `keep_daily`).
    pub const COUNTS: [&'static str; 6] = ["last", "hourly", "daily", "weekly", "monthly", "yearly"];

    pub fn count_mut(&mut self, name: &str) -> Option<&mut u32> {
        Some(match name {
            "last" => &mut self.last,
            "hourly" => &mut self.hourly,
            "daily" => &mut self.daily,
            "weekly" => &mut self.weekly,
            "monthly" => &mut self.monthly,
            "yearly" => &mut self.yearly,
            _ => return None,
        })
    }

    pub fn count(&self, name: &str) -> u32 {
        let mut copy = *self;
        copy.count_mut(name).map(|n| *n).unwrap_or(0)
    }

    /// A policy that keeps nothing by any rule is no policy.
    pub fn is_empty(&self) -> bool {
        Self::COUNTS.iter().all(|c| self.count(c) == 0) && self.within.is_none()
    }
}

/// A calendar span as restic writes it (`2y5m7d3h`): taken from the newest backup's local time
/// with Go's calendar arithmetic (a month back from 31 March is 3 March, as restic computes it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Within {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

impl Within {
    /// Parses `1y2m3d4h` (any of the parts, in any order, at least one, not all zero); `field`
    /// names the field in the error.
    pub fn parse(field: &str, text: &str) -> Result<Within> {
        let bad = || {
            Error::invalid(
                field,
                Code::Invalid,
                format!(
                    "Parameter '{field}' must be a span such as 30d, 12h, 6m or 1y2m (y years, m months, d days, h hours), not '{}'",
                    text.trim()
                ),
            )
        };
        let mut w = Within::default();
        let mut digits = String::new();
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: u32 = digits.parse().ok().filter(|n| *n <= 100_000).ok_or_else(bad)?;
            digits.clear();
            let slot = match c {
                'y' => &mut w.years,
                'm' => &mut w.months,
                'd' => &mut w.days,
                'h' => &mut w.hours,
                _ => return Err(bad()),
            };
            *slot = slot.saturating_add(n);
        }
        if !digits.is_empty() || w == Within::default() {
            return Err(bad());
        }
        Ok(w)
    }

    /// The moment `self` before `latest`, in `tz`'s calendar.
    fn before<Tz: TimeZone>(&self, latest: DateTime<Utc>, tz: &Tz) -> DateTime<Utc> {
        let local = latest.with_timezone(tz).naive_local();
        // Go's AddDate: months first (normalised into years), then days overflowing freely.
        let months = local.year() as i64 * 12 + local.month0() as i64 - self.years as i64 * 12 - self.months as i64;
        let (year, month0) = (months.div_euclid(12) as i32, months.rem_euclid(12) as u32);
        let first = NaiveDate::from_ymd_opt(year, month0 + 1, 1).unwrap_or(NaiveDate::MIN);
        let date = first + Duration::days(local.day() as i64 - 1 - self.days as i64);
        let wall = date.and_time(local.time());
        let at = tz.from_local_datetime(&wall).earliest().map(|d| d.with_timezone(&Utc)).unwrap_or(latest);
        at - Duration::hours(self.hours as i64)
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [(self.years, 'y'), (self.months, 'm'), (self.days, 'd'), (self.hours, 'h')] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Within {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Within {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Within, D::Error> {
        let text = String::deserialize(d)?;
        Within::parse("within", &text).map_err(serde::de::Error::custom)
    }
}

/// Why a backup stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Pinned: retention never takes it.
    Pinned,
    /// Among the `min_backups` newest.
    MinBackups,
    /// The target has no rule (`recycle_criteria` none, no keep policy).
    NoRule,
    /// Among the `count` newest.
    Count,
    /// Younger than `age` days.
    Age,
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    Within,
}

/// A backup as retention sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub created_at: DateTime<Utc>,
    pub pinned: bool,
}

/// What retention decides for one backup: kept (and why), or taken (no reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<'a> {
    pub id: &'a str,
    pub reasons: Vec<Reason>,
}

impl Verdict<'_> {
    #[cfg(test)]
    pub fn kept(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// The whole retention policy of a target.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub rule: Rule,
    /// When set, it decides instead of `rule.criteria` (which the official clients still see).
    pub keep: Option<KeepPolicy>,
}

/// Decides every active backup of a target, newest first. A pinned backup is always kept (it
/// still fills its buckets, as restic's `--keep-tag` does); the `min_backups` newest are always
/// kept. `tz` is the calendar the hourly..yearly buckets follow.
pub fn plan<'a, Tz: TimeZone>(
    policy: Policy,
    backups: &[Candidate<'a>],
    now: DateTime<Utc>,
    tz: &Tz,
) -> Vec<Verdict<'a>> {
    let mut list = backups.to_vec();
    list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(a.id)));
    let mut verdicts: Vec<Verdict<'a>> = list.iter().map(|b| Verdict { id: b.id, reasons: Vec::new() }).collect();
    for (v, b) in verdicts.iter_mut().zip(&list) {
        if b.pinned {
            v.reasons.push(Reason::Pinned);
        }
    }
    match policy.keep.filter(|k| !k.is_empty()) {
        Some(keep) => apply_keep(&keep, &list, &mut verdicts, tz),
        None => {
            let rule = policy.rule;
            match rule.criteria {
                RecycleCriteria::None => verdicts.iter_mut().for_each(|v| v.reasons.push(Reason::NoRule)),
                RecycleCriteria::Count => {
                    let n = rule.value.max(0) as usize;
                    verdicts.iter_mut().take(n).for_each(|v| v.reasons.push(Reason::Count));
                }
                RecycleCriteria::Age => {
                    let cutoff = now - Duration::days(rule.value.clamp(0, 1_000_000));
                    for (v, b) in verdicts.iter_mut().zip(&list) {
                        if b.created_at >= cutoff {
                            v.reasons.push(Reason::Age);
                        }
                    }
                }
            }
        }
    }
    let protected = policy.rule.min_backups.max(0) as usize;
    verdicts.iter_mut().take(protected).for_each(|v| v.reasons.push(Reason::MinBackups));
    verdicts
}

/// restic's `ApplyPolicy` over a list sorted newest first.
fn apply_keep<Tz: TimeZone>(keep: &KeepPolicy, list: &[Candidate], verdicts: &mut [Verdict], tz: &Tz) {
    let Some(latest) = list.first().map(|b| b.created_at) else { return };
    let since = keep.within.map(|w| w.before(latest, tz));
    type Bucket = fn(NaiveBucket, usize) -> i64;
    let always: Bucket = |_, nr| nr as i64;
    let hour: Bucket = |t, _| t.ymd() * 100 + t.hour;
    let day: Bucket = |t, _| t.ymd();
    let week: Bucket = |t, _| t.iso_year * 100 + t.iso_week;
    let month: Bucket = |t, _| t.year * 100 + t.month;
    let year: Bucket = |t, _| t.year;
    let mut buckets: [(u32, Bucket, Option<i64>, Reason); 6] = [
        (keep.last, always, None, Reason::Last),
        (keep.hourly, hour, None, Reason::Hourly),
        (keep.daily, day, None, Reason::Daily),
        (keep.weekly, week, None, Reason::Weekly),
        (keep.monthly, month, None, Reason::Monthly),
        (keep.yearly, year, None, Reason::Yearly),
    ];
    let oldest = list.len() - 1;
    for (nr, (b, v)) in list.iter().zip(verdicts.iter_mut()).enumerate() {
        if since.is_some_and(|t| b.created_at > t) {
            v.reasons.push(Reason::Within);
        }
        let local = NaiveBucket::of(b.created_at, tz);
        for (count, bucket, last, reason) in buckets.iter_mut() {
            if *count == 0 {
                continue;
            }
            let value = bucket(local, nr);
            // The oldest backup also stays while a rule has counts left: the longest history.
            if Some(value) != *last || nr == oldest {
                *last = Some(value);
                *count -= 1;
                v.reasons.push(*reason);
            }
        }
    }
}

/// A backup's local calendar fields.
#[derive(Debug, Clone, Copy)]
struct NaiveBucket {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    iso_year: i64,
    iso_week: i64,
}

impl NaiveBucket {
    fn of<Tz: TimeZone>(at: DateTime<Utc>, tz: &Tz) -> NaiveBucket {
        let l = at.with_timezone(tz).naive_local();
        let w = l.iso_week();
        NaiveBucket {
            year: l.year() as i64,
            month: l.month() as i64,
            day: l.day() as i64,
            hour: l.hour() as i64,
            iso_year: w.year() as i64,
            iso_week: w.week() as i64,
        }
    }

    fn ymd(self) -> i64 {
        self.year * 10_000 + self.month * 100 + self.day
    }
}

/// Returns the ids to recycle or delete among a target's active (unpinned) backups.
/// `count` keeps the `value` newest; `age` takes those older than `value` days; neither ever
/// leaves fewer than `min_backups` active.
#[cfg(test)]
pub fn select<'a>(rule: Rule, backups: &[(&'a str, DateTime<Utc>)], now: DateTime<Utc>) -> Vec<&'a str> {
    let candidates: Vec<Candidate> =
        backups.iter().map(|(id, at)| Candidate { id, created_at: *at, pinned: false }).collect();
    plan(Policy { rule, keep: None }, &candidates, now, &Utc).into_iter().filter(|v| !v.kept()).map(|v| v.id).collect()
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

    fn daily_2025() -> Vec<(String, DateTime<Utc>)> {
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        (0..365).map(|d| (format!("{d:03}"), start + Duration::days(d))).collect()
    }

    fn kept_days(keep: KeepPolicy, list: &[(String, DateTime<Utc>)], pinned: &[&str]) -> Vec<String> {
        let c: Vec<Candidate> = list
            .iter()
            .map(|(id, at)| Candidate { id, created_at: *at, pinned: pinned.contains(&id.as_str()) })
            .collect();
        let rule = Rule { criteria: RecycleCriteria::None, value: 0, min_backups: 0 };
        let mut out: Vec<String> = plan(Policy { rule, keep: Some(keep) }, &c, now(), &Utc)
            .into_iter()
            .filter(Verdict::kept)
            .map(|v| list.iter().find(|(id, _)| id == v.id).unwrap().1.format("%m-%d").to_string())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn gfs_over_a_year_of_dailies_matches_restic() {
        let keep = KeepPolicy { daily: 7, weekly: 4, monthly: 12, yearly: 3, ..Default::default() };
        // restic: 7 days; ISO weeks 2026-W01 (Dec 29-31), W52, W51, W50; 12 month ends; the year
        // 2025, and the oldest backup because `yearly` still has counts left.
        let want = [
            "01-01", "01-31", "02-28", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30", "10-31", "11-30",
            "12-14", "12-21", "12-25", "12-26", "12-27", "12-28", "12-29", "12-30", "12-31",
        ];
        assert_eq!(kept_days(keep, &daily_2025(), &[]), want);
    }

    #[test]
    fn last_within_and_pinned() {
        let list = daily_2025();
        let keep = KeepPolicy { last: 2, ..Default::default() };
        assert_eq!(kept_days(keep, &list, &[]), ["12-30", "12-31"]);
        // A pinned backup stays whatever the rules say, and still takes its place in them.
        assert_eq!(kept_days(keep, &list, &["100", "364"]), ["04-11", "12-30", "12-31"]);
        // within 1m of Dec 31 12:00 is after Nov 31 = Dec 1 12:00 (Go's calendar): Dec 2..31.
        let keep = KeepPolicy { within: Some(Within::parse("within", "1m").unwrap()), ..Default::default() };
        let kept = kept_days(keep, &list, &[]);
        assert_eq!((kept.len(), kept.first().map(String::as_str)), (30, Some("12-02")));
        let keep = KeepPolicy { within: Some(Within::parse("w", "1d12h").unwrap()), ..Default::default() };
        // 1d12h before Dec 31 12:00 is Dec 30 00:00.
        assert_eq!(kept_days(keep, &list, &[]), ["12-30", "12-31"]);
    }

    #[test]
    fn hourly_buckets_follow_the_time_zone() {
        // Two backups in the same UTC day but different days at UTC+2.
        let a = Utc.with_ymd_and_hms(2025, 3, 1, 21, 30, 0).unwrap();
        let b = Utc.with_ymd_and_hms(2025, 3, 1, 22, 30, 0).unwrap();
        let c =
            [Candidate { id: "a", created_at: a, pinned: false }, Candidate { id: "b", created_at: b, pinned: false }];
        let rule = Rule { criteria: RecycleCriteria::None, value: 0, min_backups: 0 };
        let keep = KeepPolicy { daily: 1, ..Default::default() };
        let policy = Policy { rule, keep: Some(keep) };
        // One daily and the oldest (counts left? no: daily 1 is used by b) -> only b in UTC.
        let kept = |tz: &chrono::FixedOffset| -> Vec<&str> {
            plan(policy, &c, now(), tz).into_iter().filter(Verdict::kept).map(|v| v.id).collect()
        };
        assert_eq!(kept(&chrono::FixedOffset::east_opt(0).unwrap()), ["b"]);
        let keep2 = KeepPolicy { daily: 2, ..Default::default() };
        let p2 = Policy { rule, keep: Some(keep2) };
        let east = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
        let v: Vec<&str> = plan(p2, &c, now(), &east).into_iter().filter(Verdict::kept).map(|v| v.id).collect();
        assert_eq!(v, ["b", "a"]);
    }

    #[test]
    fn within_parses_restic_spans() {
        let w = Within::parse("k", "1y2m3d4h").unwrap();
        assert_eq!((w.years, w.months, w.days, w.hours), (1, 2, 3, 4));
        assert_eq!(w.to_string(), "1y2m3d4h");
        for bad in ["", "0d", "5", "d", "3w", "-1d", "1.5d"] {
            let err = Within::parse("keep_within", bad).unwrap_err();
            assert_eq!(err.field(), Some("keep_within"), "{bad}");
        }
    }
}
