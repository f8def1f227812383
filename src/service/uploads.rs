//! Uploads: accepting the spooled bytes durably (job row committed before the reply), and the
//! upload job that turns them into a visible backup.
//!
//! Crash order inside the job: blobs are in the store -> row inserted `pending` (while the files
//! are built in a staging name) -> renamed into place -> row marked `complete`. A re-run after a crash
//! finds the row and finishes or redoes it, so the job is idempotent.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{Service, is_single};
use crate::db::{self, journal::FsOp};
use crate::error::{Error, Result};
use crate::model::backup::{Backup, BackupFile, content_hash, human_bytes};
use crate::model::job::{JobKind, QueuedJob, Source, UploadJob};
use crate::model::manifest::BackupManifest;
use crate::model::target::{Target, expand_name_template};
use crate::store::blob::Spooled;
use crate::store::durable::{self, Existing};
use crate::store::{archive, place};
use crate::time;

/// One received file part.
pub struct Part {
    pub filename: String,
    pub spooled: Spooled,
}

impl Service {
    /// Records an upload whose bytes are on disk and fsynced; returns the job id once the job
    /// row is committed.
    pub fn accept_upload(&self, target_id: &str, manual: bool, parts: Vec<Part>) -> Result<i64> {
        let _ingest = self.ingest_lock();
        let mut c = self.conn()?;
        let target = self.target(&c, target_id)?;
        if parts.is_empty() {
            return Err(Error::bad("Parameter 'backup_file' required"));
        }
        if is_single(&target) && parts.len() > 1 {
            return Err(Error::bad(format!(
                "Target '{}' takes single files; {} files were sent",
                target.name,
                parts.len()
            )));
        }
        let archive_kind =
            if !is_single(&target) && parts.len() == 1 { archive::kind_of(&parts[0].filename) } else { None };
        let backup_id = uuid::Uuid::new_v4().to_string();
        let source = if archive_kind.is_some() {
            let part = parts.into_iter().next().ok_or_else(|| Error::internal("upload part vanished"))?;
            let file = format!("{backup_id}.upload");
            part.spooled.keep_in(&self.store.uploads, &file)?;
            Source::Archive { file, name: part.filename }
        } else {
            let mut files = Vec::with_capacity(parts.len());
            for part in parts {
                let path = clean_file_name(&part.filename);
                if files.iter().any(|f: &BackupFile| f.path == path) {
                    return Err(Error::bad(format!("Two uploaded files are both named '{path}'")));
                }
                let size = part.spooled.size as i64;
                let blob = part.spooled.into_blob(&self.store)?;
                files.push(BackupFile { path, blob, size, mode: 0o644 });
            }
            Source::Files { files, totals: None }
        };
        let job =
            UploadJob { target_id: target.id.clone(), backup_id, created_at: time::iso(time::now()), manual, source };
        let id = self.enqueue_upload(&mut c, job)?;
        tracing::info!("accepted upload for target '{}' as job {id}", target.name);
        Ok(id)
    }

    pub(super) fn enqueue_upload(&self, c: &mut rusqlite::Connection, job: UploadJob) -> Result<i64> {
        let id = db::with_tx(c, |tx| db::jobs::enqueue(tx, &QueuedJob::Upload(job)))?;
        self.job_ready.notify_one();
        Ok(id)
    }

    /// The upload job. On failure, anything it placed is rolled back and the spooled archive
    /// removed; the job row keeps the reason.
    pub fn run_upload(&self, job: &UploadJob) -> Result<()> {
        let result = self.build_backup(job);
        if let Err(err) = &result {
            if let Err(e) = self.roll_back_pending(&job.backup_id) {
                tracing::error!("could not roll back backup {}: {e}", job.backup_id);
            }
            // Bad input leaves no trace; a failure worth a retry keeps the uploaded bytes.
            if !JobKind::Upload.worth_retry(err) {
                self.drop_spooled_archive(job);
            }
        }
        result
    }

    fn build_backup(&self, job: &UploadJob) -> Result<()> {
        let _ingest = self.ingest_lock();
        let gone = || Error::not_found("the target was deleted before the upload was processed");
        // A re-run after a crash finishes or undoes what the last try placed, under the lock.
        let target = {
            let _placement = self.placement_lock();
            let mut c = self.conn()?;
            let target = db::targets::find(&c, &job.target_id)?.ok_or_else(gone)?;
            if let Some((existing, pending)) = db::backups::find_any(&c, &job.backup_id)? {
                if !pending {
                    self.drop_spooled_archive(job);
                    return Ok(());
                }
                if Self::placed_by_job(&c, &existing.id, &self.backup_path(&target, &existing))? {
                    // The crash came after the rename: the manifest (written again, whole) and
                    // the flag may be missing.
                    let files = db::backups::files(&c, &existing.id)?;
                    self.store.write_backup_manifest(&BackupManifest::of(&existing, target.target_type, &files))?;
                    self.complete(&mut c, &existing.id, |_| Ok(()))?;
                    self.drop_spooled_archive(job);
                    return Ok(());
                }
                drop(c);
                self.roll_back_pending_locked(&job.backup_id)?;
            }
            target
        };
        let (files, ext) = match &job.source {
            // A finished job keeps a few of its files only; it is never run again.
            Source::Files { totals: Some(_), .. } => {
                return Err(Error::internal("this upload finished: its job no longer holds the file list"));
            }
            Source::Files { files, totals: None } => {
                for f in files {
                    if !self.store.blob_path(&f.blob).exists() {
                        return Err(Error::internal(format!(
                            "the uploaded content of '{}' is missing from the store",
                            f.path
                        )));
                    }
                }
                let ext = if is_single(&target) {
                    files.first().map(|f| extension(&f.path)).unwrap_or_default()
                } else {
                    String::new()
                };
                (files.clone(), ext)
            }
            Source::Archive { file, name } => {
                let path = self.store.uploads.join(file);
                let kind = archive::kind_of(name).ok_or_else(|| Error::bad(format!("'{name}' is not an archive")))?;
                if !path.exists() {
                    return Err(Error::internal(format!("the uploaded archive '{name}' is missing")));
                }
                (archive::extract(&self.store, &path, kind, &self.config.limits)?, String::new())
            }
        };
        // From naming to completion, no edit can move the target's folder or rename its backups,
        // so the target is read again under the lock: unpacking may have taken a while. No
        // connection was held while waiting for it.
        let _placement = self.placement_lock();
        let mut c = self.conn()?;
        let target = db::targets::find(&c, &job.target_id)?.ok_or_else(gone)?;
        // Counted now that the content is known: only what the target does not hold yet.
        if target.quota_bytes > 0 {
            let adding = db::backups::new_bytes_for_target(&c, &target.id, &files)?;
            Self::check_quota(&c, &target, adding, "this backup adds")?;
        }
        let created_at: DateTime<Utc> = time::parse_iso(&job.created_at).unwrap_or_else(time::now);
        let base = expand_name_template(&target.name_template, &job.backup_id, created_at, job.manual);
        let location = Path::new(&target.location);
        crate::store::perms::create_dir_all(location, self.store.modes.dir)
            .map_err(|e| Error::internal(format!("target folder {} cannot be created: {e}", location.display())))?;
        let reserved = self.reserved(&c)?;
        let name =
            self.free_name(&c, &reserved, location, (&base, &ext), (&target.id, &job.backup_id, false), |_| false)?;
        let backup = Backup {
            id: job.backup_id.clone(),
            target_id: target.id.clone(),
            created_at,
            manual: job.manual,
            is_recycled: false,
            filesize: files.iter().map(|f| f.size).sum(),
            hash: content_hash(&files, is_single(&target)),
            hash_mismatch: false,
            changes: None,
            unusual: false,
            unusual_reason: None,
            name: name.clone(),
            recycled_at: None,
            pinned: false,
            exclusive_bytes: None,
        };
        // Built under its staging name first, so the row can record what will be renamed into place.
        let dest = location.join(&name);
        // The row is recorded (pending, with what will be renamed into place) while the tree is built.
        let record = |staging: &Path| {
            let ident =
                place::identity(staging).ok_or_else(|| Error::internal(format!("{} vanished", staging.display())))?;
            db::with_tx(&mut c, |tx| db::backups::insert_pending(tx, &backup, &files, &ident))
        };
        let (staging, mode, ()) =
            place::stage_with(&self.store, &files, &dest, &backup.id, is_single(&target), record)?;
        if let Err(e) = durable::publish(&staging, &dest, Existing::Keep, durable::Sync::Now) {
            let _ = self.store.remove(&staging);
            return Err(e);
        }
        if mode == place::LinkMode::Copy {
            tracing::warn!(
                "target '{}': {} is on another filesystem than the store; files were copied, not hard-linked",
                target.name,
                location.display()
            );
        }
        // The manifest first: a row is visible only once the files and their manifest are there.
        self.store.write_backup_manifest(&BackupManifest::of(&backup, target.target_type, &files))?;
        // The change canary is recorded (and an unusual change's notification queued) with the
        // completion, so a finished backup always has it.
        self.complete(&mut c, &backup.id, |tx| self.record_changes(tx, &target, &backup, &files).map(|_| ()))?;
        self.job_ready.notify_one();
        self.metrics.upload_done(backup.filesize, (time::now() - created_at).num_milliseconds() as f64 / 1000.0);
        self.drop_spooled_archive(job);
        tracing::info!("backup {} of target '{}' is complete at {}", backup.id, target.name, dest.display());
        Ok(())
    }

    /// Makes a placed backup visible; one restored from a held entry ends that entry's hold in
    /// the same transaction.
    /// `with` adds to that transaction (the change canary's record).
    fn complete(
        &self,
        c: &mut rusqlite::Connection,
        id: &str,
        with: impl FnOnce(&rusqlite::Connection) -> Result<()>,
    ) -> Result<()> {
        let ops = db::with_tx(c, |tx| {
            with(tx)?;
            db::backups::mark_complete(tx, id)?;
            let was_held = db::held::delete(tx, id)?;
            Self::journal(tx, if was_held { vec![FsOp::Held { backup_id: id.to_string() }] } else { Vec::new() })
        })?;
        self.apply_journal(&ops)
    }

    /// Removes a pending backup's row, its manifest and any files its job placed.
    pub(super) fn roll_back_pending(&self, backup_id: &str) -> Result<()> {
        let _placement = self.placement_lock();
        self.roll_back_pending_locked(backup_id)
    }

    /// [`Service::roll_back_pending`] for a caller that holds the placement lock.
    pub(super) fn roll_back_pending_locked(&self, backup_id: &str) -> Result<()> {
        let mut c = self.conn()?;
        let Some((backup, pending)) = db::backups::find_any(&c, backup_id)? else {
            return Ok(());
        };
        if !pending {
            return Ok(());
        }
        if let Some(target) = db::targets::find(&c, &backup.target_id)? {
            let dest = self.backup_path(&target, &backup);
            self.store.remove(&self.store.own.staging(&dest, &backup.id))?;
            // Only what its job renamed into place; anything else at that name is not bakch's.
            if Self::placed_by_job(&c, &backup.id, &dest)? {
                self.store.remove(&dest)?;
            }
        }
        // Before the row: a manifest without a row would bring the backup back in a rebuild.
        self.store.remove_backup_manifest(&backup.target_id, &backup.id)?;
        db::with_tx(&mut c, |tx| db::backups::delete(tx, backup_id))
    }

    /// Whether `dest` holds exactly what the job of pending backup `backup_id` renamed there.
    fn placed_by_job(c: &rusqlite::Connection, backup_id: &str, dest: &Path) -> Result<bool> {
        let ident = db::backups::placed_ident(c, backup_id)?;
        Ok(ident.is_some() && place::identity(dest) == ident)
    }

    fn drop_spooled_archive(&self, job: &UploadJob) {
        if let Source::Archive { file, .. } = &job.source {
            let path = self.store.uploads.join(file);
            if let Err(e) = self.store.remove(&path) {
                tracing::warn!("could not remove {}: {e}", path.display());
            }
        }
    }

    /// Ensures a target exists before its upload body is read, and that an upload of
    /// `known_bytes` (the body's length, when the client sent one) cannot pass its quota: every
    /// byte is counted, as what deduplication will save is only known once the bytes are here.
    pub fn target_for_upload(&self, id: &str, known_bytes: Option<u64>) -> Result<Target> {
        let c = self.conn()?;
        let target = self.target(&c, id)?;
        if let Some(n) = known_bytes {
            Self::check_quota(&c, &target, n.min(i64::MAX as u64) as i64, "this upload is up to")?;
        }
        Ok(target)
    }

    /// Refuses (413) what would take a target past its quota; `adding` is how many bytes of
    /// content it would add to what the target's backups already use.
    pub(super) fn check_quota(c: &rusqlite::Connection, target: &Target, adding: i64, what: &str) -> Result<()> {
        if target.quota_bytes == 0 {
            return Ok(());
        }
        let (_, used) = db::backups::target_usage(c, &target.id)?;
        if used.saturating_add(adding) <= target.quota_bytes && used < target.quota_bytes {
            return Ok(());
        }
        Err(Error::TooLarge(format!(
            "Target '{}' would pass its quota: its backups use {} of {} and {what} {}; delete backups (and empty the recycle bin) or raise quota_bytes",
            target.name,
            human_bytes(used),
            human_bytes(target.quota_bytes),
            human_bytes(adding)
        )))
    }
}

/// The name a client gave a file, reduced to one safe path component.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("").replace('\0', "");
    match last.trim() {
        "" | "." | ".." => "upload".to_string(),
        n => n.to_string(),
    }
}

/// A file's extension as kept on a single-file backup: `.tar.gz` and friends count as one.
pub fn extension(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    // Archive names, and lz4 (kept whole: `tarfile` cannot read it either), count as one.
    let compounds = archive::SUFFIXES.iter().map(|(s, _)| *s).filter(|s| s.starts_with(".tar.")).chain([".tar.lz4"]);
    for compound in compounds {
        if lower.ends_with(compound) && lower.len() > compound.len() {
            return name[name.len() - compound.len()..].to_string();
        }
    }
    match name.rfind('.') {
        Some(0) | None => String::new(),
        Some(i) => {
            let ext = &name[i..];
            if ext.len() <= 12 && ext[1..].chars().all(|c| c.is_ascii_alphanumeric()) && ext.len() > 1 {
                ext.to_string()
            } else {
                String::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(extension("db.sql"), ".sql");
        assert_eq!(extension("site.tar.gz"), ".tar.gz");
        assert_eq!(extension("site.tar.zstd"), ".tar.zstd");
        assert_eq!(extension("site.TAR.BZ2"), ".TAR.BZ2");
        assert_eq!(extension("README"), "");
        assert_eq!(extension(".bashrc"), "");
        assert_eq!(extension("a.b c"), "");
    }

    #[test]
    fn file_names_lose_their_folders() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\x\\y.txt"), "y.txt");
        assert_eq!(clean_file_name(".."), "upload");
    }
}
