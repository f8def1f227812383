//! Jobs as types: a queued job's status, its kind with its payload, and the one table of
//! scheduled jobs. Adding a queued kind means a [`QueuedJob`] variant; adding a scheduled job
//! means a [`Scheduled`] variant and its row in [`Scheduled::spec`]; the compiler finds the rest
//! (what runs it, in `service/jobs.rs`).

use serde::{Deserialize, Serialize};

use super::backup::BackupFile;
use super::held::Purge;
use super::notify::Delivery;
use crate::error::{Error, Result};

/// Where a queued job is: `IDLE → RUNNING → FINISHED | ERROR` (the contract's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    Idle,
    Running,
    Finished,
    Error,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Idle => "IDLE",
            JobStatus::Running => "RUNNING",
            JobStatus::Finished => "FINISHED",
            JobStatus::Error => "ERROR",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        [JobStatus::Idle, JobStatus::Running, JobStatus::Finished, JobStatus::Error]
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    /// Whether the job has ended, well or not.
    pub fn is_done(self) -> bool {
        matches!(self, JobStatus::Finished | JobStatus::Error)
    }
}

/// The kinds of queued jobs, as stored in the `kind` column and shown as a job's `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Upload,
    /// `bakch held restore` beside a running server.
    HeldRestore,
    /// `bakch held purge` beside a running server.
    HeldPurge,
    Notify,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Upload => "upload_job",
            JobKind::HeldRestore => "held_restore_job",
            JobKind::HeldPurge => "held_purge_job",
            JobKind::Notify => "notify_job",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        [JobKind::Upload, JobKind::HeldRestore, JobKind::HeldPurge, JobKind::Notify]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// What `/api/jobs` and the jobs page call it.
    pub fn display_name(self) -> &'static str {
        match self {
            JobKind::Upload => "Process uploaded backup",
            JobKind::HeldRestore => "Restore a held backup (local command)",
            JobKind::HeldPurge => "End holds early (local command)",
            JobKind::Notify => "Send a notification",
        }
    }

    /// Whether a failure with `error` is worth a retry once its cause is fixed (the job then
    /// keeps its data): a failure of the disk or the target folder, or a name taken meanwhile,
    /// is; bad input and a deleted target are not.
    pub fn worth_retry(self, error: &Error) -> bool {
        match self {
            JobKind::Upload => matches!(error, Error::Internal(_) | Error::DiskFull(_) | Error::Conflict(_)),
            JobKind::HeldRestore | JobKind::HeldPurge => false,
            // Retried on its own, with backoff (see `retry_in`).
            JobKind::Notify => false,
        }
    }

    /// Seconds until a failed job runs again by itself, after `attempts` tries; `None` ends it
    /// in ERROR. Only deliveries retry by themselves: a destination may be down for a while.
    pub fn retry_in(self, attempts: i64, error: &Error) -> Option<i64> {
        match self {
            JobKind::Upload | JobKind::HeldRestore | JobKind::HeldPurge => None,
            JobKind::Notify => match error {
                // A destination gone from the config will not come back by waiting.
                Error::NotFound(_) => None,
                _ => super::notify::backoff(attempts),
            },
        }
    }

    /// Whether `POST /api/jobs/{id}/retry` may queue it again. Not the held jobs: they come
    /// from a local command, and a purge re-run over the network would shorten holds.
    pub fn retriable_over_network(self) -> bool {
        matches!(self, JobKind::Upload | JobKind::Notify)
    }
}

/// A queued job with its payload.
#[derive(Debug, Clone)]
pub enum QueuedJob {
    Upload(UploadJob),
    HeldRestore(HeldRestoreJob),
    HeldPurge(Purge),
    Notify(Delivery),
}

/// What `bakch held restore` asks of a running server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldRestoreJob {
    /// The held backup's id.
    pub id: String,
    pub target_id: String,
}

impl QueuedJob {
    pub fn kind(&self) -> JobKind {
        match self {
            QueuedJob::Upload(_) => JobKind::Upload,
            QueuedJob::HeldRestore(_) => JobKind::HeldRestore,
            QueuedJob::HeldPurge(_) => JobKind::HeldPurge,
            QueuedJob::Notify(_) => JobKind::Notify,
        }
    }

    /// The stored payload (JSON).
    pub fn payload(&self) -> Result<String> {
        let json = match self {
            QueuedJob::Upload(job) => serde_json::to_string(job),
            QueuedJob::HeldRestore(job) => serde_json::to_string(job),
            QueuedJob::HeldPurge(purge) => serde_json::to_string(purge),
            QueuedJob::Notify(d) => serde_json::to_string(d),
        };
        json.map_err(|e| Error::internal(format!("job payload cannot be written: {e}")))
    }

    /// Reads a stored job back; a payload that does not parse is an error, never skipped.
    pub fn parse(kind: JobKind, payload: &str) -> Result<QueuedJob> {
        let bad =
            |e: serde_json::Error| Error::internal(format!("the payload of a {} cannot be read: {e}", kind.as_str()));
        match kind {
            JobKind::Upload => serde_json::from_str(payload).map(QueuedJob::Upload).map_err(bad),
            JobKind::HeldRestore => serde_json::from_str(payload).map(QueuedJob::HeldRestore).map_err(bad),
            JobKind::HeldPurge => serde_json::from_str(payload).map(QueuedJob::HeldPurge).map_err(bad),
            JobKind::Notify => serde_json::from_str(payload).map(QueuedJob::Notify).map_err(bad),
        }
    }

    /// The target the job works on (a purge, or a notification about the disk, has none).
    pub fn target_id(&self) -> Option<&str> {
        match self {
            QueuedJob::Upload(job) => Some(&job.target_id),
            QueuedJob::HeldRestore(job) => Some(&job.target_id),
            QueuedJob::Notify(d) => d.event.target_id.as_deref(),
            QueuedJob::HeldPurge(_) => None,
        }
    }

    /// The backup the job builds, if it builds one.
    pub fn backup_id(&self) -> Option<&str> {
        match self {
            QueuedJob::Upload(job) => Some(&job.backup_id),
            QueuedJob::HeldRestore(job) => Some(&job.id),
            QueuedJob::HeldPurge(_) => None,
            QueuedJob::Notify(d) => d.event.backup_id.as_deref(),
        }
    }

    /// The upload this job builds, if it is one.
    pub fn upload(&self) -> Option<&UploadJob> {
        match self {
            QueuedJob::Upload(job) => Some(job),
            QueuedJob::HeldRestore(_) | QueuedJob::HeldPurge(_) | QueuedJob::Notify(_) => None,
        }
    }
}

/// What an upload job builds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadJob {
    pub target_id: String,
    /// Chosen when the upload was accepted, so a re-run builds the same backup.
    pub backup_id: String,
    pub created_at: String,
    pub manual: bool,
    pub source: Source,
}

/// Where an upload's content is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Files already stored as blobs (for a single-file target, one file named as uploaded).
    Files {
        files: Vec<BackupFile>,
        /// Set when the job finished: `files` then keeps only the first [`KEPT_FILES`] (the
        /// backup holds the list; a nightly push of a million files would otherwise leave
        /// ~150 MB in the queue's table every night), and these are the whole list's totals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        totals: Option<FileTotals>,
    },
    /// An archive kept in the uploads folder, unpacked by the job.
    Archive { file: String, name: String },
}

/// How many of a finished upload's files its job keeps (the jobs page names that many).
pub const KEPT_FILES: usize = 3;

/// How many files a finished upload had, and their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTotals {
    pub count: usize,
    pub bytes: i64,
}

/// The scheduled jobs (Backup-chan's names, plus bakch's own `gc_job`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scheduled {
    Recycle,
    StaleSeqUpload,
    IntegrityCheck,
    Gc,
    Deduplicate,
    TmpPurge,
    BackupFilesize,
    ManifestCheck,
    AuditPurge,
    Replica,
    ReplicaVerify,
}

/// One row of the table of scheduled jobs.
pub struct ScheduledSpec {
    /// As in the API, the config's `[schedules]` and `force_run`.
    pub name: &'static str,
    pub title: &'static str,
    /// Cron, six fields, seconds first, UTC.
    pub default_schedule: &'static str,
}

impl Scheduled {
    pub const ALL: [Scheduled; 11] = [
        Scheduled::Recycle,
        Scheduled::StaleSeqUpload,
        Scheduled::IntegrityCheck,
        Scheduled::Gc,
        Scheduled::Deduplicate,
        Scheduled::TmpPurge,
        Scheduled::BackupFilesize,
        Scheduled::ManifestCheck,
        Scheduled::AuditPurge,
        Scheduled::Replica,
        Scheduled::ReplicaVerify,
    ];

    /// The table: every scheduled job's name, title and default schedule.
    pub const fn spec(self) -> ScheduledSpec {
        let (name, title, default_schedule) = match self {
            Scheduled::Recycle => ("recycle_job", "Recycle old backups", "0 0 * * * *"),
            Scheduled::StaleSeqUpload => ("stale_seq_upload_job", "Purge stale sequential uploads", "0 */10 * * * *"),
            Scheduled::IntegrityCheck => ("integrity_check_job", "Check backup integrity", "0 0 3 * * *"),
            Scheduled::Gc => ("gc_job", "Remove unreferenced stored content", "0 30 3 * * *"),
            Scheduled::Deduplicate => ("deduplicate_job", "Delete repeated backups", "0 15 * * * *"),
            Scheduled::TmpPurge => ("tmp_purge_job", "Purge stale temp files", "0 45 * * * *"),
            Scheduled::BackupFilesize => ("backup_filesize_job", "Recompute backup sizes", "0 0 4 * * *"),
            Scheduled::ManifestCheck => ("manifest_check_job", "Verify manifests against the database", "0 15 3 * * *"),
            Scheduled::AuditPurge => ("audit_purge_job", "Remove old audit entries", "0 50 3 * * *"),
            Scheduled::Replica => ("replica_job", "Sync the encrypted replicas", "0 20 * * * *"),
            Scheduled::ReplicaVerify => ("replica_verify_job", "Verify a share of the replicas", "0 0 5 * * *"),
        };
        ScheduledSpec { name, title, default_schedule }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn title(self) -> &'static str {
        self.spec().title
    }

    pub fn parse(name: &str) -> Option<Scheduled> {
        Scheduled::ALL.into_iter().find(|s| s.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Scheduled::ALL.iter().map(|s| s.name()).collect();
        for s in Scheduled::ALL {
            assert_eq!(Scheduled::parse(s.name()), Some(s));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Scheduled::ALL.len());
        for st in ["IDLE", "RUNNING", "FINISHED", "ERROR"] {
            assert_eq!(JobStatus::parse(st).map(JobStatus::as_str), Some(st));
        }
        assert_eq!(JobKind::parse("upload_job"), Some(JobKind::Upload));
        assert_eq!(JobKind::parse("notify_job"), Some(JobKind::Notify));
        assert_eq!(JobKind::parse("nope"), None);
    }

    #[test]
    fn a_garbled_payload_is_an_error() {
        assert!(QueuedJob::parse(JobKind::Upload, "{not json").is_err());
        let job = UploadJob {
            target_id: "t".into(),
            backup_id: "b".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            manual: true,
            source: Source::Archive { file: "f".into(), name: "a.tar".into() },
        };
        let payload = QueuedJob::Upload(job).payload().unwrap();
        assert!(matches!(QueuedJob::parse(JobKind::Upload, &payload), Ok(QueuedJob::Upload(j)) if j.backup_id == "b"));
    }
}
