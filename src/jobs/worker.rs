//! Job workers: claim the oldest IDLE job in a transaction, run it on a blocking thread (a panic
//! ends that job in ERROR, not the worker), record the outcome. Woken by a `Notify` on enqueue.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::http::block as blocking;
use crate::model::job::QueuedJob;
use crate::service::Service;

/// Fallback wake-up, in case a notification was missed.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Spawns `count` workers; called once at start-up.
pub fn spawn_workers(service: Arc<Service>, count: usize) {
    for n in 0..count {
        let service = service.clone();
        tokio::spawn(async move {
            tracing::debug!("job worker {n} started");
            loop {
                match run_next(&service).await {
                    Ok(true) => continue,
                    Ok(false) => {
                        let _ = tokio::time::timeout(IDLE_POLL, service.job_ready.notified()).await;
                    }
                    Err(e) => {
                        tracing::error!("job worker {n}: {e}");
                        let _ = tokio::time::timeout(IDLE_POLL, service.job_ready.notified()).await;
                    }
                }
            }
        });
    }
}

/// Runs one job if there is one; returns whether it found one.
async fn run_next(service: &Arc<Service>) -> Result<bool> {
    let svc = service.clone();
    let claimed = blocking(move || svc.claim_job()).await?;
    let Some(job) = claimed else { return Ok(false) };
    let kind = job.kind;
    tracing::info!("job {} ({}) started, attempt {}", job.id, kind.as_str(), job.attempts);
    let svc = service.clone();
    let payload = job.payload.clone();
    let outcome = match tokio::task::spawn_blocking(move || {
        let queued = QueuedJob::parse(kind, &payload)?;
        svc.run_job(&queued)
    })
    .await
    {
        Ok(result) => result,
        Err(e) => Err(Error::internal(format!("the job crashed: {e}"))),
    };
    let retry_in = outcome.as_ref().err().and_then(|e| kind.retry_in(job.attempts, e));
    let error = outcome.err().map(|e| {
        if kind.worth_retry(&e) {
            format!("{e} (the uploaded data is kept: fix the cause, then POST /api/jobs/{}/retry)", job.id)
        } else {
            e.to_string()
        }
    });
    match (&error, retry_in) {
        (None, _) => tracing::info!("job {} ({}) finished", job.id, kind.as_str()),
        (Some(e), Some(secs)) => {
            tracing::error!("job {} ({}) failed, trying again in {secs} s: {e}", job.id, kind.as_str())
        }
        (Some(e), None) => tracing::error!("job {} ({}) failed: {e}", job.id, kind.as_str()),
    }
    let svc = service.clone();
    if let (Some(e), Some(secs)) = (error.clone(), retry_in) {
        blocking(move || svc.retry_job_later(job.id, &e, secs)).await?;
        return Ok(true);
    }
    blocking(move || svc.finish_job(job.id, error.as_deref())).await?;
    Ok(true)
}
