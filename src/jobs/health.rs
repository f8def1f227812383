//! The health monitor: runs [`Service::check_health`] after the database commits (an upload
//! finished or failed, a target changed, the integrity check flagged a backup) and at the time
//! the next state change is due by time alone (a target turning late). It never polls on a
//! fixed period, and it runs whether or not anyone reads the API.

use std::sync::Arc;
use std::time::Duration;

use crate::http::block as blocking;
use crate::service::Service;

/// Commits come in bursts (one upload commits several times): wait this long after the first
/// before looking, so one burst is one check.
const SETTLE: Duration = Duration::from_millis(300);
/// After a failed check (the disk or the database), try again after this.
const AFTER_ERROR: Duration = Duration::from_secs(30);
/// A check reads every target's facts, which with many targets is a CPU-heavy while; during a
/// stream of uploads it would run back to back and take a core from the requests. So the next
/// check after a commit waits at least this many times as long as the last one took.
const REST_FACTOR: u32 = 9;
/// ...but never longer than this, so a state change is still seen within a minute.
const MAX_REST: Duration = Duration::from_secs(60);

/// Starts the monitor; called once at start-up.
pub fn spawn_monitor(service: Arc<Service>) {
    tokio::spawn(async move {
        loop {
            let svc = service.clone();
            let started = std::time::Instant::now();
            let checked = blocking(move || svc.check_health()).await;
            let rest = SETTLE.max(started.elapsed() * REST_FACTOR).min(MAX_REST);
            let wait = match checked {
                Ok(next) => (next - crate::time::now()).to_std().unwrap_or(Duration::ZERO),
                Err(e) => {
                    tracing::error!("health check failed: {e}");
                    AFTER_ERROR
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = service.committed().notified() => tokio::time::sleep(rest).await,
            }
        }
    });
}
