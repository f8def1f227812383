//! Open pushes (`bakch push`), their file lists, and the blobs pushes received per target.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::model::backup::PushFile;
use crate::time;

/// An open push.
#[derive(Debug, Clone)]
pub struct PushSession {
    pub id: String,
    pub target_id: String,
    pub manual: bool,
    pub blobs_received: i64,
    pub bytes_received: i64,
}

pub fn insert(c: &Connection, id: &str, target_id: &str, manual: bool) -> Result<()> {
    let now = time::iso(time::now());
    c.execute(
        "INSERT INTO push_sessions (id, target_id, manual, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![id, target_id, manual, now],
    )?;
    Ok(())
}

pub fn find(c: &Connection, id: &str) -> Result<Option<PushSession>> {
    Ok(c.query_row(
        "SELECT id, target_id, manual, blobs_received, bytes_received FROM push_sessions WHERE id = ?1",
        [id],
        |r| {
            Ok(PushSession {
                id: r.get(0)?,
                target_id: r.get(1)?,
                manual: r.get(2)?,
                blobs_received: r.get(3)?,
                bytes_received: r.get(4)?,
            })
        },
    )
    .optional()?)
}

/// Adds (or replaces, for a file read again because it changed) entries of the list.
pub fn put_files(c: &Connection, session: &str, files: &[PushFile]) -> Result<()> {
    let mut stmt = c.prepare_cached(
        "INSERT OR REPLACE INTO push_files (session_id, path, blob, size, mode, mtime) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for f in files {
        stmt.execute(params![session, f.path, f.blob, f.size, f.mode, f.mtime])?;
    }
    touch(c, session)
}

/// Takes entries out of the list (files that vanished or kept changing while read).
pub fn remove_files(c: &Connection, session: &str, paths: &[String]) -> Result<()> {
    let mut stmt = c.prepare_cached("DELETE FROM push_files WHERE session_id = ?1 AND path = ?2")?;
    for p in paths {
        stmt.execute(params![session, p])?;
    }
    Ok(())
}

/// The whole list, by path.
pub fn files(c: &Connection, session: &str) -> Result<Vec<PushFile>> {
    let mut stmt =
        c.prepare_cached("SELECT path, blob, size, mode, mtime FROM push_files WHERE session_id = ?1 ORDER BY path")?;
    let rows = stmt.query_map([session], |r| {
        Ok(PushFile { path: r.get(0)?, blob: r.get(1)?, size: r.get(2)?, mode: r.get(3)?, mtime: r.get(4)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The size the list gives `blob`, if it lists it.
pub fn listed_size(c: &Connection, session: &str, blob: &str) -> Result<Option<i64>> {
    // Asked once per blob of a pack: prepared once.
    let mut stmt = c.prepare_cached("SELECT size FROM push_files WHERE session_id = ?1 AND blob = ?2 LIMIT 1")?;
    Ok(stmt.query_row(params![session, blob], |r| r.get(0)).optional()?)
}

/// Whether the database ties `blob` to content the caller may know of: a backup (any state)
/// of one of its targets, or a push into one of them. `Everywhere` is answered by the store.
pub fn known_in(c: &Connection, targets: &[String], blob: &str) -> Result<bool> {
    let scope = serde_json::to_string(targets).unwrap_or_else(|_| "[]".into());
    let mut stmt = c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM backup_files f JOIN backups b ON b.id = f.backup_id
                        WHERE f.blob = ?1 AND b.target_id IN (SELECT value FROM json_each(?2)))
             OR EXISTS (SELECT 1 FROM push_blobs WHERE blob = ?1 AND target_id IN (SELECT value FROM json_each(?2)))",
    )?;
    Ok(stmt.query_row(params![blob, scope], |r| r.get(0))?)
}

/// Records blobs a push stored, and what crossed the wire for them.
pub fn received(c: &Connection, session: &PushSession, blobs: &[(String, u64)]) -> Result<()> {
    let now = time::iso(time::now());
    let mut stmt = c.prepare_cached(
        "INSERT INTO push_blobs (target_id, blob, received_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (target_id, blob) DO UPDATE SET received_at = excluded.received_at",
    )?;
    for (blob, _) in blobs {
        stmt.execute(params![session.target_id, blob, now])?;
    }
    let bytes: u64 = blobs.iter().map(|b| b.1).sum();
    c.execute(
        "UPDATE push_sessions SET blobs_received = blobs_received + ?2, bytes_received = bytes_received + ?3,
                updated_at = ?4 WHERE id = ?1",
        params![session.id, blobs.len() as i64, bytes as i64, now],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, id: &str) -> Result<bool> {
    Ok(c.execute("DELETE FROM push_sessions WHERE id = ?1", [id])? > 0)
}

fn touch(c: &Connection, id: &str) -> Result<()> {
    c.execute("UPDATE push_sessions SET updated_at = ?2 WHERE id = ?1", params![id, time::iso(time::now())])?;
    Ok(())
}

/// Closes pushes idle since before `idle_before`, and forgets blobs received before
/// `received_before`; returns how many pushes closed.
pub fn purge(c: &Connection, idle_before: &str, received_before: &str) -> Result<usize> {
    let n = c.execute("DELETE FROM push_sessions WHERE updated_at < ?1", [idle_before])?;
    c.execute("DELETE FROM push_blobs WHERE received_at < ?1", [received_before])?;
    Ok(n)
}
