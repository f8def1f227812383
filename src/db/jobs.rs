//! The job queue's rows and the scheduled jobs' last runs.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::time;

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

const COLUMNS: &str = "id, kind, payload, status, attempts, error, created_at, started_at, finished_at";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        payload: r.get(2)?,
        status: r.get(3)?,
        attempts: r.get(4)?,
        error: r.get(5)?,
        created_at: r.get(6)?,
        started_at: r.get(7)?,
        finished_at: r.get(8)?,
    })
}

/// Adds an IDLE job and returns its id.
pub fn enqueue(c: &Connection, kind: &str, payload: &str) -> Result<i64> {
    c.execute(
        "INSERT INTO jobs (kind, payload, status, created_at) VALUES (?1, ?2, 'IDLE', ?3)",
        params![kind, payload, time::iso(time::now())],
    )?;
    Ok(c.last_insert_rowid())
}

/// Takes the oldest IDLE job and marks it RUNNING, atomically.
pub fn claim(c: &Connection) -> Result<Option<JobRow>> {
    let sql = format!(
        "UPDATE jobs SET status = 'RUNNING', attempts = attempts + 1, started_at = ?1, finished_at = NULL
         WHERE id = (SELECT id FROM jobs WHERE status = 'IDLE' ORDER BY id LIMIT 1) RETURNING {COLUMNS}"
    );
    Ok(c.query_row(&sql, [time::iso(time::now())], from_row).optional()?)
}

/// Ends a job: FINISHED, or ERROR with the reason.
pub fn finish(c: &Connection, id: i64, error: Option<&str>) -> Result<()> {
    let status = if error.is_some() { "ERROR" } else { "FINISHED" };
    c.execute(
        "UPDATE jobs SET status = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
        params![id, status, error, time::iso(time::now())],
    )?;
    Ok(())
}

/// Puts jobs a crash left RUNNING back in the queue; returns their ids.
pub fn requeue_running(c: &Connection) -> Result<Vec<i64>> {
    let mut stmt = c.prepare("UPDATE jobs SET status = 'IDLE' WHERE status = 'RUNNING' RETURNING id")?;
    let ids = stmt.query_map([], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

pub fn find(c: &Connection, id: i64) -> Result<Option<JobRow>> {
    Ok(c.query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), [id], from_row).optional()?)
}

/// The most recent jobs, newest first.
pub fn recent(c: &Connection, limit: usize) -> Result<Vec<JobRow>> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"))?;
    let rows = stmt.query_map([limit as i64], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Payloads of jobs not yet done, so that their blobs and spooled files are kept.
pub fn open_payloads(c: &Connection) -> Result<Vec<String>> {
    let mut stmt = c.prepare("SELECT payload FROM jobs WHERE status IN ('IDLE', 'RUNNING')")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Payloads whose data must be kept: jobs not yet done, and jobs that failed since `failed_since`
/// (ISO 8601), which can still be retried.
pub fn live_payloads(c: &Connection, failed_since: &str) -> Result<Vec<String>> {
    let mut stmt = c.prepare(
        "SELECT payload FROM jobs WHERE status IN ('IDLE', 'RUNNING') OR (status = 'ERROR' AND finished_at >= ?1)",
    )?;
    let rows = stmt.query_map([failed_since], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Puts a failed job back in the queue; false when it is not in ERROR.
pub fn retry(c: &Connection, id: i64) -> Result<bool> {
    Ok(c.execute(
        "UPDATE jobs SET status = 'IDLE', error = NULL, finished_at = NULL WHERE id = ?1 AND status = 'ERROR'",
        [id],
    )? > 0)
}

pub fn status(c: &Connection, id: i64) -> Result<Option<String>> {
    Ok(c.query_row("SELECT status FROM jobs WHERE id = ?1", [id], |r| r.get(0)).optional()?)
}

/// The last run of a scheduled job: (finished at, outcome, duration in ms).
pub type LastRun = (Option<String>, Option<String>, Option<i64>);

pub fn last_run(c: &Connection, name: &str) -> Result<LastRun> {
    Ok(c.query_row(
        "SELECT last_run_at, last_outcome, last_duration_ms FROM scheduled_runs WHERE name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()?
    .unwrap_or((None, None, None)))
}

pub fn record_run(c: &Connection, name: &str, at: &str, outcome: &str, duration_ms: i64) -> Result<()> {
    c.execute(
        "INSERT INTO scheduled_runs (name, last_run_at, last_outcome, last_duration_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO UPDATE SET last_run_at = ?2, last_outcome = ?3, last_duration_ms = ?4",
        params![name, at, outcome, duration_ms],
    )?;
    Ok(())
}
