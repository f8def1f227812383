//! File history across a target's backups: search by path fragment (from the file index), the
//! versions of one path, the difference between two backups, and a chosen set of files or
//! folders of one backup for download.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Service;
use super::backups::Download;
use crate::db;
use crate::error::{Code, Error, Result};
use crate::model::backup::{Backup, BackupFile};

/// The most results one page of a search returns.
pub const MAX_PAGE: usize = 200;

/// A path that matched a search.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FoundPath {
    pub path: String,
    /// How many of the target's backups (active or recycled) hold it.
    pub backups: i64,
}

/// One page of a search.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FoundPage {
    pub paths: Vec<FoundPath>,
    pub page: usize,
    pub page_size: usize,
    /// Whether a next page exists.
    pub more: bool,
}

/// One version of a path: the backup holding it and the file there.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Version {
    pub backup_id: String,
    #[serde(serialize_with = "crate::model::backup::iso8601")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    pub is_recycled: bool,
    pub pinned: bool,
    pub size: i64,
    /// blake3 of the file's bytes.
    pub hash: String,
    /// Whether it differs from the next older version (true for the oldest).
    pub changed: bool,
}

/// A file present in both backups of a comparison, with different content.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Changed {
    pub path: String,
    pub old_size: i64,
    pub new_size: i64,
}

/// A file of one side of a comparison.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub path: String,
    pub size: i64,
}

/// What changed from backup `from` to backup `to`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    pub from: String,
    pub to: String,
    pub added: Vec<Entry>,
    pub removed: Vec<Entry>,
    pub changed: Vec<Changed>,
    /// How many files are the same in both.
    pub unchanged: usize,
}

/// The archive format of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    Zip,
}

impl Format {
    pub fn parse(s: Option<&str>) -> Result<Format> {
        match s.map(str::trim) {
            None | Some("") | Some("tar") => Ok(Format::Tar),
            Some("zip") => Ok(Format::Zip),
            Some(_) => Err(Error::invalid("format", Code::NotAChoice, "Parameter 'format' must be one of: tar, zip")),
        }
    }
}

impl Service {
    /// A page of the target's paths containing `q`.
    pub fn search_files(&self, target: &str, q: &str, page: usize, page_size: usize) -> Result<FoundPage> {
        let q = q.trim();
        if q.is_empty() {
            return Err(Error::invalid("q", Code::Required, "Parameter 'q' required (a file name or part of a path)"));
        }
        let page = page.max(1);
        let page_size = page_size.clamp(1, MAX_PAGE);
        let c = self.conn()?;
        let target = self.target(&c, target)?;
        let offset = (page - 1).saturating_mul(page_size);
        let mut rows = db::backups::search_paths(&c, &target.id, q, page_size + 1, offset)?;
        let more = rows.len() > page_size;
        rows.truncate(page_size);
        let paths = rows.into_iter().map(|(path, backups)| FoundPath { path, backups }).collect();
        Ok(FoundPage { paths, page, page_size, more })
    }

    /// Every version of `path` in the target's backups, newest first.
    pub fn file_history(&self, target: &str, path: &str) -> Result<Vec<Version>> {
        if path.is_empty() {
            return Err(Error::invalid("path", Code::Required, "Parameter 'path' required"));
        }
        let c = self.conn()?;
        let target = self.target(&c, target)?;
        let rows = db::backups::path_history(&c, &target.id, path)?;
        let mut out: Vec<Version> = Vec::with_capacity(rows.len());
        for (i, (b, blob, size)) in rows.iter().enumerate() {
            let older = rows.get(i + 1).map(|(_, blob, _)| blob);
            out.push(Version {
                backup_id: b.id.clone(),
                created_at: b.created_at,
                is_recycled: b.is_recycled,
                pinned: b.pinned,
                size: *size,
                hash: blob.clone(),
                changed: older != Some(blob),
            });
        }
        Ok(out)
    }

    /// A backup of `target` by id, or a 404 naming the parameter (a backup of another target
    /// is not found here, so a key scoped to the target learns nothing of others).
    fn backup_of(&self, c: &rusqlite::Connection, target_id: &str, id: &str, field: &str) -> Result<Backup> {
        match db::backups::find(c, id)? {
            Some(b) if b.target_id == target_id => Ok(b),
            _ => Err(Error::not_found(format!("Backup '{id}' ({field}) is not a backup of this target"))),
        }
    }

    /// What changed from backup `from` to backup `to`, both of `target`.
    pub fn compare(&self, target: &str, from: &str, to: &str) -> Result<Comparison> {
        let c = self.conn()?;
        let target = self.target(&c, target)?;
        let a = self.backup_of(&c, &target.id, from, "from")?;
        let b = self.backup_of(&c, &target.id, to, "to")?;
        let old: BTreeMap<String, BackupFile> =
            db::backups::files(&c, &a.id)?.into_iter().map(|f| (f.path.clone(), f)).collect();
        let new: BTreeMap<String, BackupFile> =
            db::backups::files(&c, &b.id)?.into_iter().map(|f| (f.path.clone(), f)).collect();
        let mut cmp =
            Comparison { from: a.id, to: b.id, added: vec![], removed: vec![], changed: vec![], unchanged: 0 };
        for (path, f) in &new {
            match old.get(path) {
                None => cmp.added.push(Entry { path: path.clone(), size: f.size }),
                Some(o) if o.blob != f.blob => {
                    cmp.changed.push(Changed { path: path.clone(), old_size: o.size, new_size: f.size })
                }
                Some(_) => cmp.unchanged += 1,
            }
        }
        for (path, f) in &old {
            if !new.contains_key(path) {
                cmp.removed.push(Entry { path: path.clone(), size: f.size });
            }
        }
        Ok(cmp)
    }

    /// The chosen files and folders (every file under a chosen folder) of one backup, as one
    /// archive streamed while it is sent.
    pub fn download_selection(&self, id: &str, paths: &[String], format: Format) -> Result<Download> {
        if paths.is_empty() {
            return Err(Error::invalid("path", Code::Required, "Parameter 'path' required (one per file or folder)"));
        }
        let c = self.conn()?;
        let backup = self.backup(&c, id)?;
        let files = db::backups::files(&c, &backup.id)?;
        // A file is chosen by its own path or a folder above it: a lookup per level, so
        // thousands of ticked paths cost no more than a few.
        let chosen_paths: HashSet<&str> = paths.iter().map(|p| p.trim_matches('/')).collect();
        let wanted = |f: &BackupFile| {
            chosen_paths.contains("")
                || chosen_paths.contains(f.path.as_str())
                || f.path.match_indices('/').any(|(i, _)| chosen_paths.contains(&f.path[..i]))
        };
        let chosen: Vec<BackupFile> = files.into_iter().filter(wanted).collect();
        if chosen.is_empty() {
            return Err(Error::not_found(format!("Backup {id} has none of the chosen paths")));
        }
        for f in &chosen {
            if !self.store.blob_path(&f.blob).exists() {
                return Err(Error::internal(format!("the stored content of '{}' is missing", f.path)));
            }
        }
        let mtime = backup.created_at.timestamp().max(0) as u64;
        Ok(match format {
            Format::Tar => Download::Tree { files: chosen, filename: format!("{}-selection.tar", backup.name), mtime },
            Format::Zip => Download::Zip { files: chosen, filename: format!("{}-selection.zip", backup.name), mtime },
        })
    }
}
