//! What each job does: queued jobs by kind, scheduled jobs by name.

use super::Service;
use super::uploads::{UPLOAD_JOB, UploadJob};
use crate::db::{self, jobs::JobRow};
use crate::error::{Error, Result};
use crate::time;

/// Scheduled jobs: (name, display name). Their schedules come from the config.
pub const SCHEDULED: &[(&str, &str)] = &[
    ("recycle_job", "Recycle old backups"),
    ("stale_seq_upload_job", "Purge stale sequential uploads"),
    ("integrity_check_job", "Check backup integrity"),
    ("gc_job", "Remove unreferenced stored content"),
    ("deduplicate_job", "Delete repeated backups"),
    ("tmp_purge_job", "Purge stale temp files"),
    ("backup_filesize_job", "Recompute backup sizes"),
];

/// The display name of a queued job kind.
pub fn display_name(kind: &str) -> &'static str {
    match kind {
        UPLOAD_JOB => "Process uploaded backup",
        _ => "Job",
    }
}

impl Service {
    /// Runs one queued job.
    pub fn run_job(&self, kind: &str, payload: &str) -> Result<()> {
        match kind {
            UPLOAD_JOB => {
                let job: UploadJob = serde_json::from_str(payload)
                    .map_err(|e| Error::internal(format!("job payload cannot be read: {e}")))?;
                self.run_upload(&job)
            }
            other => Err(Error::internal(format!("unknown job kind '{other}'"))),
        }
    }

    /// Runs one scheduled job by name; returns its outcome line.
    pub fn run_scheduled(&self, name: &str) -> Result<String> {
        match name {
            "recycle_job" => self.run_retention(),
            "stale_seq_upload_job" => self.purge_stale_seq_uploads(),
            "integrity_check_job" => self.check_integrity(),
            "gc_job" => self.collect_garbage(),
            "deduplicate_job" => self.deduplicate_backups(),
            "tmp_purge_job" => self.purge_tmp(),
            "backup_filesize_job" => self.recompute_filesizes(),
            other => Err(Error::not_found(format!("No scheduled job named '{other}'"))),
        }
    }

    /// Upload jobs whose data must be kept: queued, running, or failed recently enough to retry.
    pub fn live_uploads(&self) -> Result<Vec<UploadJob>> {
        let since = time::now() - chrono::Duration::seconds(self.config.failed_upload_keep_secs as i64);
        let payloads = db::jobs::live_payloads(&*self.conn()?, &time::iso(since))?;
        Ok(payloads.iter().filter_map(|p| serde_json::from_str(p).ok()).collect())
    }

    /// Queues a failed job again (after its cause was fixed).
    pub fn retry_job(&self, id: i64) -> Result<()> {
        let mut c = self.conn()?;
        let retried = db::with_tx(&mut c, |tx| match db::jobs::status(tx, id)? {
            None => Err(Error::not_found(format!("Job {id} not found"))),
            Some(s) if s != "ERROR" => {
                Err(Error::conflict(format!("Job {id} is {s}; only a failed job can be retried")))
            }
            Some(_) => db::jobs::retry(tx, id),
        })?;
        if retried {
            tracing::info!("job {id} queued again for a retry");
            self.job_ready.notify_one();
        }
        Ok(())
    }

    /// The newest queued jobs, for `/api/jobs`.
    pub fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRow>> {
        db::jobs::recent(&*self.conn()?, limit)
    }
}
