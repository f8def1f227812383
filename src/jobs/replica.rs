//! The debounced sync after new backups: each finished upload wakes this task, which waits
//! until no new backup came for the shortest `debounce_secs` of the replicas, then runs
//! `replica_job` through the scheduler (so it never runs beside a scheduled run).

use std::sync::Arc;

use crate::jobs::scheduler::Scheduler;
use crate::model::job::Scheduled;
use crate::service::Service;

/// Starts the task when replicas are configured; called once at start-up.
pub fn spawn_debounced_sync(service: Arc<Service>, scheduler: Arc<Scheduler>) {
    let Some(debounce) = service.config.replicas.iter().map(|r| r.debounce).min() else { return };
    tokio::spawn(async move {
        loop {
            service.replica_kick.notified().await;
            // Every new backup within the window starts the window again.
            while tokio::time::timeout(debounce, service.replica_kick.notified()).await.is_ok() {}
            match scheduler.run(Scheduled::Replica.name()).await {
                Ok(outcome) => tracing::debug!("replica_job after new backups: {outcome}"),
                Err(e) => tracing::error!("replica_job after new backups failed: {e}"),
            }
        }
    });
}
