//! The audit trail: recording an entry, reading a page of them, and `audit_purge_job`, which
//! drops entries older than `[audit] keep_days`. `api/` and `web/` record from their one
//! middleware each; the CLI records with [`record_offline`].

use std::path::Path;

use super::Service;
use crate::db;
use crate::error::{Error, Result};
use crate::model::audit::{Entry, Query, Recorded};
use crate::time;

/// The most entries one page holds.
pub const MAX_PAGE: usize = 500;

impl Service {
    pub fn audit(&self, entry: &Entry) -> Result<()> {
        db::audit::insert(&*self.conn()?, &time::iso(time::now()), entry)
    }

    /// Records, logging (never failing the request) when the database refuses the write.
    pub fn audit_logged(&self, entry: &Entry) {
        if let Err(e) = self.audit(entry) {
            tracing::error!("cannot record {} by {} in the audit trail: {e}", entry.action.as_str(), entry.who.name);
        }
    }

    pub fn audit_entries(&self, query: &Query) -> Result<Vec<Recorded>> {
        if !(1..=MAX_PAGE).contains(&query.limit) {
            return Err(Error::bad(format!("limit must be between 1 and {MAX_PAGE}")));
        }
        db::audit::list(&*self.conn()?, query)
    }

    /// `audit_purge_job`: removes what is older than the configured time.
    pub fn purge_audit(&self) -> Result<String> {
        let cutoff = time::now() - chrono::Duration::days(i64::from(self.config.audit_keep_days));
        let removed = db::audit::purge(&*self.conn()?, &time::iso(cutoff))?;
        if removed > 0 {
            tracing::info!(
                "audit_purge_job: removed {removed} entries older than {} days",
                self.config.audit_keep_days
            );
        }
        Ok(format!("removed {removed}"))
    }
}

/// Records a local command's change beside a running server (SQLite allows the second writer).
/// A data folder without a database yet has nothing to audit against, so nothing is written.
pub fn record_offline(db_path: &Path, entry: &Entry) -> Result<()> {
    use rusqlite::OpenFlags;
    if !db_path.exists() {
        return Ok(());
    }
    let c = rusqlite::Connection::open_with_flags(db_path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    let has_table: i64 =
        c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit'", [], |r| r.get(0))?;
    if has_table == 0 {
        return Ok(());
    }
    db::audit::insert(&c, &time::iso(time::now()), entry)
}
