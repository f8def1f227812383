//! Embedded migrations, applied in order and tracked by `PRAGMA user_version`.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Every migration, in order; the index + 1 is the schema version it brings.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_fs_journal.sql"),
    include_str!("migrations/0003_listing_index.sql"),
    include_str!("migrations/0004_journal_identity.sql"),
    include_str!("migrations/0005_journal_manifests.sql"),
    include_str!("migrations/0006_key_use.sql"),
    include_str!("migrations/0007_audit.sql"),
    include_str!("migrations/0008_held.sql"),
    include_str!("migrations/0010_recycled_at_damage.sql"),
    include_str!("migrations/0011_health.sql"),
    include_str!("migrations/0012_retention.sql"),
    include_str!("migrations/0013_push.sql"),
    include_str!("migrations/0014_replica.sql"),
    include_str!("migrations/0017_target_blobs.sql"),
    include_str!("migrations/0018_finished_jobs.sql"),
];

pub fn run(conn: &mut Connection) -> Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        return Err(Error::internal(format!(
            "the database is at schema version {current}, newer than this bakch knows ({}); use a newer bakch",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!("database migrated to schema version {}", i + 1);
    }
    Ok(())
}
