//! End-to-end benchmarks against physical references (`cargo bench --bench e2e [-- NAME...]`).
//!
//! Each scenario starts the real release binary on a loopback port with a fresh data folder on
//! the same filesystem as its scratch folder, generates its input from a fixed seed, and runs a
//! physical reference (cp + sync, tar, b3sum, restic) on the same data in the same run,
//! interleaved with the bakch repetitions: the machine is shared and noisy, and a ratio per
//! repetition survives that better than absolute figures. It prints a table per scenario and
//! one JSON line (`{"scenario":...}`) per scenario for scripts. Goals are reported, never
//! asserted: the process exits non-zero only when a scenario fails to complete (including a
//! missing reference tool).
//!
//! Sizes: `BAKCH_BENCH_SCALE` multiplies every input size (default 1 = the sizes of issue 6),
//! `BAKCH_BENCH_QUICK=1` is a run under a minute, `BAKCH_BENCH_SMOKE=1` tiny sizes for CI,
//! `BAKCH_BENCH_REPS` repetitions, `BAKCH_BENCH_API_SECS` seconds per wrk run,
//! `BAKCH_BENCH_DIR` the scratch parent (default `target/bench-scratch`). Per-scenario
//! overrides are listed by `cargo bench --bench e2e -- --help`.
//!
//! Layout: this file holds the options, the dispatch and the report; `harness.rs` the server
//! under test and the timing helpers; `data.rs` the generated inputs; one file per scenario.

mod api_read;
mod concurrent_uploads;
mod data;
mod dedup_series;
mod file_history;
mod harness;
mod push;
mod rebuild_db;
mod replica_sync;
mod thread_tail;
mod upload_archive;
mod upload_single;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use harness::{Scratch, num_cores};

const MIB: f64 = 1024.0 * 1024.0;
// push_many first: its re-push has an absolute goal, and on ext4 without a journal (this VM's
// disk) creating files right after tens of thousands were deleted is slow for minutes (freed
// inodes are skipped), which every scenario before it would leave behind.
const SCENARIOS: [&str; 10] = [
    "push_many",
    "upload_single",
    "upload_archive",
    "api_read",
    "dedup_series",
    "concurrent_uploads",
    "rebuild_db",
    "replica_sync",
    "file_history",
    "thread_tail",
];

type Res<T> = Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--bench")).collect();
    if args.iter().any(|a| a == "--help" || a == "-h" || a == "--list") {
        println!("scenarios: {}", SCENARIOS.join(" "));
        println!("{}", HELP);
        return;
    }
    let names: Vec<&str> = args.iter().filter(|a| !a.starts_with('-')).map(|s| s.as_str()).collect();
    for n in &names {
        if !SCENARIOS.contains(n) {
            eprintln!("unknown scenario '{n}'; known: {}", SCENARIOS.join(" "));
            std::process::exit(2);
        }
    }
    let opts = Opts::from_env();
    println!("bakch e2e benchmarks — {}", machine());
    println!("mode: {}, scale {}, {} repetitions, scratch {}", opts.mode, opts.scale, opts.reps, opts.dir.display());
    let mut failed = Vec::new();
    for name in SCENARIOS {
        if !names.is_empty() && !names.contains(&name) {
            continue;
        }
        println!("\n=== {name}");
        let started = Instant::now();
        let result = match name {
            "upload_single" => upload_single::run(&opts),
            "upload_archive" => upload_archive::run(&opts),
            "api_read" => api_read::run(&opts),
            "dedup_series" => dedup_series::run(&opts),
            "rebuild_db" => rebuild_db::run(&opts),
            "push_many" => push::run(&opts),
            "replica_sync" => replica_sync::run(&opts),
            "file_history" => file_history::run(&opts),
            "thread_tail" => thread_tail::run(&opts),
            _ => concurrent_uploads::run(&opts),
        };
        match result {
            Ok(report) => report.print(started.elapsed()),
            Err(e) => {
                println!("{name}: FAILED: {e}");
                println!("{}", json!({"scenario": name, "completed": false, "error": e}));
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("\nfailed to complete: {}", failed.join(", "));
        std::process::exit(1);
    }
}

const HELP: &str = "\
environment:
  BAKCH_BENCH_SCALE=F        multiply every input size (default 1)
  BAKCH_BENCH_QUICK=1        the whole run in under a minute (scale 0.02, 2 repetitions)
  BAKCH_BENCH_SMOKE=1        tiny sizes, 1 repetition (CI: checks each scenario completes)
  BAKCH_BENCH_REPS=N         repetitions (default 3)
  BAKCH_BENCH_DIR=PATH       scratch parent (default target/bench-scratch); data folders go inside
  BAKCH_BENCH_KEEP=1         keep the scratch folder
  upload_single:      BAKCH_BENCH_SINGLE_MIB (1024)
  upload_archive:     BAKCH_BENCH_ARCHIVE_FILES (20000), BAKCH_BENCH_ARCHIVE_MIB (600)
  api_read:           BAKCH_BENCH_API_TARGETS (1000), BAKCH_BENCH_API_BACKUPS (10000), BAKCH_BENCH_API_SECS (5)
  dedup_series:       BAKCH_BENCH_DEDUP_MIB (200), BAKCH_BENCH_DEDUP_DAYS (30)
  concurrent_uploads: BAKCH_BENCH_CONC_CLIENTS (32), BAKCH_BENCH_CONC_MIB (8)
  rebuild_db:         BAKCH_BENCH_REBUILD_BACKUPS (10000), BAKCH_BENCH_REBUILD_FILES (100)
  push_many:          BAKCH_BENCH_PUSH_FILES (10000), BAKCH_BENCH_PUSH_MIB (1024),
                      BAKCH_BENCH_PUSH_SMALL_FILES (1000000)

  replica_sync:       BAKCH_BENCH_REPLICA_MIB (256), BAKCH_BENCH_REPLICA_FILES (64); needs garage and curl
  file_history:       BAKCH_BENCH_HISTORY_BACKUPS (10000), BAKCH_BENCH_HISTORY_FILES (1000)
  thread_tail:        BAKCH_BENCH_TAIL_ROWS (10000); rounds of BAKCH_BENCH_API_SECS";

// ---------------------------------------------------------------------------------------------
// Options

struct Opts {
    mode: &'static str,
    scale: f64,
    reps: usize,
    api_secs: u64,
    dir: PathBuf,
    keep: bool,
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn flag(name: &str) -> bool {
    std::env::var(name).map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

impl Opts {
    fn from_env() -> Opts {
        let (mode, scale, reps, secs) = if flag("BAKCH_BENCH_SMOKE") {
            ("smoke", 0.002, 1, 1)
        } else if flag("BAKCH_BENCH_QUICK") {
            ("quick", 0.02, 2, 1)
        } else {
            ("full", 1.0, 3, 5)
        };
        let dir = std::env::var_os("BAKCH_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch"));
        Opts {
            mode,
            scale: env_f64("BAKCH_BENCH_SCALE").unwrap_or(scale),
            reps: env_f64("BAKCH_BENCH_REPS").map(|r| r.max(1.0) as usize).unwrap_or(reps),
            api_secs: env_f64("BAKCH_BENCH_API_SECS").map(|s| s.max(1.0) as u64).unwrap_or(secs),
            dir,
            keep: flag("BAKCH_BENCH_KEEP"),
        }
    }

    /// A size: the per-scenario variable if set, else `default` times the scale (at least `min`).
    fn size(&self, var: &str, default: f64, min: f64) -> f64 {
        env_f64(var).unwrap_or((default * self.scale).max(min))
    }

    /// A fresh scratch folder for scenario `name` under `BAKCH_BENCH_DIR`.
    fn scratch(&self, name: &str) -> Res<Scratch> {
        Scratch::create(&self.dir, name, self.keep)
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = num_cores();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        .map(|kb| format!("{:.0} GiB RAM", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, {mem}, Linux {}", kernel.trim())
}

// ---------------------------------------------------------------------------------------------
// Reports

/// One measured quantity with its samples (one per repetition).
struct Row {
    what: String,
    unit: &'static str,
    samples: Vec<f64>,
}

struct Goal {
    text: String,
    met: bool,
    figure: String,
}

struct Report {
    name: &'static str,
    rows: Vec<Row>,
    goals: Vec<Goal>,
    notes: Vec<String>,
    json: Value,
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

impl Report {
    fn new(name: &'static str) -> Report {
        Report { name, rows: Vec::new(), goals: Vec::new(), notes: Vec::new(), json: json!({}) }
    }

    fn row(&mut self, what: impl Into<String>, unit: &'static str, samples: Vec<f64>) {
        self.rows.push(Row { what: what.into(), unit, samples });
    }

    /// The samples of the row named `what`, if there is one.
    fn rows_named(&self, what: &str) -> Option<&[f64]> {
        self.rows.iter().find(|r| r.what == what).map(|r| r.samples.as_slice())
    }

    fn goal(&mut self, text: impl Into<String>, met: bool, figure: impl Into<String>) {
        self.goals.push(Goal { text: text.into(), met, figure: figure.into() });
    }

    fn print(mut self, took: Duration) {
        let w = self.rows.iter().map(|r| r.what.len()).max().unwrap_or(10).max(10);
        let mut out = String::new();
        let _ = writeln!(out, "{:<w$} | {:<8} | {:>10} | samples", "measure", "unit", "median");
        let _ = writeln!(out, "{}-|-{}-|-{}-|-{}", "-".repeat(w), "-".repeat(8), "-".repeat(10), "-".repeat(30));
        for r in &self.rows {
            let samples: Vec<String> = r.samples.iter().map(|x| fmt_num(*x)).collect();
            let _ = writeln!(
                out,
                "{:<w$} | {:<8} | {:>10} | {}",
                r.what,
                r.unit,
                fmt_num(median(&r.samples)),
                samples.join(", ")
            );
        }
        for g in &self.goals {
            let _ = writeln!(out, "goal {}: {} ({})", g.text, if g.met { "MET" } else { "MISSED" }, g.figure);
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        print!("{out}");
        let rows: BTreeMap<String, Value> = self
            .rows
            .iter()
            .map(|r| (r.what.clone(), json!({"unit": r.unit, "median": median(&r.samples), "samples": r.samples})))
            .collect();
        let goals: Vec<Value> =
            self.goals.iter().map(|g| json!({"goal": g.text, "met": g.met, "figure": g.figure})).collect();
        let mut line = json!({
            "scenario": self.name,
            "completed": true,
            "seconds": took.as_secs_f64(),
            "measures": rows,
            "goals": goals,
        });
        if let (Some(l), Value::Object(extra)) = (line.as_object_mut(), self.json.take()) {
            l.extend(extra);
        }
        println!("{line}");
    }
}
