//! Whether a target's backups are healthy: its [`HealthState`] judged from a few facts (when
//! the last backup arrived, how the newest upload ended, what the integrity check found), and
//! when that judgement would change with time alone, so the monitor can wake up then.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// A target's health, from worst to best as the list is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// The integrity check flagged one of its active backups.
    Damaged,
    /// The newest upload job ended in ERROR and no backup arrived since.
    Failed,
    /// No backup within `expected_interval` plus the grace.
    Late,
    /// Monitored, but no backup yet.
    Never,
    /// Monitored and on time.
    Ok,
    /// `expected_interval` is 0.
    Unmonitored,
}

impl HealthState {
    pub const ALL: [HealthState; 6] = [
        HealthState::Damaged,
        HealthState::Failed,
        HealthState::Late,
        HealthState::Never,
        HealthState::Ok,
        HealthState::Unmonitored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Damaged => "damaged",
            HealthState::Failed => "failed",
            HealthState::Late => "late",
            HealthState::Never => "never",
            HealthState::Ok => "ok",
            HealthState::Unmonitored => "unmonitored",
        }
    }

    pub fn parse(s: &str) -> Option<HealthState> {
        HealthState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether `/api/health` counts it as fine: `ok`, and targets nobody asked to watch.
    pub fn is_fine(self) -> bool {
        matches!(self, HealthState::Ok | HealthState::Unmonitored)
    }
}

/// What the health of one target is judged from.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Seconds; 0 = not monitored.
    pub expected_interval: i64,
    /// When the newest finished backup was received.
    pub last_success: Option<DateTime<Utc>>,
    /// When the newest upload job that failed ended.
    pub last_failure: Option<DateTime<Utc>>,
    /// The newest upload job ended in ERROR, with this error.
    pub newest_upload_error: Option<String>,
    /// Active backups the integrity check flagged, and the newest one's name.
    pub damaged: i64,
    pub damaged_name: Option<String>,
    /// When the newest backups were received, newest first (for a proposed interval).
    pub recent: Vec<DateTime<Utc>>,
    /// When the target was created.
    pub created_at: Option<DateTime<Utc>>,
}

/// A target's health as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub state: HealthState,
    /// One sentence for a person.
    pub reason: String,
    /// Since when it is in this state (ISO 8601 UTC); null when not known.
    #[serde(serialize_with = "iso_utc_opt")]
    #[schema(value_type = Option<String>, required = true)]
    pub since: Option<DateTime<Utc>>,
    /// When the newest finished backup was received.
    #[serde(serialize_with = "iso_utc_opt")]
    #[schema(value_type = Option<String>, required = true)]
    pub last_success: Option<DateTime<Utc>>,
    /// When the newest failed upload ended.
    #[serde(serialize_with = "iso_utc_opt")]
    #[schema(value_type = Option<String>, required = true)]
    pub last_failure: Option<DateTime<Utc>>,
    /// When the next backup is due (the last one plus `expected_interval`); the target turns
    /// `late` once the grace after it has passed too.
    #[serde(serialize_with = "iso_utc_opt")]
    #[schema(value_type = Option<String>, required = true)]
    pub next_due: Option<DateTime<Utc>>,
    /// For an unmonitored target with a history: the interval its backups have kept (the
    /// median gap between its last ones), in seconds, as a proposal; never used for alarms.
    #[schema(required = true)]
    pub suggested_interval: Option<i64>,
}

/// ISO 8601 in UTC with `Z`, or null.
fn iso_utc_opt<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&iso_utc(*at)),
        None => s.serialize_none(),
    }
}

/// `2026-01-02T03:04:05Z`.
pub fn iso_utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How long after its due time a target is still `ok`: a tenth of its interval, so a daily
/// backup that runs a little late (up to 2 h 24 min) raises nothing.
pub fn grace(expected_interval: i64) -> Duration {
    Duration::milliseconds(expected_interval.max(0).saturating_mul(100))
}

/// Judges the facts at `now`. The order is the one of [`HealthState`]: a damaged backup or a
/// failed upload is told even for an unmonitored target, as they need no expectation.
pub fn evaluate(f: &Facts, now: DateTime<Utc>) -> Health {
    let interval = f.expected_interval.max(0);
    let next_due = f.last_success.filter(|_| interval > 0).map(|at| at + Duration::seconds(interval));
    let every = format!("expected every {}", human(interval));
    let (state, reason) = if f.damaged > 0 {
        let which = f.damaged_name.as_deref().map(|n| format!(", the newest {n}")).unwrap_or_default();
        let n = f.damaged;
        (
            HealthState::Damaged,
            format!("the integrity check found {n} damaged backup{}{which}", if n == 1 { "" } else { "s" }),
        )
    } else if let Some(error) = f.newest_upload_error.as_deref().filter(|_| f.last_failure >= f.last_success) {
        (HealthState::Failed, format!("the last upload failed: {}", shorten(error, 200)))
    } else if interval == 0 {
        let reason = match suggest(&f.recent) {
            Some(s) => format!(
                "not monitored; backups have come about every {}: set expected_interval to {s} to watch it",
                human(s)
            ),
            None => "not monitored (expected_interval is 0)".to_string(),
        };
        (HealthState::Unmonitored, reason)
    } else {
        match (f.last_success, next_due) {
            (Some(last), Some(due)) if now > due + grace(interval) => {
                (HealthState::Late, format!("no backup for {}; {every}", human((now - last).num_seconds())))
            }
            (Some(last), _) => {
                (HealthState::Ok, format!("last backup {} ago; {every}", human((now - last).num_seconds())))
            }
            (None, _) => (HealthState::Never, format!("no backup yet; {every}")),
        }
    };
    let suggested_interval = if interval == 0 { suggest(&f.recent) } else { None };
    Health {
        state,
        reason,
        since: None,
        last_success: f.last_success,
        last_failure: f.last_failure,
        next_due,
        suggested_interval,
    }
}

/// When the judgement of `f` would change with time alone: when an `ok` target turns `late`.
pub fn changes_at(f: &Facts, health: &Health) -> Option<DateTime<Utc>> {
    match (health.state, health.next_due) {
        (HealthState::Ok, Some(due)) => Some(due + grace(f.expected_interval)),
        _ => None,
    }
}

/// When a state that was not seen change began, as well as the facts tell.
pub fn derived_since(f: &Facts, health: &Health) -> Option<DateTime<Utc>> {
    match health.state {
        HealthState::Late => health.next_due.map(|d| d + grace(f.expected_interval)),
        HealthState::Failed => f.last_failure,
        HealthState::Ok => f.last_success,
        HealthState::Never | HealthState::Unmonitored => f.created_at,
        HealthState::Damaged => None,
    }
}

/// The median gap between the newest backups (at least three of them), in seconds.
fn suggest(recent: &[DateTime<Utc>]) -> Option<i64> {
    if recent.len() < 3 {
        return None;
    }
    let mut gaps: Vec<i64> = recent.windows(2).map(|w| (w[0] - w[1]).num_seconds().abs()).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    (median > 0).then_some(median)
}

/// `3 days`, `1 hour`, `45 seconds`: the largest whole unit.
pub fn human(secs: i64) -> String {
    let secs = secs.max(0);
    let (n, unit) = match secs {
        s if s >= 86_400 => (s / 86_400, "day"),
        s if s >= 3_600 => (s / 3_600, "hour"),
        s if s >= 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    #[test]
    fn states_follow_the_facts() {
        let day = 86_400;
        let mut f = Facts { expected_interval: day, ..Facts::default() };
        assert_eq!(evaluate(&f, at(0)).state, HealthState::Never);
        f.last_success = Some(at(0));
        let h = evaluate(&f, at(26));
        assert_eq!(h.state, HealthState::Ok, "within the grace of 2.4 h");
        assert_eq!(changes_at(&f, &h), Some(at(24) + Duration::minutes(144)));
        let h = evaluate(&f, at(72));
        assert_eq!((h.state, h.reason.as_str()), (HealthState::Late, "no backup for 3 days; expected every 1 day"));
        f.newest_upload_error = Some("bad archive".into());
        f.last_failure = Some(at(71));
        assert_eq!(evaluate(&f, at(72)).state, HealthState::Failed);
        f.last_success = Some(at(71) + Duration::seconds(1));
        assert_eq!(evaluate(&f, at(72)).state, HealthState::Ok, "a backup after the failure clears it");
        f.damaged = 1;
        assert_eq!(evaluate(&f, at(72)).state, HealthState::Damaged);
        let g = Facts { recent: vec![at(48), at(24), at(0)], ..Facts::default() };
        let h = evaluate(&g, at(50));
        assert_eq!((h.state, h.suggested_interval), (HealthState::Unmonitored, Some(day)));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(1), "1 second");
        assert_eq!(human(7200), "2 hours");
        assert_eq!(human(86_400 * 3 + 5), "3 days");
    }
}
