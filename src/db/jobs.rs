//! The job queue's rows and the scheduled jobs' last runs.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::model::job::{JobKind, JobStatus, KEPT_FILES, QueuedJob};
use crate::time;

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: i64,
    pub kind: JobKind,
    pub payload: String,
    pub status: JobStatus,
    pub attempts: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl JobRow {
    /// The job with its payload read.
    pub fn job(&self) -> Result<QueuedJob> {
        QueuedJob::parse(self.kind, &self.payload)
    }
}

const COLUMNS: &str = "id, kind, payload, status, attempts, error, created_at, started_at, finished_at";

/// A stored word that this version does not know (a row written by a newer bakch).
fn unknown(col: usize, what: &str, value: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("unknown {what} '{value}'").into(),
    )
}

fn kind_at(r: &rusqlite::Row, col: usize) -> rusqlite::Result<JobKind> {
    let kind: String = r.get(col)?;
    JobKind::parse(&kind).ok_or_else(|| unknown(col, "job kind", kind))
}

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
    let status: String = r.get(3)?;
    Ok(JobRow {
        id: r.get(0)?,
        kind: kind_at(r, 1)?,
        payload: r.get(2)?,
        status: JobStatus::parse(&status).ok_or_else(|| unknown(3, "job status", status))?,
        attempts: r.get(4)?,
        error: r.get(5)?,
        created_at: r.get(6)?,
        started_at: r.get(7)?,
        finished_at: r.get(8)?,
    })
}

/// Adds an IDLE job and returns its id.
pub fn enqueue(c: &Connection, job: &QueuedJob) -> Result<i64> {
    c.execute(
        "INSERT INTO jobs (kind, payload, status, created_at, target_id) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![job.kind().as_str(), job.payload()?, JobStatus::Idle.as_str(), time::iso(time::now()), job.target_id()],
    )?;
    Ok(c.last_insert_rowid())
}

/// Takes the oldest IDLE job and marks it RUNNING, atomically.
pub fn claim(c: &Connection) -> Result<Option<JobRow>> {
    let sql = format!(
        "UPDATE jobs SET status = 'RUNNING', attempts = attempts + 1, started_at = ?1, finished_at = NULL
         WHERE id = (SELECT id FROM jobs WHERE status = 'IDLE' AND (run_after IS NULL OR run_after <= ?1)
                     ORDER BY id LIMIT 1) RETURNING {COLUMNS}"
    );
    Ok(c.query_row(&sql, [time::iso(time::now())], from_row).optional()?)
}

/// Ends a job: FINISHED, or ERROR with the reason. A finished upload keeps only the first
/// [`KEPT_FILES`] of its files and the list's totals (`Source::Files`): the backup holds the
/// list, and a failed one keeps its whole list for a retry.
pub fn finish(c: &Connection, id: i64, error: Option<&str>) -> Result<()> {
    let status = if error.is_some() { JobStatus::Error } else { JobStatus::Finished };
    c.execute(
        &format!(
            "UPDATE jobs SET status = ?2, error = ?3, finished_at = ?4,
                payload = CASE WHEN ?2 = 'FINISHED' AND {SHORTENS} THEN {SHORTENED} ELSE payload END
             WHERE id = ?1"
        ),
        params![id, status.as_str(), error, time::iso(time::now()), KEPT_FILES as i64],
    )?;
    Ok(())
}

/// Whether a job's payload is an upload's full file list (migration 0018 says the same).
const SHORTENS: &str =
    "kind = 'upload_job' AND json_valid(payload) AND json_extract(payload, '$.source.kind') = 'files'
    AND json_extract(payload, '$.source.totals') IS NULL";

/// The payload with the first ?5 files and the list's totals, computed by SQLite's JSON
/// functions where the list already is.
const SHORTENED: &str = "json_set(payload,
    '$.source.files', (SELECT json_group_array(json(value))
                         FROM (SELECT value FROM json_each(payload, '$.source.files') ORDER BY key LIMIT ?5)),
    '$.source.totals', json_object(
        'count', json_array_length(payload, '$.source.files'),
        'bytes', (SELECT COALESCE(SUM(json_extract(value, '$.size')), 0) FROM json_each(payload, '$.source.files'))))";

/// Puts a job that failed back in the queue, to run no sooner than `after` (ISO 8601).
pub fn retry_later(c: &Connection, id: i64, error: &str, after: &str) -> Result<()> {
    c.execute(
        "UPDATE jobs SET status = 'IDLE', error = ?2, run_after = ?3, finished_at = ?4 WHERE id = ?1",
        params![id, error, after, time::iso(time::now())],
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

/// Jobs not yet done, so that their blobs and spooled files are kept. A payload that cannot be
/// read is an error: skipping it would let its data be removed.
pub fn open_jobs(c: &Connection) -> Result<Vec<QueuedJob>> {
    read_jobs(c, "SELECT kind, payload FROM jobs WHERE status IN ('IDLE', 'RUNNING')", ())
}

/// Jobs whose data must be kept: not yet done, or failed since `failed_since` (ISO 8601) and
/// so still retriable. A payload that cannot be read is an error, as for [`open_jobs`].
pub fn live_jobs(c: &Connection, failed_since: &str) -> Result<Vec<QueuedJob>> {
    read_jobs(
        c,
        "SELECT kind, payload FROM jobs WHERE status IN ('IDLE', 'RUNNING') OR (status = 'ERROR' AND finished_at >= ?1)",
        [failed_since],
    )
}

fn read_jobs(c: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<QueuedJob>> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map(args, |r| Ok((kind_at(r, 0)?, r.get::<_, String>(1)?)))?;
    let rows: Vec<(JobKind, String)> = rows.collect::<rusqlite::Result<_>>()?;
    rows.iter().map(|(kind, payload)| QueuedJob::parse(*kind, payload)).collect()
}

/// Puts a failed job back in the queue; false when it is not in ERROR.
pub fn retry(c: &Connection, id: i64) -> Result<bool> {
    Ok(c.execute(
        "UPDATE jobs SET status = 'IDLE', error = NULL, finished_at = NULL, run_after = NULL
         WHERE id = ?1 AND status = 'ERROR'",
        [id],
    )? > 0)
}

pub fn status(c: &Connection, id: i64) -> Result<Option<JobStatus>> {
    Ok(find(c, id)?.map(|j| j.status))
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
        "INSERT INTO scheduled_runs (name, last_run_at, last_outcome, last_duration_ms, last_success_at)
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 THEN ?2 END)
         ON CONFLICT(name) DO UPDATE SET last_run_at = ?2, last_outcome = ?3, last_duration_ms = ?4,
         last_success_at = CASE WHEN ?5 THEN ?2 ELSE last_success_at END",
        params![name, at, outcome, duration_ms, !outcome.starts_with("error:")],
    )?;
    Ok(())
}

/// When a scheduled job last ended without an error (ISO 8601).
pub fn last_success(c: &Connection, name: &str) -> Result<Option<String>> {
    Ok(c.query_row("SELECT last_success_at FROM scheduled_runs WHERE name = ?1", [name], |r| r.get(0))
        .optional()?
        .flatten())
}

/// Upload jobs that failed since `since` (ISO 8601): the count the web UI's menu shows.
pub fn failed_uploads_since(c: &Connection, since: &str) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT count(*) FROM jobs WHERE status = 'ERROR' AND kind = 'upload_job' AND finished_at >= ?1",
    )?
    .query_row([since], |r| r.get(0))?)
}

/// When the last `limit` failed uploads of a target ended, newest first.
pub fn failures_of(c: &Connection, target_id: &str, limit: usize) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT finished_at FROM jobs WHERE target_id = ?1 AND kind = 'upload_job' AND status = 'ERROR'
         AND finished_at IS NOT NULL ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![target_id, limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
