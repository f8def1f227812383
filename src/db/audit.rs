//! `audit`: the audit trail's rows.

use rusqlite::{Connection, params};

use crate::error::Result;
use crate::model::audit::{Entry, Query, Recorded};

pub fn insert(c: &Connection, at: &str, e: &Entry) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO audit (at, who, session, origin, action, route, target, backup, job, status, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        at,
        e.who.name,
        e.who.session,
        e.who.origin,
        e.action.as_str(),
        e.route,
        e.target,
        e.backup,
        e.job,
        e.status,
        e.message
    ])?;
    Ok(())
}

/// Newest first; every filter is an exact match (`who` also matches `web` for any session).
pub fn list(c: &Connection, q: &Query) -> Result<Vec<Recorded>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at, who, session, origin, action, route, target, backup, job, status, message FROM audit
         WHERE (?1 IS NULL OR id < ?1) AND (?2 IS NULL OR target = ?2) AND (?3 IS NULL OR who = ?3)
           AND (?4 IS NULL OR action = ?4)
         ORDER BY id DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(params![q.before, q.target, q.who, q.action, q.limit as i64], |r| {
        let status: u16 = r.get(10)?;
        Ok(Recorded {
            id: r.get(0)?,
            at: r.get(1)?,
            who: r.get(2)?,
            session: r.get(3)?,
            origin: r.get(4)?,
            action: r.get(5)?,
            route: r.get(6)?,
            target: r.get(7)?,
            backup: r.get(8)?,
            job: r.get(9)?,
            outcome: if status < 400 { "ok" } else { "refused" }.to_string(),
            status,
            message: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Removes entries older than `cutoff` (RFC 3339, compared as text: all are UTC, same format).
pub fn purge(c: &Connection, cutoff: &str) -> Result<usize> {
    Ok(c.execute("DELETE FROM audit WHERE at < ?1", [cutoff])?)
}
