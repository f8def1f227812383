//! Start-up recovery: what a crash can leave behind is put right before serving.

use std::path::PathBuf;

use super::Service;
use crate::db;
use crate::error::Result;
use crate::service::uploads::UploadJob;
use crate::store::place;

impl Service {
    /// Re-queues interrupted jobs, rolls back orphaned pending backups, clears temp files and
    /// spooled archives no job owns. Each recovered thing gets one log line.
    pub fn recover(&self) -> Result<()> {
        let mut c = self.conn()?;
        for id in db::with_tx(&mut c, |tx| db::jobs::requeue_running(tx))? {
            tracing::warn!("recovery: job {id} was interrupted; queued again");
        }
        self.replay_journal()?;
        let open: Vec<UploadJob> =
            db::jobs::open_payloads(&c)?.iter().filter_map(|p| serde_json::from_str(p).ok()).collect();
        for b in db::backups::pending(&c)? {
            if open.iter().any(|j| j.backup_id == b.id) {
                continue; // Its job will finish or redo it.
            }
            self.roll_back_pending(&b.id)?;
            tracing::warn!("recovery: removed half-built backup {} of target {}", b.id, b.target_id);
        }
        self.sweep_target_folders(&open)?;
        self.restore_missing_placements()?;
        let n = self.store.clear_tmp()?;
        if n > 0 {
            tracing::warn!("recovery: removed {n} temp file(s) of interrupted uploads");
        }
        let kept: Vec<String> = self
            .live_uploads()?
            .into_iter()
            .filter_map(|j| match j.source {
                super::uploads::Source::Archive { file, .. } => Some(file),
                super::uploads::Source::Files { .. } => None,
            })
            .collect();
        let uploads = &self.store.uploads;
        for entry in std::fs::read_dir(uploads).map_err(|e| crate::error::Error::io("read folder", uploads, e))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if !kept.contains(&name) {
                crate::store::place::remove_path(&entry.path())?;
                tracing::warn!("recovery: removed upload {name} that no job owns");
            }
        }
        Ok(())
    }

    /// Removes bakch's own leftovers (`.bakch-*`: trash, probes, and staging names of backups no
    /// job is building) from every target folder and the recycle bin.
    fn sweep_target_folders(&self, open: &[UploadJob]) -> Result<()> {
        let c = self.conn()?;
        let mut dirs: Vec<PathBuf> = db::targets::all(&c)?.into_iter().map(|t| PathBuf::from(t.location)).collect();
        dirs.push(self.store.recycle_bin.clone());
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Every `.bakch-*` name is bakch's own scratch; only a staging folder whose job
                // will still run is kept.
                let live =
                    name.strip_prefix(place::STAGING_PREFIX).is_some_and(|id| open.iter().any(|j| j.backup_id == id));
                let stale = name.starts_with(place::OWN_PREFIX) && !live;
                if stale {
                    place::remove_path(&entry.path())?;
                    tracing::warn!("recovery: removed leftover {}", entry.path().display());
                }
            }
        }
        Ok(())
    }

    /// Rebuilds, from the store, any listed backup whose files are gone from their place.
    fn restore_missing_placements(&self) -> Result<()> {
        let c = self.conn()?;
        for target in db::targets::all(&c)? {
            for backup in db::backups::for_target(&c, &target.id)? {
                let path = self.backup_path(&target, &backup);
                if path.exists() {
                    continue;
                }
                let files = db::backups::files(&c, &backup.id)?;
                let staging = place::staging_path(super::backups::parent_of(&path), &backup.id);
                match place::materialize(&self.store, &files, &path, &staging, super::is_single(&target)) {
                    Ok(_) => {
                        tracing::warn!("recovery: rebuilt missing files of backup {} at {}", backup.id, path.display())
                    }
                    Err(e) => tracing::error!(
                        "recovery: backup {} is missing at {} and cannot be rebuilt: {e}",
                        backup.id,
                        path.display()
                    ),
                }
            }
        }
        Ok(())
    }
}
