//! Creating, editing (moving files when location or name template change) and deleting targets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Service, is_single};
use crate::db::{self, journal::FsOp, targets::Search};
use crate::error::{Error, IoContext, Result};
use crate::model::backup::Backup;
use crate::model::target::{Target, TargetInput, expand_name_template};
use crate::store::place;
use crate::time;

/// Which of a target's backups a bulk delete takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    All,
    Recycled,
}

impl Service {
    pub fn list_targets(&self, page: usize) -> Result<Arc<Vec<Target>>> {
        self.read_cache.target_page(page, || {
            let size = self.config.page_size;
            db::targets::page(&*self.conn()?, page.saturating_sub(1).saturating_mul(size), size)
        })
    }

    pub fn search_targets(&self, search: &Search) -> Result<Vec<Target>> {
        db::targets::search(&*self.conn()?, search)
    }

    /// A target and its listed backups (active and recycled), newest first.
    pub fn target_with_backups(&self, id: &str) -> Result<(Target, Vec<Backup>)> {
        self.read_cache.target(id, || {
            let c = self.conn()?;
            let target = self.target(&c, id)?;
            let backups = db::backups::for_target(&c, &target.id)?;
            Ok((target, backups))
        })
    }

    pub fn create_target(&self, input: TargetInput) -> Result<String> {
        let mut target = input.into_new_target(uuid::Uuid::new_v4().to_string())?;
        target.normalize_and_validate(&self.config.data_dir)?;
        let mut c = self.conn()?;
        check_unique(&c, &target)?;
        ensure_location(Path::new(&target.location), self.store.modes.dir)?;
        db::with_tx(&mut c, |tx| {
            check_unique(tx, &target)?;
            db::targets::insert(tx, &target, &time::iso(time::now()))
        })?;
        tracing::info!("created target '{}' ({}) at {}", target.name, target.id, target.location);
        Ok(target.id)
    }

    /// Applies an edit. When the location or name template changes, every backup's files move
    /// first; the rows change only once all moved (on failure, moved files are put back).
    pub fn edit_target(&self, id: &str, input: TargetInput) -> Result<()> {
        let _placement = self.placement_lock();
        let mut c = self.conn()?;
        let old = self.target(&c, id)?;
        let mut new = input.apply_to(&old)?;
        new.normalize_and_validate(&self.config.data_dir)?;
        check_unique(&c, &new)?;
        let moved_folder = new.location != old.location;
        let renamed = new.name_template != old.name_template;
        let mut moves: Vec<(Backup, PathBuf, PathBuf, String)> = Vec::new();
        if moved_folder || renamed {
            ensure_location(Path::new(&new.location), self.store.modes.dir)?;
            let backups = db::backups::for_target(&c, &old.id)?;
            let mut chosen: Vec<(bool, String)> = Vec::new();
            for b in backups {
                if b.is_recycled && !renamed {
                    continue;
                }
                let name = if renamed {
                    let ext = extension_of(&old, &b);
                    let base = expand_name_template(&new.name_template, &b.id, b.created_at, b.manual);
                    let dir = self.place_path(&new, b.is_recycled, "");
                    place::free_name(&base, &ext, |n| {
                        Ok(chosen.iter().any(|(r, c)| *r == b.is_recycled && c == n)
                            || dir.join(n).exists()
                            || db::backups::name_used(&c, &old.id, n, b.is_recycled, &b.id)?)
                    })?
                } else {
                    b.name.clone()
                };
                chosen.push((b.is_recycled, name.clone()));
                let from = self.backup_path(&old, &b);
                let to = self.place_path(&new, b.is_recycled, &name);
                if from != to {
                    moves.push((b, from, to, name));
                }
            }
        }
        let single = is_single(&old);
        let ops: Vec<FsOp> = moves
            .iter()
            .map(|(b, from, to, _)| FsOp::Move {
                path: from.to_string_lossy().into_owned(),
                dest: to.to_string_lossy().into_owned(),
                backup_id: b.id.clone(),
                single,
            })
            .collect();
        // The new rows and the moves they promise commit together; the moves follow.
        let journalled = db::with_tx(&mut c, |tx| {
            check_unique(tx, &new)?;
            db::targets::update(tx, &new)?;
            for (b, _, _, name) in &moves {
                db::backups::set_place(tx, &b.id, b.is_recycled, name)?;
            }
            Self::journal(tx, ops)
        })?;
        if let Err(e) = self.apply_journal(&journalled) {
            self.undo_edit(&mut c, &old, &moves, &journalled)?;
            return Err(Error::internal(format!("moving backup files failed, the edit was not applied: {e}")));
        }
        if !moves.is_empty() {
            tracing::info!("target '{}': moved {} backup(s) to {}", new.name, moves.len(), new.location);
        }
        Ok(())
    }

    /// Puts files and rows back as they were before a failed edit. If even that fails, the
    /// journal keeps the forward moves, and start-up completes them.
    fn undo_edit(
        &self,
        c: &mut rusqlite::Connection,
        old: &Target,
        moves: &[(Backup, PathBuf, PathBuf, String)],
        journalled: &[(i64, FsOp)],
    ) -> Result<()> {
        for (_, op) in journalled.iter().rev() {
            if let FsOp::Move { path, dest, backup_id, single } = op {
                let back = FsOp::Move {
                    path: dest.clone(),
                    dest: path.clone(),
                    backup_id: backup_id.clone(),
                    single: *single,
                };
                if let Err(e) = self.apply_op(&back) {
                    tracing::error!("could not undo a move of backup {backup_id}: {e}; it completes at next start");
                    return Ok(());
                }
            }
        }
        db::with_tx(c, |tx| {
            db::targets::update(tx, old)?;
            for (b, _, _, _) in moves {
                db::backups::set_place(tx, &b.id, b.is_recycled, &b.name)?;
            }
            journalled.iter().try_for_each(|(id, _)| db::journal::done(tx, *id))
        })
    }

    /// Deletes a target and its backups' rows; with `delete_files`, their files too.
    pub fn delete_target(&self, id: &str, delete_files: bool) -> Result<()> {
        let mut c = self.conn()?;
        let target = self.target(&c, id)?;
        self.delete_backups_of(&target, Which::All, delete_files)?;
        db::with_tx(&mut c, |tx| db::targets::delete(tx, &target.id))?;
        tracing::info!("deleted target '{}' ({}), files deleted: {delete_files}", target.name, target.id);
        Ok(())
    }

    /// Deletes every backup (or every recycled backup) of a target.
    pub fn delete_target_backups(&self, id: &str, which: Which, delete_files: bool) -> Result<usize> {
        let target = self.target(&*self.conn()?, id)?;
        self.delete_backups_of(&target, which, delete_files)
    }

    fn delete_backups_of(&self, target: &Target, which: Which, delete_files: bool) -> Result<usize> {
        let backups = db::backups::for_target(&*self.conn()?, &target.id)?;
        let mut n = 0;
        for b in backups.iter().filter(|b| which == Which::All || b.is_recycled) {
            self.delete_backup_of(target, b, delete_files)?;
            n += 1;
        }
        Ok(n)
    }
}

/// The part of a single-file backup's name after its expanded template (its extension).
fn extension_of(target: &Target, b: &Backup) -> String {
    if !is_single(target) {
        return String::new();
    }
    let base = expand_name_template(&target.name_template, &b.id, b.created_at, b.manual);
    match b.name.strip_prefix(&base) {
        Some(rest) => rest.trim_start_matches(|c: char| c == '-' || c.is_ascii_digit()).to_string(),
        None => super::uploads::extension(&b.name),
    }
}

fn check_unique(c: &rusqlite::Connection, t: &Target) -> Result<()> {
    if db::targets::taken(c, "name_template", &t.name_template, &t.id)? {
        return Err(Error::conflict(format!("Name template '{}' is already used by another target", t.name_template)));
    }
    if let Some(alias) = &t.alias
        && (db::targets::taken(c, "alias", alias, &t.id)? || db::targets::find(c, alias)?.is_some_and(|o| o.id != t.id))
    {
        return Err(Error::conflict(format!("Alias '{alias}' is already used by another target")));
    }
    Ok(())
}

/// Creates the target folder (folders it creates get `dir_mode`), or explains why it cannot be used.
fn ensure_location(dir: &Path, dir_mode: u32) -> Result<()> {
    crate::store::perms::create_dir_all(dir, dir_mode)
        .map_err(|e| Error::bad(format!("Location {} cannot be created: {e}", dir.display())))?;
    if !dir.is_dir() {
        return Err(Error::bad(format!("Location {} is not a folder", dir.display())));
    }
    let probe = dir.join(format!("{}{}", place::PROBE_PREFIX, uuid::Uuid::new_v4().simple()));
    std::fs::write(&probe, b"").map_err(|e| Error::bad(format!("Location {} is not writable: {e}", dir.display())))?;
    std::fs::remove_file(&probe).ctx("remove", &probe)
}

/// How much a target's backups take.
#[derive(Clone)]
pub struct Usage {
    /// `hardlink` when the target folder shares the store's filesystem, else `copy` (no
    /// deduplication on disk there).
    pub storage: &'static str,
    /// Sum of its backups' sizes.
    pub logical: i64,
    /// Bytes really used: each distinct content once when hard-linked, every copy otherwise.
    pub disk_used: i64,
}

impl Service {
    /// Whether the target's folder shares the store's filesystem (hard links work there).
    pub fn links_to_store(&self, t: &Target) -> bool {
        use std::os::unix::fs::MetadataExt;
        let device = |p: &Path| p.ancestors().find_map(|a| std::fs::metadata(a).ok()).map(|m| m.dev());
        device(Path::new(&t.location)) == device(&self.store.blobs)
    }

    pub fn target_usage(&self, t: &Target) -> Result<Usage> {
        self.read_cache.usage(&t.id, &t.location, || {
            let linked = self.links_to_store(t);
            let (logical, distinct) = db::backups::target_usage(&*self.conn()?, &t.id)?;
            Ok(Usage {
                storage: if linked { "hardlink" } else { "copy" },
                logical,
                disk_used: if linked { distinct } else { logical },
            })
        })
    }
}
