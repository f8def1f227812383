//! Backup rows and their files. Only `complete` rows are ever listed.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Error, Result};
use crate::model::backup::{Backup, BackupFile};
use crate::model::canary::Stored;

const COLUMNS: &str =
    "id, target_id, created_at, manual, is_recycled, filesize, hash, hash_mismatch, name, recycled_at, pinned";
/// What a listing reads: the change canary's record, then whether it is pinned.
const READ: &str = "id, target_id, created_at, manual, is_recycled, filesize, hash, hash_mismatch, name, \
                    recycled_at, changes, pinned";

fn from_row(r: &Row) -> rusqlite::Result<Backup> {
    let created: String = r.get(2)?;
    let created_at = DateTime::parse_from_rfc3339(&created)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?;
    // A record this version cannot read is shown as none rather than hiding the backup.
    let stored: Option<Stored> = r.get::<_, Option<String>>(10)?.and_then(|j| serde_json::from_str(&j).ok());
    let (changes, unusual_reason) = match stored {
        Some(s) => (Some(s.changes), s.unusual),
        None => (None, None),
    };
    Ok(Backup {
        id: r.get(0)?,
        target_id: r.get(1)?,
        created_at,
        manual: r.get(3)?,
        is_recycled: r.get(4)?,
        filesize: r.get(5)?,
        hash: r.get(6)?,
        hash_mismatch: r.get(7)?,
        changes,
        unusual: unusual_reason.is_some(),
        unusual_reason,
        name: r.get(8)?,
        // A time that does not parse is shown as unknown rather than failing a listing.
        recycled_at: r.get::<_, Option<String>>(9)?.as_deref().and_then(crate::time::parse_iso),
        pinned: r.get(11)?,
        exclusive_bytes: None,
    })
}

fn query(c: &Connection, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Backup>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {READ} FROM backups WHERE state = 'complete' AND {filter} ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt.query_map(args, from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records a backup that is being placed; it stays hidden until [`mark_complete`]. `ident` is
/// what its job is about to rename into place.
pub fn insert_pending(c: &Connection, b: &Backup, files: &[BackupFile], ident: &str) -> Result<()> {
    insert(c, b, files, "pending", Some(ident))
}

/// Records a finished backup whole (a database rebuilt from manifests).
pub fn insert_complete(c: &Connection, b: &Backup, files: &[BackupFile]) -> Result<()> {
    insert(c, b, files, "complete", None)
}

fn insert(c: &Connection, b: &Backup, files: &[BackupFile], state: &str, ident: Option<&str>) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO backups ({COLUMNS}, state, placed_ident) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"
    ))?
    .execute(params![
        b.id,
        b.target_id,
        crate::time::iso(b.created_at),
        b.manual,
        b.is_recycled,
        b.filesize,
        b.hash,
        b.hash_mismatch,
        b.name,
        b.recycled_at.map(crate::time::iso),
        b.pinned,
        state,
        ident
    ])?;
    // Many rows per statement: each statement with triggers keeps a journal of the pages it
    // changes (to undo just itself), so a statement per row copied each touched page again.
    let mut stmt = c.prepare_cached(
        "INSERT INTO backup_files (backup_id, path, blob, size, mode)
         SELECT ?1, value->>0, value->>1, value->>2, value->>3 FROM json_each(?2)",
    )?;
    // In blob order: the blob index and `target_blobs` (kept by a trigger) then grow at one
    // end instead of at random places (a 3,000-file backup's rows went in about half the time).
    let mut by_blob: Vec<&BackupFile> = files.iter().collect();
    by_blob.sort_unstable_by(|x, y| x.blob.cmp(&y.blob));
    for chunk in by_blob.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<(&str, &str, i64, u32)> =
            chunk.iter().map(|f| (f.path.as_str(), f.blob.as_str(), f.size, f.mode)).collect();
        let json =
            serde_json::to_string(&rows).map_err(|e| Error::internal(format!("listing a backup's files: {e}")))?;
        stmt.execute(params![b.id, json])?;
    }
    Ok(())
}

/// File rows per insert statement: big enough that a page is journaled once for many rows,
/// small enough that the statement's JSON stays a few hundred KB.
const ROWS_PER_STATEMENT: usize = 2_000;

/// Makes a pending backup visible; a row that is gone (its target was deleted) is an error.
pub fn mark_complete(c: &Connection, id: &str) -> Result<()> {
    if c.execute("UPDATE backups SET state = 'complete' WHERE id = ?1", [id])? != 1 {
        return Err(Error::not_found(format!("backup {id} no longer exists; its target was deleted")));
    }
    Ok(())
}

/// Records what is now at a backup's place (after a move or a rebuild of its files).
pub fn set_placed_ident(c: &Connection, id: &str, ident: &str) -> Result<()> {
    c.execute("UPDATE backups SET placed_ident = ?2 WHERE id = ?1", params![id, ident])?;
    Ok(())
}

/// What a backup's job renamed into place (a later move or rebuild updates it); none for a
/// backup made before identities were kept or rebuilt from manifests.
pub fn placed_ident(c: &Connection, id: &str) -> Result<Option<String>> {
    let row = c.query_row("SELECT placed_ident FROM backups WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    Ok(row.flatten())
}

/// A backup and whether it is still pending, whatever its state.
pub fn find_any(c: &Connection, id: &str) -> Result<Option<(Backup, bool)>> {
    let sql = format!("SELECT {READ}, state FROM backups WHERE id = ?1");
    Ok(c.query_row(&sql, [id], |r| Ok((from_row(r)?, r.get::<_, String>(12)? == "pending"))).optional()?)
}

pub fn find(c: &Connection, id: &str) -> Result<Option<Backup>> {
    Ok(query(c, "id = ?1", [id])?.pop())
}

pub fn for_target(c: &Connection, target_id: &str) -> Result<Vec<Backup>> {
    query(c, "target_id = ?1", [target_id])
}

pub fn recycled(c: &Connection) -> Result<Vec<Backup>> {
    query(c, "is_recycled = 1", [])
}

/// Pending rows left by a crash: (backup, target id).
pub fn pending(c: &Connection) -> Result<Vec<Backup>> {
    let mut stmt = c.prepare(&format!("SELECT {READ} FROM backups WHERE state = 'pending'"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn files(c: &Connection, backup_id: &str) -> Result<Vec<BackupFile>> {
    let mut stmt =
        c.prepare_cached("SELECT path, blob, size, mode FROM backup_files WHERE backup_id = ?1 ORDER BY path")?;
    let rows = stmt.query_map([backup_id], |r| {
        Ok(BackupFile { path: r.get(0)?, blob: r.get(1)?, size: r.get(2)?, mode: r.get(3)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn set_place(c: &Connection, id: &str, is_recycled: bool, name: &str) -> Result<()> {
    c.execute("UPDATE backups SET is_recycled = ?2, name = ?3 WHERE id = ?1", params![id, is_recycled, name])?;
    Ok(())
}

pub fn delete(c: &Connection, id: &str) -> Result<()> {
    c.execute("DELETE FROM backups WHERE id = ?1", [id])?;
    Ok(())
}

/// (id, name) of every backup, pending ones included, whose files are in the target's folder
/// (`+is_recycled`: by the target's index, not by scanning every active backup).
pub fn placed_in_target_folder(c: &Connection, target_id: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = c.prepare_cached("SELECT id, name FROM backups WHERE target_id = ?1 AND +is_recycled = 0")?;
    let rows = stmt.query_map([target_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether a backup of this target (other than `except_id`) already uses `name` in the same place.
pub fn name_used(c: &Connection, target_id: &str, name: &str, recycled: bool, except_id: &str) -> Result<bool> {
    // The recycle bin is one folder shared by all targets; a target folder is its own.
    let sql = "SELECT EXISTS(SELECT 1 FROM backups WHERE is_recycled = ?1 AND name = ?2 AND id <> ?3
               AND (?1 = 1 OR target_id = ?4))";
    Ok(c.query_row(sql, params![recycled, name, except_id, target_id], |r| r.get(0))?)
}

/// Totals over complete backups: (count, logical bytes) for active and recycled ones.
pub struct Totals {
    pub active_count: i64,
    pub active_bytes: i64,
    pub recycled_count: i64,
    pub recycled_bytes: i64,
}

pub fn totals(c: &Connection) -> Result<Totals> {
    Ok(c.query_row(
        "SELECT COALESCE(SUM(is_recycled = 0), 0), COALESCE(SUM(CASE WHEN is_recycled = 0 THEN filesize END), 0),
                COALESCE(SUM(is_recycled = 1), 0), COALESCE(SUM(CASE WHEN is_recycled = 1 THEN filesize END), 0)
         FROM backups WHERE state = 'complete'",
        [],
        |r| {
            Ok(Totals {
                active_count: r.get(0)?,
                active_bytes: r.get(1)?,
                recycled_count: r.get(2)?,
                recycled_bytes: r.get(3)?,
            })
        },
    )?)
}

/// Bytes of distinct blobs that backups refer to: what the store really holds for them.
pub fn distinct_blob_bytes(c: &Connection) -> Result<i64> {
    Ok(c.query_row(
        "SELECT COALESCE(SUM(size), 0) FROM (SELECT blob, MAX(size) AS size FROM backup_files GROUP BY blob)",
        [],
        |r| r.get(0),
    )?)
}

/// Every complete backup of every target.
pub fn all(c: &Connection) -> Result<Vec<Backup>> {
    query(c, "1", [])
}

/// The bytes of `files`' distinct content that no complete backup of the target holds yet:
/// what storing them adds to the target's disk use.
pub fn new_bytes_for_target(c: &Connection, target_id: &str, files: &[BackupFile]) -> Result<i64> {
    let mut stmt = c.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM backup_files f JOIN backups b ON b.id = f.backup_id
                        WHERE f.blob = ?1 AND b.target_id = ?2 AND b.state = 'complete')",
    )?;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0i64;
    for f in files {
        if seen.insert(f.blob.as_str()) && !stmt.query_row(params![f.blob, target_id], |r| r.get::<_, bool>(0))? {
            total = total.saturating_add(f.size);
        }
    }
    Ok(total)
}

/// Pins or unpins a backup.
pub fn set_pinned(c: &Connection, id: &str, pinned: bool) -> Result<()> {
    c.execute("UPDATE backups SET pinned = ?2 WHERE id = ?1", params![id, pinned])?;
    Ok(())
}

/// Per complete backup of a target: the bytes of content no other backup (of any target, in
/// any state) and no held deletion refers to, which deleting it alone would free once
/// collected. A blob at two paths of one backup counts once.
pub fn exclusive_bytes(c: &Connection, target_id: &str) -> Result<std::collections::HashMap<String, i64>> {
    // From the target's distinct contents (thousands), not its file rows (millions): content
    // no other target holds, and whose lowest and highest holding backup are the same one.
    let mut stmt = c.prepare_cached(
        "SELECT lo, SUM(size) FROM
           (SELECT t.size,
                   (SELECT MIN(f.backup_id) FROM backup_files f WHERE f.blob = t.blob) AS lo,
                   (SELECT MAX(f.backup_id) FROM backup_files f WHERE f.blob = t.blob) AS hi
              FROM target_blobs t
             WHERE t.target_id = ?1
               AND NOT EXISTS (SELECT 1 FROM target_blobs o WHERE o.blob = t.blob AND o.target_id <> ?1)
               AND NOT EXISTS (SELECT 1 FROM held_blobs h WHERE h.blob = t.blob))
         WHERE lo = hi GROUP BY lo",
    )?;
    let rows = stmt.query_map([target_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The bytes of content only the backups `ids` of `target_id` refer to (no other backup, no
/// other target, no held entry): what removing all of them would free once collected.
/// It reads the file rows of whichever side is smaller, the taken backups or the rest: a GFS
/// policy over 10,000 backups takes nearly all of them (ten million rows) and keeps a few dozen.
pub fn bytes_only_in(c: &Connection, target_id: &str, ids: &[&str]) -> Result<i64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let tx = c.unchecked_transaction()?;
    tx.execute("CREATE TEMP TABLE IF NOT EXISTS taken_ids (id TEXT PRIMARY KEY)", [])?;
    tx.execute("DELETE FROM temp.taken_ids", [])?;
    {
        let mut ins = tx.prepare_cached("INSERT OR IGNORE INTO temp.taken_ids (id) VALUES (?1)")?;
        for id in ids {
            ins.execute([id])?;
        }
    }
    let rest: i64 = tx.query_row(
        "SELECT COUNT(*) FROM backups WHERE target_id = ?1 AND id NOT IN (SELECT id FROM temp.taken_ids)",
        [target_id],
        |r| r.get(0),
    )?;
    let only_here = "NOT EXISTS (SELECT 1 FROM target_blobs o WHERE o.blob = t.blob AND o.target_id <> ?1)
           AND NOT EXISTS (SELECT 1 FROM held_blobs h WHERE h.blob = t.blob)";
    let sql = if rest as usize >= ids.len() {
        // Content whose every row in this target is one of the taken backups'.
        format!(
            "SELECT COALESCE(SUM(t.size), 0) FROM
               (SELECT f.blob, COUNT(*) AS n FROM backup_files f
                 WHERE f.backup_id IN (SELECT id FROM temp.taken_ids) GROUP BY f.blob) AS mine
               JOIN target_blobs t ON t.target_id = ?1 AND t.blob = mine.blob
             WHERE mine.n = t.rows AND {only_here}"
        )
    } else {
        // The target's content that none of its other backups (any state) holds.
        format!(
            "SELECT COALESCE(SUM(t.size), 0) FROM target_blobs t
             WHERE t.target_id = ?1 AND {only_here}
               AND t.blob NOT IN (SELECT f.blob FROM backup_files f WHERE f.backup_id IN
                     (SELECT id FROM backups WHERE target_id = ?1 AND id NOT IN (SELECT id FROM temp.taken_ids)))"
        )
    };
    let bytes: i64 = tx.query_row(&sql, [target_id], |r| r.get(0))?;
    tx.execute("DELETE FROM temp.taken_ids", [])?;
    tx.commit()?;
    Ok(bytes)
}

pub fn set_hash_mismatch(c: &Connection, id: &str, mismatch: bool) -> Result<()> {
    c.execute("UPDATE backups SET hash_mismatch = ?2 WHERE id = ?1", params![id, mismatch])?;
    Ok(())
}

/// Records what the integrity check found wrong with a backup (`None`: nothing).
pub fn set_damage(c: &Connection, id: &str, damage: Option<&str>) -> Result<()> {
    c.execute("UPDATE backups SET damage = ?2 WHERE id = ?1", params![id, damage])?;
    Ok(())
}

/// What the integrity check found wrong with a backup, one finding per line.
pub fn damage(c: &Connection, id: &str) -> Result<Option<String>> {
    Ok(c.query_row("SELECT damage FROM backups WHERE id = ?1", [id], |r| r.get(0)).optional()?.flatten())
}

/// The damaged backups with their findings, newest first.
pub fn damaged(c: &Connection) -> Result<Vec<(Backup, Option<String>)>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {READ}, damage FROM backups WHERE state = 'complete' AND hash_mismatch = 1 ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt.query_map([], |r| Ok((from_row(r)?, r.get(12)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets when a backup went to the recycle bin (`None` when it is restored).
pub fn set_recycled_at(c: &Connection, id: &str, at: Option<DateTime<Utc>>) -> Result<()> {
    c.execute("UPDATE backups SET recycled_at = ?2 WHERE id = ?1", params![id, at.map(crate::time::iso)])?;
    Ok(())
}

/// Recomputes `filesize` from the files of every backup; returns how many rows changed.
pub fn recompute_filesizes(c: &Connection) -> Result<usize> {
    Ok(c.execute(
        "UPDATE backups SET filesize = (SELECT COALESCE(SUM(size), 0) FROM backup_files WHERE backup_id = backups.id)
         WHERE filesize <> (SELECT COALESCE(SUM(size), 0) FROM backup_files WHERE backup_id = backups.id)",
        [],
    )?)
}

/// Every blob a backup (in any state), an open sequential upload or a push (its file list, and
/// what pushes received lately) refers to.
pub fn referenced_blobs(c: &Connection) -> Result<std::collections::HashSet<String>> {
    let mut stmt = c.prepare(
        "SELECT DISTINCT blob FROM backup_files UNION SELECT DISTINCT blob FROM seq_files WHERE blob IS NOT NULL
         UNION SELECT DISTINCT blob FROM push_files UNION SELECT DISTINCT blob FROM push_blobs",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (logical bytes of its complete backups, bytes of the distinct blobs its backups hold). The
/// second counts a pending backup's content too: it is about to be visible.
pub fn target_usage(c: &Connection, target_id: &str) -> Result<(i64, i64)> {
    Ok(c.query_row(
        "SELECT COALESCE((SELECT SUM(filesize) FROM backups WHERE target_id = ?1 AND state = 'complete'), 0),
                COALESCE((SELECT SUM(size) FROM target_blobs WHERE target_id = ?1), 0)",
        [target_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Per target, the figures the targets list shows: active and recycled counts, the logical size
/// of active backups, the newest active backup's time (ISO 8601) and how many are damaged.
#[derive(Debug, Clone, Default)]
pub struct TargetFigures {
    pub active: i64,
    pub recycled: i64,
    pub size: i64,
    pub last_backup: Option<String>,
    pub damaged: i64,
}

/// [`TargetFigures`] of every target that has complete backups, by target id.
pub fn target_figures(c: &Connection) -> Result<std::collections::HashMap<String, TargetFigures>> {
    let mut stmt = c.prepare_cached(
        "SELECT target_id, COALESCE(SUM(is_recycled = 0), 0), COALESCE(SUM(is_recycled = 1), 0),
                COALESCE(SUM(CASE WHEN is_recycled = 0 THEN filesize END), 0),
                MAX(CASE WHEN is_recycled = 0 THEN created_at END), COALESCE(SUM(hash_mismatch), 0)
         FROM backups WHERE state = 'complete' GROUP BY target_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            TargetFigures {
                active: r.get(1)?,
                recycled: r.get(2)?,
                size: r.get(3)?,
                last_backup: r.get(4)?,
                damaged: r.get(5)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One file of a backup by its path: (blob, size).
pub fn file(c: &Connection, backup_id: &str, path: &str) -> Result<Option<(String, i64)>> {
    Ok(c.query_row("SELECT blob, size FROM backup_files WHERE backup_id = ?1 AND path = ?2", [backup_id, path], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()?)
}

/// Records a backup's change canary (see `model::canary`).
pub fn set_changes(c: &Connection, id: &str, stored: &Stored) -> Result<()> {
    let json = serde_json::to_string(stored).map_err(|e| Error::internal(format!("changes cannot be written: {e}")))?;
    c.execute("UPDATE backups SET changes = ?2 WHERE id = ?1", params![id, json])?;
    Ok(())
}

/// The complete backups of a target received before `before` (ISO 8601), newest first, at
/// most `limit`: the previous backup and the history the canary judges by.
pub fn previous(c: &Connection, target_id: &str, before: &str, limit: usize) -> Result<Vec<Backup>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {READ} FROM backups WHERE state = 'complete' AND target_id = ?1 AND created_at < ?2
         ORDER BY created_at DESC, id LIMIT ?3 + 0"
    ))?;
    let rows = stmt.query_map(params![target_id, before, limit as i64], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Bytes of new content (the canary's `bytes_new`) of backups received since `since`, and
/// when the oldest of them was received: the growth the full-disk estimate extrapolates.
pub fn growth_since(c: &Connection, since: &str) -> Result<(i64, Option<String>)> {
    Ok(c.query_row(
        "SELECT COALESCE(SUM(json_extract(changes, '$.bytes_new')), 0), MIN(created_at) FROM backups
         WHERE state = 'complete' AND created_at >= ?1 AND changes IS NOT NULL AND json_valid(changes)",
        [since],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// (created at, size) of a target's last `limit` finished backups, newest first.
pub fn recent_sizes(c: &Connection, target_id: &str, limit: usize) -> Result<Vec<(String, i64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT created_at, filesize FROM backups WHERE state = 'complete' AND target_id = ?1
         ORDER BY created_at DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![target_id, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A page of a target's distinct file paths containing `fragment` (case-insensitive for ASCII),
/// by path, from the file index: (path, how many backups hold it). One more row than `limit`
/// tells the caller a next page exists.
pub fn search_paths(
    c: &Connection,
    target_id: &str,
    fragment: &str,
    limit: usize,
    offset: usize,
) -> Result<Vec<(String, i64)>> {
    let escaped = fragment.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let mut stmt = c.prepare_cached(
        "SELECT path, backups FROM file_paths WHERE target_id = ?1 AND path LIKE ?2 ESCAPE '\\'
         ORDER BY path LIMIT ?3 + 0 OFFSET ?4 + 0",
    )?;
    let rows = stmt.query_map(params![target_id, format!("%{escaped}%"), limit as i64, offset as i64], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every complete backup of a target that holds `path`, newest first, with that file's blob
/// and size: one primary-key lookup per backup of the target.
pub fn path_history(c: &Connection, target_id: &str, path: &str) -> Result<Vec<(Backup, String, i64)>> {
    let cols: String = READ.split(", ").map(|col| format!("b.{}", col.trim())).collect::<Vec<_>>().join(", ");
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {cols}, f.blob, f.size FROM backups b JOIN backup_files f ON f.backup_id = b.id AND f.path = ?2
         WHERE b.target_id = ?1 AND b.state = 'complete' ORDER BY b.created_at DESC, b.id"
    ))?;
    let rows = stmt.query_map(params![target_id, path], |r| Ok((from_row(r)?, r.get(12)?, r.get(13)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
