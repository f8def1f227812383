//! `bakch check [--deep]`: an offline consistency report of a data folder. Compares the
//! database with the manifests, the manifests with the store, and each backup's files in its
//! target folder (or the recycle bin) with its manifest; `--deep` re-hashes every file. Changes
//! nothing.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::progress;
use crate::config::Config;
use crate::db;
use crate::model::manifest::BackupManifest;
use crate::model::target::Target;
use crate::store::{Store, place};

/// What a check found: problems (the exit status says whether there were any) and notes.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    pub backups: usize,
}

pub fn run(config: &Config, deep: bool) -> Result<Report, String> {
    let _lock = super::lock(&config.data_dir)?;
    let store = Store::open(&config.data_dir, config.modes).map_err(|e| e.to_string())?;
    let mut report = Report::default();
    let found = store.all_manifests().map_err(|e| e.to_string())?;
    let database = Database::open(config, &mut report);
    let target_ids: HashSet<&str> = found
        .iter()
        .filter_map(|t| match &t.target {
            Some(Ok(m)) => Some(m.target.id.as_str()),
            _ => None,
        })
        .collect();
    if let Some(d) = &database {
        d.compare_targets(&target_ids, &mut report);
    }

    // One manifest at a time (ten million file rows would not fit in memory at once): its row,
    // its content in the store, and its files in place.
    let mut referenced: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let total: usize = found.iter().map(|t| t.backups.len()).sum();
    let bar = progress(total as u64, if deep { "checking (deep)" } else { "checking" });
    for t in &found {
        let location = match &t.target {
            Some(Ok(m)) => m.target.location.clone(),
            Some(Err(e)) => {
                report.problems.push(format!("unreadable target definition: {e}"));
                String::new()
            }
            None => {
                report.problems.push(format!("target {}: backup manifests but no target.json", t.target_id));
                String::new()
            }
        };
        for path in &t.backups {
            bar.inc(1);
            let m = match store.read_found_manifest(path) {
                Ok(m) => m,
                Err(e) => {
                    report.problems.push(format!("unreadable manifest {}: {e}", path.display()));
                    continue;
                }
            };
            if !seen.insert(m.backup_id.clone()) {
                report.problems.push(format!("backup {}: a second manifest at {}", m.backup_id, path.display()));
                continue;
            }
            if let Some(d) = &database {
                d.compare_backup(&m, &mut report);
            }
            let id = &m.backup_id;
            report.backups += 1;
            for f in &m.files {
                if f.size > 0 && !store.blob_path(&f.blob).exists() {
                    report.problems.push(format!("backup {id}: the content of '{}' is missing from the store", f.path));
                }
                if !referenced.contains(&f.blob) {
                    referenced.insert(f.blob.clone());
                }
            }
            let placed = store.place_of(&location, m.recycled, &m.name);
            check_placed(&m, &placed, deep, &mut report);
        }
    }
    bar.finish_and_clear();
    if let Some(d) = &database {
        for id in d.listed.iter().filter(|id| !seen.contains(*id)) {
            report.problems.push(format!("backup {id} is in the database but has no manifest"));
        }
    }

    // Held (deleted) backups: their content must still be there to be restorable.
    let held = store.all_held().map_err(|e| e.to_string())?;
    let mut held_count = 0;
    for (path, entry) in &held {
        match entry {
            Ok(m) => {
                held_count += 1;
                let missing =
                    m.backup.files.iter().filter(|f| f.size > 0 && !store.blob_path(&f.blob).exists()).count();
                if missing > 0 {
                    report.problems.push(format!(
                        "held backup {}: {missing} of its file(s) have no content in the store; it cannot be restored whole",
                        m.id()
                    ));
                }
                referenced.extend(m.backup.files.iter().map(|f| f.blob.clone()));
            }
            Err(e) => report.problems.push(format!("{}: {e}", path.display())),
        }
    }
    if held_count > 0 {
        report.notes.push(format!("{held_count} deleted backup(s) are held (see `bakch held list`)"));
    }

    let blobs = store.blobs_on_disk().map_err(|e| e.to_string())?;
    let extra: Vec<u64> =
        blobs.iter().filter(|(hash, _, _)| !referenced.contains(hash.as_str())).map(|(_, _, m)| m.len()).collect();
    if !extra.is_empty() {
        report.notes.push(format!(
            "{} stored blob(s), {} bytes, belong to no backup, listed or held (gc_job removes them once older than gc_grace_secs)",
            extra.len(),
            extra.iter().sum::<u64>()
        ));
    }
    Ok(report)
}

/// The database, read only, to compare each manifest with its row.
struct Database {
    conn: rusqlite::Connection,
    targets: HashMap<String, Target>,
    /// Every listed backup's id (rows without manifests are those no manifest names).
    listed: Vec<String>,
}

impl Database {
    /// `None`, with the problem reported, when the database cannot be read.
    fn open(config: &Config, report: &mut Report) -> Option<Database> {
        let read = (|| {
            let conn = db::open_read_only(&config.db_path())?;
            let targets: HashMap<String, Target> =
                db::targets::all(&conn)?.into_iter().map(|t| (t.id.clone(), t)).collect();
            let mut listed = Vec::new();
            for t in targets.keys() {
                listed.extend(db::backups::for_target(&conn, t)?.into_iter().map(|b| b.id));
            }
            listed.sort();
            Ok::<_, crate::error::Error>(Database { conn, targets, listed })
        })();
        match read {
            Ok(d) => Some(d),
            Err(e) => {
                report.problems.push(format!("the database cannot be read ({e}); `bakch rebuild-db` makes a new one"));
                None
            }
        }
    }

    /// Targets without a definition file, and definitions without a row.
    fn compare_targets(&self, defined: &HashSet<&str>, report: &mut Report) {
        let mut targets: Vec<&Target> = self.targets.values().collect();
        targets.sort_by(|a, b| a.id.cmp(&b.id));
        for t in targets {
            if !defined.contains(t.id.as_str()) {
                report.problems.push(format!("target {} ('{}') has no target.json", t.id, t.name));
            }
        }
        let mut defined: Vec<&&str> = defined.iter().collect();
        defined.sort();
        for id in defined.into_iter().filter(|id| !self.targets.contains_key(**id)) {
            report.problems.push(format!("target {id} has a target.json but is not in the database"));
        }
    }

    /// A manifest without a row, or disagreeing with it.
    fn compare_backup(&self, m: &BackupManifest, report: &mut Report) {
        let row = (|| {
            let Some(b) = db::backups::find(&self.conn, &m.backup_id)? else { return Ok(None) };
            let Some(t) = self.targets.get(&b.target_id) else { return Ok(None) };
            let files = db::backups::files(&self.conn, &b.id)?;
            Ok::<_, crate::error::Error>(Some(BackupManifest::of(&b, t.target_type, &files)))
        })();
        match row {
            Ok(Some(row)) if &row != m => {
                report.problems.push(format!("backup {}: its manifest and its database row disagree", m.backup_id))
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                report.problems.push(format!("backup {} has a manifest but is not in the database", m.backup_id))
            }
            Err(e) => report.problems.push(format!("backup {}: its row cannot be read ({e})", m.backup_id)),
        }
    }
}

/// A backup's files where they are placed, against its manifest.
fn check_placed(m: &BackupManifest, placed: &Path, deep: bool, report: &mut Report) {
    let id = &m.backup_id;
    let single = m.target_type == crate::model::target::TargetType::Single;
    if std::fs::symlink_metadata(placed).is_err() {
        report.problems.push(format!("backup {id}: nothing at {}", placed.display()));
        return;
    }
    let mut expected: HashSet<String> = HashSet::new();
    for f in &m.files {
        let path = if single { placed.to_path_buf() } else { placed.join(&f.path) };
        expected.insert(f.path.clone());
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            _ => {
                report.problems.push(format!("backup {id}: '{}' is missing from {}", f.path, placed.display()));
                continue;
            }
        };
        if meta.len() != f.size as u64 {
            report.problems.push(format!("backup {id}: '{}' has {} bytes, not {}", f.path, meta.len(), f.size));
            continue;
        }
        if deep {
            match place::hash_file(&path) {
                Ok(Some(h)) if h == f.blob => {}
                Ok(Some(_)) => {
                    report.problems.push(format!("backup {id}: '{}' differs from its recorded content", f.path))
                }
                Ok(None) => {
                    report.problems.push(format!("backup {id}: '{}' is missing from {}", f.path, placed.display()))
                }
                Err(e) => report.problems.push(format!("backup {id}: '{}' cannot be read: {e}", f.path)),
            }
        }
    }
    if !single {
        match place::files_under(placed) {
            Ok(found) => {
                for extra in found.iter().map(|p| p.to_string_lossy()).filter(|p| !expected.contains(p.as_ref())) {
                    report
                        .problems
                        .push(format!("backup {id}: '{extra}' in {} is not in its manifest", placed.display()));
                }
            }
            Err(e) => report.problems.push(format!("backup {id}: {e}")),
        }
    }
}
