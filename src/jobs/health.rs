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

/// Starts the monitor; called once at start-up.
pub fn spawn_monitor(service: Arc<Service>) {
    tokio::spawn(async move {
        loop {
            let svc = service.clone();
            let wait = match blocking(move || svc.check_health()).await {
                Ok(next) => (next - crate::time::now()).to_std().unwrap_or(Duration::ZERO),
                Err(e) => {
                    tracing::error!("health check failed: {e}");
                    AFTER_ERROR
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = service.committed().notified() => tokio::time::sleep(SETTLE).await,
            }
        }
    });
}
