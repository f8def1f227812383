//! The benches' one harness: the server under test on a free loopback port with a data folder
//! inside the scenario's scratch folder, its RSS sampler, scratch folders, curl uploads, waiting
//! for jobs, interleaving with the reference and the timing helpers.
//!
//! Why not `tests/common/mod.rs`: its server lives in the system temp folder (a bench's data folder
//! must share the scratch filesystem with the reference), it panics where a scenario must return
//! an error and let the others run, it starts bakch with `BAKCH_LOG=info` and brings `chaos.rs`.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Res;

pub const BIN: &str = env!("CARGO_BIN_EXE_bakch");

// ---------------------------------------------------------------------------------------------
// Scratch folders

/// The scenario's scratch folder; the data folders, target folders and references live inside.
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
    keep: bool,
}

impl Scratch {
    /// A fresh folder `<parent>/<name>-XXXX`; `keep` leaves it behind (and says where).
    pub fn create(parent: &Path, name: &str, keep: bool) -> Res<Scratch> {
        std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(parent)
            .map_err(|e| format!("scratch folder: {e}"))?;
        Ok(Scratch { dir: Some(dir), keep })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("scratch").path()
    }
    pub fn sub(&self, name: &str) -> Res<PathBuf> {
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

// ---------------------------------------------------------------------------------------------
// The server under test

/// The release binary serving a fresh data folder, with its resident memory sampled from /proc.
pub struct Server {
    child: Child,
    pub url: String,
    client: reqwest::blocking::Client,
    rss: RssSampler,
}

pub struct RssSampler {
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
    pub fn start(pid: u32) -> RssSampler {
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
    pub fn peak_mib(&self) -> f64 {
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
    pub fn start(data: &Path) -> Res<Server> {
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

    pub fn get(&self, path: &str) -> Res<Value> {
        let resp = self.client.get(format!("{}{path}", self.url)).send().map_err(|e| format!("GET {path}: {e}"))?;
        let status = resp.status();
        let body: Value = resp.json().map_err(|e| format!("GET {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {body}"));
        }
        Ok(body)
    }

    /// Creates a target; returns its id.
    pub fn create_target(&self, n: usize, kind: &str, location: &Path) -> Res<String> {
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
    pub fn upload_file(&self, target: &str, file: &Path, name: &str) -> Res<i64> {
        curl_upload(&self.url, target, file, name)
    }

    /// Waits until every job is FINISHED; an ERROR job fails the scenario.
    pub fn wait_jobs(&self, ids: &[i64]) -> Res<()> {
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

    pub fn peak_rss_mib(&self) -> f64 {
        self.rss.peak_mib()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn curl_upload(url: &str, target: &str, file: &Path, name: &str) -> Res<i64> {
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
pub fn need(tool: &str, package: &str) -> Res<()> {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok { Ok(()) } else { Err(format!("'{tool}' is missing: apt-get install {package}")) }
}

/// Runs a shell command and returns its wall time in seconds.
pub fn timed_sh(script: &str) -> Res<f64> {
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

pub fn q(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// Runs bakch and its reference once each, alternating which goes first per repetition so that
/// neither always meets a warmer or colder machine; returns (bakch, reference).
pub fn interleaved<A, B>(
    rep: usize,
    bakch: impl FnOnce() -> Res<A>,
    reference: impl FnOnce() -> Res<B>,
) -> Res<(A, B)> {
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
pub fn time_one_upload(s: &Scratch, rep: usize, kind: &str, input: &Path, name: &str) -> Res<(f64, f64)> {
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

pub fn remove(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
    let _ = std::fs::remove_file(p);
}

/// Bytes the folders really take on disk (allocated blocks), each inode counted once.
pub fn allocated_bytes(roots: &[&Path]) -> u64 {
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

pub fn num_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
}
