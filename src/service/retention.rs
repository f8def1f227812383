//! `recycle_job`: applies each target's retention policy to its active backups; the preview of
//! what it would do (for the current policy or a proposed one); pinning.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Service;
use crate::db;
use crate::error::{Error, Result};
use crate::model::audit::{Action, Entry, Who};
use crate::model::backup::Backup;
use crate::model::retention::{self, Candidate, KeepPolicy, Reason};
use crate::model::target::{Intent, RecycleAction, RecycleCriteria, Target, TargetInput};
use crate::time;

/// What retention does with one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Keep,
    Recycle,
    Delete,
}

/// One active backup in a preview.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PreviewItem {
    pub id: String,
    /// ISO 8601.
    #[serde(serialize_with = "crate::model::backup::iso8601")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    pub manual: bool,
    pub pinned: bool,
    pub filesize: i64,
    /// What deleting it alone would free (see the backup's `exclusive_bytes`).
    pub exclusive_bytes: i64,
    pub decision: Decision,
    /// Every rule that keeps it (empty when it goes).
    pub reasons: Vec<Reason>,
}

/// The policy a preview was made for.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub recycle_criteria: RecycleCriteria,
    pub recycle_value: i64,
    pub recycle_action: RecycleAction,
    pub min_backups: i64,
    #[schema(required = true)]
    pub keep: Option<KeepPolicy>,
}

/// What the recycle job would do to a target's active backups now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub target_id: String,
    /// Whether this is the target's saved policy (false: a proposed one from the request).
    pub current: bool,
    pub policy: PolicyView,
    /// The server's UTC offset now, which the hourly..yearly buckets follow (`+02:00`).
    pub utc_offset: String,
    /// Active backups, newest first.
    pub backups: Vec<PreviewItem>,
    pub kept: usize,
    pub taken: usize,
    /// Bytes of content only the taken backups hold: what the run frees on disk once they are
    /// deleted (right away with `delete`, when the recycle bin is emptied with `recycle`) and
    /// their hold has ended.
    pub frees_bytes: i64,
}

/// The calendar retention buckets follow: the server's local time zone (the `TZ` variable, or
/// the system's).
fn zone() -> chrono::Local {
    chrono::Local
}

impl Service {
    /// The verdicts of `target`'s policy over `backups` (active ones only), newest first.
    fn verdicts<'a>(target: &Target, backups: &'a [Backup]) -> Vec<(&'a Backup, Vec<Reason>)> {
        let active: Vec<Candidate> = backups
            .iter()
            .filter(|b| !b.is_recycled)
            .map(|b| Candidate { id: &b.id, created_at: b.created_at, pinned: b.pinned })
            .collect();
        let by_id: std::collections::HashMap<&str, &Backup> = backups.iter().map(|b| (b.id.as_str(), b)).collect();
        retention::plan(target.policy(), &active, time::now(), &zone())
            .into_iter()
            .filter_map(|v| by_id.get(v.id).map(|b| (*b, v.reasons)))
            .collect()
    }

    /// What the recycle job would do to a target now: under its saved policy, or under the
    /// policy fields in `proposed` (the target form's names: `recycle_criteria`, `keep_daily`...).
    pub fn retention_preview(&self, id: &str, proposed: &[(String, String)]) -> Result<Preview> {
        let c = self.conn()?;
        let saved = self.target(&c, id)?;
        let policy_keys = ["recycle_criteria", "recycle_value", "recycle_action", "min_backups"];
        let given = proposed.iter().any(|(k, _)| policy_keys.contains(&k.as_str()) || k.starts_with("keep_"));
        let target = if given {
            let input = TargetInput::from_form(proposed, Intent::Edit)?;
            let mut t = saved.clone();
            let TargetInput { recycle_criteria, recycle_value, recycle_action, min_backups, keep, .. } = input;
            let only_policy = TargetInput {
                recycle_criteria,
                recycle_value,
                recycle_action,
                min_backups,
                keep,
                ..TargetInput::default()
            };
            t = only_policy.apply_to(&t)?;
            t.normalize_and_validate(&self.config.data_dir)?;
            t
        } else {
            saved.clone()
        };
        let backups = db::backups::for_target(&c, &target.id)?;
        let exclusive = db::backups::exclusive_bytes(&c, &target.id)?;
        let verdicts = Self::verdicts(&target, &backups);
        let taken_decision = match target.recycle_action {
            RecycleAction::Recycle => Decision::Recycle,
            RecycleAction::Delete => Decision::Delete,
        };
        let items: Vec<PreviewItem> = verdicts
            .iter()
            .map(|(b, reasons)| PreviewItem {
                id: b.id.clone(),
                created_at: b.created_at,
                manual: b.manual,
                pinned: b.pinned,
                filesize: b.filesize,
                exclusive_bytes: exclusive.get(&b.id).copied().unwrap_or(0),
                decision: if reasons.is_empty() { taken_decision } else { Decision::Keep },
                reasons: reasons.clone(),
            })
            .collect();
        let taken: Vec<&str> = items.iter().filter(|i| i.decision != Decision::Keep).map(|i| i.id.as_str()).collect();
        let frees_bytes = db::backups::bytes_only_in(&c, &target.id, &taken)?;
        Ok(Preview {
            target_id: target.id.clone(),
            current: !given,
            policy: PolicyView {
                recycle_criteria: target.recycle_criteria,
                recycle_value: target.recycle_value,
                recycle_action: target.recycle_action,
                min_backups: target.min_backups,
                keep: target.keep,
            },
            utc_offset: chrono::Local::now().format("%:z").to_string(),
            kept: items.len() - taken.len(),
            taken: taken.len(),
            backups: items,
            frees_bytes,
        })
    }

    /// Pins or unpins a backup (its manifest records it, so a rebuilt database keeps it).
    pub fn set_pinned(&self, id: &str, pinned: bool) -> Result<()> {
        let _placement = self.placement_lock();
        let mut c = self.conn()?;
        let backup = self.backup(&c, id)?;
        if backup.pinned == pinned {
            return Ok(());
        }
        let ops = db::with_tx(&mut c, |tx| {
            db::backups::set_pinned(tx, &backup.id, pinned)?;
            Self::journal(tx, vec![Self::manifest_op(&backup.target_id, &backup.id)])
        })?;
        drop(c);
        self.apply_journal(&ops)?;
        tracing::info!("{} backup {}", if pinned { "pinned" } else { "unpinned" }, backup.id);
        Ok(())
    }

    /// Refuses to delete a pinned backup: it must be unpinned first.
    pub(super) fn refuse_pinned(backup: &Backup) -> Result<()> {
        if backup.pinned {
            return Err(Error::conflict(format!(
                "Backup {} is pinned; unpin it first (PATCH /api/backup/{} with {{\"pinned\": false}}, or Unpin on its page)",
                backup.id, backup.id
            )));
        }
        Ok(())
    }

    /// Runs retention over every target; returns a one-line outcome.
    pub fn run_retention(&self) -> Result<String> {
        let targets = db::targets::all(&*self.conn()?)?;
        let (mut recycled, mut deleted, mut failed) = (0, 0, 0);
        for target in targets.iter().filter(|t| t.has_retention()) {
            // Plan and act under one lock: the rows read here are the ones moved, read once.
            let _placement = self.placement_lock();
            let (target, backups, reserved) = {
                let c = self.conn()?;
                // Read again under the lock: an edit may have moved its folder since.
                let Some(target) = db::targets::find(&c, &target.id)? else { continue };
                let backups = db::backups::for_target(&c, &target.id)?;
                (target, backups, self.reserved(&c)?)
            };
            let target = &target;
            let taken: Vec<&Backup> =
                Self::verdicts(target, &backups).into_iter().filter(|(_, r)| r.is_empty()).map(|(b, _)| b).collect();
            for backup in taken {
                let id = &backup.id;
                let outcome = match target.recycle_action {
                    RecycleAction::Recycle => {
                        self.set_recycled_locked(target, backup, true, &reserved).map(|_| recycled += 1)
                    }
                    RecycleAction::Delete => {
                        self.delete_backup_locked(target, backup, true, &Who::bakch()).map(|_| deleted += 1)
                    }
                };
                let action = match target.recycle_action {
                    RecycleAction::Recycle => Action::BackupRecycled,
                    RecycleAction::Delete => Action::BackupDeletedWithFiles,
                };
                let mut entry = Entry::new(Who::bakch(), action);
                (entry.target, entry.backup) = (Some(target.id.clone()), Some(id.to_string()));
                if let Err(e) = &outcome {
                    (entry.status, entry.message) = (500, Some(e.to_string()));
                }
                self.audit_logged(&entry);
                if let Err(e) = outcome {
                    failed += 1;
                    tracing::error!("retention of backup {id} in target '{}' failed: {e}", target.name);
                }
            }
        }
        let outcome = format!("recycled {recycled}, deleted {deleted}, failed {failed}");
        if recycled + deleted + failed > 0 {
            tracing::info!("recycle_job: {outcome}");
        }
        Ok(outcome)
    }
}
