//! Held backups: what a deletion leaves behind for `[protection] hold_days`. The backup is gone
//! from its target (as the Backup-chan contract says), but its content stays in the store, and
//! a held entry describes it well enough to bring it back: its manifest, its target's definition
//! at the time (the target may be deleted too), and who deleted it, from where and when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::Who;
use super::manifest::{BackupManifest, TargetManifest};
use crate::error::{Error, Result};

/// The `format` of a held entry's file, `<data>/held/<backup id>.json`.
pub const FORMAT: &str = "bakch-held";
/// The version this bakch writes, and the newest it reads.
pub const VERSION: u32 = 1;

/// Who deleted a backup: a key's name, `web` (with a session tag) or `bakch` (retention,
/// deduplication), and the address the request came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeletedBy {
    pub who: String,
    pub session: Option<String>,
    pub from: String,
}

impl From<&Who> for DeletedBy {
    fn from(w: &Who) -> Self {
        DeletedBy { who: w.name.clone(), session: w.session.clone(), from: w.origin.clone() }
    }
}

/// A held entry, as written to disk and kept in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldManifest {
    pub format: String,
    pub version: u32,
    /// ISO 8601, the server's clock.
    pub deleted_at: String,
    /// Until when the content is kept; garbage collection may reclaim it after.
    pub hold_until: String,
    pub deleted_by: DeletedBy,
    /// The target as it was when the backup was deleted.
    pub target: TargetManifest,
    /// The backup as it was (its files and their blobs).
    pub backup: BackupManifest,
}

impl HeldManifest {
    pub fn new(
        deleted_at: DateTime<Utc>,
        hold_until: DateTime<Utc>,
        by: &Who,
        target: TargetManifest,
        backup: BackupManifest,
    ) -> HeldManifest {
        HeldManifest {
            format: FORMAT.into(),
            version: VERSION,
            deleted_at: crate::time::iso(deleted_at),
            hold_until: crate::time::iso(hold_until),
            deleted_by: by.into(),
            target,
            backup,
        }
    }

    pub fn id(&self) -> &str {
        &self.backup.backup_id
    }

    pub fn parse(text: &str) -> Result<HeldManifest> {
        let m: HeldManifest =
            serde_json::from_str(text).map_err(|e| Error::bad(format!("not a held entry bakch can read: {e}")))?;
        if m.format != FORMAT {
            return Err(Error::bad(format!("format is '{}', not '{FORMAT}'", m.format)));
        }
        if m.version == 0 || m.version > VERSION {
            return Err(Error::bad(format!("version {} is not one this bakch reads (up to {VERSION})", m.version)));
        }
        Ok(m)
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::internal(format!("held entry cannot be written: {e}")))
    }

    /// The summary `GET /api/held`, `bakch held list` and the held page show.
    pub fn summary(&self) -> Held {
        Held {
            id: self.backup.backup_id.clone(),
            target_id: self.backup.target_id.clone(),
            target_name: self.target.target.name.clone(),
            name: self.backup.name.clone(),
            created_at: self.backup.created_at.clone(),
            size: self.backup.size,
            files: self.backup.files.len(),
            deleted_at: self.deleted_at.clone(),
            hold_until: self.hold_until.clone(),
            deleted_by: self.deleted_by.clone(),
        }
    }
}

/// Which held entries `bakch held purge` ends: exactly these (by backup id), as the command
/// listed and confirmed them; none is "none", never "all".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Purge {
    pub ids: Vec<String>,
}

/// One held backup, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Held {
    /// The deleted backup's id; a restore brings it back under the same id.
    pub id: String,
    pub target_id: String,
    /// The target's name when the backup was deleted.
    pub target_name: String,
    /// The backup's file or folder name when it was deleted.
    pub name: String,
    /// When the backup was made (ISO 8601).
    pub created_at: String,
    pub size: i64,
    pub files: usize,
    /// When it was deleted (ISO 8601, the server's clock).
    pub deleted_at: String,
    /// Until when its content is kept (ISO 8601).
    pub hold_until: String,
    pub deleted_by: DeletedBy,
}

/// Space that is taken but will be given back: held content, and content nothing refers to any
/// more that waits for garbage collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reclaimable {
    /// Held backups.
    pub held_backups: i64,
    /// Bytes only held backups keep (content a listed backup shares is not counted).
    pub held_bytes: i64,
    /// When the earliest hold ends (ISO 8601), if any.
    pub next_release: Option<String>,
    /// Bytes of stored content nothing refers to, waiting for garbage collection.
    pub unreferenced_bytes: i64,
}

impl Reclaimable {
    /// One sentence for a full disk (the 507 reply, the log, the dashboard); `None` when
    /// nothing waits.
    pub fn advice(&self) -> Option<String> {
        if self.held_bytes == 0 && self.unreferenced_bytes == 0 && self.held_backups == 0 {
            return None;
        }
        let mut parts = Vec::new();
        if self.held_backups > 0 {
            let until = self.next_release.as_deref().map(|t| format!(", the first until {t}")).unwrap_or_default();
            parts.push(format!(
                "{} held from {} deleted backup(s){until}",
                crate::model::backup::human_bytes(self.held_bytes),
                self.held_backups
            ));
        }
        if self.unreferenced_bytes > 0 {
            parts.push(format!(
                "{} no backup refers to, waiting for garbage collection",
                crate::model::backup::human_bytes(self.unreferenced_bytes)
            ));
        }
        Some(format!(
            "Space that will be freed: {}. To free it now, run `bakch held purge` on the server (it ends the holds \
             and collects at once; no network request can).",
            parts.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::backup::{Backup, BackupFile};
    use crate::model::target::TargetType;

    #[test]
    fn a_held_entry_round_trips_and_refuses_unknown_versions() {
        let backup = Backup {
            id: "b".into(),
            target_id: "t".into(),
            created_at: crate::time::parse_iso("2026-11-30T12:00:00Z").unwrap(),
            manual: false,
            is_recycled: false,
            filesize: 3,
            hash: "h".into(),
            hash_mismatch: false,
            name: "n".into(),
            recycled_at: None,
            changes: None,
            unusual: false,
            unusual_reason: None,
            pinned: false,
            exclusive_bytes: None,
        };
        let files = vec![BackupFile { path: "f".into(), blob: "x".into(), size: 3, mode: 0o644 }];
        let bm = BackupManifest::of(&backup, TargetType::Single, &files);
        let target: crate::model::target::Target =
            serde_json::from_value(serde_json::json!({"id": "t", "name": "T", "target_type": "single",
                "recycle_criteria": "none", "recycle_value": 0, "recycle_action": "recycle",
                "location": "/x", "name_template": "$I", "deduplicate": false, "alias": null,
                "min_backups": 0, "tags": []}))
            .unwrap();
        let now = crate::time::now();
        let m = HeldManifest::new(now, now, &Who::bakch(), TargetManifest::of(&target, "2026-01-01T00:00:00Z"), bm);
        let back = HeldManifest::parse(&m.to_json().unwrap()).unwrap();
        assert_eq!(back.to_json().unwrap(), m.to_json().unwrap());
        assert_eq!(back.summary().deleted_by.who, "bakch");
        assert!(HeldManifest::parse(&m.to_json().unwrap().replace("\"version\": 1", "\"version\": 9")).is_err());
        assert!(HeldManifest::parse("{}").is_err());
    }

    #[test]
    fn advice_says_what_waits_and_how_to_free_it() {
        assert_eq!(Reclaimable::default().advice(), None);
        let r = Reclaimable {
            held_backups: 2,
            held_bytes: 3 << 20,
            next_release: Some("2026-12-07T00:00:00Z".into()),
            unreferenced_bytes: 1024,
        };
        let a = r.advice().unwrap();
        assert!(a.contains("2 deleted backup(s)") && a.contains("bakch held purge") && a.contains("2026-12-07"), "{a}");
    }
}
