//! Held entries (see migration 0008 and [`crate::model::held`]).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::model::held::{HeldManifest, Reclaimable};

/// Records a held entry (replacing one of the same id) with the blobs it keeps.
pub fn insert(c: &Connection, m: &HeldManifest) -> Result<()> {
    let s = m.summary();
    c.execute("DELETE FROM held WHERE id = ?1", [&s.id])?;
    c.execute(
        "INSERT INTO held (id, target_id, target_name, name, created_at, size, deleted_at, hold_until, deleted_by,
                           deleted_session, deleted_from, manifest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            s.id,
            s.target_id,
            s.target_name,
            s.name,
            s.created_at,
            s.size,
            s.deleted_at,
            s.hold_until,
            s.deleted_by.who,
            s.deleted_by.session,
            s.deleted_by.from,
            m.to_json()?
        ],
    )?;
    let mut stmt = c.prepare_cached("INSERT OR IGNORE INTO held_blobs (held_id, blob, size) VALUES (?1, ?2, ?3)")?;
    for f in &m.backup.files {
        stmt.execute(params![s.id, f.blob, f.size])?;
    }
    Ok(())
}

pub fn find(c: &Connection, id: &str) -> Result<Option<HeldManifest>> {
    let text: Option<String> = c.query_row("SELECT manifest FROM held WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    text.map(|t| HeldManifest::parse(&t)).transpose()
}

/// Every held entry, most recently deleted first.
pub fn all(c: &Connection) -> Result<Vec<HeldManifest>> {
    let mut stmt = c.prepare("SELECT manifest FROM held ORDER BY deleted_at DESC, id")?;
    let rows: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    rows.iter().map(|t| HeldManifest::parse(t)).collect()
}

/// Removes an entry; whether there was one.
pub fn delete(c: &Connection, id: &str) -> Result<bool> {
    Ok(c.execute("DELETE FROM held WHERE id = ?1", [id])? > 0)
}

/// Ids of entries whose hold ended before `now` (ISO 8601).
pub fn ended(c: &Connection, now: &str) -> Result<Vec<String>> {
    let mut stmt = c.prepare("SELECT id FROM held WHERE hold_until <= ?1 ORDER BY id")?;
    let rows = stmt.query_map([now], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every blob a held entry keeps (ended holds included: they go only when their row does).
pub fn blobs(c: &Connection) -> Result<HashSet<String>> {
    let mut stmt = c.prepare("SELECT DISTINCT blob FROM held_blobs")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many entries, the bytes only they keep, and when the first hold ends.
pub fn usage(c: &Connection) -> Result<Reclaimable> {
    let (held_backups, next_release): (i64, Option<String>) =
        c.query_row("SELECT count(*), min(hold_until) FROM held", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let held_bytes: i64 = c.query_row(
        "SELECT COALESCE(SUM(size), 0) FROM (SELECT blob, MAX(size) AS size FROM held_blobs
           WHERE blob NOT IN (SELECT blob FROM backup_files) GROUP BY blob)",
        [],
        |r| r.get(0),
    )?;
    Ok(Reclaimable { held_backups, held_bytes, next_release, unreferenced_bytes: 0 })
}
