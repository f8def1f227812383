//! What bakch owns, decided once: which folders a target may use and which names a backup may
//! take. Paths are compared resolved (symlinks followed), so a link cannot smuggle one owned
//! area into another.
//!
//! - A target's location is outside the data folder and does not contain it, and it is not,
//!   and is not inside, any backup's files (of any target, its own included).
//! - A backup's name is free in its folder: nothing is there, no other backup has it, and the
//!   path is not, and does not contain, another target's location or the data folder.

use std::path::{Path, PathBuf};

use super::Service;
use crate::db;
use crate::error::{Code, Error, Result};
use crate::store::place;

/// Paths a new backup may not be placed on or around: every target's location and the data folder.
pub(super) struct Reserved(Vec<PathBuf>);

impl Reserved {
    /// Whether placing something at `candidate` (resolved) would be, or hold, a reserved path.
    pub(super) fn covers(&self, candidate: &Path) -> bool {
        self.0.iter().any(|p| p.starts_with(candidate))
    }
}

impl Service {
    /// Every reserved path, resolved.
    pub(super) fn reserved(&self, c: &rusqlite::Connection) -> Result<Reserved> {
        let mut paths: Vec<PathBuf> =
            db::targets::all(c)?.iter().map(|t| resolve_existing_prefix(Path::new(&t.location))).collect();
        paths.push(resolve_existing_prefix(&self.config.data_dir));
        paths.sort();
        paths.dedup();
        Ok(Reserved(paths))
    }

    /// Refuses a location for target `target_id` that would overlap the data folder or a backup's
    /// files (see the module doc). Checked on create and edit, before anything is created.
    pub(super) fn check_location(&self, c: &rusqlite::Connection, target_id: &str, location: &Path) -> Result<()> {
        let wanted = resolve_existing_prefix(location);
        let data = resolve_existing_prefix(&self.config.data_dir);
        if wanted.starts_with(&data) {
            return Err(Error::invalid(
                "location",
                Code::Invalid,
                format!(
                    "Location '{}' is inside bakch's data folder {} (through a link); choose a folder outside it",
                    location.display(),
                    self.config.data_dir.display()
                ),
            ));
        }
        if data.starts_with(&wanted) {
            return Err(Error::invalid(
                "location",
                Code::Invalid,
                format!(
                    "Location '{}' holds bakch's data folder {}; choose a folder beside it, not around it",
                    location.display(),
                    self.config.data_dir.display()
                ),
            ));
        }
        for target in db::targets::all(c)? {
            let root = resolve_existing_prefix(Path::new(&target.location));
            if !wanted.starts_with(&root) || wanted == root {
                continue;
            }
            for (backup_id, name) in db::backups::placed_in_target_folder(c, &target.id)? {
                if !wanted.starts_with(root.join(&name)) {
                    continue;
                }
                let whose = if target.id == target_id { "this target's own" } else { "another target's" };
                return Err(Error::invalid(
                    "location",
                    Code::Invalid,
                    format!(
                        "Location '{}' is inside backup {} ({whose} files at {}); a target's folder must be outside every backup",
                        location.display(),
                        backup_id,
                        root.join(&name).display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A name in `dir` for backup `backup_id` of `target_id` (in the recycle bin when `recycled`)
    /// that nothing has (see the module doc): `base` + `ext`, else `base-2` + `ext`, …
    /// `also_taken` lets a caller placing several backups at once keep them apart.
    pub(super) fn free_name(
        &self,
        c: &rusqlite::Connection,
        reserved: &Reserved,
        dir: &Path,
        (base, ext): (&str, &str),
        (target_id, backup_id, recycled): (&str, &str, bool),
        also_taken: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let resolved = resolve_existing_prefix(dir);
        place::free_name(base, ext, |n| {
            Ok(also_taken(n)
                || std::fs::symlink_metadata(dir.join(n)).is_ok()
                || reserved.covers(&resolved.join(n))
                || db::backups::name_used(c, target_id, n, recycled, backup_id)?)
        })
    }
}

/// Canonicalises the longest existing prefix of `path` and appends the rest.
pub(super) fn resolve_existing_prefix(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name().map(|s| s.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    for part in rest.into_iter().rev() {
        out.push(part);
    }
    out
}
