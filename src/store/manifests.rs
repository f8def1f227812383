//! Where manifests live: `<data>/manifests/<target id>/target.json` and
//! `<data>/manifests/<target id>/<backup id>.json`, each written whole and durably (see
//! [`super::durable`]). The files are the truth the database is rebuilt from. Held entries
//! (deleted backups whose content is kept) are `<data>/held/<backup id>.json`, apart, so a
//! target's folder only ever describes what is listed.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{Store, durable, perms};
use crate::error::{Error, IoContext, Result};
use crate::model::held::HeldManifest;
use crate::model::manifest::{BackupManifest, TargetManifest};

const TARGET_FILE: &str = "target.json";
const SUFFIX: &str = ".json";

/// A target's manifests as found on disk: its definition read (or the reason it could not
/// be), its backups' manifest files to read one at a time with [`Store::read_found_manifest`]
/// (ten million files' rows in memory at once would need gigabytes).
pub struct Found {
    pub target_id: String,
    pub target: Option<Result<TargetManifest>>,
    pub backups: Vec<PathBuf>,
}

impl Store {
    fn target_dir(&self, target_id: &str) -> PathBuf {
        self.manifests.join(target_id)
    }

    pub fn target_manifest_path(&self, target_id: &str) -> PathBuf {
        self.target_dir(target_id).join(TARGET_FILE)
    }

    pub fn backup_manifest_path(&self, target_id: &str, backup_id: &str) -> PathBuf {
        self.target_dir(target_id).join(format!("{backup_id}{SUFFIX}"))
    }

    pub fn write_target_manifest(&self, m: &TargetManifest) -> Result<()> {
        let dir = self.target_dir(&m.target.id);
        perms::create_dir_all(&dir, perms::PRIVATE_DIR)?;
        durable::write_file(&dir.join(TARGET_FILE), m.to_json()?.as_bytes(), perms::PRIVATE_FILE)
    }

    pub fn write_backup_manifest(&self, m: &BackupManifest) -> Result<()> {
        let dir = self.target_dir(&m.target_id);
        perms::create_dir_all(&dir, perms::PRIVATE_DIR)?;
        durable::write_file(
            &self.backup_manifest_path(&m.target_id, &m.backup_id),
            m.to_json()?.as_bytes(),
            perms::PRIVATE_FILE,
        )
    }

    pub fn remove_backup_manifest(&self, target_id: &str, backup_id: &str) -> Result<()> {
        let path = self.backup_manifest_path(target_id, backup_id);
        durable::remove(&path, &self.own.trash(&path))
    }

    /// Removes a target's definition and its folder, once no backup manifest is left in it.
    pub fn remove_target_manifest(&self, target_id: &str) -> Result<()> {
        let dir = self.target_dir(target_id);
        let path = dir.join(TARGET_FILE);
        durable::remove(&path, &self.own.trash(&path))?;
        match std::fs::remove_dir(&dir) {
            Ok(()) => durable::fsync_dir(&self.manifests),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty) => Ok(()),
            Err(e) => Err(Error::io("remove folder", &dir, e)),
        }
    }

    pub fn read_backup_manifest(&self, target_id: &str, backup_id: &str) -> Result<Option<BackupManifest>> {
        read(&self.backup_manifest_path(target_id, backup_id), BackupManifest::parse)
    }

    pub fn read_target_manifest(&self, target_id: &str) -> Result<Option<TargetManifest>> {
        read(&self.target_manifest_path(target_id), TargetManifest::parse)
    }

    /// How many targets have manifests (folders under `manifests/`).
    pub fn manifest_targets(&self) -> Result<usize> {
        match std::fs::read_dir(&self.manifests) {
            Ok(entries) => Ok(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).count()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io("read folder", &self.manifests, e)),
        }
    }

    /// Removes temp files that a manifest (or held entry) write cut short left (`.<name>.tmp-<id>`).
    pub fn sweep_manifest_temps(&self) -> Result<usize> {
        let mut removed = 0;
        let Ok(targets) = std::fs::read_dir(&self.manifests) else { return Ok(0) };
        let dirs = targets.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path());
        for dir in dirs.chain([self.held.clone()]) {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.contains(".json.tmp-") {
                    durable::remove(&entry.path(), &self.own.trash(&entry.path()))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    pub fn held_path(&self, backup_id: &str) -> PathBuf {
        self.held.join(format!("{backup_id}{SUFFIX}"))
    }

    pub fn write_held(&self, m: &HeldManifest) -> Result<()> {
        perms::create_dir_all(&self.held, perms::PRIVATE_DIR)?;
        durable::write_file(&self.held_path(m.id()), m.to_json()?.as_bytes(), perms::PRIVATE_FILE)
    }

    pub fn remove_held(&self, backup_id: &str) -> Result<()> {
        let path = self.held_path(backup_id);
        durable::remove(&path, &self.own.trash(&path))
    }

    /// Every held entry's file, sorted, read or with the reason it could not be.
    pub fn all_held(&self) -> Result<Vec<(PathBuf, Result<HeldManifest>)>> {
        let entries = match std::fs::read_dir(&self.held) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read folder", &self.held, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.ctx("read folder", &self.held)?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let Some(id) = name.strip_suffix(SUFFIX) else { continue };
            if uuid::Uuid::parse_str(id).is_err() {
                continue;
            }
            let read = read(&path, HeldManifest::parse).and_then(|m| {
                m.ok_or_else(|| Error::internal(format!("{} vanished while being read", path.display())))
            });
            out.push((path, read));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// One backup manifest found by [`Store::all_manifests`].
    pub fn read_found_manifest(&self, path: &Path) -> Result<BackupManifest> {
        read(path, BackupManifest::parse)?
            .ok_or_else(|| Error::internal(format!("{} vanished while being read", path.display())))
    }

    /// Every target folder of manifests, sorted, with what each holds.
    pub fn all_manifests(&self) -> Result<Vec<Found>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.manifests) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("read folder", &self.manifests, e)),
        };
        for entry in entries {
            let entry = entry.ctx("read folder", &self.manifests)?;
            if !entry.file_type().ctx("inspect", &entry.path())?.is_dir() {
                continue;
            }
            let target_id = entry.file_name().to_string_lossy().into_owned();
            let target = read(&entry.path().join(TARGET_FILE), TargetManifest::parse).transpose();
            let mut backups = Vec::new();
            for file in std::fs::read_dir(entry.path()).ctx("read folder", &entry.path())? {
                let path = file.ctx("read folder", &entry.path())?.path();
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                // Only `<uuid>.json`: temp names of a write cut short are not manifests.
                let Some(id) = name.strip_suffix(SUFFIX) else { continue };
                if name == TARGET_FILE || uuid::Uuid::parse_str(id).is_err() {
                    continue;
                }
                backups.push(path);
            }
            backups.sort();
            out.push(Found { target_id, target, backups });
        }
        out.sort_by(|a, b| a.target_id.cmp(&b.target_id));
        Ok(out)
    }
}

/// Reads and parses one manifest; `None` when there is none. A file that does not parse is an
/// error naming it.
fn read<T>(path: &Path, parse: fn(&str) -> Result<T>) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map(Some).map_err(|e| Error::bad(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}
