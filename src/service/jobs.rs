//! What each job does: queued jobs by kind, scheduled jobs by name.

use super::Service;
use crate::db;
/// A queued job's row, as the API and the web UI show it.
pub use crate::db::jobs::JobRow;
pub use crate::db::jobs::LastRun;
use crate::error::{Error, Result};
use crate::model::job::{JobStatus, QueuedJob, Scheduled, Source, UploadJob};
use crate::time;

impl Service {
    /// Runs one queued job.
    pub fn run_job(&self, job: &QueuedJob) -> Result<()> {
        match job {
            QueuedJob::Upload(upload) => {
                self.run_upload(upload)?;
                // A new backup: replicas sync a little later (see `jobs::replica`).
                self.replica_kick.notify_one();
                Ok(())
            }
            QueuedJob::HeldRestore(job) => self.restore_held(&job.id).map(|_| ()),
            QueuedJob::HeldPurge(purge) => self.purge_held(purge).map(|_| ()),
            QueuedJob::Notify(delivery) => self.run_delivery(delivery),
        }
    }

    /// Runs one scheduled job; returns its outcome line.
    pub fn run_scheduled(&self, job: Scheduled) -> Result<String> {
        match job {
            Scheduled::Recycle => self.run_retention(),
            Scheduled::StaleSeqUpload => self.purge_stale_seq_uploads(),
            Scheduled::IntegrityCheck => self.check_integrity(),
            Scheduled::Gc => self.collect_garbage(),
            Scheduled::Deduplicate => self.deduplicate_backups(),
            Scheduled::TmpPurge => self.purge_tmp(),
            Scheduled::BackupFilesize => self.recompute_filesizes(),
            Scheduled::ManifestCheck => self.check_manifests(),
            Scheduled::AuditPurge => self.purge_audit(),
            Scheduled::Replica => self.sync_replicas(),
            Scheduled::ReplicaVerify => self.verify_replicas(),
        }
    }

    /// Upload jobs whose data must be kept: queued, running, or failed recently enough to retry.
    pub fn live_uploads(&self) -> Result<Vec<UploadJob>> {
        let since = time::now() - chrono::Duration::seconds(self.config.failed_upload_keep_secs as i64);
        let jobs = db::jobs::live_jobs(&*self.conn()?, &time::iso(since))?;
        Ok(jobs.iter().filter_map(QueuedJob::upload).cloned().collect())
    }

    /// Queues a failed job again (after its cause was fixed).
    pub fn retry_job(&self, id: i64) -> Result<()> {
        let mut c = self.conn()?;
        let retried = db::with_tx(&mut c, |tx| match db::jobs::status(tx, id)? {
            None => Err(Error::not_found(format!("Job {id} not found"))),
            Some(s) if s != JobStatus::Error => {
                Err(Error::conflict(format!("Job {id} is {}; only a failed job can be retried", s.as_str())))
            }
            Some(_) if db::jobs::find(tx, id)?.is_some_and(|j| !j.kind.retriable_over_network()) => Err(
                Error::conflict(format!("Job {id} came from a local command; run that command again on the server")),
            ),
            Some(_) => db::jobs::retry(tx, id),
        })?;
        if retried {
            tracing::info!("job {id} queued again for a retry");
            self.job_ready.notify_one();
        }
        Ok(())
    }

    /// Takes the oldest IDLE job and marks it RUNNING, for a worker.
    pub fn claim_job(&self) -> Result<Option<JobRow>> {
        db::with_tx(&mut *self.conn()?, |tx| db::jobs::claim(tx))
    }

    /// Ends a claimed job: FINISHED, or ERROR with the reason.
    pub fn finish_job(&self, id: i64, error: Option<&str>) -> Result<()> {
        db::with_tx(&mut *self.conn()?, |tx| db::jobs::finish(tx, id, error))
    }

    /// Puts a job that failed back in the queue to run again in `secs` seconds.
    pub fn retry_job_later(&self, id: i64, error: &str, secs: i64) -> Result<()> {
        let after = time::iso(time::now() + chrono::Duration::seconds(secs));
        db::with_tx(&mut *self.conn()?, |tx| db::jobs::retry_later(tx, id, error, &after))
    }

    /// The last run of a scheduled job: (finished at, outcome, duration in ms).
    pub fn last_run(&self, job: Scheduled) -> Result<LastRun> {
        db::jobs::last_run(&*self.conn()?, job.name())
    }

    /// Records a scheduled job's run.
    pub fn record_run(&self, job: Scheduled, outcome: &str, duration_ms: i64) -> Result<()> {
        db::jobs::record_run(&*self.conn()?, job.name(), &time::iso(time::now()), outcome, duration_ms)
    }

    /// One queued job by id.
    pub fn job(&self, id: i64) -> Result<JobRow> {
        db::jobs::find(&*self.conn()?, id)?.ok_or_else(|| Error::not_found(format!("Job {id} not found")))
    }

    /// The newest queued jobs, for `/api/jobs`.
    pub fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRow>> {
        db::jobs::recent(&*self.conn()?, limit)
    }
}

/// What a queued job is about, in the words a jobs page needs: which target, which files, how
/// much, and whether a retry can still work.
#[derive(Debug, Clone, Default)]
pub struct JobAbout {
    pub target_id: String,
    /// `None` once the target is gone.
    pub target_name: Option<String>,
    pub target_alias: Option<String>,
    /// The uploaded file names (an archive's own name), at most [`JobAbout::NAMES`] of them.
    pub files: Vec<String>,
    pub file_count: usize,
    /// Bytes uploaded, when still known.
    pub bytes: Option<i64>,
    /// The backup it built, if that backup still exists.
    pub backup_id: Option<String>,
    /// A failed job whose target and uploaded data are still there, so a retry can work.
    pub retriable: bool,
}

impl JobAbout {
    /// How many file names are kept for a page.
    pub const NAMES: usize = crate::model::job::KEPT_FILES;
}

impl Service {
    /// What each job is about (see [`JobAbout`]); a job whose payload cannot be read gets an
    /// empty description rather than failing the page.
    pub fn jobs_about(&self, rows: &[JobRow]) -> Result<Vec<JobAbout>> {
        let c = self.conn()?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let Ok(QueuedJob::Upload(job)) = row.job() else {
                out.push(JobAbout::default());
                continue;
            };
            let target = db::targets::find(&c, &job.target_id)?;
            let backup = db::backups::find(&c, &job.backup_id)?;
            let mut about = JobAbout {
                target_id: job.target_id.clone(),
                target_name: target.as_ref().map(|t| t.name.clone()),
                target_alias: target.as_ref().and_then(|t| t.alias.clone()),
                backup_id: backup.as_ref().map(|b| b.id.clone()),
                ..JobAbout::default()
            };
            // Whether the uploaded bytes are still kept (garbage collection takes them some
            // time after a failure; see `failed_upload_keep_secs`).
            let data_kept = match &job.source {
                Source::Files { files, totals } => {
                    about.files = files.iter().take(JobAbout::NAMES).map(|f| f.path.clone()).collect();
                    about.file_count = totals.map_or(files.len(), |t| t.count);
                    about.bytes = Some(totals.map_or_else(|| files.iter().map(|f| f.size).sum(), |t| t.bytes));
                    row.status == JobStatus::Error && files.iter().all(|f| self.store.blob_path(&f.blob).exists())
                }
                Source::Archive { file, name } => {
                    about.files = vec![name.clone()];
                    about.file_count = 1;
                    let spooled = std::fs::metadata(self.store.uploads.join(file)).ok();
                    about.bytes = spooled.as_ref().map(|m| m.len() as i64).or(backup.as_ref().map(|b| b.filesize));
                    spooled.is_some()
                }
            };
            about.retriable = row.status == JobStatus::Error && target.is_some() && data_kept;
            out.push(about);
        }
        Ok(out)
    }
}
