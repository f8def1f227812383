//! Scheduled jobs: fired by tokio-cron-scheduler on their cron schedules (UTC, seconds first),
//! forcible through the API, never two runs of one job at once. Each run's time, outcome and
//! duration are kept in the database; a run missed while bakch was down catches up at start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::parse_cron;
use crate::error::{Error, Result};
use crate::http::block as blocking;
use crate::model::job::Scheduled;
use crate::service::Service;
use crate::service::jobs::LastRun;
use crate::time;

/// One scheduled job.
pub struct Entry {
    pub job: Scheduled,
    pub cron: croner::Cron,
    /// Held while the job runs, so a forced run waits for a scheduled one and vice versa.
    running: tokio::sync::Mutex<()>,
}

/// All scheduled jobs.
pub struct Scheduler {
    service: Arc<Service>,
    entries: BTreeMap<&'static str, Entry>,
    /// The cron timer; kept here so it lives as long as the scheduler.
    cron: std::sync::OnceLock<JobScheduler>,
}

/// What `/api/jobs` shows of a scheduled job.
pub struct Info {
    pub name: &'static str,
    pub display_name: &'static str,
    pub interval: i64,
    pub next_run: i64,
    pub last_run: LastRun,
}

impl Scheduler {
    /// Builds the entries from the config (already validated) and starts the cron timer.
    pub async fn start(service: Arc<Service>) -> Result<Arc<Scheduler>> {
        let mut entries = BTreeMap::new();
        for job in Scheduled::ALL {
            let cron_text = service
                .config
                .schedules
                .get(job.name())
                .ok_or_else(|| Error::internal(format!("no schedule for {}", job.name())))?;
            let cron = parse_cron(cron_text).map_err(Error::internal)?;
            entries.insert(job.name(), Entry { job, cron, running: tokio::sync::Mutex::new(()) });
        }
        let scheduler = Arc::new(Scheduler { service: service.clone(), entries, cron: std::sync::OnceLock::new() });
        let cron =
            JobScheduler::new().await.map_err(|e| Error::internal(format!("cannot start the scheduler: {e}")))?;
        for name in scheduler.entries.keys().copied() {
            let sched = Arc::downgrade(&scheduler);
            let cron_text = service.config.schedules[name].clone();
            let job = Job::new_async(cron_text.as_str(), move |_id, _lock| {
                let sched = sched.clone();
                Box::pin(async move {
                    if let Some(s) = sched.upgrade()
                        && let Err(e) = s.run(name).await
                    {
                        tracing::error!("{name} failed: {e}");
                    }
                })
            })
            .map_err(|e| Error::internal(format!("cannot schedule {name}: {e}")))?;
            cron.add(job).await.map_err(|e| Error::internal(format!("cannot schedule {name}: {e}")))?;
        }
        cron.start().await.map_err(|e| Error::internal(format!("cannot start the scheduler: {e}")))?;
        let _ = scheduler.cron.set(cron);
        scheduler.catch_up();
        Ok(scheduler)
    }

    /// Runs once now every job whose last recorded run missed a scheduled time.
    fn catch_up(self: &Arc<Self>) {
        for entry in self.entries.values() {
            let name = entry.job.name();
            let last = match self.service.last_run(entry.job) {
                Ok((Some(at), _, _)) => time::parse_iso(&at),
                _ => None,
            };
            let Some(last) = last else { continue };
            let missed = entry.cron.find_next_occurrence(&last, false).map(|next| next < time::now()).unwrap_or(false);
            if missed {
                tracing::info!("{name}: a scheduled run was missed while bakch was down; running it now");
                let me = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.run(name).await {
                        tracing::error!("{name} failed: {e}");
                    }
                });
            }
        }
    }

    /// Runs a scheduled job now (waiting for a run in progress to end first); returns its outcome.
    pub async fn run(&self, name: &str) -> Result<String> {
        let entry = Scheduled::parse(name)
            .and_then(|job| self.entries.get(job.name()))
            .ok_or_else(|| Error::not_found(format!("No scheduled job named '{name}'")))?;
        let _guard = entry.running.lock().await;
        let started = Instant::now();
        let svc = self.service.clone();
        let job = entry.job;
        let result = blocking(move || svc.run_scheduled(job)).await;
        let ms = started.elapsed().as_millis() as i64;
        let outcome = match &result {
            Ok(o) => o.clone(),
            Err(e) => format!("error: {e}"),
        };
        let svc = self.service.clone();
        let recorded = outcome.clone();
        blocking(move || svc.record_run(job, &recorded, ms)).await?;
        result
    }

    /// Every scheduled job with its interval, next run and last run.
    pub fn list(&self) -> Result<Vec<Info>> {
        let now = time::now();
        self.entries
            .values()
            .map(|e| {
                let next = next_after(&e.cron, now);
                let after = next_after(&e.cron, next);
                Ok(Info {
                    name: e.job.name(),
                    display_name: e.job.title(),
                    interval: (after - next).num_seconds(),
                    next_run: next.timestamp(),
                    last_run: self.service.last_run(e.job)?,
                })
            })
            .collect()
    }
}

fn next_after(cron: &croner::Cron, at: DateTime<Utc>) -> DateTime<Utc> {
    cron.find_next_occurrence(&at, false).unwrap_or(at)
}
