//! The file-operation journal (see migration 0002).

use rusqlite::{Connection, params};

use crate::error::Result;

/// One promised file operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsOp {
    /// Move a placed backup from `path` to `dest` (rebuilt from its blobs if `path` is gone).
    Move { path: String, dest: String, backup_id: String, single: bool },
    /// Remove a file or folder.
    Remove { path: String },
}

/// Records an operation; returns its id.
pub fn add(c: &Connection, op: &FsOp) -> Result<i64> {
    match op {
        FsOp::Move { path, dest, backup_id, single } => c.execute(
            "INSERT INTO fs_journal (op, path, dest, backup_id, single) VALUES ('move', ?1, ?2, ?3, ?4)",
            params![path, dest, backup_id, single],
        )?,
        FsOp::Remove { path } => c.execute("INSERT INTO fs_journal (op, path) VALUES ('remove', ?1)", [path])?,
    };
    Ok(c.last_insert_rowid())
}

pub fn done(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM fs_journal WHERE id = ?1", [id])?;
    Ok(())
}

/// Every operation not yet done, oldest first.
pub fn pending(c: &Connection) -> Result<Vec<(i64, FsOp)>> {
    let mut stmt = c.prepare("SELECT id, op, path, dest, backup_id, single FROM fs_journal ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        let id: i64 = r.get(0)?;
        let op: String = r.get(1)?;
        let path: String = r.get(2)?;
        Ok((
            id,
            if op == "move" {
                FsOp::Move {
                    path,
                    dest: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    backup_id: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    single: r.get(5)?,
                }
            } else {
                FsOp::Remove { path }
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
