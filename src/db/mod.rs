//! The SQLite index: an r2d2 pool with the pragmas every connection needs.
//!
//! Connections are blocking; callers run on a blocking thread (`web::block`, `spawn_blocking`).
//! WAL with `synchronous=FULL` so that an acknowledged commit survives a power loss.

pub mod backups;
pub mod jobs;
pub mod journal;
mod migrate;
pub mod seq;
pub mod targets;

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::error::{Error, Result};

pub type Pool = r2d2::Pool<SqliteConnectionManager>;
pub type Conn = r2d2::PooledConnection<SqliteConnectionManager>;

/// Opens (creating if needed) the database at `path` and applies pending migrations.
pub fn open(path: &Path, max_size: u32) -> Result<Pool> {
    let manager = SqliteConnectionManager::file(path).with_init(|c: &mut Connection| {
        c.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 10000;",
        )
    });
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(30))
        .build(manager)
        .map_err(|e| Error::internal(format!("cannot open database {}: {e}", path.display())))?;
    let mut conn = pool.get()?;
    migrate::run(&mut conn)?;
    Ok(pool)
}

/// Runs `f` inside an IMMEDIATE transaction (takes the write lock up front, so no upgrade
/// deadlock between two writers) and commits when it returns Ok.
pub fn with_tx<T>(conn: &mut Connection, f: impl FnOnce(&rusqlite::Transaction) -> Result<T>) -> Result<T> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}
