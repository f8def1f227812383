//! What the web UI needs beyond the API's operations: per-target summaries for the targets
//! list, one job, the open sequential uploads, one backup with its files, and a folder upload
//! (which keeps relative paths by going through the sequential-upload operations).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use super::{Service, is_single};
use crate::db::{self, jobs::JobRow, targets::Search};
use crate::error::{Error, Result};
use crate::model::backup::{Backup, BackupFile};
use crate::model::target::Target;
use crate::store::blob::Spooled;

/// A target with the figures the targets list shows and sorts by.
pub struct TargetSummary {
    pub target: Target,
    pub active: i64,
    pub recycled: i64,
    /// Logical size of its active backups.
    pub size: i64,
    pub last_backup: Option<DateTime<Utc>>,
    /// Backups whose content no longer matches their hash.
    pub damaged: i64,
}

/// An open sequential upload, as the jobs page lists it.
pub struct OpenSeq {
    pub target_id: String,
    pub target_name: String,
    pub created_at: String,
    pub updated_at: String,
    pub files: i64,
    pub uploaded: i64,
}

impl Service {
    /// Every target (or those matching `search`) with its backup figures.
    pub fn target_summaries(&self, search: Option<&Search>) -> Result<Vec<TargetSummary>> {
        let c = self.conn()?;
        let targets = match search {
            Some(s) => db::targets::search(&c, s)?,
            None => db::targets::all(&c)?,
        };
        let mut stmt = c.prepare_cached(
            "SELECT target_id, COALESCE(SUM(is_recycled = 0), 0), COALESCE(SUM(is_recycled = 1), 0),
                    COALESCE(SUM(CASE WHEN is_recycled = 0 THEN filesize END), 0),
                    MAX(CASE WHEN is_recycled = 0 THEN created_at END), COALESCE(SUM(hash_mismatch), 0)
             FROM backups WHERE state = 'complete' GROUP BY target_id",
        )?;
        type Row = (i64, i64, i64, Option<String>, i64);
        let mut figures: std::collections::HashMap<String, Row> = std::collections::HashMap::new();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))))?;
        for row in rows {
            let (id, f) = row?;
            figures.insert(id, f);
        }
        Ok(targets
            .into_iter()
            .map(|t| {
                let (active, recycled, size, last, damaged) = figures.remove(&t.id).unwrap_or((0, 0, 0, None, 0));
                TargetSummary {
                    target: t,
                    active,
                    recycled,
                    size,
                    last_backup: last.as_deref().and_then(crate::time::parse_iso),
                    damaged,
                }
            })
            .collect())
    }

    /// One queued job by id.
    pub fn job(&self, id: i64) -> Result<JobRow> {
        db::jobs::find(&*self.conn()?, id)?.ok_or_else(|| Error::not_found(format!("Job {id} not found")))
    }

    /// Sequential uploads that are open, oldest first.
    pub fn open_seq_uploads(&self) -> Result<Vec<OpenSeq>> {
        let c = self.conn()?;
        let mut stmt = c.prepare(
            "SELECT s.target_id, t.name, s.created_at, s.updated_at,
                    (SELECT COUNT(*) FROM seq_files f WHERE f.target_id = s.target_id),
                    (SELECT COUNT(*) FROM seq_files f WHERE f.target_id = s.target_id AND f.blob IS NOT NULL)
             FROM seq_uploads s JOIN targets t ON t.id = s.target_id ORDER BY s.created_at",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OpenSeq {
                target_id: r.get(0)?,
                target_name: r.get(1)?,
                created_at: r.get(2)?,
                updated_at: r.get(3)?,
                files: r.get(4)?,
                uploaded: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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
        let file = c
            .query_row(
                "SELECT blob, size FROM backup_files WHERE backup_id = ?1 AND path = ?2",
                [&backup.id, path],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?
            .ok_or_else(|| Error::not_found(format!("Backup {id} has no file '{path}'")))?;
        let blob = self.store.blob_path(&file.0);
        if !blob.exists() {
            return Err(Error::internal(format!("the stored content of '{path}' is missing")));
        }
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        Ok((blob, file.1 as u64, name))
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
}
