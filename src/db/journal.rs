//! The file-operation journal (see migration 0002).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// One promised file operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsOp {
    /// Move a placed backup from `path` to `dest` (rebuilt from its blobs if `path` is gone);
    /// `ident` is what the move puts at `dest` (see [`crate::store::place::identity`]), recorded
    /// just before it does.
    Move { path: String, dest: String, backup_id: String, single: bool, ident: Option<String> },
    /// Remove a backup's file or folder, if it is still what bakch placed there: `ident` (see
    /// [`crate::store::place::identity`]) when known; a backup from before identities were kept has none.
    Remove { path: String, ident: Option<String> },
    /// Make a backup's manifest match its row: rewrite it, or remove it when the row is gone.
    Manifest { target_id: String, backup_id: String },
    /// Make a target's definition file match its row: rewrite it, or remove it with the row.
    TargetFile { target_id: String },
    /// Make a held entry's file match its row: write it, or remove it when the row is gone.
    Held { backup_id: String },
}

/// Records an operation; returns its id.
pub fn add(c: &Connection, op: &FsOp) -> Result<i64> {
    match op {
        FsOp::Move { path, dest, backup_id, single, ident } => c.execute(
            "INSERT INTO fs_journal (op, path, dest, backup_id, single, ident) VALUES ('move', ?1, ?2, ?3, ?4, ?5)",
            params![path, dest, backup_id, single, ident],
        )?,
        FsOp::Remove { path, ident } => {
            c.execute("INSERT INTO fs_journal (op, path, ident) VALUES ('remove', ?1, ?2)", params![path, ident])?
        }
        FsOp::Manifest { target_id, backup_id } => c.execute(
            "INSERT INTO fs_journal (op, path, target_id, backup_id) VALUES ('manifest', '', ?1, ?2)",
            params![target_id, backup_id],
        )?,
        FsOp::TargetFile { target_id } => {
            c.execute("INSERT INTO fs_journal (op, path, target_id) VALUES ('target', '', ?1)", [target_id])?
        }
        FsOp::Held { backup_id } => {
            c.execute("INSERT INTO fs_journal (op, path, backup_id) VALUES ('held', '', ?1)", [backup_id])?
        }
    };
    Ok(c.last_insert_rowid())
}

/// Records what a move is about to put at its destination.
pub fn set_ident(c: &Connection, id: i64, ident: &str) -> Result<()> {
    c.execute("UPDATE fs_journal SET ident = ?2 WHERE id = ?1", params![id, ident])?;
    Ok(())
}

/// Points a move at another destination (its first one was taken by something not bakch's).
pub fn set_dest(c: &Connection, id: i64, dest: &str) -> Result<()> {
    c.execute("UPDATE fs_journal SET dest = ?2, ident = NULL WHERE id = ?1", params![id, dest])?;
    Ok(())
}

/// One operation, as it stands now (a move's destination and identity may have changed).
pub fn find(c: &Connection, id: i64) -> Result<Option<FsOp>> {
    let sql = format!("SELECT {COLUMNS} FROM fs_journal WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?.query_row([id], from_row).optional()?.map(|(_, op)| op))
}

pub fn done(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM fs_journal WHERE id = ?1", [id])?;
    Ok(())
}

/// Every operation not yet done, oldest first.
pub fn pending(c: &Connection) -> Result<Vec<(i64, FsOp)>> {
    let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM fs_journal ORDER BY id"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const COLUMNS: &str = "id, op, path, dest, backup_id, single, ident, target_id";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<(i64, FsOp)> {
    let id: i64 = r.get(0)?;
    let op: String = r.get(1)?;
    let path: String = r.get(2)?;
    let text = |i: usize| -> rusqlite::Result<String> { Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default()) };
    Ok((
        id,
        match op.as_str() {
            "move" => FsOp::Move { path, dest: text(3)?, backup_id: text(4)?, single: r.get(5)?, ident: r.get(6)? },
            "manifest" => FsOp::Manifest { target_id: text(7)?, backup_id: text(4)? },
            "target" => FsOp::TargetFile { target_id: text(7)? },
            "held" => FsOp::Held { backup_id: text(4)? },
            _ => FsOp::Remove { path, ident: r.get(6)? },
        },
    ))
}
