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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bakch");
const MIB: f64 = 1024.0 * 1024.0;
const SCENARIOS: [&str; 5] = ["upload_single", "upload_archive", "api_read", "dedup_series", "concurrent_uploads"];

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
            "upload_single" => upload_single(&opts),
            "upload_archive" => upload_archive(&opts),
            "api_read" => api_read(&opts),
            "dedup_series" => dedup_series(&opts),
            _ => concurrent_uploads(&opts),
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
  concurrent_uploads: BAKCH_BENCH_CONC_CLIENTS (32), BAKCH_BENCH_CONC_MIB (8)";

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

    fn scratch(&self, name: &str) -> Res<Scratch> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("create {}: {e}", self.dir.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&self.dir)
            .map_err(|e| format!("scratch folder: {e}"))?;
        Ok(Scratch { dir: Some(dir), keep: self.keep })
    }
}

/// The scenario's scratch folder; the data folders, target folders and references live inside.
struct Scratch {
    dir: Option<tempfile::TempDir>,
    keep: bool,
}

impl Scratch {
    fn path(&self) -> &Path {
        self.dir.as_ref().expect("scratch").path()
    }
    fn sub(&self, name: &str) -> Res<PathBuf> {
        let p = self.path().join(name);
        std::fs::create_dir_all(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
        Ok(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep
            && let Some(d) = self.dir.take()
        {
            println!("kept {}", d.keep().display());
        }
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
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
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

// ---------------------------------------------------------------------------------------------
// The server under test

/// The release binary serving a fresh data folder, with its resident memory sampled from /proc.
struct Server {
    child: Child,
    url: String,
    client: reqwest::blocking::Client,
    rss: RssSampler,
}

struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    pid: u32,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// VmRSS and VmHWM of a process, in KiB.
fn proc_rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak_kib.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some((rss, hwm)) = proc_rss(pid) {
                    p.fetch_max(rss.max(hwm), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        RssSampler { stop, peak_kib, pid, thread: Some(thread) }
    }

    /// Peak resident memory so far in MiB: the larger of the sampled VmRSS and the kernel's VmHWM.
    fn peak_mib(&self) -> f64 {
        if let Some((rss, hwm)) = proc_rss(self.pid) {
            self.peak_kib.fetch_max(rss.max(hwm), Ordering::Relaxed);
        }
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn free_port() -> Res<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

impl Server {
    fn start(data: &Path) -> Res<Server> {
        let port = free_port()?;
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {BIN}: {e}"))?;
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("bakch exited at start with {status}"));
            }
            if client.get(format!("{url}/api/stats")).send().is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                return Err("bakch did not listen within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let rss = RssSampler::start(child.id());
        Ok(Server { child, url, client, rss })
    }

    fn get(&self, path: &str) -> Res<Value> {
        let resp = self.client.get(format!("{}{path}", self.url)).send().map_err(|e| format!("GET {path}: {e}"))?;
        let status = resp.status();
        let body: Value = resp.json().map_err(|e| format!("GET {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {body}"));
        }
        Ok(body)
    }

    /// Creates a target; returns its id.
    fn create_target(&self, n: usize, kind: &str, location: &Path) -> Res<String> {
        let body = json!({
            "name": format!("bench target {n}"),
            "backup_type": kind,
            "recycle_criteria": "none",
            "recycle_value": 0,
            "recycle_action": "recycle",
            "location": location.join(format!("t{n}")).to_string_lossy(),
            "name_template": format!("b{n}-$I"),
            "deduplicate": false,
            "alias": null,
            "min_backups": 0,
            "tags": ["bench"],
        });
        let resp = self
            .client
            .post(format!("{}/api/target", self.url))
            .json(&body)
            .send()
            .map_err(|e| format!("create target: {e}"))?;
        let status = resp.status();
        let reply: Value = resp.json().map_err(|e| format!("create target: {e}"))?;
        reply["id"].as_str().map(String::from).ok_or_else(|| format!("create target: {status}: {reply}"))
    }

    /// Uploads a file with curl (a streaming client in its own process); returns the job id.
    fn upload_file(&self, target: &str, file: &Path, name: &str) -> Res<i64> {
        curl_upload(&self.url, target, file, name)
    }

    /// Waits until every job is FINISHED; an ERROR job fails the scenario.
    fn wait_jobs(&self, ids: &[i64]) -> Res<()> {
        let mut left: HashSet<i64> = ids.iter().copied().collect();
        let started = Instant::now();
        while !left.is_empty() {
            let jobs = self.get("/api/jobs")?;
            for j in jobs["delayed"].as_array().into_iter().flatten() {
                let Some(id) = j["id"].as_i64() else { continue };
                if !left.contains(&id) {
                    continue;
                }
                match j["status"].as_str() {
                    Some("FINISHED") => {
                        left.remove(&id);
                    }
                    Some("ERROR") => return Err(format!("job {id} ended in ERROR: {}", j["error"])),
                    _ => {}
                }
            }
            if started.elapsed() > Duration::from_secs(3600) {
                return Err(format!("jobs {left:?} not finished after an hour"));
            }
            if !left.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }

    fn peak_rss_mib(&self) -> f64 {
        self.rss.peak_mib()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl_upload(url: &str, target: &str, file: &Path, name: &str) -> Res<i64> {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-H", "Expect:", "-F", "manual=1", "-F"])
        .arg(format!("backup_file=@{};filename={name}", file.display()))
        .arg(format!("{url}/api/target/{target}/upload"))
        .output()
        .map_err(|e| format!("run curl (install it: apt-get install curl): {e}"))?;
    let body = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("upload of {name} failed: {} {body}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("upload reply {body}: {e}"))?;
    v["job_id"].as_i64().ok_or_else(|| format!("upload reply without job_id: {body}"))
}

// ---------------------------------------------------------------------------------------------
// References and tools

/// Fails loudly when a reference tool is missing (CI installs them; nothing is skipped).
fn need(tool: &str, package: &str) -> Res<()> {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok { Ok(()) } else { Err(format!("'{tool}' is missing: apt-get install {package}")) }
}

/// Runs a shell command and returns its wall time in seconds.
fn timed_sh(script: &str) -> Res<f64> {
    let start = Instant::now();
    let out = Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("sh -c {script}: {e}"))?;
    let took = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("`{script}` failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(took)
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// Runs bakch and its reference once each, alternating which goes first per repetition so that
/// neither always meets a warmer or colder machine; returns (bakch, reference).
fn interleaved<A, B>(rep: usize, bakch: impl FnOnce() -> Res<A>, reference: impl FnOnce() -> Res<B>) -> Res<(A, B)> {
    if rep.is_multiple_of(2) {
        let a = bakch()?;
        Ok((a, reference()?))
    } else {
        let b = reference()?;
        Ok((bakch()?, b))
    }
}

/// One upload on a fresh server and data folder, timed until its job is FINISHED; returns the
/// seconds and the server's peak RSS in MiB.
fn time_one_upload(s: &Scratch, rep: usize, kind: &str, input: &Path, name: &str) -> Res<(f64, f64)> {
    let data = s.path().join(format!("data{rep}"));
    let server = Server::start(&data)?;
    let target = server.create_target(0, kind, &s.sub("targets")?)?;
    let start = Instant::now();
    let job = server.upload_file(&target, input, name)?;
    server.wait_jobs(&[job])?;
    let took = start.elapsed().as_secs_f64();
    let peak = server.peak_rss_mib();
    drop(server);
    remove(&data);
    remove(&s.path().join("targets"));
    Ok((took, peak))
}

fn remove(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
    let _ = std::fs::remove_file(p);
}

/// Bytes the folders really take on disk (allocated blocks), each inode counted once.
fn allocated_bytes(roots: &[&Path]) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack: Vec<PathBuf> = roots.iter().map(|p| p.to_path_buf()).collect();
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if seen.insert((meta.dev(), meta.ino())) {
            total += meta.blocks() * 512;
        }
        if meta.is_dir()
            && let Ok(rd) = std::fs::read_dir(&p)
        {
            stack.extend(rd.flatten().map(|e| e.path()));
        }
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Deterministic inputs

const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
    "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
    "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no",
    "backup", "server", "file", "folder", "target", "photo", "invoice", "meeting", "tomorrow", "project", "report",
    "config", "value", "error", "return", "function", "string", "number", "table", "select", "where", "from", "insert",
    "update", "delete", "kernel", "module", "driver", "package", "version", "release", "build", "test", "garden",
    "recipe", "holiday", "mountain", "river", "letter", "account", "balance", "monday", "friday",
];

/// Bytes of `size` from `seed`: words and lines when `text`, random bytes otherwise. A longer
/// size extends a shorter one (the same seed gives the same prefix), as a growing mailbox does.
fn content(seed: u64, size: usize, text: bool) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    if !text {
        let mut v = vec![0u8; size];
        rng.fill_bytes(&mut v);
        return v;
    }
    let mut v = Vec::with_capacity(size + 16);
    let mut col = 0;
    while v.len() < size {
        let r = rng.next_u32();
        let w = WORDS[(r as usize) % WORDS.len()];
        v.extend_from_slice(w.as_bytes());
        col += w.len() + 1;
        if col > 72 || r >> 28 == 0 {
            v.push(b'\n');
            col = 0;
        } else {
            v.push(b' ');
        }
        if r >> 24 == 1 {
            let _ = write!(v, "{} ", r & 0xffff);
        }
    }
    v.truncate(size);
    v
}

/// A random file of `bytes`, written in 1 MiB blocks.
fn random_file(path: &Path, bytes: u64, seed: u64) -> Res<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let f = std::fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        w.write_all(&buf[..n]).map_err(|e| format!("write {}: {e}", path.display()))?;
        left -= n as u64;
    }
    w.flush().map_err(|e| format!("write {}: {e}", path.display()))
}

/// File sizes summing to `total`: mostly small files, a few large ones (like a real tree).
fn sizes(rng: &mut StdRng, count: usize, total: u64) -> Vec<u64> {
    let weights: Vec<f64> = (0..count)
        .map(|_| {
            let (lo, hi): (f64, f64) = if rng.random_bool(0.03) { (256e3, 16e6) } else { (100.0, 64e3) };
            (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| ((w / sum) * total as f64).max(1.0) as u64).collect()
}

/// A path in a tree of about 20 files per folder, up to three levels deep.
fn tree_path(rng: &mut StdRng, i: usize, count: usize) -> String {
    let folders = (count / 20).max(1);
    let f = rng.random_range(0..folders);
    let (a, b, c) = (f % 10, (f / 10) % 10, f / 100);
    let ext = ["txt", "md", "rs", "json", "jpg", "bin", "pdf", "csv"][i % 8];
    match f % 3 {
        0 => format!("dir{a}/file{i}.{ext}"),
        1 => format!("dir{a}/sub{b}/file{i}.{ext}"),
        _ => format!("dir{a}/sub{b}/deep{c}/file{i}.{ext}"),
    }
}

// ---------------------------------------------------------------------------------------------
// upload_single

fn upload_single(o: &Opts) -> Res<Report> {
    need("b3sum", "b3sum")?;
    need("curl", "curl")?;
    let bytes = (o.size("BAKCH_BENCH_SINGLE_MIB", 1024.0, 1.0) * MIB) as u64;
    let s = o.scratch("upload_single")?;
    let input = s.path().join("input.bin");
    let t = Instant::now();
    random_file(&input, bytes, 1)?;
    println!("input: {:.0} MiB random, generated in {:.1} s", bytes as f64 / MIB, t.elapsed().as_secs_f64());
    let mib = bytes as f64 / MIB;
    let (mut bakch, mut cp, mut b3, mut r_cp, mut r_b3, mut rss) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for rep in 0..o.reps {
        let refdir = s.sub("ref")?;
        let copy = refdir.join("copy.bin");
        let run_bakch = || -> Res<f64> {
            let (took, peak) = time_one_upload(&s, rep, "single", &input, "input.bin")?;
            rss.push(peak);
            Ok(took)
        };
        let reference = |cp: &mut Vec<f64>, b3: &mut Vec<f64>| -> Res<(f64, f64)> {
            let c = timed_sh(&format!("cp {} {} && sync {} {}", q(&input), q(&copy), q(&copy), q(&refdir)))?;
            remove(&copy);
            let h = timed_sh(&format!("b3sum {}", q(&input)))?;
            cp.push(mib / c);
            b3.push(mib / h);
            Ok((c, h))
        };
        let (tb, (tc, th)) = interleaved(rep, run_bakch, || reference(&mut cp, &mut b3))?;
        bakch.push(mib / tb);
        r_cp.push(tc / tb);
        r_b3.push(th / tb);
        println!("rep {rep}: bakch {:.0} MiB/s, cp+sync {:.0} MiB/s, b3sum {:.0} MiB/s", mib / tb, mib / tc, mib / th);
    }
    let mut r = Report::new("upload_single");
    let (ratio, peak) = (median(&r_cp), rss.iter().cloned().fold(0.0, f64::max));
    r.row("bakch upload until FINISHED", "MiB/s", bakch);
    r.row("cp + sync", "MiB/s", cp);
    r.row("b3sum", "MiB/s", b3);
    r.row("ratio bakch / cp+sync", "x", r_cp);
    r.row("ratio bakch / b3sum", "x", r_b3);
    r.row("bakch peak RSS", "MiB", rss);
    r.goal(">= 0.9x cp+sync MiB/s", ratio >= 0.9, format!("{ratio:.2}x"));
    r.goal("peak RSS <= 64 MiB", peak <= 64.0, format!("{peak:.1} MiB"));
    r.json = json!({"input_bytes": bytes});
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// upload_archive

/// Writes a .tar.gz of `count` files totalling `total` bytes (60 % text, 40 % binary).
fn archive(path: &Path, count: usize, total: u64, seed: u64) -> Res<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let sizes = sizes(&mut rng, count, total);
    let f = std::fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::with_capacity(1 << 20, f), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut written = 0;
    for (i, size) in sizes.iter().enumerate() {
        let name = tree_path(&mut rng, i, count);
        let bytes = content(seed ^ (i as u64 + 1) << 8, *size as usize, rng.random_bool(0.6));
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, &name, bytes.as_slice()).map_err(|e| format!("tar: {e}"))?;
        written += bytes.len() as u64;
    }
    let gz = tar.into_inner().map_err(|e| format!("tar: {e}"))?;
    let mut w = gz.finish().map_err(|e| format!("gzip: {e}"))?;
    w.flush().map_err(|e| format!("write: {e}"))?;
    Ok(written)
}

fn upload_archive(o: &Opts) -> Res<Report> {
    need("tar", "tar")?;
    need("gzip", "gzip")?;
    need("curl", "curl")?;
    let count = o.size("BAKCH_BENCH_ARCHIVE_FILES", 20_000.0, 20.0) as usize;
    let total = (o.size("BAKCH_BENCH_ARCHIVE_MIB", 600.0, 1.0) * MIB) as u64;
    let s = o.scratch("upload_archive")?;
    let input = s.path().join("input.tar.gz");
    let t = Instant::now();
    let raw = archive(&input, count, total, 2)?;
    let packed = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
    println!(
        "input: {count} files, {:.0} MiB ({:.0} MiB as .tar.gz), generated in {:.1} s",
        raw as f64 / MIB,
        packed as f64 / MIB,
        t.elapsed().as_secs_f64()
    );
    let (mut bakch, mut reference, mut ratio, mut rss) = (vec![], vec![], vec![], vec![]);
    for rep in 0..o.reps {
        let run_bakch = |rss: &mut Vec<f64>| -> Res<f64> {
            let (took, peak) = time_one_upload(&s, rep, "multi", &input, "input.tar.gz")?;
            rss.push(peak);
            Ok(took)
        };
        let run_ref = || -> Res<f64> {
            let out = s.sub("ref")?;
            let took = timed_sh(&format!("tar xzf {} -C {} && sync -f {}", q(&input), q(&out), q(&out)))?;
            remove(&out);
            Ok(took)
        };
        let (tb, tr) = interleaved(rep, || run_bakch(&mut rss), run_ref)?;
        println!("rep {rep}: bakch {tb:.2} s, tar xzf + sync {tr:.2} s");
        bakch.push(tb);
        reference.push(tr);
        ratio.push(tb / tr);
    }
    let mut r = Report::new("upload_archive");
    let (med, peak) = (median(&ratio), rss.iter().cloned().fold(0.0, f64::max));
    r.row("bakch upload until FINISHED", "s", bakch);
    r.row("tar xzf + sync", "s", reference);
    r.row("ratio bakch / tar", "x", ratio);
    r.row("bakch peak RSS", "MiB", rss);
    r.goal("<= 1.5x tar xzf + sync time", med <= 1.5, format!("{med:.2}x"));
    r.goal("peak RSS <= 128 MiB", peak <= 128.0, format!("{peak:.1} MiB"));
    r.json = json!({"files": count, "raw_bytes": raw, "archive_bytes": packed});
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// api_read

struct Wrk {
    rps: f64,
    p99_ms: f64,
    errors: u64,
}

fn parse_ms(s: &str) -> Option<f64> {
    let (num, mul) = if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().ok().map(|n| n * mul)
}

fn run_wrk(url: &str, conns: usize, secs: u64, script: &Path) -> Res<Wrk> {
    let threads = conns.min(2);
    let out = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &conns.to_string(), "-d", &format!("{secs}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .map_err(|e| format!("run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {text} {}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut w = Wrk { rps: f64::NAN, p99_ms: f64::NAN, errors: 0 };
    for line in text.lines().map(str::trim) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("Requests/sec:") {
            w.rps = parts.get(1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        } else if line.starts_with("99%") {
            w.p99_ms = parts.get(1).and_then(|v| parse_ms(v)).unwrap_or(f64::NAN);
        } else if line.starts_with("Non-2xx or 3xx responses:") {
            w.errors += parts.last().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        } else if line.starts_with("Socket errors:") {
            // "Socket errors: connect 0, read 0, write 0, timeout 0"
            w.errors += line
                .split(',')
                .filter_map(|p| p.split_whitespace().last().and_then(|v| v.parse::<u64>().ok()))
                .sum::<u64>();
        }
    }
    if !w.rps.is_finite() {
        return Err(format!("could not read wrk's output: {text}"));
    }
    Ok(w)
}

fn api_read(o: &Opts) -> Res<Report> {
    need("wrk", "wrk")?;
    let targets = o.size("BAKCH_BENCH_API_TARGETS", 1000.0, 10.0) as usize;
    let backups = o.size("BAKCH_BENCH_API_BACKUPS", 10_000.0, 20.0) as usize;
    let s = o.scratch("api_read")?;
    let server = Server::start(&s.sub("data")?)?;
    let locations = s.sub("targets")?;
    let t = Instant::now();
    let mut ids = Vec::with_capacity(targets);
    for n in 0..targets {
        ids.push(server.create_target(n, if n % 2 == 0 { "single" } else { "multi" }, &locations)?);
    }
    let created = t.elapsed().as_secs_f64();
    // Small distinct files from 8 client threads; the server's own job workers build them.
    let t = Instant::now();
    let next = AtomicUsize::new(0);
    let failure = std::sync::Mutex::new(None::<String>);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= backups {
                        break;
                    }
                    let target = &ids[i % targets];
                    let part = reqwest::blocking::multipart::Part::bytes(content(i as u64, 200 + i % 800, true))
                        .file_name(format!("file{i}.txt"));
                    let form = reqwest::blocking::multipart::Form::new().text("manual", "0").part("backup_file", part);
                    let res = client.post(format!("{}/api/target/{target}/upload", server.url)).multipart(form).send();
                    match res {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => {
                            *failure.lock().unwrap() = Some(format!("upload {i}: {}", r.status()));
                            break;
                        }
                        Err(e) => {
                            *failure.lock().unwrap() = Some(format!("upload {i}: {e}"));
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    let started = Instant::now();
    loop {
        let stats = server.get("/api/stats")?;
        if stats["total_backups"].as_u64() == Some(backups as u64) {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(format!("only {} of {backups} backups after an hour", stats["total_backups"]));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let seeded = t.elapsed().as_secs_f64();
    println!(
        "seeded {targets} targets in {created:.1} s, {backups} backups in {seeded:.1} s ({:.0} backups/s)",
        backups as f64 / seeded
    );

    let page_size = 10;
    let pages = targets.div_ceil(page_size);
    let scripts = s.sub("wrk")?;
    let quoted: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
    let endpoints = [
        (
            "GET /api/target?page=N",
            format!(
                "math.randomseed(1)\nrequest = function() return wrk.format(\"GET\", \"/api/target?page=\" .. math.random(1, {pages})) end\n"
            ),
        ),
        (
            "GET /api/target/<id>",
            format!(
                "math.randomseed(2)\nlocal ids = {{{}}}\nrequest = function() return wrk.format(\"GET\", \"/api/target/\" .. ids[math.random(1, #ids)]) end\n",
                quoted.join(",")
            ),
        ),
        ("GET /api/stats", "request = function() return wrk.format(\"GET\", \"/api/stats\") end\n".to_string()),
    ];
    let mut rows: Vec<(String, Vec<f64>, Vec<f64>, u64)> = Vec::new();
    for (name, script) in &endpoints {
        let path = scripts.join(format!("{}.lua", rows.len()));
        std::fs::write(&path, script).map_err(|e| format!("write {}: {e}", path.display()))?;
        for conns in [4, 64] {
            rows.push((format!("{name} c={conns}|{}", path.display()), vec![], vec![], 0));
        }
    }
    for rep in 0..o.reps {
        for row in rows.iter_mut() {
            let (label, script) = row.0.split_once('|').expect("label");
            let conns: usize = label.rsplit("c=").next().and_then(|c| c.parse().ok()).unwrap_or(4);
            let w = run_wrk(&server.url, conns, o.api_secs, Path::new(script))?;
            println!("rep {rep}: {label}: {:.0} req/s, p99 {:.2} ms, {} errors", w.rps, w.p99_ms, w.errors);
            row.1.push(w.rps);
            row.2.push(w.p99_ms);
            row.3 += w.errors;
        }
    }
    let mut r = Report::new("api_read");
    let peak = server.peak_rss_mib();
    let mut all_met = (true, true);
    let mut worst = (f64::INFINITY, 0.0f64);
    let mut errors = 0;
    for (label, rps, p99, errs) in rows {
        let label = label.split_once('|').map(|(l, _)| l.to_string()).unwrap_or_default();
        if label.ends_with("c=64") {
            let (m_rps, m_p99) = (median(&rps), median(&p99));
            all_met.0 &= m_rps >= 10_000.0;
            all_met.1 &= m_p99 <= 10.0;
            worst.0 = worst.0.min(m_rps);
            worst.1 = worst.1.max(m_p99);
        }
        errors += errs;
        r.row(format!("{label} throughput"), "req/s", rps);
        r.row(format!("{label} p99"), "ms", p99);
    }
    r.row("bakch peak RSS", "MiB", vec![peak]);
    r.goal(">= 10,000 req/s at 64 connections (each endpoint)", all_met.0, format!("slowest {:.0} req/s", worst.0));
    r.goal("p99 <= 10 ms at 64 connections", all_met.1, format!("worst {:.2} ms", worst.1));
    r.goal("no errors", errors == 0, format!("{errors} errors"));
    r.notes.push(format!("wrk runs on the same {} cores as the server", num_cores()));
    r.json = json!({"targets": targets, "backups": backups, "seed_seconds": seeded, "errors": errors});
    Ok(r)
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// dedup_series

/// One file of the simulated home folder; its content is a function of (seed, size, text).
#[derive(Clone)]
struct HomeFile {
    seed: u64,
    size: usize,
    text: bool,
}

struct Home {
    root: PathBuf,
    files: BTreeMap<String, HomeFile>,
    rng: StdRng,
    next_seed: u64,
    /// Every distinct content seen in any state: blake3 -> size.
    distinct: HashMap<[u8; 32], u64>,
}

const MAILBOX: &str = "Mail/inbox.mbox";

impl Home {
    fn write(&mut self, path: &str) -> Res<()> {
        let f = &self.files[path];
        let bytes = content(f.seed, f.size, f.text);
        self.distinct.insert(*blake3::hash(&bytes).as_bytes(), bytes.len() as u64);
        let full = self.root.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        std::fs::write(&full, bytes).map_err(|e| format!("write {}: {e}", full.display()))
    }

    fn seed(&mut self) -> u64 {
        self.next_seed += 1;
        self.next_seed
    }

    fn create(root: PathBuf, total: u64, files: usize) -> Res<Home> {
        let mut home = Home {
            root,
            files: BTreeMap::new(),
            rng: StdRng::seed_from_u64(4),
            next_seed: 1000,
            distinct: HashMap::new(),
        };
        let mailbox = total / 20;
        let sizes = sizes(&mut home.rng, files, total - mailbox);
        for (i, size) in sizes.into_iter().enumerate() {
            let path = tree_path(&mut home.rng, i, files);
            let f = HomeFile { seed: home.seed(), size: size as usize, text: home.rng.random_bool(0.6) };
            home.files.insert(path, f);
        }
        let seed = home.seed();
        home.files.insert(MAILBOX.into(), HomeFile { seed, size: mailbox as usize, text: true });
        let paths: Vec<String> = home.files.keys().cloned().collect();
        for p in paths {
            home.write(&p)?;
        }
        Ok(home)
    }

    /// One day: about 2 % of the files edited, added, deleted or renamed, and mail arrives.
    fn day(&mut self, total: u64) -> Res<()> {
        let changes = (self.files.len() / 50).max(4);
        for c in 0..changes {
            let keys: Vec<&String> = self.files.keys().filter(|k| k.as_str() != MAILBOX).collect();
            let pick = keys[self.rng.random_range(0..keys.len())].clone();
            match c % 5 {
                0 | 1 => {
                    // An edit: new content, roughly the same size.
                    let seed = self.seed();
                    let f = self.files.get_mut(&pick).expect("file");
                    f.seed = seed;
                    f.size = (f.size as f64 * (0.9 + 0.2 * self.rng.random::<f64>())) as usize + 1;
                    self.write(&pick)?;
                }
                2 => {
                    let size = (self.files[&pick].size / 2).max(100);
                    let path = format!("{}.new{}", pick, self.next_seed);
                    let f = HomeFile { seed: self.seed(), size, text: self.rng.random_bool(0.6) };
                    self.files.insert(path.clone(), f);
                    self.write(&path)?;
                }
                3 => {
                    self.files.remove(&pick);
                    std::fs::remove_file(self.root.join(&pick)).map_err(|e| format!("remove {pick}: {e}"))?;
                }
                _ => {
                    let to = format!("{pick}.renamed{}", self.next_seed);
                    self.next_seed += 1;
                    let f = self.files.remove(&pick).expect("file");
                    self.files.insert(to.clone(), f);
                    std::fs::rename(self.root.join(&pick), self.root.join(&to))
                        .map_err(|e| format!("rename {pick}: {e}"))?;
                }
            }
        }
        let grow = (total / 400).max(1) as usize;
        self.files.get_mut(MAILBOX).expect("mailbox").size += grow;
        self.write(MAILBOX)
    }

    /// The current state as an uncompressed tar, in path order.
    fn tar(&self, out: &Path) -> Res<()> {
        let f = std::fs::File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
        let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
        for path in self.files.keys() {
            tar.append_path_with_name(self.root.join(path), path).map_err(|e| format!("tar {path}: {e}"))?;
        }
        tar.into_inner().and_then(|mut w| w.flush()).map_err(|e| format!("tar: {e}"))
    }

    fn ideal(&self) -> u64 {
        self.distinct.values().sum()
    }
}

fn dedup_series(o: &Opts) -> Res<Report> {
    need("restic", "restic")?;
    need("curl", "curl")?;
    let total = (o.size("BAKCH_BENCH_DEDUP_MIB", 200.0, 1.0) * MIB) as u64;
    let days = env_f64("BAKCH_BENCH_DEDUP_DAYS").map(|d| d.max(2.0) as usize).unwrap_or(match o.mode {
        "smoke" => 3,
        "quick" => 5,
        _ => 30,
    });
    // About 15 files per MiB, like a home folder of documents, photos and code.
    let files = ((total as f64 / MIB) * 15.0).max(50.0) as usize;
    let s = o.scratch("dedup_series")?;
    let t = Instant::now();
    let mut home = Home::create(s.sub("home")?, total, files)?;
    println!("input: {} files, {:.0} MiB, generated in {:.1} s", files, total as f64 / MIB, t.elapsed().as_secs_f64());
    let server = Server::start(&s.sub("data")?)?;
    let targets = s.sub("targets")?;
    let target = server.create_target(0, "multi", &targets)?;
    let repo = s.path().join("restic-repo");
    let restic = |args: &str| format!("RESTIC_PASSWORD=bench restic --no-cache -q -r {} {args}", q(&repo));
    timed_sh(&restic("init"))?;
    let tar_path = s.path().join("day.tar");
    let (mut bakch, mut rest, mut ratio, mut tar_secs) = (vec![], vec![], vec![], vec![]);
    for day in 0..days {
        if day > 0 {
            home.day(total)?;
        }
        let t = Instant::now();
        home.tar(&tar_path)?;
        tar_secs.push(t.elapsed().as_secs_f64());
        let run_bakch = || -> Res<f64> {
            let start = Instant::now();
            let job = server.upload_file(&target, &tar_path, &format!("home-day{day}.tar"))?;
            server.wait_jobs(&[job])?;
            Ok(start.elapsed().as_secs_f64())
        };
        let run_restic = || timed_sh(&format!("cd {} && {}", q(s.path()), restic("backup home")));
        let (tb, tr) = if day % 2 == 0 {
            let tb = run_bakch()?;
            (tb, run_restic()?)
        } else {
            let tr = run_restic()?;
            (run_bakch()?, tr)
        };
        bakch.push(tb);
        rest.push(tr);
        ratio.push(tb / tr);
    }
    let stats = server.get("/api/stats")?;
    let api_used = stats["disk_used"].as_u64().unwrap_or(0);
    let data = s.path().join("data");
    let bakch_alloc = allocated_bytes(&[&data, &targets]);
    let restic_alloc = allocated_bytes(&[&repo]);
    let ideal = home.ideal();
    let (sum_b, sum_r): (f64, f64) = (bakch.iter().sum(), rest.iter().sum());
    println!(
        "{days} days: bakch {sum_b:.1} s, restic {sum_r:.1} s; ideal {:.1} MiB, bakch {:.1} MiB on disk ({:.1} MiB by /api/stats), restic {:.1} MiB",
        ideal as f64 / MIB,
        bakch_alloc as f64 / MIB,
        api_used as f64 / MIB,
        restic_alloc as f64 / MIB
    );
    let mut r = Report::new("dedup_series");
    let peak = server.peak_rss_mib();
    let disk_ratio = bakch_alloc as f64 / ideal as f64;
    r.row("bakch upload until FINISHED, per day", "s", bakch);
    r.row("restic backup, per day", "s", rest);
    r.row("ratio bakch / restic, per day", "x", ratio);
    r.row("making the day's tar (not timed above)", "s", tar_secs);
    r.row("bakch total time", "s", vec![sum_b]);
    r.row("restic total time", "s", vec![sum_r]);
    r.row("ideal whole-file dedup size", "MiB", vec![ideal as f64 / MIB]);
    r.row("bakch disk used (allocated: store, db, target folders)", "MiB", vec![bakch_alloc as f64 / MIB]);
    r.row("bakch disk_used (/api/stats)", "MiB", vec![api_used as f64 / MIB]);
    r.row("restic repository (allocated)", "MiB", vec![restic_alloc as f64 / MIB]);
    r.row("bakch peak RSS", "MiB", vec![peak]);
    r.goal("disk used <= 1.05x ideal whole-file size", disk_ratio <= 1.05, format!("{disk_ratio:.3}x"));
    r.goal("total time <= restic's", sum_b <= sum_r, format!("{:.2}x", sum_b / sum_r));
    r.json = json!({
        "days": days, "files": files, "home_bytes": total, "ideal_bytes": ideal,
        "bakch_allocated_bytes": bakch_alloc, "bakch_api_disk_used": api_used, "restic_allocated_bytes": restic_alloc,
    });
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// concurrent_uploads

fn concurrent_uploads(o: &Opts) -> Res<Report> {
    need("curl", "curl")?;
    let clients = env_f64("BAKCH_BENCH_CONC_CLIENTS").map(|c| c.max(1.0) as usize).unwrap_or(32);
    let bytes = (o.size("BAKCH_BENCH_CONC_MIB", 8.0, 0.05) * MIB) as u64;
    let s = o.scratch("concurrent_uploads")?;
    let inputs = s.sub("inputs")?;
    let files: Vec<PathBuf> = (0..clients).map(|i| inputs.join(format!("f{i:02}.bin"))).collect();
    for (i, f) in files.iter().enumerate() {
        random_file(f, bytes, 100 + i as u64)?;
    }
    let mib = (bytes * clients as u64) as f64 / MIB;
    println!("input: {clients} files of {:.1} MiB", bytes as f64 / MIB);
    let (mut bakch, mut reference, mut ratio, mut rss) = (vec![], vec![], vec![], vec![]);
    let mut errors = 0usize;
    for rep in 0..o.reps {
        let mut run_bakch = |rss: &mut Vec<f64>| -> Res<f64> {
            let data = s.path().join(format!("data{rep}"));
            let server = Server::start(&data)?;
            let target = server.create_target(0, "single", &s.sub("targets")?)?;
            let start = Instant::now();
            let results: Vec<Res<i64>> = std::thread::scope(|scope| {
                let handles: Vec<_> = files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let (url, target) = (&server.url, &target);
                        scope.spawn(move || curl_upload(url, target, f, &format!("f{i}.bin")))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("client panicked".into()))).collect()
            });
            let mut jobs = Vec::new();
            for r in results {
                match r {
                    Ok(j) => jobs.push(j),
                    Err(e) => {
                        errors += 1;
                        println!("upload error: {e}");
                    }
                }
            }
            if let Err(e) = server.wait_jobs(&jobs) {
                errors += 1;
                println!("job error: {e}");
            }
            let took = start.elapsed().as_secs_f64();
            rss.push(server.peak_rss_mib());
            drop(server);
            remove(&data);
            remove(&s.path().join("targets"));
            Ok(took)
        };
        let run_ref = || -> Res<f64> {
            let out = s.sub("ref")?;
            let took = timed_sh(&format!("cp {}/* {}/ && sync {}/* {}", q(&inputs), q(&out), q(&out), q(&out)))?;
            remove(&out);
            Ok(took)
        };
        let (tb, tr) = interleaved(rep, || run_bakch(&mut rss), run_ref)?;
        println!("rep {rep}: bakch {:.0} MiB/s, cp + sync {:.0} MiB/s", mib / tb, mib / tr);
        bakch.push(mib / tb);
        reference.push(mib / tr);
        ratio.push(tr / tb);
    }
    let mut r = Report::new("concurrent_uploads");
    let (med, peak) = (median(&ratio), rss.iter().cloned().fold(0.0, f64::max));
    r.row(format!("bakch, {clients} clients at once, until all FINISHED"), "MiB/s", bakch);
    r.row("cp + sync of the same files", "MiB/s", reference);
    r.row("ratio bakch / cp+sync", "x", ratio);
    r.row("bakch peak RSS", "MiB", rss);
    r.goal("0 errors", errors == 0, format!("{errors} errors"));
    r.goal(">= 0.5x cp+sync MiB/s", med >= 0.5, format!("{med:.2}x"));
    r.json = json!({"clients": clients, "file_bytes": bytes, "errors": errors, "peak_rss_mib": peak});
    if errors > 0 {
        // Errors are a result, not a failure to complete; they are in the table and the JSON.
        r.notes.push(format!("{errors} uploads or jobs failed"));
    }
    Ok(r)
}
