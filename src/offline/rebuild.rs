//! `bakch rebuild-db`: a new database from the manifests, checked against the store, swapped in
//! only once whole, with the held entries of `<data>/held`. What a database holds beyond targets and backups (queued and finished jobs,
//! open sequential uploads, scheduled runs, the file-operation journal) is not rebuilt.

use std::path::{Path, PathBuf};

use super::progress;
use crate::config::Config;
use crate::db::{self, with_suffix};
use crate::model::manifest::BackupManifest;
use crate::store::{Store, durable};

/// What a rebuild did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub targets: usize,
    pub backups: usize,
    pub files: usize,
    /// Held (deleted) backups whose entries came back: their content stays protected.
    pub held: usize,
    /// Problems found, one line each; none of them stopped the rebuild.
    pub problems: Vec<String>,
    /// Where the previous database was put, if there was one.
    pub old_kept_at: Option<PathBuf>,
}

/// Rebuilds `<data>/bakch.sqlite3` from `<data>/manifests`. Never deletes anything but its own
/// unfinished attempt; the old database is kept beside it.
pub fn run(config: &Config) -> Result<Report, String> {
    let _lock = super::lock(&config.data_dir)?;
    let store = Store::open(&config.data_dir, config.modes).map_err(|e| e.to_string())?;
    let found = store.all_manifests().map_err(|e| e.to_string())?;
    let held = store.all_held().map_err(|e| e.to_string())?;
    let db_path = config.db_path();
    let new_path = with_suffix(&db_path, ".rebuilding");
    for p in db::files_of(&new_path) {
        std::fs::remove_file(&p).or_else(ignore_missing).map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
    }
    let mut report = Report::default();
    {
        let pool = db::open_unwatched(&new_path, 1).map_err(|e| e.to_string())?;
        let mut c = pool.get().map_err(|e| e.to_string())?;
        // One long transaction of millions of rows into indexes in random order: a page cache
        // of 256 MiB (SQLite's default is 2 MiB) keeps them from being read back from disk.
        c.execute_batch("PRAGMA cache_size = -262144;").map_err(|e| e.to_string())?;
        let total: usize = found.iter().map(|f| f.backups.len()).sum();
        let bar = progress(total as u64, "rebuilding");
        db::with_tx(&mut c, |tx| {
            for target_dir in &found {
                let target = match &target_dir.target {
                    Some(Ok(m)) if m.target.id == target_dir.target_id => m,
                    Some(Ok(_)) => {
                        report
                            .problems
                            .push(format!("target {}: its definition names another id", target_dir.target_id));
                        bar.inc(target_dir.backups.len() as u64);
                        continue;
                    }
                    Some(Err(e)) => {
                        report.problems.push(format!("target {}: {e}; its backups are left out", target_dir.target_id));
                        bar.inc(target_dir.backups.len() as u64);
                        continue;
                    }
                    None => {
                        report.problems.push(format!(
                            "target {}: no target.json; its {} backup(s) are left out",
                            target_dir.target_id,
                            target_dir.backups.len()
                        ));
                        bar.inc(target_dir.backups.len() as u64);
                        continue;
                    }
                };
                db::targets::insert(tx, &target.target, &target.created_at)?;
                report.targets += 1;
                for path in &target_dir.backups {
                    bar.inc(1);
                    match store.read_found_manifest(path) {
                        Ok(m) if m.target_id == target.target.id => {
                            if let Err(why) = add_backup(tx, &store, &target.target.location, &m, &mut report) {
                                report.problems.push(format!("{}: {why}; left out", path.display()));
                            }
                        }
                        Ok(_) => report.problems.push(format!("{}: names another target; left out", path.display())),
                        Err(e) => report.problems.push(format!("{e}; left out")),
                    }
                }
            }
            // Held entries too: without them garbage collection would take their content at once.
            for (path, entry) in &held {
                match entry {
                    Ok(m) if db::backups::find_any(tx, m.id())?.is_some() => {
                        // Restored before a crash could remove this file: the backup wins.
                        report.problems.push(format!("{}: its backup is listed again; left out", path.display()));
                    }
                    Ok(m) => {
                        db::held::insert(tx, m)?;
                        report.held += 1;
                    }
                    Err(e) => report.problems.push(format!("{e}; left out (its content is no longer protected)")),
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        bar.finish_and_clear();
        // One file again: the last connection closing checkpoints the WAL into it.
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(|e| e.to_string())?;
    }
    report.old_kept_at = swap_in(&new_path, &db_path)?;
    Ok(report)
}

/// Adds one backup's rows; reports (never fixes) files missing from the store or from their place.
fn add_backup(
    tx: &rusqlite::Connection,
    store: &Store,
    location: &str,
    m: &BackupManifest,
    report: &mut Report,
) -> Result<(), String> {
    let backup = m.backup().map_err(|e| e.to_string())?;
    db::backups::insert_complete(tx, &backup, &m.files).map_err(|e| e.to_string())?;
    report.backups += 1;
    report.files += m.files.len();
    let missing = m.files.iter().filter(|f| f.size > 0 && !store.blob_path(&f.blob).exists()).count();
    if missing > 0 {
        report.problems.push(format!(
            "backup {}: {missing} of its {} file(s) have no content in the store",
            m.backup_id,
            m.files.len()
        ));
    }
    let placed = store.place_of(location, m.recycled, &m.name);
    if std::fs::symlink_metadata(&placed).is_err() {
        report.problems.push(format!(
            "backup {}: nothing at {} (bakch rebuilds it from the store when it starts)",
            m.backup_id,
            placed.display()
        ));
    }
    Ok(())
}

/// Puts the new database in place of the old, which is kept (with its WAL files) beside it.
fn swap_in(new_path: &Path, db_path: &Path) -> Result<Option<PathBuf>, String> {
    let stamp = crate::time::now().format("%Y-%m-%d_%H-%M-%S");
    let aside = with_suffix(db_path, &format!(".before-rebuild-{stamp}"));
    let mut kept = None;
    if db_path.exists() {
        // A hard link keeps the old file in place until the new one replaces it in one rename;
        // its WAL files move aside first, or SQLite would replay them into the new database.
        std::fs::hard_link(db_path, &aside).map_err(|e| format!("cannot keep {}: {e}", db_path.display()))?;
        for suffix in db::COMPANIONS {
            let (from, to) = (with_suffix(db_path, suffix), with_suffix(&aside, suffix));
            std::fs::rename(&from, &to)
                .or_else(ignore_missing)
                .map_err(|e| format!("cannot move {}: {e}", from.display()))?;
        }
        kept = Some(aside);
    }
    durable::publish(new_path, db_path, durable::Existing::Replace, durable::Sync::Now).map_err(|e| e.to_string())?;
    for suffix in db::COMPANIONS {
        let _ = std::fs::remove_file(with_suffix(new_path, suffix));
    }
    Ok(kept)
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}
