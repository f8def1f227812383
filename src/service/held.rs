//! The hold on deletions: every deleted backup leaves a held entry that keeps its content from
//! garbage collection for `[protection] hold_days`. Over the network a hold can be listed and
//! a held backup restored, never shortened: ending holds early ([`Service::purge_held`]) is a
//! queued job only `bakch held purge` on the server creates.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use super::Service;
use crate::db::{self, journal::FsOp};
use crate::error::{Error, Result};
use crate::model::audit::Who;
use crate::model::backup::Backup;
use crate::model::held::{Held, HeldManifest, Purge, Reclaimable};
use crate::model::job::{Source, UploadJob};
use crate::model::manifest::{BackupManifest, TargetManifest};
use crate::model::target::Target;
use crate::time;

/// What a restore brought back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Restored {
    pub backup_id: String,
    pub target_id: String,
    /// Its file or folder name in the target's folder (a new one when the old name was taken).
    pub name: String,
    /// Whether its target had been deleted too and was made again from the held definition.
    pub target_recreated: bool,
}

impl Service {
    /// Records in `tx` the held entry that deleting `backup` leaves (when holds are on), and
    /// returns the journal step that writes its file.
    pub(super) fn hold(
        &self,
        tx: &rusqlite::Connection,
        target: &Target,
        backup: &Backup,
        by: &Who,
    ) -> Result<Option<FsOp>> {
        if self.config.hold.is_zero() {
            return Ok(None);
        }
        let files = db::backups::files(tx, &backup.id)?;
        let created = db::targets::created_at(tx, &target.id)?.unwrap_or_default();
        let now = time::now();
        let until = now + chrono::Duration::from_std(self.config.hold).unwrap_or(chrono::Duration::MAX);
        let m = HeldManifest::new(
            now,
            until,
            by,
            TargetManifest::of(target, &created),
            BackupManifest::of(backup, target.target_type, &files),
        );
        db::held::insert(tx, &m)?;
        tracing::info!(
            "backup {} of target '{}' deleted by {} from {}; its content is held until {}",
            backup.id,
            target.name,
            by.name,
            by.origin,
            m.hold_until
        );
        Ok(Some(FsOp::Held { backup_id: backup.id.clone() }))
    }

    /// Every held entry, most recently deleted first.
    pub fn held(&self) -> Result<Vec<Held>> {
        Ok(db::held::all(&*self.conn()?)?.iter().map(HeldManifest::summary).collect())
    }

    /// Makes a held entry's file match its row (the journal's `held` step).
    pub(super) fn sync_held_file(&self, backup_id: &str) -> Result<()> {
        let found = db::held::find(&*self.conn()?, backup_id)?;
        match found {
            Some(m) => self.store.write_held(&m),
            None => self.store.remove_held(backup_id),
        }
    }

    /// Brings a held backup back into its target's folder under its old id (its target too,
    /// from the held definition, if it was deleted since). Its content must still be stored.
    pub fn restore_held(&self, id: &str) -> Result<Restored> {
        let (job, target_recreated) = {
            let _placement = self.placement_lock();
            let c = self.conn()?;
            let held = db::held::find(&c, id)?.ok_or_else(|| Error::not_found(format!("No held backup '{id}'")))?;
            if db::backups::find_any(&c, id)?.is_some() {
                return Err(Error::conflict(format!("Backup {id} is already back (or being restored)")));
            }
            let recreated = match db::targets::find(&c, &held.target.target.id)? {
                Some(t) if t.id == held.target.target.id => false,
                _ => {
                    drop(c);
                    self.recreate_target_locked(&held)?;
                    true
                }
            };
            let backup = &held.backup;
            let job = UploadJob {
                target_id: backup.target_id.clone(),
                backup_id: backup.backup_id.clone(),
                created_at: backup.created_at.clone(),
                manual: backup.manual,
                source: Source::Files { files: backup.files.clone(), totals: None },
            };
            (job, recreated)
        };
        // The upload job's own path: names it (a free name if the old one is taken), links its
        // files from the store, and ends the hold in the transaction that makes it visible.
        self.run_upload(&job)?;
        let c = self.conn()?;
        let backup = self.backup(&c, id)?;
        tracing::info!("held backup {id} restored to target {} as {}", backup.target_id, backup.name);
        Ok(Restored { backup_id: backup.id, target_id: backup.target_id, name: backup.name, target_recreated })
    }

    /// Makes a deleted target again from a held entry's definition (same id; its alias only if
    /// still free). The caller holds the placement lock.
    fn recreate_target_locked(&self, held: &HeldManifest) -> Result<()> {
        let mut target = held.target.target.clone();
        if let Some(alias) = &target.alias
            && db::targets::find(&*self.conn()?, alias)?.is_some()
        {
            target.alias = None;
        }
        target.normalize_and_validate(&self.config.data_dir)?;
        self.add_target_locked(&target, &held.target.created_at).map_err(|e| {
            Error::conflict(format!(
                "the held backup's target '{}' was deleted and cannot be made again: {e}",
                target.name
            ))
        })?;
        tracing::info!("target '{}' ({}) made again to restore a held backup", target.name, target.id);
        Ok(())
    }

    /// Ends holds early and collects what they kept at once: `bakch held purge`, on the server
    /// only (see the module comment).
    pub fn purge_held(&self, purge: &Purge) -> Result<String> {
        let ids = &purge.ids;
        {
            let c = self.conn()?;
            for id in ids {
                if db::held::find(&c, id)?.is_none() {
                    return Err(Error::not_found(format!("No held backup '{id}'")));
                }
            }
        }
        self.end_holds(ids)?;
        tracing::warn!("held purge: ended the hold of {} deleted backup(s) (by a local command)", ids.len());
        let collected = self.collect(Duration::ZERO)?;
        Ok(format!("ended the hold of {} deleted backup(s); {collected}", ids.len()))
    }

    /// Removes the entries whose hold has ended (garbage collection, before it marks).
    pub(super) fn drop_ended_holds(&self) -> Result<usize> {
        let ended = db::held::ended(&*self.conn()?, &time::iso(time::now()))?;
        if ended.is_empty() {
            return Ok(0);
        }
        self.end_holds(&ended)?;
        tracing::info!("the hold of {} deleted backup(s) ended; their content may now be collected", ended.len());
        Ok(ended.len())
    }

    /// How many entries, the bytes only they keep, when the first hold ends (one query).
    pub fn held_usage(&self) -> Result<Reclaimable> {
        db::held::usage(&*self.conn()?)
    }

    /// Drops held entries and their files (through the journal), so their content is no longer
    /// kept from collection.
    fn end_holds(&self, ids: &[String]) -> Result<()> {
        let ops = db::with_tx(&mut *self.conn()?, |tx| {
            for id in ids {
                db::held::delete(tx, id)?;
            }
            Self::journal(tx, ids.iter().map(|id| FsOp::Held { backup_id: id.clone() }).collect())
        })?;
        self.apply_journal(&ops)
    }

    /// Held bytes and bytes waiting for collection (walks the store: for a full disk's reply,
    /// the held page and the stats page, not for every request).
    pub fn reclaimable(&self) -> Result<Reclaimable> {
        let mut r = db::held::usage(&*self.conn()?)?;
        let marked = self.marked_blobs()?;
        r.unreferenced_bytes = self
            .store
            .blobs_on_disk()?
            .into_iter()
            .filter(|(hash, ..)| !marked.contains(hash))
            .map(|(_, _, meta)| meta.len() as i64)
            .sum();
        Ok(r)
    }

    /// Every blob something still needs: a backup in any state, an open sequential upload, a
    /// live upload job, a held entry.
    pub(super) fn marked_blobs(&self) -> Result<HashSet<String>> {
        let c = self.conn()?;
        let mut marked = db::backups::referenced_blobs(&c)?;
        marked.extend(db::held::blobs(&c)?);
        drop(c);
        for job in self.live_uploads()? {
            if let Source::Files { files, .. } = job.source {
                marked.extend(files.into_iter().map(|f| f.blob));
            }
        }
        Ok(marked)
    }
}
