//! Creating, editing (moving files when location or name template change) and deleting targets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Service, is_single};
use crate::db::{self, journal::FsOp, targets::Search};
use crate::error::{Code, Error, Result};
use crate::model::audit::Who;
use crate::model::backup::Backup;
use crate::model::health::Health;
use crate::model::target::{Target, TargetInput, expand_name_template};
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

    /// A target by id or alias, without its backups (which [`Self::target_with_backups`] builds
    /// with each one's exclusive bytes).
    pub fn find_target(&self, id_or_alias: &str) -> Result<Target> {
        self.target(&*self.conn()?, id_or_alias)
    }

    /// A target and its listed backups (active and recycled), newest first.
    pub fn target_with_backups(&self, id: &str) -> Result<(Target, Vec<Backup>)> {
        self.read_cache.target(id, || {
            let c = self.conn()?;
            let target = self.target(&c, id)?;
            let mut backups = db::backups::for_target(&c, &target.id)?;
            let exclusive = db::backups::exclusive_bytes(&c, &target.id)?;
            for b in &mut backups {
                b.exclusive_bytes = Some(exclusive.get(&b.id).copied().unwrap_or(0));
            }
            Ok((target, backups))
        })
    }

    pub fn create_target(&self, input: TargetInput) -> Result<String> {
        let mut target = input.into_new_target(uuid::Uuid::new_v4().to_string())?;
        target.normalize_and_validate(&self.config.data_dir)?;
        // Under the placement lock, so no backup is placed where this location is being checked.
        let _placement = self.placement_lock();
        self.add_target_locked(&target, &time::iso(time::now()))?;
        tracing::info!("created target '{}' ({}) at {}", target.name, target.id, target.location);
        Ok(target.id)
    }

    /// Adds a checked target (a new one, or one a held backup brings back); the caller holds
    /// the placement lock.
    pub(super) fn add_target_locked(&self, target: &Target, created_at: &str) -> Result<()> {
        let mut c = self.conn()?;
        check_unique(&c, target)?;
        self.check_location(&c, &target.id, Path::new(&target.location))?;
        let created = self.ensure_location(Path::new(&target.location))?;
        let ops = db::with_tx(&mut c, |tx| {
            check_unique(tx, target)?;
            db::targets::insert(tx, target, created_at)?;
            Self::journal(tx, vec![FsOp::TargetFile { target_id: target.id.clone() }])
        })
        .inspect_err(|_| created.undo())?;
        drop(c);
        self.apply_journal(&ops)
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
        let mut created = Created::default();
        if moved_folder || renamed {
            if moved_folder {
                self.check_location(&c, &old.id, Path::new(&new.location))?;
            }
            created = self.ensure_location(Path::new(&new.location))?;
            let planned = self.plan_moves(&c, &old, &new, renamed);
            moves = match planned {
                Ok(m) => m,
                Err(e) => {
                    created.undo();
                    return Err(e);
                }
            };
        }
        let single = is_single(&old);
        // The moves, then each moved backup's manifest, then the target's definition.
        let mut ops: Vec<FsOp> = moves
            .iter()
            .map(|(b, from, to, _)| FsOp::Move {
                path: from.to_string_lossy().into_owned(),
                dest: to.to_string_lossy().into_owned(),
                backup_id: b.id.clone(),
                single,
                ident: None,
            })
            .collect();
        ops.extend(moves.iter().map(|(b, ..)| Self::manifest_op(&old.id, &b.id)));
        ops.push(FsOp::TargetFile { target_id: old.id.clone() });
        // The new rows and the moves they promise commit together; the moves follow.
        let journalled = db::with_tx(&mut c, |tx| {
            check_unique(tx, &new)?;
            db::targets::update(tx, &new)?;
            for (b, _, _, name) in &moves {
                db::backups::set_place(tx, &b.id, b.is_recycled, name)?;
            }
            Self::journal(tx, ops)
        })
        .inspect_err(|_| created.undo())?;
        drop(c);
        if let Err(e) = self.apply_journal(&journalled) {
            if self.undo_edit(&old, &moves, &journalled)? {
                created.undo();
            }
            return Err(match e {
                Error::Conflict(why) => Error::conflict(format!("{why}; the edit was not applied")),
                e => Error::internal(format!("moving backup files failed, the edit was not applied: {e}")),
            });
        }
        if !moves.is_empty() {
            tracing::info!("target '{}': moved {} backup(s) to {}", new.name, moves.len(), new.location);
        }
        Ok(())
    }

    /// Where each backup goes when a target's folder or name template changes: `(backup, from,
    /// to, new name)`, every name free by the ownership rule (a taken one gets `-2`, `-3`, …).
    fn plan_moves(
        &self,
        c: &rusqlite::Connection,
        old: &Target,
        new: &Target,
        renamed: bool,
    ) -> Result<Vec<(Backup, PathBuf, PathBuf, String)>> {
        let reserved = self.reserved(c)?;
        let mut chosen: Vec<(bool, String)> = Vec::new();
        let mut moves = Vec::new();
        for b in db::backups::for_target(c, &old.id)? {
            if b.is_recycled && !renamed {
                continue;
            }
            let from = self.backup_path(old, &b);
            let dir = self.place_path(new, b.is_recycled, "");
            let (base, ext) = if renamed {
                (expand_name_template(&new.name_template, &b.id, b.created_at, b.manual), extension_of(old, &b))
            } else {
                super::backups::split_suffix(&b.name, is_single(old))
            };
            let name = if dir.join(&b.name) == from && !renamed {
                b.name.clone() // Staying where it is.
            } else {
                self.free_name(c, &reserved, &dir, (&base, &ext), (&old.id, &b.id, b.is_recycled), |n| {
                    chosen.iter().any(|(r, c)| *r == b.is_recycled && c == n)
                })?
            };
            chosen.push((b.is_recycled, name.clone()));
            let to = dir.join(&name);
            if from != to {
                moves.push((b, from, to, name));
            }
        }
        Ok(moves)
    }

    /// Puts files and rows back as they were before a failed edit; returns whether it could. If
    /// not, the journal keeps the forward moves, and start-up completes them.
    fn undo_edit(
        &self,
        old: &Target,
        moves: &[(Backup, PathBuf, PathBuf, String)],
        journalled: &[(i64, FsOp)],
    ) -> Result<bool> {
        for ((b, from, _, _), (id, _)) in moves.iter().zip(journalled).rev() {
            let Some(to) = self.moved_to(*id)? else { continue };
            if let Err(e) = self.move_backup(&to, from, (&b.id, is_single(old)), None, &|_| Ok(())) {
                tracing::error!("could not undo a move of backup {}: {e}; it completes at next start", b.id);
                return Ok(false);
            }
        }
        let mut c = self.conn()?;
        db::with_tx(&mut c, |tx| {
            db::targets::update(tx, old)?;
            for (b, _, _, _) in moves {
                db::backups::set_place(tx, &b.id, b.is_recycled, &b.name)?;
            }
            journalled.iter().try_for_each(|(id, _)| db::journal::done(tx, *id))
        })?;
        drop(c);
        // Some manifests may have been rewritten before the failure: back to the rows.
        for (b, ..) in moves {
            self.sync_backup_manifest(&old.id, &b.id)?;
        }
        self.sync_target_manifest(&old.id)?;
        Ok(true)
    }

    /// Deletes a target and its backups' rows; with `delete_files`, their files too. Holds the
    /// placement lock throughout, so an upload job either finished before (its backup is deleted
    /// with the rest) or finds the target gone.
    pub fn delete_target(&self, id: &str, delete_files: bool, by: &Who) -> Result<()> {
        let _placement = self.placement_lock();
        let (target, backups, pending) = {
            let c = self.conn()?;
            let target = self.target(&c, id)?;
            let backups = db::backups::for_target(&c, &target.id)?;
            let pending: Vec<String> =
                db::backups::pending(&c)?.into_iter().filter(|b| b.target_id == target.id).map(|b| b.id).collect();
            (target, backups, pending)
        };
        refuse_any_pinned(&target, backups.iter())?;
        for b in &backups {
            self.delete_backup_locked(&target, b, delete_files, by)?;
        }
        // A backup a crash left half-built: what its job placed goes too, or it would stay
        // behind owned by nothing once the row goes with the target.
        for id in &pending {
            self.roll_back_pending_locked(id)?;
        }
        let ops = db::with_tx(&mut *self.conn()?, |tx| {
            db::targets::delete(tx, &target.id)?;
            Self::journal(tx, vec![FsOp::TargetFile { target_id: target.id.clone() }])
        })?;
        self.apply_journal(&ops)?;
        tracing::info!("deleted target '{}' ({}), files deleted: {delete_files}", target.name, target.id);
        Ok(())
    }

    /// Deletes every backup (or every recycled backup) of a target.
    pub fn delete_target_backups(&self, id: &str, which: Which, delete_files: bool, by: &Who) -> Result<usize> {
        let target = self.target(&*self.conn()?, id)?;
        self.delete_backups_of(&target, which, delete_files, by)
    }

    fn delete_backups_of(&self, target: &Target, which: Which, delete_files: bool, by: &Who) -> Result<usize> {
        let _placement = self.placement_lock();
        // Read again under the lock: an edit may have moved its folder since.
        let Some(target) = db::targets::find(&*self.conn()?, &target.id)? else { return Ok(0) };
        let target = &target;
        let backups = db::backups::for_target(&*self.conn()?, &target.id)?;
        refuse_any_pinned(target, backups.iter().filter(|b| which == Which::All || b.is_recycled))?;
        let mut n = 0;
        for b in backups.iter().filter(|b| which == Which::All || b.is_recycled) {
            self.delete_backup_locked(target, b, delete_files, by)?;
            n += 1;
        }
        Ok(n)
    }
}

/// A bulk delete stops before it starts when one of the backups it takes is pinned.
fn refuse_any_pinned<'a>(target: &Target, backups: impl Iterator<Item = &'a Backup>) -> Result<()> {
    let pinned: Vec<&str> = backups.filter(|b| b.pinned).map(|b| b.id.as_str()).collect();
    if pinned.is_empty() {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "Target '{}' has {} pinned backup(s) ({}); unpin them first",
        target.name,
        pinned.len(),
        pinned.join(", ")
    )))
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
        return Err(Error::taken(
            "name_template",
            format!("Name template '{}' is already used by another target", t.name_template),
        ));
    }
    if let Some(alias) = &t.alias
        && (db::targets::taken(c, "alias", alias, &t.id)? || db::targets::find(c, alias)?.is_some_and(|o| o.id != t.id))
    {
        return Err(Error::taken("alias", format!("Alias '{alias}' is already used by another target")));
    }
    Ok(())
}

/// The folders an edit or create made for a new location (the location and its highest new
/// ancestor), so a refused change leaves none.
#[derive(Default)]
struct Created(Option<(PathBuf, PathBuf)>);

impl Created {
    /// Removes the folders made, if they are still empty (never anything else).
    fn undo(&self) {
        let Some((leaf, top)) = &self.0 else { return };
        // Deepest first; `remove_dir` refuses a folder that is not empty.
        for dir in leaf.ancestors() {
            let _ = std::fs::remove_dir(dir);
            if dir == top {
                break;
            }
        }
    }
}

impl Service {
    /// Creates the target folder, or explains why it cannot be used; returns what it created.
    fn ensure_location(&self, dir: &Path) -> Result<Created> {
        let top = dir.ancestors().take_while(|a| std::fs::symlink_metadata(a).is_err()).last().map(Path::to_path_buf);
        crate::store::perms::create_dir_all(dir, self.store.modes.dir).map_err(|e| {
            Error::invalid("location", Code::Invalid, format!("Location {} cannot be created: {e}", dir.display()))
        })?;
        let created = Created(top.map(|top| (dir.to_path_buf(), top)));
        if !dir.is_dir() {
            return Err(Error::invalid(
                "location",
                Code::Invalid,
                format!("Location {} is not a folder", dir.display()),
            ));
        }
        let probe = self.store.own.probe(dir);
        let written = std::fs::write(&probe, b"")
            .map_err(|e| {
                Error::invalid("location", Code::Invalid, format!("Location {} is not writable: {e}", dir.display()))
            })
            .and_then(|()| self.store.remove(&probe));
        if let Err(e) = written {
            created.undo();
            return Err(e);
        }
        Ok(created)
    }
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
    /// Each distinct content once, wherever it lies: what the quota counts.
    pub distinct: i64,
}

impl Service {
    /// Whether the target's folder shares the store's filesystem (hard links work there).
    pub fn links_to_store(&self, t: &Target) -> bool {
        use std::os::unix::fs::MetadataExt;
        let device = |p: &Path| p.ancestors().find_map(|a| std::fs::metadata(a).ok()).map(|m| m.dev());
        device(Path::new(&t.location)) == device(&self.store.blobs)
    }

    pub fn target_usage(&self, t: &Target) -> Result<Usage> {
        self.read_cache.usage(&t.id, &t.location, || self.usage_in(&*self.conn()?, t))
    }

    /// Usage and health of each of `targets`, over one pooled connection: a page asks for ten,
    /// and a connection each made a burst of pages queue on the pool (see README, Performance).
    pub fn usage_and_health(&self, targets: &[Target]) -> Result<Vec<(Usage, Health)>> {
        let c = self.conn()?;
        targets
            .iter()
            .map(|t| Ok((self.read_cache.usage(&t.id, &t.location, || self.usage_in(&c, t))?, self.health_in(&c, t)?)))
            .collect()
    }

    fn usage_in(&self, c: &rusqlite::Connection, t: &Target) -> Result<Usage> {
        let linked = self.links_to_store(t);
        let (logical, distinct) = db::backups::target_usage(c, &t.id)?;
        Ok(Usage {
            storage: if linked { "hardlink" } else { "copy" },
            logical,
            disk_used: if linked { distinct } else { logical },
            distinct,
        })
    }
}

/// A target with the figures the targets list shows and sorts by.
pub struct TargetSummary {
    pub target: Target,
    pub active: i64,
    pub recycled: i64,
    /// Logical size of its active backups.
    pub size: i64,
    pub last_backup: Option<chrono::DateTime<chrono::Utc>>,
    /// Backups whose content no longer matches their hash.
    pub damaged: i64,
}

impl Service {
    /// Every target (or those matching `search`) with its backup figures.
    pub fn target_summaries(&self, search: Option<&Search>) -> Result<Vec<TargetSummary>> {
        let c = self.conn()?;
        let targets = match search {
            Some(s) => db::targets::search(&c, s)?,
            None => db::targets::all(&c)?,
        };
        let mut figures = db::backups::target_figures(&c)?;
        Ok(targets
            .into_iter()
            .map(|t| {
                let f = figures.remove(&t.id).unwrap_or_default();
                TargetSummary {
                    target: t,
                    active: f.active,
                    recycled: f.recycled,
                    size: f.size,
                    last_backup: f.last_backup.as_deref().and_then(time::parse_iso),
                    damaged: f.damaged,
                }
            })
            .collect())
    }
}

/// The orders of the targets list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSort {
    Name,
    Size,
    Backups,
    Last,
}

impl TargetSort {
    pub fn parse(s: &str) -> Option<TargetSort> {
        [TargetSort::Name, TargetSort::Size, TargetSort::Backups, TargetSort::Last]
            .into_iter()
            .find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetSort::Name => "name",
            TargetSort::Size => "size",
            TargetSort::Backups => "backups",
            TargetSort::Last => "last",
        }
    }
}

/// One page of the targets list, with the totals of every target that matched.
pub struct TargetListPage {
    pub rows: Vec<TargetSummary>,
    /// 1-based, within `1..=pages`.
    pub page: usize,
    pub pages: usize,
    pub total_targets: usize,
    pub total_backups: i64,
    pub total_size: i64,
}

impl Service {
    /// The targets list as the web UI shows it: filtered, sorted (names break ties, without
    /// case), and paged by the same `page_size` as `GET /api/target`.
    pub fn target_list(
        &self,
        search: Option<&Search>,
        sort: TargetSort,
        desc: bool,
        page: usize,
    ) -> Result<TargetListPage> {
        let mut all = self.target_summaries(search)?;
        all.sort_by(|a, b| {
            let by_name = || a.target.name.to_lowercase().cmp(&b.target.name.to_lowercase());
            let o = match sort {
                TargetSort::Size => a.size.cmp(&b.size),
                TargetSort::Backups => a.active.cmp(&b.active),
                TargetSort::Last => a.last_backup.cmp(&b.last_backup),
                TargetSort::Name => by_name(),
            };
            let o = if desc { o.reverse() } else { o };
            o.then_with(by_name)
        });
        let per_page = self.config.page_size.max(1);
        let pages = all.len().div_ceil(per_page).max(1);
        let page = page.clamp(1, pages);
        let (total_targets, total_backups, total_size) =
            (all.len(), all.iter().map(|s| s.active).sum(), all.iter().map(|s| s.size).sum());
        let rows = all.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        Ok(TargetListPage { rows, page, pages, total_targets, total_backups, total_size })
    }
}

/// Names compare as a person reads them: without case and surrounding spaces.
fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Service {
    /// The targets already called `name` (read as a person would), so a form can warn before a
    /// second target of that name makes lists ambiguous.
    pub fn targets_named(&self, name: &str) -> Result<Vec<Target>> {
        let key = name_key(name);
        Ok(db::targets::all(&*self.conn()?)?.into_iter().filter(|t| name_key(&t.name) == key).collect())
    }

    /// The names that more than one target carries (as [`Service::targets_named`] compares
    /// them), so pages can add the alias or id where a name alone does not say which.
    pub fn shared_target_names(&self) -> Result<std::collections::HashSet<String>> {
        let mut seen = std::collections::HashMap::<String, usize>::new();
        for t in db::targets::all(&*self.conn()?)? {
            *seen.entry(name_key(&t.name)).or_default() += 1;
        }
        Ok(seen.into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k).collect())
    }
}

/// Whether `name` is one of the [`Service::shared_target_names`].
pub fn is_shared_name(shared: &std::collections::HashSet<String>, name: &str) -> bool {
    shared.contains(&name_key(name))
}
