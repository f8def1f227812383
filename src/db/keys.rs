//! `key_use`: the last use of each named key.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;

pub fn record(c: &Connection, name: &str, at: &str, address: &str) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO key_use (name, last_used, address) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET last_used = excluded.last_used, address = excluded.address",
    )?
    .execute([name, at, address])?;
    Ok(())
}

/// Name → (last used, address). A database older than the table has none.
pub fn all(c: &Connection) -> Result<HashMap<String, (String, String)>> {
    let exists: bool =
        c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'key_use'", [], |r| {
            r.get::<_, i64>(0).map(|n| n > 0)
        })?;
    if !exists {
        return Ok(HashMap::new());
    }
    let mut stmt = c.prepare("SELECT name, last_used, address FROM key_use")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
