//! The SQLite index: an r2d2 pool with the pragmas every connection needs.
//!
//! Connections are blocking; callers run on a blocking thread (`web::block`, `spawn_blocking`).
//! WAL with `synchronous=FULL` so that an acknowledged commit survives a power loss.

pub mod audit;
pub mod backups;
pub mod changes;
pub mod health;
pub mod held;
pub mod jobs;
pub mod journal;
pub mod keys;
mod migrate;
pub mod push;
pub mod replica;
pub mod seq;
pub mod targets;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::store::perms;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;
pub type Conn = r2d2::PooledConnection<SqliteConnectionManager>;

/// The suffixes of the files SQLite keeps beside a database in WAL mode.
pub const COMPANIONS: [&str; 2] = ["-wal", "-shm"];

/// A database file and its companions: what moves, or goes, together.
pub fn files_of(path: &Path) -> [PathBuf; 3] {
    [path.to_path_buf(), with_suffix(path, COMPANIONS[0]), with_suffix(path, COMPANIONS[1])]
}

/// `path` with `suffix` added to its file name (`bakch.sqlite3` → `bakch.sqlite3-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Opens an existing database to read only: no migration, nothing created if it is missing.
pub fn open_read_only(path: &Path) -> Result<Connection> {
    use rusqlite::OpenFlags;
    if !path.exists() {
        return Err(Error::not_found(format!("there is no database at {}", path.display())));
    }
    Ok(Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?)
}

/// Opens (creating if needed) the database at `path` and applies pending migrations. The
/// server's connections report what each commit changes (`changes`), for its kept answers.
pub fn open(path: &Path, max_size: u32) -> Result<Pool> {
    open_pool(path, max_size, true)
}

/// As [`open`], for a program that keeps no answers (`rebuild-db` writes millions of rows, and
/// would pay a trigger per row for nothing).
pub fn open_unwatched(path: &Path, max_size: u32) -> Result<Pool> {
    open_pool(path, max_size, false)
}

fn open_pool(path: &Path, max_size: u32, watched: bool) -> Result<Pool> {
    make_private(path)?;
    check_readable(path)?;
    // Migrated first on a connection of its own: each pooled connection's watch triggers are
    // made from the tables as the migrations leave them.
    {
        let mut conn = Connection::open(path)?;
        prepare(&conn)?;
        // Durability and the read caches (the WAL hook) both rest on WAL mode, which some
        // filesystems (network shares) cannot give.
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::internal(format!(
                "the database {} cannot use write-ahead logging (journal mode is '{mode}'); put the data folder on a local filesystem",
                path.display()
            )));
        }
        migrate::run(&mut conn)?;
    }
    let manager = SqliteConnectionManager::file(path).with_init(move |c: &mut Connection| {
        prepare(c)?;
        if watched {
            changes::watch(c)?;
        }
        Ok(())
    });
    r2d2::Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(30))
        .build(manager)
        .map_err(|e| Error::internal(format!("cannot open database {}: {e}", path.display())))
}

/// The settings every connection needs.
fn prepare(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;",
    )?;
    // Room for every statement the hot paths prepare, so none is parsed again per request.
    c.set_prepared_statement_cache_capacity(64);
    c.wal_hook(Some(after_commit));
    Ok(())
}

/// Creates the database file owner-only, or narrows it and its WAL files: SQLite gives the
/// `-wal` and `-shm` files it creates the mode of the database file.
fn make_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(perms::PRIVATE_FILE)
        .open(path)
        .map_err(|e| Error::io("create database", path, e))?;
    for file in files_of(path) {
        match std::fs::metadata(&file) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => perms::set_mode(&file, perms::PRIVATE_FILE)?,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("inspect", &file, e)),
        }
    }
    Ok(())
}

/// Reads the schema once over a plain connection, so that a file which is not (or no longer) a
/// database stops start-up with one message, instead of the pool retrying and logging until its
/// timeout.
fn check_readable(path: &Path) -> Result<()> {
    let read = Connection::open(path).and_then(|c| c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())));
    match read {
        Ok(()) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(f, detail))
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) =>
        {
            let said = detail.unwrap_or_else(|| f.to_string());
            Err(Error::internal(format!(
                "the database file {} cannot be read (SQLite says: {said}). Run `bakch rebuild-db` to build a \
                 new one from the manifests in the data folder (the damaged file is kept beside it), or restore \
                 it (with its -wal file, if any) from a copy",
                path.display()
            )))
        }
        Err(e) => Err(Error::internal(format!("cannot open database {}: {e}", path.display()))),
    }
}

/// Commits to the database so far, in this process. Read caches tag what they computed with the
/// count read before computing (see [`changes`] for which commits change what).
pub fn commits() -> u64 {
    changes::mark()
}

/// Wakes one waiter (the health monitor) after a commit; a commit while nobody waits leaves a
/// permit, so none is missed.
pub fn committed() -> &'static tokio::sync::Notify {
    &COMMITTED
}

static COMMITTED: std::sync::LazyLock<tokio::sync::Notify> = std::sync::LazyLock::new(tokio::sync::Notify::new);

/// SQLite calls this after each commit, once the write lock is released and the new data is
/// visible to every connection (so a reader that sees the new count also sees the new data).
fn after_commit(wal: &rusqlite::hooks::Wal, pages: std::os::raw::c_int) -> rusqlite::Result<()> {
    changes::publish();
    COMMITTED.notify_one();
    // Installing a WAL hook replaces SQLite's own auto-checkpoint, so do what it did: a passive
    // checkpoint once the log passes 1,000 pages. A busy checkpoint is retried at the next commit.
    if pages >= 1000 {
        let _ = wal.checkpoint();
    }
    Ok(())
}

/// Runs `f` inside an IMMEDIATE transaction (takes the write lock up front, so no upgrade
/// deadlock between two writers) and commits when it returns Ok.
pub fn with_tx<T>(conn: &mut Connection, f: impl FnOnce(&rusqlite::Transaction) -> Result<T>) -> Result<T> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}
