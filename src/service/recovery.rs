//! Start-up recovery: what a crash can leave behind is put right before serving.

use super::Service;
use crate::db;
use crate::error::Result;
use crate::service::uploads::UploadJob;

impl Service {
    /// Re-queues interrupted jobs, rolls back orphaned pending backups, clears temp files and
    /// spooled archives no job owns. Each recovered thing gets one log line.
    pub fn recover(&self) -> Result<()> {
        let mut c = self.conn()?;
        for id in db::with_tx(&mut c, |tx| db::jobs::requeue_running(tx))? {
            tracing::warn!("recovery: job {id} was interrupted; queued again");
        }
        let open: Vec<UploadJob> =
            db::jobs::open_payloads(&c)?.iter().filter_map(|p| serde_json::from_str(p).ok()).collect();
        for b in db::backups::pending(&c)? {
            if open.iter().any(|j| j.backup_id == b.id) {
                continue; // Its job will finish or redo it.
            }
            self.roll_back_pending(&b.id)?;
            tracing::warn!("recovery: removed half-built backup {} of target {}", b.id, b.target_id);
        }
        let n = self.store.clear_tmp()?;
        if n > 0 {
            tracing::warn!("recovery: removed {n} temp file(s) of interrupted uploads");
        }
        let kept: Vec<String> = open
            .iter()
            .filter_map(|j| match &j.source {
                super::uploads::Source::Archive { file, .. } => Some(file.clone()),
                _ => None,
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
}
