//! The change canary: how a finished backup differs from the previous one of its target, file
//! by file (by path and blob hash, so it costs no reading), and whether that change is far
//! beyond the target's own history: the sign of a client whose files were encrypted by
//! ransomware, or of one that backed up an empty folder.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::backup::BackupFile;

/// What changed since the previous backup of the same target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Changes {
    /// Paths the previous backup did not have.
    pub files_new: i64,
    /// Paths whose content differs.
    pub files_changed: i64,
    /// Paths of the previous backup that are gone.
    pub files_removed: i64,
    /// Paths with the same content.
    pub files_same: i64,
    /// Bytes of content the previous backup did not hold (new or changed files).
    pub bytes_new: i64,
}

impl Changes {
    /// Files the previous backup had.
    pub fn previous_files(&self) -> i64 {
        self.files_changed + self.files_removed + self.files_same
    }

    /// The share of the previous backup's files that changed, 0..=1.
    fn changed_ratio(&self) -> f64 {
        ratio(self.files_changed, self.previous_files())
    }
}

/// Compares the files of a backup with those of the previous one.
pub fn compare(previous: &[BackupFile], current: &[BackupFile]) -> Changes {
    let before: HashMap<&str, &str> = previous.iter().map(|f| (f.path.as_str(), f.blob.as_str())).collect();
    let old_blobs: HashSet<&str> = previous.iter().map(|f| f.blob.as_str()).collect();
    let mut c = Changes::default();
    let mut seen = HashSet::new();
    for f in current {
        seen.insert(f.path.as_str());
        match before.get(f.path.as_str()) {
            Some(blob) if *blob == f.blob => c.files_same += 1,
            Some(_) => c.files_changed += 1,
            None => c.files_new += 1,
        }
        if !old_blobs.contains(f.blob.as_str()) {
            c.bytes_new += f.size;
        }
    }
    c.files_removed = before.keys().filter(|p| !seen.contains(*p)).count() as i64;
    c
}

/// What the `changes` column holds: the changes and, when they are unusual, why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    #[serde(flatten)]
    pub changes: Changes,
    #[serde(default)]
    pub unusual: Option<String>,
}

/// A previous backup's figures, as history.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub changes: Changes,
    pub filesize: i64,
}

/// Fewer files than this in the previous backup say too little for file-count rules.
const MIN_FILES: i64 = 4;
/// The history needed before a change is judged against it.
const MIN_HISTORY: usize = 2;

/// Why this change is unusual for the target, or `None`. `history` holds the previous
/// backups' figures, newest first; `single` targets hold one file under a new name each time,
/// so only their size is judged.
pub fn judge(history: &[Sample], current: &Changes, size: i64, single: bool) -> Option<String> {
    let before = current.previous_files();
    if !single && before >= MIN_FILES {
        if current.files_removed * 2 >= before {
            return Some(format!(
                "{} of the previous backup's {before} files ({:.0} %) are gone",
                current.files_removed,
                100.0 * ratio(current.files_removed, before)
            ));
        }
        let now = current.changed_ratio();
        let usual: Vec<f64> =
            history.iter().filter(|s| s.changes.previous_files() > 0).map(|s| s.changes.changed_ratio()).collect();
        if usual.len() >= MIN_HISTORY {
            let most = usual.iter().cloned().fold(0.0, f64::max);
            if now >= 0.5 && now >= 5.0 * most.max(0.02) {
                return Some(format!(
                    "{:.0} % of the files changed ({} of {before}); usually at most {:.0} %",
                    100.0 * now,
                    current.files_changed,
                    100.0 * most
                ));
            }
        }
    }
    if history.len() >= MIN_HISTORY {
        let mut sizes: Vec<i64> = history.iter().map(|s| s.filesize).collect();
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        if median > 0 && (size > median.saturating_mul(4) || size.saturating_mul(4) < median) {
            return Some(format!("its size is {size} bytes where {median} bytes is usual"));
        }
    }
    None
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole <= 0 { 0.0 } else { part as f64 / whole as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(n: usize, changed: usize) -> Vec<BackupFile> {
        (0..n)
            .map(|i| BackupFile {
                path: format!("f{i}"),
                blob: if i < changed { format!("new{i}") } else { format!("b{i}") },
                size: 10,
                mode: 0o644,
            })
            .collect()
    }

    #[test]
    fn compares_by_path_and_content() {
        let mut now = files(10, 2);
        now.pop();
        now.push(BackupFile { path: "extra".into(), blob: "b0".into(), size: 10, mode: 0o644 });
        let c = compare(&files(10, 0), &now);
        assert_eq!(
            c,
            Changes { files_new: 1, files_changed: 2, files_removed: 1, files_same: 7, bytes_new: 20 },
            "the moved content b0 is not new bytes"
        );
    }

    #[test]
    fn flags_what_the_history_does_not_explain() {
        let calm = Sample { changes: compare(&files(100, 0), &files(100, 2)), filesize: 1000 };
        let history = [calm, calm, calm];
        let storm = compare(&files(100, 0), &files(100, 92));
        let why = judge(&history, &storm, 1000, false).expect("92 % changed is unusual");
        assert!(why.starts_with("92 % of the files changed (92 of 100); usually at most 2 %"), "{why}");
        assert_eq!(judge(&history, &compare(&files(100, 0), &files(100, 3)), 1000, false), None);
        let gone = compare(&files(100, 0), &files(40, 0));
        assert!(judge(&[], &gone, 400, false).unwrap().contains("60 of the previous backup's 100 files"));
        assert!(judge(&history, &Changes::default(), 10_000, true).unwrap().contains("1000 bytes is usual"));
        assert_eq!(judge(&[], &storm, 1000, false), None, "no history, no judgement of the ratio");
    }
}
