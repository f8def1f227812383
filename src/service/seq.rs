//! Sequential uploads: a client announces a file list, sends the files one by one (each stored
//! as a blob at once, so an interrupted run can resume), then finishes into an upload job.

use super::{Service, is_single};
pub use crate::db::seq::OpenSeq;
use crate::db::{self, seq::SeqUpload};
use crate::error::{Error, Result};
use crate::model::backup::{BackupFile, file_folder_clash};
use crate::model::job::{QueuedJob, Source, UploadJob};
use crate::store::blob::Spooled;
use crate::store::place::safe_relative;
use crate::time;

/// Most files one sequential upload may announce.
const MAX_FILES: usize = 1_000_000;

impl Service {
    /// Sequential uploads that are open, oldest first.
    pub fn open_seq_uploads(&self) -> Result<Vec<OpenSeq>> {
        db::seq::open_uploads(&*self.conn()?)
    }

    /// A multi-file upload whose files carry relative paths (a folder picked or dropped in the
    /// browser). Goes through the sequential-upload operations, which keep paths; returns the
    /// job id. Fails with `Target busy` while another sequential upload is open on the target.
    pub fn accept_tree_upload(&self, target_id: &str, manual: bool, parts: Vec<(String, Spooled)>) -> Result<i64> {
        let target = self.target(&*self.conn()?, target_id)?;
        if is_single(&target) {
            return Err(Error::bad(format!("Target '{}' takes single files, not folders", target.name)));
        }
        let mut list = Vec::with_capacity(parts.len());
        for (path, _) in &parts {
            let path = path.trim_start_matches('/');
            let (dir, name) = match path.rsplit_once('/') {
                Some((d, n)) => (format!("/{d}"), n.to_string()),
                None => ("/".to_string(), path.to_string()),
            };
            list.push((dir, name));
        }
        self.seq_begin(&target.id, manual, list.clone())?;
        for ((dir, name), (_, spooled)) in list.iter().zip(parts) {
            if let Err(e) = self.seq_upload(&target.id, dir, name, spooled) {
                let _ = self.seq_terminate(&target.id);
                return Err(e);
            }
        }
        self.seq_finish(&target.id)
    }

    pub fn seq_begin(&self, target_id: &str, manual: bool, files: Vec<(String, String)>) -> Result<()> {
        let mut c = self.conn()?;
        let target = self.target(&c, target_id)?;
        if is_single(&target) {
            return Err(Error::bad("Cannot begin sequential upload on single-file target"));
        }
        if files.is_empty() || files.len() > MAX_FILES {
            return Err(Error::bad(format!(
                "File list validation failed: it must hold between 1 and {MAX_FILES} files"
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (path, name) in &files {
            let joined = joined_path(path, name)?;
            if !seen.insert(std::path::PathBuf::from(&joined)) {
                return Err(Error::bad(format!("File list validation failed: '{joined}' is listed twice")));
            }
        }
        // Caught here, not when the backup is built, where it would look like a disk failure.
        if let Some((file, inside)) = file_folder_clash(&seen) {
            return Err(Error::bad(format!(
                "File list validation failed: '{}' is listed as a file and as a folder holding '{}'",
                file.display(),
                inside.display()
            )));
        }
        db::with_tx(&mut c, |tx| {
            if db::seq::find(tx, &target.id)?.is_some() {
                return Err(Error::bad("Target busy"));
            }
            db::seq::insert(tx, &target.id, manual, &files)
        })?;
        tracing::info!("sequential upload of {} file(s) opened for target '{}'", files.len(), target.name);
        Ok(())
    }

    pub fn seq_status(&self, target_id: &str) -> Result<SeqUpload> {
        let c = self.conn()?;
        let target = self.target(&c, target_id)?;
        db::seq::find(&c, &target.id)?
            .ok_or_else(|| Error::not_found(format!("No sequential upload is open for target '{target_id}'")))
    }

    /// Stores one announced file. The spooled bytes are dropped on any refusal.
    pub fn seq_upload(&self, target_id: &str, path: &str, name: &str, spooled: Spooled) -> Result<()> {
        let _ingest = self.ingest_lock();
        let mut c = self.conn()?;
        let target = self.target(&c, target_id)?;
        // A quick look first, so a refused file is not stored at all.
        seq_entry_free(&c, &target.id, path, name)?;
        let size = spooled.size as i64;
        let blob = spooled.into_blob(&self.store)?;
        // The check again in the transaction that records it: another client may have finished,
        // terminated or filled this upload meanwhile.
        db::with_tx(&mut c, |tx| {
            seq_entry_free(tx, &target.id, path, name)?;
            db::seq::mark_uploaded(tx, &target.id, path, name, &blob, size)
        })
    }

    /// Turns a complete sequential upload into an upload job; returns the job id.
    pub fn seq_finish(&self, target_id: &str) -> Result<i64> {
        let mut c = self.conn()?;
        let target = self.target(&c, target_id)?;
        // Reading, closing the upload and queueing its job are one transaction, so two finishes
        // (or a finish racing a terminate and a new begin) cannot take the wrong file list.
        let id = db::with_tx(&mut c, |tx| {
            let open = db::seq::find(tx, &target.id)?
                .ok_or_else(|| Error::bad("No sequential upload is open for this target"))?;
            let missing = open.files.iter().filter(|f| f.blob.is_none()).count();
            if missing > 0 {
                return Err(Error::conflict(format!("{missing} file(s) of the upload have not been uploaded yet")));
            }
            let files = open
                .files
                .iter()
                .map(|f| {
                    Ok(BackupFile {
                        path: joined_path(&f.path, &f.name)?,
                        blob: f.blob.clone().unwrap_or_default(),
                        size: f.size.unwrap_or(0),
                        mode: 0o644,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let job = UploadJob {
                target_id: target.id.clone(),
                backup_id: uuid::Uuid::new_v4().to_string(),
                created_at: time::iso(time::now()),
                manual: open.manual,
                source: Source::Files { files, totals: None },
            };
            db::seq::delete(tx, &target.id)?;
            db::jobs::enqueue(tx, &QueuedJob::Upload(job))
        })?;
        self.job_ready.notify_one();
        tracing::info!("sequential upload for target '{}' finished as job {id}", target.name);
        Ok(id)
    }

    pub fn seq_terminate(&self, target_id: &str) -> Result<()> {
        let mut c = self.conn()?;
        let target = self.target(&c, target_id)?;
        if !db::with_tx(&mut c, |tx| db::seq::delete(tx, &target.id))? {
            return Err(Error::bad("No sequential upload is open for this target"));
        }
        tracing::info!("sequential upload for target '{}' terminated", target.name);
        Ok(())
    }

    /// `stale_seq_upload_job`: closes uploads idle for longer than the configured timeout.
    pub fn purge_stale_seq_uploads(&self) -> Result<String> {
        let mut c = self.conn()?;
        let before = time::now() - chrono::Duration::seconds(self.config.seq_upload_timeout_secs as i64);
        let stale = db::seq::idle_since(&c, &time::iso(before))?;
        for target_id in &stale {
            db::with_tx(&mut c, |tx| db::seq::delete(tx, target_id))?;
            tracing::info!("purged sequential upload of target {target_id}: idle since before {before}");
        }
        let pushes = self.purge_stale_pushes()?;
        Ok(format!("purged {} stale sequential upload(s) and {pushes} stale push(es)", stale.len()))
    }
}

/// Fails unless the open upload of `target_id` announced `path`/`name` and has not received it.
fn seq_entry_free(c: &rusqlite::Connection, target_id: &str, path: &str, name: &str) -> Result<()> {
    let open =
        db::seq::find(c, target_id)?.ok_or_else(|| Error::bad("No sequential upload is open for this target"))?;
    let entry = open
        .files
        .iter()
        .find(|f| f.path == path && f.name == name)
        .ok_or_else(|| Error::bad(format!("File '{name}' in '{path}' is not in the announced file list")))?;
    if entry.blob.is_some() {
        return Err(Error::conflict(format!("File '{name}' in '{path}' was already uploaded")));
    }
    Ok(())
}

/// `path` (`/`, `/sub`) and `name` joined into a backup-relative path; refuses anything that
/// climbs out or hides a separator in the name.
pub fn joined_path(path: &str, name: &str) -> Result<String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(Error::bad(format!("File list validation failed: file name '{name}' is not allowed")));
    }
    let joined = format!("{}/{name}", path.trim_end_matches('/'));
    let rel = safe_relative(&joined)
        .map_err(|_| Error::bad(format!("File list validation failed: path '{path}' leaves the backup")))?;
    Ok(rel.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_refuses_escapes() {
        assert_eq!(joined_path("/", "a.txt").unwrap(), "a.txt");
        assert_eq!(joined_path("/sub/deeper", "b").unwrap(), "sub/deeper/b");
        assert_eq!(joined_path("sub/", "b").unwrap(), "sub/b");
        for (p, n) in [("/../x", "a"), ("/", ".."), ("/", "a/b"), ("/a\\b", "c"), ("/", "")] {
            assert!(joined_path(p, n).is_err(), "{p:?} {n:?} should be refused");
        }
    }
}
