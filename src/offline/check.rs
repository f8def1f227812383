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

    // Every manifest that reads, by backup id, with the location its target names.
    let mut manifests: HashMap<String, (BackupManifest, String)> = HashMap::new();
    let mut target_ids: HashSet<String> = HashSet::new();
    for t in &found {
        let location = match &t.target {
            Some(Ok(m)) => {
                target_ids.insert(m.target.id.clone());
                m.target.location.clone()
            }
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
            match store.read_found_manifest(path) {
                Ok(m) => {
                    manifests.insert(m.backup_id.clone(), (m, location.clone()));
                }
                Err(e) => report.problems.push(format!("unreadable manifest {}: {e}", path.display())),
            }
        }
    }

    compare_with_database(config, &manifests, &target_ids, &mut report);

    let mut referenced: HashSet<&str> = HashSet::new();
    let bar = progress(manifests.len() as u64, if deep { "checking (deep)" } else { "checking" });
    let mut ids: Vec<&String> = manifests.keys().collect();
    ids.sort();
    for id in ids {
        let (m, location) = &manifests[id];
        bar.inc(1);
        report.backups += 1;
        for f in &m.files {
            referenced.insert(&f.blob);
            if f.size > 0 && !store.blob_path(&f.blob).exists() {
                report.problems.push(format!("backup {id}: the content of '{}' is missing from the store", f.path));
            }
        }
        let placed = store.place_of(location, m.recycled, &m.name);
        check_placed(m, &placed, deep, &mut report);
    }
    bar.finish_and_clear();

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
            }
            Err(e) => report.problems.push(format!("{}: {e}", path.display())),
        }
    }
    let held_blobs: HashSet<&str> = held
        .iter()
        .filter_map(|(_, e)| e.as_ref().ok())
        .flat_map(|m| m.backup.files.iter().map(|f| f.blob.as_str()))
        .collect();
    if held_count > 0 {
        report.notes.push(format!("{held_count} deleted backup(s) are held (see `bakch held list`)"));
    }
    referenced.extend(held_blobs);

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

/// Rows without manifests, manifests without rows, and the two disagreeing.
fn compare_with_database(
    config: &Config,
    manifests: &HashMap<String, (BackupManifest, String)>,
    target_ids: &HashSet<String>,
    report: &mut Report,
) {
    let rows = (|| {
        let c = db::open_read_only(&config.db_path())?;
        let targets = db::targets::all(&c)?;
        let mut backups = Vec::new();
        for t in &targets {
            for b in db::backups::for_target(&c, &t.id)? {
                let files = db::backups::files(&c, &b.id)?;
                backups.push(BackupManifest::of(&b, t.target_type, &files));
            }
        }
        Ok::<_, crate::error::Error>((targets, backups))
    })();
    let (targets, rows) = match rows {
        Ok(r) => r,
        Err(e) => {
            report.problems.push(format!("the database cannot be read ({e}); `bakch rebuild-db` makes a new one"));
            return;
        }
    };
    for t in &targets {
        if !target_ids.contains(&t.id) {
            report.problems.push(format!("target {} ('{}') has no target.json", t.id, t.name));
        }
    }
    for id in target_ids.iter().filter(|id| !targets.iter().any(|t| &t.id == *id)) {
        report.problems.push(format!("target {id} has a target.json but is not in the database"));
    }
    let mut in_db = HashSet::new();
    for row in &rows {
        in_db.insert(row.backup_id.as_str());
        match manifests.get(&row.backup_id) {
            None => report.problems.push(format!("backup {} is in the database but has no manifest", row.backup_id)),
            Some((m, _)) if m != row => {
                report.problems.push(format!("backup {}: its manifest and its database row disagree", row.backup_id))
            }
            Some(_) => {}
        }
    }
    for id in manifests.keys().filter(|id| !in_db.contains(id.as_str())) {
        report.problems.push(format!("backup {id} has a manifest but is not in the database"));
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
