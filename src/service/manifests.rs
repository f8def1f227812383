//! Keeping manifests in step with the rows they describe (see [`crate::model::manifest`]). A
//! finished backup's manifest is written before its row becomes visible; every later change is
//! followed by a journalled step that makes the manifest match the row again.

use super::Service;
use crate::db::{self, journal::FsOp};
use crate::error::Result;
use crate::model::manifest::{BackupManifest, TargetManifest};

/// What [`Service::verify_manifests`] found and put right.
#[derive(Debug, Default)]
pub struct ManifestReport {
    /// Manifests written because they were missing or did not match their row.
    pub rewritten: usize,
    /// Manifests of backups or targets the database no longer has, left for `bakch check`.
    pub orphans: usize,
}

impl Service {
    /// The journalled steps that follow a change to a backup's row.
    pub(super) fn manifest_op(target_id: &str, backup_id: &str) -> FsOp {
        FsOp::Manifest { target_id: target_id.to_string(), backup_id: backup_id.to_string() }
    }

    /// Makes a backup's manifest match its row: written for a finished backup, removed when the
    /// row is gone, left alone while the backup is still being built.
    pub(super) fn sync_backup_manifest(&self, target_id: &str, backup_id: &str) -> Result<()> {
        let c = self.conn()?;
        match db::backups::find_any(&c, backup_id)? {
            Some((backup, false)) => {
                let target = self.target(&c, &backup.target_id)?;
                let files = db::backups::files(&c, &backup.id)?;
                drop(c);
                self.store.write_backup_manifest(&BackupManifest::of(&backup, target.target_type, &files))
            }
            Some((_, true)) => Ok(()),
            None => {
                drop(c);
                self.store.remove_backup_manifest(target_id, backup_id)
            }
        }
    }

    /// Makes a target's definition file match its row, or removes it with the row.
    pub(super) fn sync_target_manifest(&self, target_id: &str) -> Result<()> {
        let c = self.conn()?;
        match (db::targets::find(&c, target_id)?, db::targets::created_at(&c, target_id)?) {
            (Some(target), Some(created)) if target.id == target_id => {
                drop(c);
                self.store.write_target_manifest(&TargetManifest::of(&target, &created))
            }
            _ => {
                drop(c);
                self.store.remove_target_manifest(target_id)
            }
        }
    }

    /// Writes every manifest that is missing: backups and targets made before manifests existed
    /// (the upgrade), or one a person deleted. A stat per row; run at start. A crash cannot leave
    /// a manifest stale: its rewrite is journalled with the change.
    pub(super) fn write_missing_manifests(&self) -> Result<usize> {
        self.rewrite_manifests(&*self.conn()?, Pass::Missing)
    }

    /// Rewrites every manifest that is missing or does not match its row (a write the disk lost,
    /// a hand edit), and counts manifests without a row. Run by `manifest_check_job`.
    pub fn verify_manifests(&self) -> Result<ManifestReport> {
        let c = self.conn()?;
        let mut report = ManifestReport { rewritten: self.rewrite_manifests(&c, Pass::Stale)?, orphans: 0 };
        let targets = db::targets::all(&c)?;
        for found in self.store.all_manifests()? {
            let Some(target) = targets.iter().find(|t| t.id == found.target_id) else {
                report.orphans += 1 + found.backups.len();
                continue;
            };
            for path in &found.backups {
                let Ok(m) = self.store.read_found_manifest(path) else {
                    report.orphans += 1;
                    continue;
                };
                if db::backups::find_any(&c, &m.backup_id)?.is_none_or(|(b, _)| b.target_id != target.id) {
                    report.orphans += 1;
                }
            }
        }
        Ok(report)
    }

    /// `manifest_check_job`: [`Service::verify_manifests`], as a one-line outcome.
    pub fn check_manifests(&self) -> Result<String> {
        let r = self.verify_manifests()?;
        if r.rewritten > 0 {
            tracing::warn!("manifest check: rewrote {} manifest(s) that did not match the database", r.rewritten);
        }
        if r.orphans > 0 {
            tracing::warn!(
                "manifest check: {} manifest(s) describe nothing the database holds; `bakch check` lists them",
                r.orphans
            );
        }
        Ok(format!("manifests verified: {} rewritten, {} without a row", r.rewritten, r.orphans))
    }

    /// Writes the manifest of every target and backup row that `pass` finds wanting; returns
    /// how many. A [`Pass::Missing`] only stats files, and reads a backup's files only to write.
    fn rewrite_manifests(&self, c: &rusqlite::Connection, pass: Pass) -> Result<usize> {
        let mut written = 0;
        for target in db::targets::all(c)? {
            if pass == Pass::Stale || !self.store.target_manifest_path(&target.id).exists() {
                let created = db::targets::created_at(c, &target.id)?.unwrap_or_default();
                let wanted = TargetManifest::of(&target, &created);
                let on_disk =
                    if pass == Pass::Stale { self.store.read_target_manifest(&target.id).ok().flatten() } else { None };
                if on_disk.is_none_or(|m| m.to_json().ok() != wanted.to_json().ok()) {
                    self.store.write_target_manifest(&wanted)?;
                    written += 1;
                }
            }
            for backup in db::backups::for_target(c, &target.id)? {
                if pass == Pass::Missing && self.store.backup_manifest_path(&target.id, &backup.id).exists() {
                    continue;
                }
                let files = db::backups::files(c, &backup.id)?;
                let wanted = BackupManifest::of(&backup, target.target_type, &files);
                let on_disk = if pass == Pass::Stale {
                    self.store.read_backup_manifest(&target.id, &backup.id).ok().flatten()
                } else {
                    None
                };
                if on_disk.as_ref() != Some(&wanted) {
                    self.store.write_backup_manifest(&wanted)?;
                    written += 1;
                }
            }
        }
        Ok(written)
    }
}

/// What a rewrite of manifests looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Manifests that are not there.
    Missing,
    /// Manifests that are not there or say something else than their row.
    Stale,
}
