//! `recycle_job`: applies each target's retention rule to its active backups.

use super::Service;
use crate::db;
use crate::error::Result;
use crate::model::audit::{Action, Entry, Who};
use crate::model::retention::{self, Rule};
use crate::model::target::{RecycleAction, RecycleCriteria};
use crate::time;

impl Service {
    /// Runs retention over every target; returns a one-line outcome.
    pub fn run_retention(&self) -> Result<String> {
        let targets = db::targets::all(&*self.conn()?)?;
        let (mut recycled, mut deleted, mut failed) = (0, 0, 0);
        for target in targets.iter().filter(|t| t.recycle_criteria != RecycleCriteria::None) {
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
            let active: Vec<(&str, _)> =
                backups.iter().filter(|b| !b.is_recycled).map(|b| (b.id.as_str(), b.created_at)).collect();
            let rule = Rule {
                criteria: target.recycle_criteria,
                value: target.recycle_value,
                min_backups: target.min_backups,
            };
            for id in retention::select(rule, &active, time::now()) {
                let Some(backup) = backups.iter().find(|b| b.id == id) else { continue };
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
