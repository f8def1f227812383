//! Manifests: what the store holds, described on disk beside it, so that the database is a
//! cache that `bakch rebuild-db` can make again. One JSON file per target (its definition) and
//! one per finished backup. JSON because a person can read it and any script can parse it, and
//! serde writes it exactly; the format is versioned, and readers refuse a version they do not know.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::backup::{Backup, BackupFile};
use super::target::{Target, TargetType};
use crate::error::{Error, Result};

/// The `format` of a target's definition file.
pub const TARGET_FORMAT: &str = "bakch-target";
/// The `format` of a backup's manifest.
pub const BACKUP_FORMAT: &str = "bakch-backup";
/// The version this bakch writes, and the newest it reads.
pub const VERSION: u32 = 1;

/// `<data>/manifests/<target id>/target.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetManifest {
    pub format: String,
    pub version: u32,
    /// When the target was created (ISO 8601).
    pub created_at: String,
    /// Every field of the target, as the API shows them.
    pub target: Target,
}

/// `<data>/manifests/<target id>/<backup id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    pub format: String,
    pub version: u32,
    pub target_id: String,
    pub backup_id: String,
    /// Its file or folder name in the target's folder, or in the recycle bin when `recycled`.
    pub name: String,
    /// ISO 8601, as the server received it.
    pub created_at: String,
    pub manual: bool,
    pub recycled: bool,
    /// When it went to the recycle bin (ISO 8601); absent while active. Added within format
    /// version 1: older readers ignore it, and a manifest without it reads as unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recycled_at: Option<String>,
    /// Whether it is pinned (user data, so a rebuilt database keeps it). Added within format
    /// version 1: a manifest without it reads as not pinned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
    #[serde(rename = "type")]
    pub target_type: TargetType,
    /// blake3 of the whole content (see [`super::backup::content_hash`]).
    pub hash: String,
    /// The sum of its files' sizes.
    pub size: i64,
    /// Per file: its path inside the backup, size, mode and blob (blake3 of its bytes).
    pub files: Vec<BackupFile>,
}

impl TargetManifest {
    pub fn of(target: &Target, created_at: &str) -> TargetManifest {
        TargetManifest {
            format: TARGET_FORMAT.into(),
            version: VERSION,
            created_at: created_at.into(),
            target: target.clone(),
        }
    }

    pub fn parse(text: &str) -> Result<TargetManifest> {
        let m: TargetManifest = parse(text)?;
        check(&m.format, TARGET_FORMAT, m.version)?;
        Ok(m)
    }
}

impl BackupManifest {
    pub fn of(backup: &Backup, target_type: TargetType, files: &[BackupFile]) -> BackupManifest {
        BackupManifest {
            format: BACKUP_FORMAT.into(),
            version: VERSION,
            target_id: backup.target_id.clone(),
            backup_id: backup.id.clone(),
            name: backup.name.clone(),
            created_at: crate::time::iso(backup.created_at),
            manual: backup.manual,
            recycled: backup.is_recycled,
            recycled_at: backup.recycled_at.filter(|_| backup.is_recycled).map(crate::time::iso),
            pinned: backup.pinned,
            target_type,
            hash: backup.hash.clone(),
            size: backup.filesize,
            files: files.to_vec(),
        }
    }

    pub fn parse(text: &str) -> Result<BackupManifest> {
        let m: BackupManifest = parse(text)?;
        check(&m.format, BACKUP_FORMAT, m.version)?;
        Ok(m)
    }

    /// The backup it describes (a manifest holds no integrity verdict: the check makes it again).
    pub fn backup(&self) -> Result<Backup> {
        let created_at: DateTime<Utc> = crate::time::parse_iso(&self.created_at)
            .ok_or_else(|| Error::bad(format!("created_at '{}' is not an ISO 8601 time", self.created_at)))?;
        Ok(Backup {
            id: self.backup_id.clone(),
            target_id: self.target_id.clone(),
            created_at,
            manual: self.manual,
            is_recycled: self.recycled,
            filesize: self.size,
            hash: self.hash.clone(),
            hash_mismatch: false,
            changes: None,
            unusual: false,
            unusual_reason: None,
            name: self.name.clone(),
            recycled_at: self.recycled_at.as_deref().and_then(crate::time::parse_iso).filter(|_| self.recycled),
            pinned: self.pinned,
            exclusive_bytes: None,
        })
    }

    /// The JSON written to disk: pretty, so that a person can read it.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::internal(format!("manifest cannot be written: {e}")))
    }
}

impl TargetManifest {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::internal(format!("manifest cannot be written: {e}")))
    }
}

fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::bad(format!("not a manifest bakch can read: {e}")))
}

fn check(format: &str, expected: &str, version: u32) -> Result<()> {
    if format != expected {
        return Err(Error::bad(format!("format is '{format}', not '{expected}'")));
    }
    if version == 0 || version > VERSION {
        return Err(Error::bad(format!(
            "version {version} is not one this bakch reads (up to {VERSION}); a newer bakch wrote it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_manifest_round_trips_and_refuses_unknown_versions() {
        let backup = Backup {
            id: "b".into(),
            target_id: "t".into(),
            created_at: crate::time::parse_iso("2026-11-30T12:00:00Z").unwrap(),
            manual: true,
            is_recycled: false,
            filesize: 3,
            hash: "h".into(),
            hash_mismatch: true,
            changes: None,
            unusual: false,
            unusual_reason: None,
            name: "n-b".into(),
            recycled_at: None,
            pinned: true,
            exclusive_bytes: None,
        };
        let files = vec![BackupFile { path: "a/f".into(), blob: "x".into(), size: 3, mode: 0o644 }];
        let m = BackupManifest::of(&backup, TargetType::Multi, &files);
        let json = m.to_json().unwrap();
        assert!(json.contains("\"format\": \"bakch-backup\"") && json.contains("\"type\": \"multi\""), "{json}");
        let back = BackupManifest::parse(&json).unwrap();
        assert_eq!(back, m);
        let b = back.backup().unwrap();
        assert_eq!(
            (b.id.as_str(), b.name.as_str(), b.created_at, b.hash_mismatch),
            ("b", "n-b", backup.created_at, false)
        );
        assert!(BackupManifest::parse(&json.replace("\"version\": 1", "\"version\": 2")).is_err());
        assert!(BackupManifest::parse(&json.replace("bakch-backup", "bakch-target")).is_err());
        assert!(BackupManifest::parse("{}").is_err());
        assert!(back.pinned, "pinned is user data a rebuild keeps");
        let old = json.replace("\"pinned\": true,", "");
        assert!(!BackupManifest::parse(&old).unwrap().pinned, "a manifest from before pinning reads as unpinned");
    }
}
