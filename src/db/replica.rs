//! Replica summaries and the objects waiting for their delete delay.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::model::replica::ReplicaState;

/// The summary of one replica; an empty one when it never ran.
pub fn state(c: &Connection, name: &str) -> Result<ReplicaState> {
    let found = c
        .query_row(
            "SELECT last_success, last_attempt, last_error, last_outcome, errors, objects, bytes, pending_objects,
                    pending_bytes, doomed_objects, last_verify, verify_outcome, verify_cursor, failing
             FROM replica_states WHERE replica = ?1",
            [name],
            |r| {
                Ok(ReplicaState {
                    name: name.to_string(),
                    initialised: false,
                    last_success: r.get(0)?,
                    last_attempt: r.get(1)?,
                    last_error: r.get(2)?,
                    last_outcome: r.get(3)?,
                    errors: r.get(4)?,
                    objects: r.get(5)?,
                    bytes: r.get(6)?,
                    pending_objects: r.get(7)?,
                    pending_bytes: r.get(8)?,
                    doomed_objects: r.get(9)?,
                    last_verify: r.get(10)?,
                    verify_outcome: r.get(11)?,
                    verify_cursor: r.get(12)?,
                    failing: r.get::<_, i64>(13)? != 0,
                })
            },
        )
        .optional()?;
    Ok(found.unwrap_or_else(|| ReplicaState { name: name.to_string(), ..ReplicaState::default() }))
}

fn ensure(c: &Connection, name: &str) -> Result<()> {
    c.execute("INSERT OR IGNORE INTO replica_states (replica) VALUES (?1)", [name])?;
    Ok(())
}

/// A sync is starting, with this much to send.
pub fn record_attempt(c: &Connection, name: &str, at: &str, pending_objects: i64, pending_bytes: i64) -> Result<()> {
    ensure(c, name)?;
    c.execute(
        "UPDATE replica_states SET last_attempt = ?2, pending_objects = ?3, pending_bytes = ?4 WHERE replica = ?1",
        params![name, at, pending_objects, pending_bytes],
    )?;
    Ok(())
}

/// What a finished sync leaves: the bucket's size, what waits for deletion.
pub struct Synced<'a> {
    pub at: &'a str,
    pub outcome: &'a str,
    pub objects: i64,
    pub bytes: i64,
    pub doomed: i64,
}

/// A sync succeeded; returns whether the replica was failing before.
pub fn record_success(c: &Connection, name: &str, s: &Synced) -> Result<bool> {
    ensure(c, name)?;
    let was: i64 = c.query_row("SELECT failing FROM replica_states WHERE replica = ?1", [name], |r| r.get(0))?;
    c.execute(
        "UPDATE replica_states SET last_success = ?2, last_outcome = ?3, objects = ?4, bytes = ?5, doomed_objects = ?6,
                pending_objects = 0, pending_bytes = 0, last_error = NULL, failing = 0 WHERE replica = ?1",
        params![name, s.at, s.outcome, s.objects, s.bytes, s.doomed],
    )?;
    Ok(was != 0)
}

/// A sync (or verification) failed; returns whether it was already failing (so the owner is
/// told once).
pub fn record_failure(c: &Connection, name: &str, error: &str) -> Result<bool> {
    ensure(c, name)?;
    let was: i64 = c.query_row("SELECT failing FROM replica_states WHERE replica = ?1", [name], |r| r.get(0))?;
    c.execute(
        "UPDATE replica_states SET last_error = ?2, last_outcome = ?3, errors = errors + 1, failing = 1
         WHERE replica = ?1",
        params![name, error, format!("error: {error}")],
    )?;
    Ok(was != 0)
}

pub fn record_verify(c: &Connection, name: &str, at: &str, outcome: &str, cursor: &str) -> Result<()> {
    ensure(c, name)?;
    c.execute(
        "UPDATE replica_states SET last_verify = ?2, verify_outcome = ?3, verify_cursor = ?4 WHERE replica = ?1",
        params![name, at, outcome, cursor],
    )?;
    Ok(())
}

/// The objects known to be unneeded, with since when.
pub fn unneeded(c: &Connection, name: &str) -> Result<HashMap<String, String>> {
    let mut stmt = c.prepare_cached("SELECT object, since FROM replica_unneeded WHERE replica = ?1")?;
    let rows = stmt.query_map([name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Replaces the list of unneeded objects (those needed again, or gone, drop out).
pub fn set_unneeded(c: &rusqlite::Transaction, name: &str, objects: &HashMap<String, String>) -> Result<()> {
    c.execute("DELETE FROM replica_unneeded WHERE replica = ?1", [name])?;
    let mut stmt = c.prepare_cached("INSERT INTO replica_unneeded (replica, object, since) VALUES (?1, ?2, ?3)")?;
    for (object, since) in objects {
        stmt.execute(params![name, object, since])?;
    }
    Ok(())
}
