//! Start-up recovery: what a crash can leave behind is put right before serving.

use std::path::{Path, PathBuf};

use super::Service;
use crate::db::{self, journal::FsOp};
use crate::error::Result;
use crate::model::job::{QueuedJob, Source, UploadJob};
use crate::store::own::OwnName;
use crate::store::place;

impl Service {
    /// Re-queues interrupted jobs, rolls back orphaned pending backups, clears temp files and
    /// spooled archives no job owns. Each recovered thing gets one log line.
    pub fn recover(&self) -> Result<()> {
        // Folders the journal's operations work in: a crash may have left a trash name there.
        let journal_dirs: Vec<PathBuf> = {
            let mut c = self.conn()?;
            for id in db::with_tx(&mut c, |tx| db::jobs::requeue_running(tx))? {
                tracing::warn!("recovery: job {id} was interrupted; queued again");
            }
            db::journal::pending(&c)?
                .iter()
                .flat_map(|(_, op)| match op {
                    FsOp::Move { path, dest, .. } => vec![path.clone(), dest.clone()],
                    FsOp::Remove { path, .. } => vec![path.clone()],
                    FsOp::Manifest { .. } | FsOp::TargetFile { .. } | FsOp::Held { .. } => vec![],
                })
                .filter_map(|p| Path::new(&p).parent().map(Path::to_path_buf))
                .collect()
        };
        self.replay_journal()?;
        let (open, pending) = {
            let c = self.conn()?;
            let open: Vec<UploadJob> = db::jobs::open_jobs(&c)?.iter().filter_map(QueuedJob::upload).cloned().collect();
            (open, db::backups::pending(&c)?)
        };
        for b in pending {
            if open.iter().any(|j| j.backup_id == b.id) {
                continue; // Its job will finish or redo it.
            }
            self.roll_back_pending(&b.id)?;
            tracing::warn!("recovery: removed half-built backup {} of target {}", b.id, b.target_id);
        }
        self.sweep_own_names(&open, journal_dirs)?;
        self.restore_missing_placements()?;
        let written = self.write_missing_manifests()?;
        if written > 0 {
            tracing::warn!(
                "recovery: wrote {written} missing manifest(s) (backups or targets made before manifests, or removed by hand)"
            );
        }
        let n = self.store.sweep_manifest_temps()?;
        if n > 0 {
            tracing::warn!("recovery: removed {n} temp file(s) of manifest writes cut short");
        }
        let n = self.store.clear_tmp()?;
        if n > 0 {
            tracing::warn!("recovery: removed {n} temp file(s) of interrupted uploads");
        }
        let kept: Vec<String> = self
            .live_uploads()?
            .into_iter()
            .filter_map(|j| match j.source {
                Source::Archive { file, .. } => Some(file),
                Source::Files { .. } => None,
            })
            .collect();
        let uploads = &self.store.uploads;
        for entry in std::fs::read_dir(uploads).map_err(|e| crate::error::Error::io("read folder", uploads, e))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if !kept.contains(&name) {
                self.store.remove(&entry.path())?;
                tracing::warn!("recovery: removed upload {name} that no job owns");
            }
        }
        Ok(())
    }

    /// Removes bakch's own leftovers (trash, probes, and staging names of backups no job is
    /// building) from every target folder, the recycle bin and the folders of journalled
    /// operations. Only names carrying this installation's token count (see
    /// [`crate::store::own`]); anything else, however it looks, is the user's.
    fn sweep_own_names(&self, open: &[UploadJob], mut dirs: Vec<PathBuf>) -> Result<()> {
        dirs.extend(db::targets::all(&*self.conn()?)?.into_iter().map(|t| PathBuf::from(t.location)));
        dirs.push(self.store.recycle_bin.clone());
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let why = match self.store.own.parse(&name) {
                    None => continue,
                    Some(OwnName::Staging(id)) if open.iter().any(|j| j.backup_id == id) => continue,
                    Some(OwnName::Staging(id)) => format!("the staging name of backup {id}, which no job will finish"),
                    Some(OwnName::Trash) => "a removal cut short".to_string(),
                    Some(OwnName::Probe) => "a writability probe".to_string(),
                };
                self.store.remove(&entry.path())?;
                tracing::warn!(
                    "recovery: removed {}: {why} (bakch's own name, with this installation's token)",
                    entry.path().display()
                );
            }
        }
        Ok(())
    }

    /// Rebuilds, from the store, any listed backup whose files are gone from their place.
    fn restore_missing_placements(&self) -> Result<()> {
        let c = self.conn()?;
        let reserved = self.reserved(&c)?;
        // A backup whose move or removal still fails is where the journal says, not missing.
        let unfinished: Vec<String> = db::journal::pending(&c)?
            .into_iter()
            .filter_map(|(_, op)| match op {
                FsOp::Move { backup_id, .. } | FsOp::Manifest { backup_id, .. } => Some(backup_id),
                _ => None,
            })
            .collect();
        for target in db::targets::all(&c)? {
            for backup in db::backups::for_target(&c, &target.id)? {
                let path = self.backup_path(&target, &backup);
                if std::fs::symlink_metadata(&path).is_ok() || unfinished.contains(&backup.id) {
                    continue;
                }
                if reserved.covers(&super::ownership::resolve_existing_prefix(&path)) {
                    tracing::error!(
                        "recovery: backup {} is missing at {}, and is not rebuilt there: that path now holds another \
                         target's folder or the data folder",
                        backup.id,
                        path.display()
                    );
                    continue;
                }
                let files = db::backups::files(&c, &backup.id)?;
                match place::materialize(&self.store, &files, &path, &backup.id, super::is_single(&target)) {
                    Ok(_) => {
                        if let Some(ident) = place::identity(&path) {
                            db::backups::set_placed_ident(&c, &backup.id, &ident)?;
                        }
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
