//! Open sequential uploads and the files each has announced.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::time;

/// One announced file; `blob` is set once it arrived.
#[derive(Debug, Clone)]
pub struct SeqFile {
    pub path: String,
    pub name: String,
    pub blob: Option<String>,
    pub size: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct SeqUpload {
    pub manual: bool,
    pub created_at: String,
    pub updated_at: String,
    pub files: Vec<SeqFile>,
}

pub fn insert(c: &Connection, target_id: &str, manual: bool, files: &[(String, String)]) -> Result<()> {
    let now = time::iso(time::now());
    c.execute(
        "INSERT INTO seq_uploads (target_id, manual, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        params![target_id, manual, now],
    )?;
    let mut stmt =
        c.prepare_cached("INSERT INTO seq_files (target_id, position, path, name) VALUES (?1, ?2, ?3, ?4)")?;
    for (i, (path, name)) in files.iter().enumerate() {
        stmt.execute(params![target_id, i as i64, path, name])?;
    }
    Ok(())
}

pub fn find(c: &Connection, target_id: &str) -> Result<Option<SeqUpload>> {
    let head = c
        .query_row("SELECT manual, created_at, updated_at FROM seq_uploads WHERE target_id = ?1", [target_id], |r| {
            Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })
        .optional()?;
    let Some((manual, created_at, updated_at)) = head else {
        return Ok(None);
    };
    let mut stmt =
        c.prepare_cached("SELECT path, name, blob, size FROM seq_files WHERE target_id = ?1 ORDER BY position")?;
    let files = stmt
        .query_map([target_id], |r| Ok(SeqFile { path: r.get(0)?, name: r.get(1)?, blob: r.get(2)?, size: r.get(3)? }))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(SeqUpload { manual, created_at, updated_at, files }))
}

/// Records that a file arrived, and that the upload is alive.
pub fn mark_uploaded(c: &Connection, target_id: &str, path: &str, name: &str, blob: &str, size: i64) -> Result<()> {
    c.execute(
        "UPDATE seq_files SET blob = ?4, size = ?5 WHERE target_id = ?1 AND path = ?2 AND name = ?3",
        params![target_id, path, name, blob, size],
    )?;
    c.execute(
        "UPDATE seq_uploads SET updated_at = ?2 WHERE target_id = ?1",
        params![target_id, time::iso(time::now())],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, target_id: &str) -> Result<bool> {
    Ok(c.execute("DELETE FROM seq_uploads WHERE target_id = ?1", [target_id])? > 0)
}

/// Targets whose open upload has been idle since before `before` (ISO 8601).
pub fn idle_since(c: &Connection, before: &str) -> Result<Vec<String>> {
    let mut stmt = c.prepare("SELECT target_id FROM seq_uploads WHERE updated_at < ?1")?;
    let rows = stmt.query_map([before], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// An open sequential upload, as the jobs page lists it.
#[derive(Debug, Clone)]
pub struct OpenSeq {
    pub target_id: String,
    pub target_name: String,
    pub created_at: String,
    pub updated_at: String,
    pub files: i64,
    pub uploaded: i64,
}

/// Every open sequential upload, oldest first.
pub fn open_uploads(c: &Connection) -> Result<Vec<OpenSeq>> {
    let mut stmt = c.prepare(
        "SELECT s.target_id, t.name, s.created_at, s.updated_at,
                (SELECT COUNT(*) FROM seq_files f WHERE f.target_id = s.target_id),
                (SELECT COUNT(*) FROM seq_files f WHERE f.target_id = s.target_id AND f.blob IS NOT NULL)
         FROM seq_uploads s JOIN targets t ON t.id = s.target_id ORDER BY s.created_at",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(OpenSeq {
            target_id: r.get(0)?,
            target_name: r.get(1)?,
            created_at: r.get(2)?,
            updated_at: r.get(3)?,
            files: r.get(4)?,
            uploaded: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
