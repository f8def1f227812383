//! Totals for `/api/stats`.

use serde::Serialize;

use super::Service;
use crate::db;
use crate::error::Result;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Stats {
    #[schema(value_type = String)]
    pub program_version: &'static str,
    pub total_target_size: i64,
    pub total_recycle_bin_size: i64,
    pub total_targets: i64,
    /// Every backup, recycled ones included.
    pub total_backups: i64,
    /// The backups in the recycle bin (counted in `total_backups` too).
    pub total_recycled_backups: i64,
    /// Bytes really used on disk: each distinct content once, plus copies where links are impossible.
    pub disk_used: i64,
    /// Logical size of all backups minus `disk_used`.
    pub dedup_saved: i64,
    /// Deleted backups whose content is still held (see `GET /api/held`); not in `total_backups`.
    pub held_backups: i64,
    /// Bytes only held backups keep (content a listed backup shares is not counted); not in `disk_used`.
    pub held_bytes: i64,
}

impl Service {
    pub fn stats(&self) -> Result<Stats> {
        self.read_cache.stats(|| self.compute_stats())
    }

    fn compute_stats(&self) -> Result<Stats> {
        let c = self.conn()?;
        let t = db::backups::totals(&c)?;
        // Each distinct content once in the store, plus the copies in folders that cannot link to it.
        let mut used = db::backups::distinct_blob_bytes(&c)?;
        // On the connection already held: taking a second one per target deadlocked once as
        // many requests as the pool has connections each held one (found by
        // benches/e2e/api_read.rs at 64 connections). Only targets that copy need their own query.
        for target in db::targets::all(&c)? {
            if !self.links_to_store(&target) {
                used += db::backups::target_usage(&c, &target.id)?.0;
            }
        }
        let held = db::held::usage(&c)?;
        Ok(Stats {
            program_version: env!("CARGO_PKG_VERSION"),
            total_target_size: t.active_bytes,
            total_recycle_bin_size: t.recycled_bytes,
            total_targets: db::targets::count(&c)?,
            // A recycled backup is still a backup (Backup-chan's rule); the bin's are a subset.
            total_backups: t.active_count + t.recycled_count,
            total_recycled_backups: t.recycled_count,
            disk_used: used,
            dedup_saved: (t.active_bytes + t.recycled_bytes - used).max(0),
            held_backups: held.held_backups,
            held_bytes: held.held_bytes,
        })
    }
}
