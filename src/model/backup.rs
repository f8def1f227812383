//! Backups and the files they hold.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// A finished backup as listed by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Backup {
    pub id: String,
    pub target_id: String,
    /// ISO 8601 (`2025-07-11T12:57:17+00:00`).
    #[serde(serialize_with = "iso8601")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
    pub manual: bool,
    pub is_recycled: bool,
    /// Logical size: the sum of its files' sizes.
    pub filesize: i64,
    /// blake3 of the whole content (see [`content_hash`]).
    pub hash: String,
    pub hash_mismatch: bool,
    /// How it differs from the previous backup of its target (the change canary); null for a
    /// backup made before bakch recorded it, or rebuilt from manifests.
    #[schema(required = true)]
    pub changes: Option<super::canary::Changes>,
    /// Whether the change is far beyond the target's own history.
    pub unusual: bool,
    /// Why it is unusual, for a person.
    #[schema(required = true)]
    pub unusual_reason: Option<String>,
    /// File or folder name inside the target's location (or the recycle bin).
    #[serde(skip)]
    pub name: String,
    /// When it went to the recycle bin; `None` while active (and for backups recycled before
    /// bakch recorded it). Shown by the web UI; not part of the API's backup JSON.
    #[serde(skip)]
    pub recycled_at: Option<DateTime<Utc>>,
    /// Retention never takes a pinned backup, and it cannot be deleted until unpinned.
    pub pinned: bool,
    /// What deleting this backup alone would free on disk (once its hold ends): the bytes of
    /// content no other backup and no held deletion refers to. Given where backups are listed
    /// with their target (`GET /api/target/{id}`, the recycle bin); null elsewhere.
    #[schema(required = true)]
    pub exclusive_bytes: Option<i64>,
}

/// One file of a backup: where it sits inside the backup and which blob holds its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BackupFile {
    /// Relative path with '/' separators; for a single-file backup, its file name.
    pub path: String,
    pub blob: String,
    pub size: i64,
    pub mode: u32,
}

/// One file of a push's list (`bakch push`): a backup file and its modification time (seconds).
/// As a client sends it until `Service::push_files` has checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushFile {
    pub path: String,
    pub blob: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: i64,
}

/// `2025-07-11T12:57:17+00:00`, the form the official server sends.
pub fn iso8601<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, false))
}

/// The hash of a whole backup. A single file's backup hash is its blob hash; a tree's is the
/// blake3 of its sorted `path NUL blob NUL size LF` lines, so the same tree gives the same hash.
pub fn content_hash(files: &[BackupFile], single: bool) -> String {
    if single && files.len() == 1 {
        return files[0].blob.clone();
    }
    let mut sorted: Vec<&BackupFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut h = blake3::Hasher::new();
    for f in sorted {
        h.update(f.path.as_bytes());
        h.update(b"\0");
        h.update(f.blob.as_bytes());
        h.update(b"\0");
        h.update(f.size.to_string().as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// A path that is also a folder of another path in `paths` (which must be sorted by
/// components, as a `BTreeSet<PathBuf>` is), with that other path: no tree can hold both.
pub fn file_folder_clash<'a>(
    paths: impl IntoIterator<Item = &'a std::path::PathBuf>,
) -> Option<(&'a std::path::PathBuf, &'a std::path::PathBuf)> {
    let mut prev: Option<&std::path::PathBuf> = None;
    for p in paths {
        // Sorted by components, a folder's contents follow it at once.
        if let Some(q) = prev
            && p.starts_with(q)
        {
            return Some((q, p));
        }
        prev = Some(p);
    }
    None
}

/// A size for people: `1.5 MiB`, `512 B`.
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes.max(0) as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, blob: &str) -> BackupFile {
        BackupFile { path: path.into(), blob: blob.into(), size: 1, mode: 0o644 }
    }

    #[test]
    fn tree_hash_ignores_order_but_not_paths() {
        let a = content_hash(&[file("a", "1"), file("b", "2")], false);
        let b = content_hash(&[file("b", "2"), file("a", "1")], false);
        let c = content_hash(&[file("a", "2"), file("b", "1")], false);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(content_hash(&[file("x", "blobhash")], true), "blobhash");
    }
}
