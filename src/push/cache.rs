//! The client's cache: (path, size, modification time, inode) → blake3, so a file whose metadata
//! did not change is not read again. One SQLite file per (server, target, folders) under the
//! user's cache folder; disposable (deleting it only costs one full read of the tree).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

/// What the cache knew of a file.
pub struct Cached {
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub hash: String,
}

pub struct Cache {
    conn: Connection,
    /// This run's number: rows not seen by it are files gone since.
    run: i64,
    /// A dry run learns nothing into the cache.
    pub read_only: bool,
}

/// `$XDG_CACHE_HOME/bakch`, else `~/.cache/bakch`.
pub fn default_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("bakch")),
        None => std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache/bakch")),
    }
}

impl Cache {
    /// Opens (creating) the cache named by `identity` in `dir`.
    pub fn open(dir: &Path, identity: &str) -> Result<Cache, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the cache folder {}: {e}", dir.display()))?;
        let name = blake3::hash(identity.as_bytes()).to_hex();
        let path = dir.join(format!("push-{}.sqlite", &name[..16]));
        let open = |p: &Path| -> rusqlite::Result<Connection> {
            let conn = Connection::open(p)?;
            // Disposable: speed over durability; a torn cache is deleted and rebuilt.
            conn.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;
                 CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL,
                     mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, hash TEXT NOT NULL, run INTEGER NOT NULL)
                     WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
            )?;
            Ok(conn)
        };
        let conn = match open(&path) {
            Ok(c) => c,
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                open(&path).map_err(|e| format!("cannot open the cache {}: {e}", path.display()))?
            }
        };
        let run = conn
            .query_row("SELECT COALESCE(MAX(run), 0) + 1 FROM files", [], |r| r.get(0))
            .map_err(|e| format!("cannot read the cache {}: {e}", path.display()))?;
        conn.execute_batch("BEGIN").map_err(|e| e.to_string())?;
        Ok(Cache { conn, run, read_only: false })
    }

    pub fn get(&self, path: &str) -> Option<Cached> {
        let mut stmt =
            self.conn.prepare_cached("SELECT size, mtime_ns, inode, hash FROM files WHERE path = ?1").ok()?;
        stmt.query_row([path], |r| {
            Ok(Cached {
                size: r.get::<_, i64>(0)? as u64,
                mtime_ns: r.get(1)?,
                inode: r.get::<_, i64>(2)? as u64,
                hash: r.get(3)?,
            })
        })
        .optional()
        .ok()
        .flatten()
    }

    pub fn put(&self, path: &str, size: u64, mtime_ns: i64, inode: u64, hash: &str) {
        if self.read_only {
            return;
        }
        if let Ok(mut stmt) = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, inode, hash, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        ) {
            let _ = stmt.execute(params![path, size as i64, mtime_ns, inode as i64, hash, self.run]);
        }
    }

    /// Marks a file seen by this run without changing what is known of it.
    pub fn seen(&self, path: &str) {
        if self.read_only {
            return;
        }
        if let Ok(mut stmt) = self.conn.prepare_cached("UPDATE files SET run = ?2 WHERE path = ?1") {
            let _ = stmt.execute(params![path, self.run]);
        }
    }

    /// Writes what this run learned so far (after each page: a cut-off run keeps its hashes).
    pub fn checkpoint(&self) {
        let _ = self.conn.execute_batch("COMMIT; BEGIN");
    }

    /// Forgets files this run did not see; returns how many.
    pub fn forget_unseen(&self) -> usize {
        self.conn.execute("DELETE FROM files WHERE run <> ?1", [self.run]).unwrap_or(0)
    }

    pub fn meta(&self, key: &str) -> Option<String> {
        self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().ok().flatten()
    }

    pub fn set_meta(&self, key: &str, value: Option<&str>) {
        let _ = match value {
            Some(v) => self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, v]),
            None => self.conn.execute("DELETE FROM meta WHERE key = ?1", [key]),
        };
        self.checkpoint();
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch("COMMIT");
    }
}
