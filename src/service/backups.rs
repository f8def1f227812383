//! Single backups: delete, recycle and restore, download; the recycle bin.

use std::path::PathBuf;

use super::ownership::Reserved;
use super::{Service, is_single};
use crate::db::{self, journal::FsOp};
use crate::error::{Error, Result};
use crate::model::audit::Who;
use crate::model::backup::{Backup, BackupFile};
use crate::model::target::Target;
use crate::time;

/// What a download streams.
pub enum Download {
    /// A single file (its blob), with its size.
    File { path: PathBuf, size: u64, filename: String },
    /// A tar of the tree, built on the fly.
    Tree { files: Vec<BackupFile>, filename: String, mtime: u64 },
    /// A zip of the files, built on the fly (a selection's other format).
    Zip { files: Vec<BackupFile>, filename: String, mtime: u64 },
}

impl Service {
    pub fn delete_backup(&self, id: &str, delete_files: bool, by: &Who) -> Result<()> {
        let _placement = self.placement_lock();
        let (target, backup) = self.read_backup(id)?;
        self.delete_backup_locked(&target, &backup, delete_files, by)
    }

    /// A backup and its target, read under the placement lock the caller holds.
    fn read_backup(&self, id: &str) -> Result<(Target, Backup)> {
        let c = self.conn()?;
        let backup = self.backup(&c, id)?;
        let target = self.target(&c, &backup.target_id)?;
        Ok((target, backup))
    }

    /// Removes the row, then (if asked) the files. Other backups' files are separate names, so
    /// they are never touched; shared bytes live on in the store, and the backup's own stay held
    /// (see [`super::held`]) with `by` recorded. The caller holds the placement lock and read
    /// `backup` under it.
    pub(super) fn delete_backup_locked(
        &self,
        target: &Target,
        backup: &Backup,
        delete_files: bool,
        by: &Who,
    ) -> Result<()> {
        Self::refuse_pinned(backup)?;
        let path = self.backup_path(target, backup).to_string_lossy().into_owned();
        let ops = db::with_tx(&mut *self.conn()?, |tx| {
            // What bakch placed there, read before the row goes: only that is removed.
            let ident = db::backups::placed_ident(tx, &backup.id)?;
            // The held entry's file before the manifest goes, so a crash between leaves the
            // content described somewhere.
            let mut ops: Vec<FsOp> = self.hold(tx, target, backup, by)?.into_iter().collect();
            db::backups::delete(tx, &backup.id)?;
            // The manifest next: if removing the files keeps failing, a rebuild must still not
            // bring back a backup whose row is gone.
            ops.push(Self::manifest_op(&target.id, &backup.id));
            if delete_files {
                ops.push(FsOp::Remove { path, ident });
            }
            Self::journal(tx, ops)
        })?;
        self.apply_journal(&ops).map_err(|e| {
            Error::internal(format!(
                "backup {} was deleted but its files could not be removed ({e}); bakch retries at its next start",
                backup.id
            ))
        })?;
        tracing::info!("deleted backup {} of target '{}', files deleted: {delete_files}", backup.id, target.name);
        Ok(())
    }

    /// Moves a backup into the recycle bin (`true`) or back to its target folder (`false`), under
    /// a free name there.
    pub fn set_recycled(&self, id: &str, recycled: bool) -> Result<()> {
        // Taken before reading the row, so a concurrent delete or move cannot slip in between.
        let _placement = self.placement_lock();
        let (target, backup) = self.read_backup(id)?;
        let reserved = self.reserved(&*self.conn()?)?;
        self.set_recycled_locked(&target, &backup, recycled, &reserved)
    }

    /// [`Service::set_recycled`] for a caller that holds the placement lock and read `backup`
    /// under it.
    pub(super) fn set_recycled_locked(
        &self,
        target: &Target,
        backup: &Backup,
        recycled: bool,
        reserved: &Reserved,
    ) -> Result<()> {
        if backup.is_recycled == recycled {
            return Ok(());
        }
        let dest_dir = self.place_path(target, recycled, "");
        let (base, ext) = split_suffix(&backup.name, is_single(target));
        let mut c = self.conn()?;
        let name =
            self.free_name(&c, reserved, &dest_dir, (&base, &ext), (&target.id, &backup.id, recycled), |_| false)?;
        let op = FsOp::Move {
            path: self.backup_path(target, backup).to_string_lossy().into_owned(),
            dest: dest_dir.join(&name).to_string_lossy().into_owned(),
            backup_id: backup.id.clone(),
            single: is_single(target),
            ident: None,
        };
        let ops = db::with_tx(&mut c, |tx| {
            db::backups::set_place(tx, &backup.id, recycled, &name)?;
            db::backups::set_recycled_at(tx, &backup.id, recycled.then(time::now))?;
            Self::journal(tx, vec![op, Self::manifest_op(&target.id, &backup.id)])
        })?;
        drop(c);
        if let Err(e) = self.apply_journal(&ops) {
            let journal_id = ops.first().map(|(id, _)| *id).unwrap_or_default();
            if self.moved_to(journal_id)?.is_none() {
                // Nothing moved: put the row back as it was.
                db::with_tx(&mut *self.conn()?, |tx| {
                    db::backups::set_place(tx, &backup.id, backup.is_recycled, &backup.name)?;
                    db::backups::set_recycled_at(tx, &backup.id, backup.recycled_at)?;
                    ops.iter().try_for_each(|(id, _)| db::journal::done(tx, *id))
                })?;
                self.sync_backup_manifest(&target.id, &backup.id)?;
            }
            return Err(e);
        }
        tracing::info!(
            "{} backup {} of target '{}'",
            if recycled { "recycled" } else { "restored" },
            backup.id,
            target.name
        );
        Ok(())
    }

    /// A listed backup, its target and its files.
    pub fn backup_details(&self, id: &str) -> Result<(Target, Backup, Vec<BackupFile>)> {
        let c = self.conn()?;
        let backup = self.backup(&c, id)?;
        let target = self.target(&c, &backup.target_id)?;
        let files = db::backups::files(&c, &backup.id)?;
        Ok((target, backup, files))
    }

    /// One file of a backup, for download: (blob path, size, file name).
    pub fn backup_file(&self, id: &str, path: &str) -> Result<(PathBuf, u64, String)> {
        let c = self.conn()?;
        let backup = self.backup(&c, id)?;
        let (blob, size) = db::backups::file(&c, &backup.id, path)?
            .ok_or_else(|| Error::not_found(format!("Backup {id} has no file '{path}'")))?;
        let blob = self.store.blob_path(&blob);
        if !blob.exists() {
            return Err(Error::internal(format!("the stored content of '{path}' is missing")));
        }
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        Ok((blob, size as u64, name))
    }

    /// The recycled backups of every target, with what deleting each would free.
    pub fn recycle_bin(&self) -> Result<Vec<Backup>> {
        let c = self.conn()?;
        let mut backups = db::backups::recycled(&c)?;
        let mut by_target = std::collections::HashMap::new();
        for b in &mut backups {
            if !by_target.contains_key(&b.target_id) {
                by_target.insert(b.target_id.clone(), db::backups::exclusive_bytes(&c, &b.target_id)?);
            }
            b.exclusive_bytes = Some(by_target.get(&b.target_id).and_then(|m| m.get(&b.id)).copied().unwrap_or(0));
        }
        Ok(backups)
    }

    /// What the last integrity check found wrong with a backup, one finding per entry (empty
    /// when healthy, or flagged by a check older than the recorded findings).
    pub fn backup_damage(&self, id: &str) -> Result<Vec<String>> {
        let text = db::backups::damage(&*self.conn()?, id)?.unwrap_or_default();
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Every backup the integrity check flagged, newest first, with its target and findings.
    pub fn damaged_backups(&self) -> Result<Vec<(Target, Backup, Vec<String>)>> {
        let c = self.conn()?;
        let mut out = Vec::new();
        for (backup, damage) in db::backups::damaged(&c)? {
            let Some(target) = db::targets::find(&c, &backup.target_id)? else { continue };
            let findings = damage.unwrap_or_default().lines().map(str::to_string).collect();
            out.push((target, backup, findings));
        }
        Ok(out)
    }

    /// Deletes every recycled backup of every target, but pinned ones (which stay, pinned).
    pub fn clear_recycle_bin(&self, delete_files: bool, by: &Who) -> Result<usize> {
        let _placement = self.placement_lock();
        let mut backups = db::backups::recycled(&*self.conn()?)?;
        backups.retain(|b| !b.pinned);
        for b in &backups {
            let target = self.target(&*self.conn()?, &b.target_id)?;
            self.delete_backup_locked(&target, b, delete_files, by)?;
        }
        Ok(backups.len())
    }

    /// What to send for `GET /api/backup/{id}/download`.
    pub fn download(&self, id: &str) -> Result<Download> {
        let c = self.conn()?;
        let backup = self.backup(&c, id)?;
        let target = self.target(&c, &backup.target_id)?;
        let files = db::backups::files(&c, &backup.id)?;
        for f in &files {
            if !self.store.blob_path(&f.blob).exists() {
                return Err(Error::internal(format!(
                    "backup {id} cannot be downloaded: the stored content of '{}' is missing",
                    f.path
                )));
            }
        }
        if is_single(&target) {
            let f = files.into_iter().next().ok_or_else(|| Error::internal(format!("backup {id} has no file")))?;
            return Ok(Download::File {
                path: self.store.blob_path(&f.blob),
                size: f.size as u64,
                filename: backup.name,
            });
        }
        Ok(Download::Tree {
            files,
            filename: format!("{}.tar", backup.name),
            mtime: backup.created_at.timestamp().max(0) as u64,
        })
    }
}

/// Splits a placed name into (base, extension) so a renamed copy keeps its extension.
pub(super) fn split_suffix(name: &str, single: bool) -> (String, String) {
    if !single {
        return (name.to_string(), String::new());
    }
    let ext = super::uploads::extension(name);
    (name[..name.len() - ext.len()].to_string(), ext)
}
