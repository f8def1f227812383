//! `/metrics`: the Prometheus (OpenMetrics) text, written by the `prometheus-client` crate.
//! Counters that live as long as the process (uploads, HTTP requests) are kept in
//! [`Counters`]; everything else is read from the database and the disk at each scrape, so a
//! scrape always shows what `/api` would.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::Service;
use crate::db;
use crate::error::{Error, Result};
use crate::model::health::HealthState;
use crate::model::job::Scheduled;

type Labels = Vec<(String, String)>;

/// What is counted while bakch runs (shared clones: the registry of a scrape holds the same
/// values).
#[derive(Clone)]
pub struct Counters {
    upload_bytes: Counter,
    upload_seconds: Histogram,
    http: Family<Labels, Counter>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            upload_bytes: Counter::default(),
            // 0.1 s to about 27 minutes.
            upload_seconds: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.1, 4.0, 8)),
            http: Family::default(),
        }
    }
}

impl Counters {
    /// A backup was completed from an upload: its bytes, and the seconds from acceptance.
    pub fn upload_done(&self, bytes: i64, seconds: f64) {
        self.upload_bytes.inc_by(bytes.max(0) as u64);
        self.upload_seconds.observe(seconds.max(0.0));
    }

    /// One HTTP request answered; `route` is the matched pattern (not the path, so ids do not
    /// make a series each).
    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        let labels = vec![
            ("route".to_string(), route.to_string()),
            ("method".to_string(), method.to_string()),
            ("status".to_string(), status.to_string()),
        ];
        self.http.get_or_create(&labels).inc();
    }
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

fn float_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>> {
    let family = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    registry.register(name, help, family.clone());
    family
}

impl Service {
    /// Per replica: the last successful sync, what waits to be sent, failures, bucket size.
    fn replica_metrics(&self, r: &mut Registry) -> Result<()> {
        let last = float_family(
            r,
            "bakch_replica_last_success_timestamp_seconds",
            "Unix time of the replica's last successful sync",
        );
        let pending = gauge_family(r, "bakch_replica_pending_bytes", "Bytes the replica's last sync had still to send");
        let pending_objects =
            gauge_family(r, "bakch_replica_pending_objects", "Objects the replica's last sync had still to send");
        let errors = gauge_family(r, "bakch_replica_errors", "Failed syncs and verifications of the replica, in total");
        let failing =
            gauge_family(r, "bakch_replica_failing", "1 while the replica's last sync or verification failed");
        let bytes =
            gauge_family(r, "bakch_replica_bytes", "Encrypted bytes in the replica's bucket after its last sync");
        for s in self.replica_states()? {
            let l = vec![("replica".to_string(), s.name.clone())];
            if let Some(at) = s.last_success.as_deref().and_then(crate::time::parse_iso) {
                last.get_or_create(&l).set(at.timestamp_millis() as f64 / 1000.0);
            }
            pending.get_or_create(&l).set(s.pending_bytes);
            pending_objects.get_or_create(&l).set(s.pending_objects);
            errors.get_or_create(&l).set(s.errors);
            failing.get_or_create(&l).set(i64::from(s.failing));
            bytes.get_or_create(&l).set(s.bytes);
        }
        Ok(())
    }
}

fn target_labels(id: &str, name: &str) -> Labels {
    vec![("target_id".into(), id.into()), ("target_name".into(), name.into())]
}

impl Service {
    /// The text of one scrape.
    pub fn metrics_text(&self) -> Result<String> {
        let mut r = Registry::default();
        let health = gauge_family(
            &mut r,
            "bakch_target_health",
            "1 for the state each target is in (ok, late, failed, damaged, never, unmonitored), 0 for the others",
        );
        let last_success = float_family(
            &mut r,
            "bakch_target_last_success_timestamp_seconds",
            "Unix time the newest finished backup of the target was received",
        );
        let backups = gauge_family(&mut r, "bakch_target_backups", "Active (not recycled) backups of the target");
        let logical = gauge_family(&mut r, "bakch_target_logical_bytes", "Bytes of the files of the target's backups");
        let disk = gauge_family(&mut r, "bakch_target_disk_bytes", "Bytes the target's backups really take on disk");
        let c = self.conn()?;
        let figures = db::backups::target_figures(&c)?;
        for t in db::targets::all(&c)? {
            let h = self.target_health(&t)?;
            for state in HealthState::ALL {
                let mut l = target_labels(&t.id, &t.name);
                l.push(("state".into(), state.as_str().into()));
                health.get_or_create(&l).set(i64::from(state == h.state));
            }
            let l = target_labels(&t.id, &t.name);
            if let Some(at) = h.last_success {
                last_success.get_or_create(&l).set(at.timestamp_millis() as f64 / 1000.0);
            }
            backups.get_or_create(&l).set(figures.get(&t.id).map_or(0, |f| f.active));
            let usage = self.target_usage(&t)?;
            logical.get_or_create(&l).set(usage.logical);
            disk.get_or_create(&l).set(usage.disk_used);
        }
        let stats = self.stats()?;
        let store = Gauge::<i64>::default();
        store.set(stats.disk_used);
        r.register("bakch_store_disk_bytes", "Bytes the store really holds for all backups", store);
        let saved = Gauge::<i64>::default();
        saved.set(stats.dedup_saved);
        r.register("bakch_dedup_saved_bytes", "Logical bytes of all backups minus what they take on disk", saved);
        let (free, _) = self.store.disk_space()?;
        let free_g = Gauge::<i64>::default();
        free_g.set(free.min(i64::MAX as u64) as i64);
        r.register("bakch_data_disk_free_bytes", "Free bytes on the data folder's disk", free_g);
        let jobs = gauge_family(&mut r, "bakch_jobs", "Queued jobs (uploads, notification deliveries) by status");
        for status in ["IDLE", "RUNNING", "FINISHED", "ERROR"] {
            jobs.get_or_create(&vec![("status".into(), status.into())]).set(0);
        }
        for (status, n) in db::health::job_counts(&c)? {
            jobs.get_or_create(&vec![("status".into(), status)]).set(n);
        }
        let scheduled = float_family(
            &mut r,
            "bakch_scheduled_job_last_success_timestamp_seconds",
            "Unix time the scheduled job last ended without an error",
        );
        for job in Scheduled::ALL {
            if let Some(at) = db::jobs::last_success(&c, job.name())?.as_deref().and_then(crate::time::parse_iso) {
                scheduled
                    .get_or_create(&vec![("job".into(), job.name().into())])
                    .set(at.timestamp_millis() as f64 / 1000.0);
            }
        }
        drop(c);
        self.replica_metrics(&mut r)?;
        r.register(
            "bakch_upload_bytes",
            "Bytes of backups completed from uploads since bakch started",
            self.metrics.upload_bytes.clone(),
        );
        r.register(
            "bakch_upload_duration_seconds",
            "Seconds from an upload's acceptance to its backup's completion",
            self.metrics.upload_seconds.clone(),
        );
        r.register(
            "bakch_http_requests",
            "HTTP requests answered since bakch started, by route pattern, method and status",
            self.metrics.http.clone(),
        );
        let mut out = String::new();
        encode(&mut out, &r).map_err(|e| Error::internal(format!("the metrics cannot be written: {e}")))?;
        Ok(out)
    }
}
