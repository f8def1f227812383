//! thread_tail: why a read that hops to the blocking pool had a 353 ms p99 at 64 connections
//! (issue 19). It repeats the old page read's work (ten targets, each read over a pooled SQLite
//! connection with two indexed queries) from many threads at once, as the blocking pool ran 64
//! requests at once, and prints the latency per request: with 64 threads and the pool of 10
//! connections bakch had, with 64 threads and 64 connections (is it the database pool?), and
//! with 4 threads (is it the number of runnable threads?). No server: only the pattern.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Opts, Report, Res, median};

/// (threads, pooled connections) of each variant.
const VARIANTS: [(usize, u32); 3] = [(64, 10), (64, 64), (4, 10)];

pub fn run(o: &Opts) -> Res<Report> {
    let s = o.scratch("thread_tail")?;
    let path = s.path().join("tail.sqlite3");
    let rows = o.size("BAKCH_BENCH_TAIL_ROWS", 10_000.0, 100.0) as i64;
    seed(&path, rows)?;
    let mut r = Report::new("thread_tail");
    let mut p99s = Vec::new();
    for (threads, connections) in VARIANTS {
        let (mut p50, mut p99, mut rate) = (vec![], vec![], vec![]);
        for rep in 0..o.reps {
            let (lat, per_sec) = round(&path, threads, connections, Duration::from_secs(o.api_secs))?;
            let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
            println!(
                "rep {rep}: {threads} threads, {connections} connections: {per_sec:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
                q(0.5),
                q(0.99),
                lat[lat.len() - 1]
            );
            p50.push(q(0.5));
            p99.push(q(0.99));
            rate.push(per_sec);
        }
        p99s.push(median(&p99));
        r.row(format!("{threads} threads, {connections} connections throughput"), "req/s", rate);
        r.row(format!("{threads} threads, {connections} connections p50"), "ms", p50);
        r.row(format!("{threads} threads, {connections} connections p99"), "ms", p99);
    }
    r.notes.push("the old page read's pattern without a server; the machine's other load counts".into());
    r.json = json!({"rows": rows, "p99_ms": p99s});
    Ok(r)
}

/// A table shaped like backups: `rows` rows over 1,000 targets, indexed by target.
fn seed(path: &std::path::Path, rows: i64) -> Res<()> {
    let c = rusqlite::Connection::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let run = || -> rusqlite::Result<()> {
        c.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE b (id INTEGER PRIMARY KEY, t INTEGER, at TEXT, state TEXT);
             CREATE INDEX b_t ON b(t, at);
             BEGIN;",
        )?;
        for i in 0..rows {
            c.execute("INSERT INTO b (t, at, state) VALUES (?1, ?2, 'complete')", (i % 1000, format!("{i:08}")))?;
        }
        c.execute_batch("COMMIT")
    };
    run().map_err(|e| format!("seed {}: {e}", path.display()))
}

/// One round: each thread repeats requests until the time is up; returns every request's
/// latency in ms, sorted, and the requests per second.
fn round(path: &std::path::Path, threads: usize, connections: u32, secs: Duration) -> Res<(Vec<f64>, f64)> {
    let manager = r2d2_sqlite::SqliteConnectionManager::file(path);
    let pool = r2d2::Pool::builder()
        .max_size(connections)
        .connection_timeout(Duration::from_secs(60))
        .build(manager)
        .map_err(|e| format!("pool: {e}"))?;
    let stop = Instant::now() + secs;
    let results: Vec<Res<Vec<f64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let pool = pool.clone();
                scope.spawn(move || -> Res<Vec<f64>> {
                    let mut lat = Vec::new();
                    while Instant::now() < stop {
                        let t = Instant::now();
                        for target in 0..10i64 {
                            // A connection per target, as each target's health took its own.
                            let c = pool.get().map_err(|e| format!("pool: {e}"))?;
                            let read = |sql: &str| -> rusqlite::Result<()> {
                                c.prepare_cached(sql)?.query_row([target], |_| Ok(()))
                            };
                            read("SELECT MAX(at) FROM b WHERE t = ?1 AND state = 'complete'")
                                .and_then(|_| read("SELECT COUNT(*) FROM b WHERE t = ?1 AND state = 'complete'"))
                                .map_err(|e| format!("query: {e}"))?;
                        }
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into()))).collect()
    });
    let mut lat = Vec::new();
    for r in results {
        lat.extend(r?);
    }
    if lat.is_empty() {
        return Err("no request finished".into());
    }
    lat.sort_by(f64::total_cmp);
    let per_sec = lat.len() as f64 / secs.as_secs_f64();
    Ok((lat, per_sec))
}
