//! Health: each target's state, the data disk, the summary of `/api/health`, the change canary
//! run at a backup's completion, and the notifications a change of state queues.
//!
//! [`Service::check_health`] is the monitor's step: it judges every subject, stores each change
//! of state with the deliveries it raises in one transaction (so a change is told once, also
//! across restarts), and says when the next change could happen with time alone. The monitor
//! (`jobs/health.rs`) runs it after commits and at that time, never on a fixed poll.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::Service;
use crate::config::Destination;
use crate::db;
use crate::db::health::Known;
use crate::error::{Error, Result};
use crate::model::backup::{Backup, BackupFile};
use crate::model::canary::{self, Changes, Sample, Stored};
use crate::model::health::{self, Health, HealthState, iso_utc};
use crate::model::job::QueuedJob;
use crate::model::notify::{Delivery, Event, EventKind};
use crate::model::target::Target;
use crate::time;

/// The subject under which the data disk's state is kept.
const DISK: &str = "disk";
/// The longest the monitor sleeps: the disk's free space changes without a commit too.
pub const MAX_SLEEP: Duration = Duration::hours(1);
/// Previous backups the canary judges a change against.
const HISTORY: usize = 10;

/// `/api/health`'s figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// `ok` when every monitored target is `ok` and the disk is not low; else `unhealthy`.
    pub status: &'static str,
    /// Targets per state (every state is listed, with 0 when none).
    pub counts: BTreeMap<&'static str, i64>,
    /// The targets that are neither `ok` nor `unmonitored`, worst first.
    pub problems: Vec<Problem>,
    pub disk: Disk,
    /// Notification destinations whose last delivery failed.
    pub failing_destinations: Vec<FailingDestination>,
    /// Targets whose backups use their quota's warning level or more, fullest first. A warning,
    /// not a failure: it does not change `status`.
    pub quota_warnings: Vec<QuotaUse>,
}

/// How much of its quota a target's backups use (the figure the quota is enforced on: each
/// distinct content once).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuotaUse {
    pub target_id: String,
    pub target_name: String,
    pub used_bytes: i64,
    pub quota_bytes: i64,
    /// `used_bytes` as a whole percent of `quota_bytes` (may pass 100 after a quota is lowered).
    pub percent: i64,
    /// At or past the target's `quota_warning_percent`.
    pub warning: bool,
}

/// A target that is not fine.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    pub target_id: String,
    pub target_name: String,
    pub state: HealthState,
    pub reason: String,
    /// ISO 8601 UTC, null when not known.
    #[schema(required = true)]
    pub since: Option<String>,
}

/// The data folder's disk.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Disk {
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// Below `[health] disk_low_percent` of its size.
    pub low: bool,
    /// New content stored in the last 30 days (the canary's `bytes_new` of their backups).
    pub growth_bytes_30d: i64,
    /// When the disk is full if it keeps growing as in the last 30 days (ISO 8601 UTC); null
    /// when it does not grow.
    #[schema(required = true)]
    pub full_estimate: Option<String>,
    /// Bytes only held (deleted) backups keep; freed when their holds end (see `GET /api/held`).
    pub held_bytes: i64,
}

/// A destination whose newest delivery failed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailingDestination {
    pub name: String,
    pub error: String,
    /// ISO 8601, when that try ended.
    pub at: String,
}

/// One attempt on a target's history strip: a finished backup with its size, or a failed upload.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// `None` for a failed upload.
    pub size: Option<i64>,
}

impl Service {
    /// The last `n` attempts of a target (backups and failed uploads), oldest first: the
    /// dashboard's history strip.
    pub fn attempts(&self, target_id: &str, n: usize) -> Result<Vec<Attempt>> {
        let c = self.conn()?;
        let mut out: Vec<Attempt> = db::backups::recent_sizes(&c, target_id, n)?
            .into_iter()
            .filter_map(|(at, size)| Some(Attempt { at: time::parse_iso(&at)?, size: Some(size) }))
            .collect();
        out.extend(
            db::jobs::failures_of(&c, target_id, n)?
                .into_iter()
                .filter_map(|at| Some(Attempt { at: time::parse_iso(&at)?, size: None })),
        );
        out.sort_by_key(|a| a.at);
        let skip = out.len().saturating_sub(n);
        Ok(out.split_off(skip))
    }

    /// Upload jobs that failed within `failed_upload_keep_secs` (those a retry can still save).
    pub fn failed_upload_count(&self) -> Result<i64> {
        let since = time::now() - Duration::seconds(self.config.failed_upload_keep_secs.min(i64::MAX as u64) as i64);
        db::jobs::failed_uploads_since(&*self.conn()?, &time::iso(since))
    }

    /// Wakes one waiter after each database commit (the monitor).
    pub fn committed(&self) -> &'static tokio::sync::Notify {
        db::committed()
    }

    /// A target's health now, with since when (the monitor's record, or what the facts say).
    pub fn target_health(&self, t: &Target) -> Result<Health> {
        self.health_in(&*self.conn()?, t)
    }

    /// [`Self::target_health`] over a connection the caller holds.
    pub(super) fn health_in(&self, c: &rusqlite::Connection, t: &Target) -> Result<Health> {
        let facts = db::health::facts(c, &t.id, t.expected_interval)?;
        let mut h = health::evaluate(&facts, time::now());
        h.since = match db::health::known_one(c, &t.id)? {
            Some(k) if k.state == h.state.as_str() => time::parse_iso(&k.since),
            _ => health::derived_since(&facts, &h),
        };
        Ok(h)
    }

    /// One step of the monitor (see the module's comment); returns when the next change could
    /// come with time alone.
    pub fn check_health(&self) -> Result<DateTime<Utc>> {
        let now = time::now();
        let mut c = self.conn()?;
        let known = db::health::known(&c)?;
        let reminder = Duration::seconds(self.config.health.reminder_secs.min(i64::MAX as u64) as i64);
        let mut next = now + MAX_SLEEP;
        let mut writes: Vec<(String, Known)> = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let targets = db::targets::all(&c)?;
        for t in &targets {
            let facts = db::health::facts(&c, &t.id, t.expected_interval)?;
            let h = health::evaluate(&facts, now);
            if let Some(at) = health::changes_at(&facts, &h) {
                next = next.min(at);
            }
            let old = known.get(&t.id);
            let event = |kind: EventKind, reminder: bool| Event {
                event: kind,
                target_id: Some(t.id.clone()),
                target_name: Some(t.name.clone()),
                state: h.state.as_str().to_string(),
                reason: h.reason.clone(),
                time: iso_utc(now),
                backup_id: None,
                reminder,
            };
            match old {
                Some(k) if k.state == h.state.as_str() => {
                    // Unchanged: a reminder, when one is due.
                    let Some(kind) = EventKind::of_change(None, h.state).filter(|_| reminder > Duration::zero()) else {
                        continue;
                    };
                    let last = k.notified_at.as_deref().or(Some(&k.since)).and_then(time::parse_iso);
                    match last {
                        Some(last) if last + reminder <= now => {
                            events.push(event(kind, true));
                            writes.push((t.id.clone(), Known { notified_at: Some(time::iso(now)), ..k.clone() }));
                            next = next.min(now + reminder);
                        }
                        Some(last) => next = next.min(last + reminder),
                        None => {}
                    }
                }
                _ => {
                    let old_state = old.and_then(|k| HealthState::parse(&k.state));
                    let kind = EventKind::of_change(old_state, h.state);
                    tracing::info!(
                        "target '{}' is now {} (was {}): {}",
                        t.name,
                        h.state.as_str(),
                        old_state.map_or("unknown", HealthState::as_str),
                        h.reason
                    );
                    if let Some(kind) = kind {
                        events.push(event(kind, false));
                    }
                    // When the facts tell when it began, that (so a reader before and after this
                    // record sees the same); else when it was noticed.
                    let since = health::derived_since(&facts, &h).unwrap_or(now);
                    writes.push((
                        t.id.clone(),
                        Known {
                            state: h.state.as_str().to_string(),
                            reason: h.reason.clone(),
                            since: time::iso(since),
                            notified_at: kind.map(|_| time::iso(now)),
                        },
                    ));
                }
            }
        }
        self.check_disk(&known, now, &mut writes, &mut events)?;
        for t in targets.iter() {
            self.check_quota_level(t, &known, now, &mut writes, &mut events)?;
        }
        let gone: Vec<&String> = known
            .keys()
            .filter(|s| *s != DISK && !targets.iter().any(|t| &t.id == *s || quota_subject(&t.id) == **s))
            .collect();
        if writes.is_empty() && events.is_empty() && gone.is_empty() {
            return Ok(next);
        }
        let jobs: Vec<QueuedJob> = events.iter().flat_map(|e| self.deliveries(e)).collect();
        db::with_tx(&mut c, |tx| {
            for (subject, k) in &writes {
                db::health::put(tx, subject, k)?;
            }
            for subject in &gone {
                db::health::forget(tx, subject)?;
            }
            for job in &jobs {
                db::jobs::enqueue(tx, job)?;
            }
            Ok(())
        })?;
        if !jobs.is_empty() {
            self.job_ready.notify_one();
        }
        Ok(next)
    }

    fn check_disk(
        &self,
        known: &std::collections::HashMap<String, Known>,
        now: DateTime<Utc>,
        writes: &mut Vec<(String, Known)>,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let (free, total) = self.store.disk_space()?;
        let low = self.disk_is_low(free, total);
        let state = if low { "low" } else { "ok" };
        let mut reason = format!(
            "{} of {} free on the data disk{}",
            bytes(free),
            bytes(total),
            if low { format!(", under {} %", self.config.health.disk_low_percent) } else { String::new() }
        );
        // Deleted backups are held, so deleting frees nothing at once: say what is held.
        let held = self.held_usage()?;
        if low && held.held_backups > 0 {
            reason.push_str(&format!(
                "; {} more is held from {} deleted backup(s) until {} (`bakch held purge` on the server frees it now)",
                bytes(held.held_bytes.max(0) as u64),
                held.held_backups,
                held.next_release.as_deref().unwrap_or("?")
            ));
        }
        let old = known.get(DISK);
        if old.map(|k| k.state.as_str()) == Some(state) {
            return Ok(());
        }
        let kind = match (old.map(|k| k.state.as_str()), low) {
            (_, true) => Some(EventKind::DiskLow),
            (Some("low"), false) => Some(EventKind::Recovered),
            _ => None,
        };
        if low {
            tracing::warn!("the data disk is low: {reason}");
        }
        if let Some(kind) = kind {
            events.push(Event {
                event: kind,
                target_id: None,
                target_name: None,
                state: if low { "disk_low" } else { "ok" }.into(),
                reason: reason.clone(),
                time: iso_utc(now),
                backup_id: None,
                reminder: false,
            });
        }
        let notified_at = kind.map(|_| time::iso(now));
        writes.push((DISK.into(), Known { state: state.into(), reason, since: time::iso(now), notified_at }));
        Ok(())
    }

    /// A target's quota warning: raised once when its backups reach the warning level, and a
    /// `recovered` once they are under it again (subject `quota:<target id>`).
    fn check_quota_level(
        &self,
        t: &Target,
        known: &std::collections::HashMap<String, Known>,
        now: DateTime<Utc>,
        writes: &mut Vec<(String, Known)>,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let subject = quota_subject(&t.id);
        let old = known.get(&subject);
        let Some(q) = self.quota_use(t)?.filter(|_| quota_level(t).is_some()) else {
            if old.is_some() {
                writes.push((
                    subject,
                    Known { state: "ok".into(), reason: "no quota".into(), since: time::iso(now), notified_at: None },
                ));
            }
            return Ok(());
        };
        let near = q.warning;
        let state = if near { "quota_warning" } else { "ok" };
        if old.map(|k| k.state.as_str()) == Some(state) || (old.is_none() && !near) {
            return Ok(());
        }
        let reason = format!(
            "its backups use {} of its {} quota ({} %; warning at {} %)",
            bytes(q.used_bytes.max(0) as u64),
            bytes(q.quota_bytes as u64),
            q.percent,
            t.quota_warning_percent
        );
        if near {
            tracing::warn!("target '{}' is nearly full: {reason}", t.name);
        }
        events.push(Event {
            event: if near { EventKind::QuotaWarning } else { EventKind::Recovered },
            target_id: Some(t.id.clone()),
            target_name: Some(t.name.clone()),
            state: state.into(),
            reason: reason.clone(),
            time: iso_utc(now),
            backup_id: None,
            reminder: false,
        });
        writes.push((
            subject,
            Known { state: state.into(), reason, since: time::iso(now), notified_at: Some(time::iso(now)) },
        ));
        Ok(())
    }

    fn disk_is_low(&self, free: u64, total: u64) -> bool {
        let pct = self.config.health.disk_low_percent as u128;
        pct > 0 && (free as u128) * 100 < (total as u128) * pct
    }

    /// Queues a test event to every destination (the web UI's button; `bakch notify-test` sends
    /// at once instead). Returns how many deliveries were queued.
    pub fn queue_test_notifications(&self) -> Result<usize> {
        let jobs = self.deliveries(&Event::test(time::now()));
        if jobs.is_empty() {
            return Err(Error::bad("No [[notify]] destinations are configured in config.toml"));
        }
        let n = jobs.len();
        db::with_tx(&mut *self.conn()?, |tx| jobs.iter().try_for_each(|j| db::jobs::enqueue(tx, j).map(|_| ())))?;
        self.job_ready.notify_one();
        Ok(n)
    }

    /// Every destination with its newest outcome: (name, kind, failing error).
    pub fn destinations(&self) -> Result<Vec<(String, &'static str, Option<String>)>> {
        let failing = self.failing_destinations()?;
        Ok(self
            .config
            .notify
            .iter()
            .map(|d| {
                let kind = match d.kind {
                    crate::config::DestinationKind::Webhook { .. } => "webhook",
                    crate::config::DestinationKind::Ntfy { .. } => "ntfy",
                    crate::config::DestinationKind::Email(_) => "email",
                };
                let error = failing.iter().find(|f| f.name == d.name).map(|f| format!("{} ({})", f.error, f.at));
                (d.name.clone(), kind, error)
            })
            .collect())
    }

    /// The deliveries of one event: one job per destination that wants it.
    pub(super) fn deliveries(&self, event: &Event) -> Vec<QueuedJob> {
        self.config
            .notify
            .iter()
            .filter(|d| d.wants(event.event))
            .map(|d| QueuedJob::Notify(Delivery { destination: d.name.clone(), event: event.clone() }))
            .collect()
    }

    /// Runs one delivery job.
    pub fn run_delivery(&self, d: &Delivery) -> Result<()> {
        let dest: &Destination = self.config.notify.iter().find(|x| x.name == d.destination).ok_or_else(|| {
            Error::not_found(format!("notification destination '{}' is no longer configured", d.destination))
        })?;
        crate::notify::send(dest, &d.event)
            .map_err(|e| Error::internal(format!("notification to '{}' failed: {e}", d.destination)))?;
        tracing::info!("sent '{}' to notification destination '{}'", d.event.event.as_str(), d.destination);
        Ok(())
    }

    /// Destinations whose newest finished try failed.
    pub fn failing_destinations(&self) -> Result<Vec<FailingDestination>> {
        let outcomes = db::health::delivery_outcomes(&*self.conn()?)?;
        Ok(outcomes
            .into_iter()
            .filter(|(name, ..)| self.config.notify.iter().any(|d| &d.name == name))
            .filter_map(|(name, error, at)| error.map(|error| FailingDestination { name, error, at }))
            .collect())
    }

    /// What `/api/health` shows.
    pub fn health_summary(&self) -> Result<Summary> {
        let targets = db::targets::all(&*self.conn()?)?;
        let mut counts: BTreeMap<&'static str, i64> = HealthState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        let mut problems = Vec::new();
        for t in &targets {
            let h = self.target_health(t)?;
            *counts.entry(h.state.as_str()).or_default() += 1;
            if !h.state.is_fine() {
                problems.push(Problem {
                    target_id: t.id.clone(),
                    target_name: t.name.clone(),
                    state: h.state,
                    reason: h.reason,
                    since: h.since.map(iso_utc),
                });
            }
        }
        problems.sort_by(|a, b| a.state.cmp(&b.state).then_with(|| a.target_name.cmp(&b.target_name)));
        let mut quota_warnings = Vec::new();
        for t in &targets {
            if let Some(q) = self.quota_use(t)?.filter(|q| q.warning) {
                quota_warnings.push(q);
            }
        }
        quota_warnings.sort_by(|a, b| b.percent.cmp(&a.percent).then_with(|| a.target_name.cmp(&b.target_name)));
        let disk = self.disk()?;
        Ok(Summary {
            status: if problems.is_empty() && !disk.low { "ok" } else { "unhealthy" },
            counts,
            problems,
            disk,
            failing_destinations: self.failing_destinations()?,
            quota_warnings,
        })
    }

    /// A target's use of its quota; `None` when it has none.
    pub fn quota_use(&self, t: &Target) -> Result<Option<QuotaUse>> {
        if t.quota_bytes <= 0 {
            return Ok(None);
        }
        // Kept until the next commit, so a dashboard view costs no scan of the target's files.
        let used = self.target_usage(t)?.distinct;
        Ok(Some(QuotaUse {
            target_id: t.id.clone(),
            target_name: t.name.clone(),
            used_bytes: used,
            quota_bytes: t.quota_bytes,
            percent: (used as i128 * 100 / t.quota_bytes as i128) as i64,
            warning: quota_level(t).is_some_and(|level| used >= level),
        }))
    }

    /// The data disk's space and the full-disk estimate from the last 30 days' growth.
    pub fn disk(&self) -> Result<Disk> {
        let (free, total) = self.store.disk_space()?;
        let now = time::now();
        let (growth, oldest) = db::backups::growth_since(&*self.conn()?, &time::iso(now - Duration::days(30)))?;
        // A younger history counts from its first backup, but at least a day, so one backup does
        // not make a rate out of a few seconds.
        let span = oldest
            .as_deref()
            .and_then(time::parse_iso)
            .map(|o| (now - o).max(Duration::days(1)))
            .unwrap_or(Duration::days(30));
        let full_estimate = (growth > 0).then(|| {
            let per_sec = growth as f64 / span.num_seconds().max(1) as f64;
            let secs = (free as f64 / per_sec).min(100.0 * 365.0 * 86_400.0) as i64;
            iso_utc(now + Duration::seconds(secs))
        });
        Ok(Disk {
            free_bytes: free,
            total_bytes: total,
            low: self.disk_is_low(free, total),
            growth_bytes_30d: growth,
            full_estimate,
            held_bytes: self.held_usage()?.held_bytes,
        })
    }

    /// The change canary of a backup about to be completed, inside its transaction: compares
    /// its files with the previous backup's, judges the change against the history, records it,
    /// and queues an `unusual_change` notification when it is unusual.
    pub(super) fn record_changes(
        &self,
        tx: &rusqlite::Connection,
        target: &Target,
        backup: &Backup,
        files: &[BackupFile],
    ) -> Result<Stored> {
        let history = db::backups::previous(tx, &target.id, &time::iso(backup.created_at), HISTORY + 1)?;
        let changes = match history.first() {
            Some(prev) => canary::compare(&db::backups::files(tx, &prev.id)?, files),
            None => canary::compare(&[], files),
        };
        let samples: Vec<Sample> = history
            .iter()
            .filter_map(|b| b.changes.map(|changes: Changes| Sample { changes, filesize: b.filesize }))
            .take(HISTORY)
            .collect();
        let unusual = if history.is_empty() {
            None
        } else {
            canary::judge(&samples, &changes, backup.filesize, super::is_single(target))
        };
        let stored = Stored { changes, unusual: unusual.clone() };
        db::backups::set_changes(tx, &backup.id, &stored)?;
        if let Some(reason) = unusual {
            tracing::warn!("backup {} of target '{}' is unusual: {reason}", backup.id, target.name);
            let event = Event {
                event: EventKind::UnusualChange,
                target_id: Some(target.id.clone()),
                target_name: Some(target.name.clone()),
                state: "unusual".into(),
                reason,
                time: iso_utc(time::now()),
                backup_id: Some(backup.id.clone()),
                reminder: false,
            };
            for job in self.deliveries(&event) {
                db::jobs::enqueue(tx, &job)?;
            }
        }
        Ok(stored)
    }
}

/// The health subject of a target's quota.
fn quota_subject(target_id: &str) -> String {
    format!("quota:{target_id}")
}

/// The bytes at which a target's quota warns; `None` with no quota or no warning.
pub fn quota_level(t: &Target) -> Option<i64> {
    (t.quota_bytes > 0 && t.quota_warning_percent > 0)
        .then(|| (t.quota_bytes as i128 * t.quota_warning_percent as i128 / 100) as i64)
}

/// `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{n} bytes") } else { format!("{v:.1} {}", units[i]) }
}
