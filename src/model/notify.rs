//! Notifications: the events bakch tells its owner about, and one delivery of one event to one
//! destination (a queued job, so it survives restarts and is retried with backoff).

use serde::{Deserialize, Serialize};

use super::health::HealthState;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Late,
    Failed,
    Damaged,
    /// Back to `ok` (a target), or enough free space again (the disk).
    Recovered,
    UnusualChange,
    DiskLow,
    /// A target's backups use its quota's warning level or more.
    QuotaWarning,
    /// A replica's sync or verification failed (once, until one succeeds again).
    ReplicaFailed,
    /// `bakch notify-test` or the web UI's button.
    Test,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::Late,
        EventKind::Failed,
        EventKind::Damaged,
        EventKind::Recovered,
        EventKind::UnusualChange,
        EventKind::DiskLow,
        EventKind::QuotaWarning,
        EventKind::ReplicaFailed,
        EventKind::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Late => "late",
            EventKind::Failed => "failed",
            EventKind::Damaged => "damaged",
            EventKind::Recovered => "recovered",
            EventKind::UnusualChange => "unusual_change",
            EventKind::DiskLow => "disk_low",
            EventKind::QuotaWarning => "quota_warning",
            EventKind::ReplicaFailed => "replica_failed",
            EventKind::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The event a target's change of health raises, if any: entering a bad state, or leaving
    /// one for `ok`. `None` as the old state is a target seen for the first time.
    pub fn of_change(old: Option<HealthState>, new: HealthState) -> Option<EventKind> {
        match new {
            HealthState::Late => Some(EventKind::Late),
            HealthState::Failed => Some(EventKind::Failed),
            HealthState::Damaged => Some(EventKind::Damaged),
            HealthState::Ok if matches!(old, Some(HealthState::Late | HealthState::Failed | HealthState::Damaged)) => {
                Some(EventKind::Recovered)
            }
            _ => None,
        }
    }
}

/// An event as every destination receives it (the webhook's JSON body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event: EventKind,
    /// Null for the disk and for a test.
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    /// The target's health state (`disk_low`/`ok` for the disk, `test` for a test).
    pub state: String,
    pub reason: String,
    /// ISO 8601 UTC.
    pub time: String,
    /// The backup an `unusual_change` is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// A repeat of an event whose state has not changed (see `[health] reminder_secs`).
    #[serde(default)]
    pub reminder: bool,
}

impl Event {
    /// The event of `bakch notify-test` and the web UI's test button.
    pub fn test(now: chrono::DateTime<chrono::Utc>) -> Event {
        Event {
            event: EventKind::Test,
            target_id: None,
            target_name: None,
            state: "test".into(),
            reason: "This is a test notification from bakch: this destination works.".into(),
            time: super::health::iso_utc(now),
            backup_id: None,
            reminder: false,
        }
    }

    /// A one-line title (the e-mail's subject, the ntfy title).
    pub fn title(&self) -> String {
        let what = self.target_name.as_deref().map(|n| format!("target '{n}'")).unwrap_or_else(|| "bakch".into());
        let again = if self.reminder { " (reminder)" } else { "" };
        match self.event {
            EventKind::Late => format!("{what} is late{again}"),
            EventKind::Failed => format!("{what}: upload failed{again}"),
            EventKind::Damaged => format!("{what}: damaged backup{again}"),
            EventKind::Recovered => format!("{what} recovered"),
            EventKind::UnusualChange => format!("{what}: unusual change"),
            EventKind::DiskLow => format!("bakch: the data disk is almost full{again}"),
            EventKind::QuotaWarning => format!("{what} is nearly at its quota{again}"),
            EventKind::ReplicaFailed => format!("bakch: {} failed{again}", self.state),
            EventKind::Test => "bakch: test notification".to_string(),
        }
    }
}

/// One event for one destination (by its name in the config).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub destination: String,
    pub event: Event,
}

/// Seconds to wait before the next try after `attempts` failed ones: 10 s, 30 s, 90 s, … up to
/// an hour; `None` once [`MAX_ATTEMPTS`] are spent.
pub fn backoff(attempts: i64) -> Option<i64> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let exp = attempts.clamp(1, 10) as u32 - 1;
    Some((10 * 3i64.pow(exp)).min(3600))
}

/// Tries of one delivery before it ends in ERROR (about a day with the backoff above).
pub const MAX_ATTEMPTS: i64 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_changes() {
        use HealthState::*;
        assert_eq!(EventKind::of_change(Some(Never), Ok), None);
        assert_eq!(EventKind::of_change(Some(Ok), Late), Some(EventKind::Late));
        assert_eq!(EventKind::of_change(Some(Late), Ok), Some(EventKind::Recovered));
        assert_eq!(EventKind::of_change(None, Ok), None);
        assert_eq!(EventKind::of_change(None, Failed), Some(EventKind::Failed));
        assert_eq!(backoff(1), Some(10));
        assert_eq!(backoff(3), Some(90));
        assert_eq!(backoff(20), Some(3600));
        assert_eq!(backoff(MAX_ATTEMPTS), None);
    }
}
