//! Scheduled upkeep of the store: integrity check, garbage collection, deduplication of
//! identical backups, size recomputation, temp file purge.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{Service, is_single};
use crate::db;
use crate::error::{IoContext, Result};
use crate::model::audit::Who;
use crate::model::backup::Backup;
use crate::model::job::Source;
use crate::model::target::Target;
use crate::store::place;

impl Service {
    /// `integrity_check_job`: re-hashes every backup's files against their recorded hashes and
    /// sets or clears `hash_mismatch`. Finds changed, truncated, missing and extra files.
    pub fn check_integrity(&self) -> Result<String> {
        let c = self.conn()?;
        let targets: HashMap<String, Target> = db::targets::all(&c)?.into_iter().map(|t| (t.id.clone(), t)).collect();
        let mut blob_ok: HashMap<String, BlobVerdict> = HashMap::new();
        let (mut checked, mut bad) = (0, Vec::new());
        for backup in db::backups::all(&c)? {
            let Some(target) = targets.get(&backup.target_id) else { continue };
            let problems = self.backup_problems(target, &backup, &mut blob_ok)?;
            for p in &problems {
                tracing::warn!("integrity: backup {} of target '{}': {p}", backup.id, target.name);
            }
            let mismatch = !problems.is_empty();
            if mismatch != backup.hash_mismatch {
                db::backups::set_hash_mismatch(&c, &backup.id, mismatch)?;
                if !mismatch {
                    tracing::info!("integrity: backup {} is healthy again", backup.id);
                }
            }
            // The findings themselves, so pages can name the damaged file, not only the backup.
            let damage = (!problems.is_empty()).then(|| problems.join("\n"));
            db::backups::set_damage(&c, &backup.id, damage.as_deref())?;
            if let Some(first) = problems.first() {
                let more =
                    if problems.len() > 1 { format!(" (and {} more)", problems.len() - 1) } else { String::new() };
                bad.push(format!("{} of '{}' (id {}): {first}{more}", backup.name, target.name, backup.id));
            }
            checked += 1;
        }
        let healed: Vec<String> = blob_ok
            .iter()
            .filter_map(|(hash, v)| v.healed.as_ref().map(|(by, _)| format!("blob {hash} from replica '{by}'")))
            .collect();
        let healed = if healed.is_empty() {
            String::new()
        } else {
            format!("; repaired {}: {}", healed.len(), healed.join(", "))
        };
        Ok(if bad.is_empty() {
            format!("checked {checked} backup(s): all healthy{healed}")
        } else {
            format!("checked {checked} backup(s): {} damaged: {}{healed}", bad.len(), bad.join("; "))
        })
    }

    fn backup_problems(
        &self,
        target: &Target,
        backup: &Backup,
        blob_ok: &mut HashMap<String, BlobVerdict>,
    ) -> Result<Vec<String>> {
        let files = db::backups::files(&*self.conn()?, &backup.id)?;
        let root = self.backup_path(target, backup);
        let mut problems = Vec::new();
        for f in &files {
            let blob = self.store.blob_path(&f.blob);
            if !blob_ok.contains_key(&f.blob) {
                let mut verdict =
                    BlobVerdict { ok: place::hash_file(&blob)?.as_deref() == Some(f.blob.as_str()), healed: None };
                // A damaged or missing blob that a replica holds intact is fetched back.
                if !verdict.ok && f.size > 0 {
                    match self.heal_blob(&f.blob) {
                        Ok(Some((by, old))) => verdict = BlobVerdict { ok: true, healed: Some((by, old)) },
                        Ok(None) => {}
                        Err(e) => tracing::warn!("integrity: repairing blob {} from a replica failed: {e}", f.blob),
                    }
                }
                blob_ok.insert(f.blob.clone(), verdict);
            }
            let verdict = &blob_ok[&f.blob];
            if !verdict.ok {
                problems.push(format!("stored content of '{}' is damaged or missing", f.path));
            }
            let placed = if is_single(target) { root.clone() } else { root.join(&f.path) };
            // A file placed from the damaged copy (its very inode) gets the repaired one.
            if let Some((_, Some((dev, ino)))) = &verdict.healed
                && std::fs::metadata(&placed).is_ok_and(|m| m.dev() == *dev && m.ino() == *ino)
            {
                let _placement = self.placement_lock();
                place::relink(&self.store, &f.blob, &placed, &backup.id)?;
                tracing::info!("integrity: {} placed again from the repaired blob", placed.display());
            }
            let (Ok(meta), Ok(blob_meta)) = (std::fs::metadata(&placed), std::fs::metadata(&blob)) else {
                if !placed.exists() {
                    problems.push(format!("'{}' is missing from {}", f.path, root.display()));
                }
                continue;
            };
            let same_inode = meta.dev() == blob_meta.dev() && meta.ino() == blob_meta.ino();
            if meta.len() != f.size as u64 {
                problems.push(format!("'{}' has {} bytes, {} expected", f.path, meta.len(), f.size));
            } else if !same_inode && place::hash_file(&placed)?.as_deref() != Some(f.blob.as_str()) {
                problems.push(format!("'{}' was changed", f.path));
            }
        }
        if !is_single(target) {
            let known: HashSet<PathBuf> = files.iter().map(|f| PathBuf::from(&f.path)).collect();
            for extra in place::files_under(&root)?.into_iter().filter(|p| !known.contains(p)) {
                problems.push(format!("'{}' is not part of the backup", extra.display()));
            }
        }
        Ok(problems)
    }

    /// `gc_job`: removes blobs that nothing refers to and that are older than the grace period.
    pub fn collect_garbage(&self) -> Result<String> {
        self.collect(Duration::from_secs(self.config.gc_grace_secs))
    }

    /// Drops the held entries whose hold ended, marks (backups in any state, open sequential
    /// uploads, live upload jobs, held entries), logs the plan, then deletes, checking each
    /// blob's age against `grace` again right before it goes. With the ingest lock held
    /// exclusively no blob is in flight, so a zero grace (`bakch held purge`) is safe.
    pub(super) fn collect(&self, grace: Duration) -> Result<String> {
        let _exclusive = self.ingest.write().unwrap_or_else(|e| e.into_inner());
        self.drop_ended_holds()?;
        let marked = self.marked_blobs()?;
        let mut plan: Vec<(PathBuf, u64)> = Vec::new();
        for (hash, path, meta) in self.store.blobs_on_disk()? {
            if !marked.contains(&hash) && older_than(&meta, grace) {
                plan.push((path, meta.len()));
            }
        }
        let bytes: u64 = plan.iter().map(|p| p.1).sum();
        if plan.is_empty() {
            return Ok("no unreferenced blobs".to_string());
        }
        tracing::info!("gc plan: remove {} unreferenced blob(s), {bytes} bytes", plan.len());
        // A dedup hit touches a blob; one touched since the plan was made stays.
        let paths: Vec<PathBuf> = plan.into_iter().map(|(path, _)| path).collect();
        let removed = self.store.sweep_blobs(&paths, |meta| older_than(meta, grace))?;
        Ok(format!("removed {removed} unreferenced blob(s), {bytes} bytes"))
    }

    /// `deduplicate_job`: in targets with `deduplicate` on, deletes each active backup whose whole
    /// content equals an older active backup's.
    pub fn deduplicate_backups(&self) -> Result<String> {
        let targets = db::targets::all(&*self.conn()?)?;
        let mut removed = 0;
        for target in targets.iter().filter(|t| t.deduplicate) {
            // Read under the lock, so what is deleted is what was compared.
            let _placement = self.placement_lock();
            let Some(target) = db::targets::find(&*self.conn()?, &target.id)? else { continue };
            let target = &target;
            let mut active: Vec<Backup> =
                db::backups::for_target(&*self.conn()?, &target.id)?.into_iter().filter(|b| !b.is_recycled).collect();
            active.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            let mut seen = HashSet::new();
            for b in active {
                if !seen.insert(b.hash.clone()) {
                    tracing::info!(
                        "deduplicate: backup {} of target '{}' repeats an older one; deleted",
                        b.id,
                        target.name
                    );
                    self.delete_backup_locked(target, &b, true, &Who::bakch())?;
                    removed += 1;
                }
            }
        }
        Ok(format!("deleted {removed} duplicate backup(s)"))
    }

    /// `backup_filesize_job`: recomputes each backup's size from its files.
    pub fn recompute_filesizes(&self) -> Result<String> {
        let n = db::backups::recompute_filesizes(&*self.conn()?)?;
        Ok(format!("corrected the size of {n} backup(s)"))
    }

    /// `tmp_purge_job`: removes temp files and spooled uploads older than the configured age that
    /// no live upload or queued job owns.
    pub fn purge_tmp(&self) -> Result<String> {
        let max_age = Duration::from_secs(self.config.tmp_max_age_secs);
        let owned: HashSet<String> = self
            .live_uploads()?
            .into_iter()
            .filter_map(|j| match j.source {
                Source::Archive { file, .. } => Some(file),
                Source::Files { .. } => None,
            })
            .collect();
        let mut removed = 0;
        for dir in [&self.store.tmp, &self.store.uploads] {
            for entry in std::fs::read_dir(dir).ctx("read folder", dir)? {
                let entry = entry.ctx("read folder", dir)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let old = entry
                    .metadata()
                    .map(|m| older_than(&m, max_age) && (!m.is_dir() || all_older(&entry.path(), max_age)))
                    .unwrap_or(false);
                if old && !owned.contains(&name) {
                    self.store.remove(&entry.path())?;
                    removed += 1;
                }
            }
        }
        Ok(format!("removed {removed} stale temp file(s)"))
    }
}

/// What the integrity check found of one blob: intact (perhaps after a repair), and the
/// replica that repaired it with the device and inode of the damaged copy.
struct BlobVerdict {
    ok: bool,
    healed: Option<(String, Option<(u64, u64)>)>,
}

/// Whether every entry of `dir` (a store batch's folder) is older than `age`: a file still
/// being written keeps its time fresh, while the folder's own time moved only when it was made.
fn all_older(dir: &std::path::Path, age: Duration) -> bool {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().all(|e| e.metadata().map(|m| older_than(&m, age)).unwrap_or(false)),
        Err(_) => false,
    }
}

fn older_than(meta: &std::fs::Metadata, age: Duration) -> bool {
    age.is_zero()
        || meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|elapsed| elapsed >= age)
}
