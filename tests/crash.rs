//! Crash tests: the real binary is killed with SIGKILL at random moments during uploads,
//! archive uploads, sequential uploads, recycle, restore, delete, folder moves after an edit,
//! and garbage collection; after every restart an invariant checker proves nothing
//! acknowledged was lost and nothing half-done is visible.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{TestServer, names, poll, tar_gz, tree};
use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};

/// At least this many kills per run, as long as the time budget allows.
const KILLS: usize = 110;
/// The whole test stops starting new rounds after this long.
const BUDGET: Duration = Duration::from_secs(240);

/// A small deterministic generator, so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Random bytes, of a random length below `max`.
    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let len = self.below(max) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The whole-backup hash of a tree, by the rule bakch documents (sorted `path NUL blob NUL size LF`).
fn tree_hash(files: &[(String, Vec<u8>)]) -> String {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = blake3::Hasher::new();
    for (path, bytes) in sorted {
        h.update(path.as_bytes());
        h.update(b"\0");
        h.update(hex(bytes).as_bytes());
        h.update(b"\0");
        h.update(bytes.len().to_string().as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// What a request thread reports back: an acknowledged upload's job id and the hash its
/// backup must have.
type Ack = Option<(i64, String)>;

struct World {
    single: String,
    multi: String,
    /// Job ids whose upload was acknowledged, with the content hash the backup must have.
    acked: HashMap<i64, String>,
    /// Backups a delete was sent for (acknowledged or not): they may be gone.
    maybe_deleted: HashSet<String>,
    /// Jobs already checked FINISHED with the right backup.
    verified: HashSet<i64>,
    edits: usize,
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

fn json_of(resp: reqwest::Result<reqwest::blocking::Response>) -> Option<Value> {
    resp.ok()?.json().ok()
}

fn upload(url: &str, target: &str, name: &str, bytes: Vec<u8>) -> Option<i64> {
    let form = multipart::Form::new()
        .text("manual", "1")
        .part("backup_file", multipart::Part::bytes(bytes).file_name(name.to_string()));
    let body = json_of(client().post(format!("{url}/api/target/{target}/upload")).multipart(form).send())?;
    body["job_id"].as_i64()
}

fn seq_upload(url: &str, target: &str, files: &[(String, Vec<u8>)]) -> Option<i64> {
    let c = client();
    c.post(format!("{url}/api/seq/{target}/terminate")).json(&json!({})).send().ok()?;
    let list: Vec<Value> = files
        .iter()
        .map(|(p, _)| {
            let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
            json!({"path": format!("/{dir}"), "name": name})
        })
        .collect();
    let begun =
        json_of(c.post(format!("{url}/api/seq/{target}/begin")).json(&json!({"manual": 0, "file_list": list})).send())?;
    if begun["success"] != true {
        return None;
    }
    for (p, bytes) in files {
        let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
        let form = multipart::Form::new()
            .text("name", name.to_string())
            .text("path", format!("/{dir}"))
            .part("file", multipart::Part::bytes(bytes.clone()).file_name(name.to_string()));
        c.post(format!("{url}/api/seq/{target}/upload")).multipart(form).send().ok()?;
    }
    json_of(c.post(format!("{url}/api/seq/{target}/finish")).json(&json!({})).send())?["job_id"].as_i64()
}

/// Listed backups of a target.
fn backups(s: &TestServer, target: &str) -> Vec<Value> {
    s.target(target).1
}

/// Starts one random operation on a thread; returns a receiver for its acknowledgement.
fn start_op(s: &TestServer, w: &mut World, rng: &mut Rng) -> (String, mpsc::Receiver<Ack>) {
    let url = s.url.clone();
    let (tx, rx) = mpsc::channel();
    let op = rng.below(8);
    let all: Vec<Value> = backups(s, &w.single).into_iter().chain(backups(s, &w.multi)).collect();
    let pick = |rng: &mut Rng, recycled: bool| -> Option<String> {
        let candidates: Vec<&Value> = all.iter().filter(|b| b["is_recycled"] == recycled).collect();
        (!candidates.is_empty()).then(|| {
            candidates[rng.below(candidates.len() as u64) as usize]["id"].as_str().unwrap_or_default().to_string()
        })
    };
    let name = match op {
        0 => {
            let bytes = rng.bytes(300_000);
            let (target, hash) = (w.single.clone(), hex(&bytes));
            std::thread::spawn(move || tx.send(upload(&url, &target, "data.bin", bytes).map(|id| (id, hash))));
            "single upload"
        }
        1 => {
            let files: Vec<(String, Vec<u8>)> =
                (0..1 + rng.below(4)).map(|i| (format!("d{}/f{i}", i % 2), rng.bytes(100_000))).collect();
            let entries: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
            let archive = tar_gz(&entries);
            let (target, hash) = (w.multi.clone(), tree_hash(&files));
            std::thread::spawn(move || tx.send(upload(&url, &target, "a.tar.gz", archive).map(|id| (id, hash))));
            "archive upload"
        }
        2 => {
            let files: Vec<(String, Vec<u8>)> =
                (0..1 + rng.below(3)).map(|i| (format!("s/f{i}"), rng.bytes(50_000))).collect();
            let (target, hash) = (w.multi.clone(), tree_hash(&files));
            std::thread::spawn(move || tx.send(seq_upload(&url, &target, &files).map(|id| (id, hash))));
            "sequential upload"
        }
        3 | 4 => {
            let recycle = op == 3;
            if let Some(id) = pick(rng, !recycle) {
                std::thread::spawn(move || {
                    let _ =
                        client().patch(format!("{url}/api/backup/{id}")).json(&json!({"is_recycled": recycle})).send();
                    tx.send(None)
                });
            } else {
                let _ = tx.send(None);
            }
            if recycle { "recycle" } else { "restore" }
        }
        5 => {
            let recycled = rng.below(2) == 0;
            if let Some(id) = pick(rng, recycled).or_else(|| pick(rng, !recycled)) {
                w.maybe_deleted.insert(id.clone());
                std::thread::spawn(move || {
                    let _ =
                        client().delete(format!("{url}/api/backup/{id}")).json(&json!({"delete_files": true})).send();
                    tx.send(None)
                });
            } else {
                let _ = tx.send(None);
            }
            "delete"
        }
        6 => {
            w.edits += 1;
            let target = if rng.below(2) == 0 { w.single.clone() } else { w.multi.clone() };
            let prefix = if target == w.single { "cs" } else { "cm" };
            let body = json!({
                "location": s.location(&format!("{prefix}-place{}", w.edits % 3)).to_string_lossy(),
                "name_template": format!("{prefix}{}-$I", w.edits % 2),
            });
            std::thread::spawn(move || {
                let _ = client().patch(format!("{url}/api/target/{target}")).json(&body).send();
                tx.send(None)
            });
            "edit with folder move"
        }
        _ => {
            std::thread::spawn(move || {
                let _ = client().get(format!("{url}/api/jobs/force_run/gc_job")).send();
                tx.send(None)
            });
            "garbage collection"
        }
    };
    (name.to_string(), rx)
}

/// Asserts the invariants after a restart (see the module doc).
fn check(s: &TestServer, w: &mut World, round: usize, downloads: bool) {
    // Every acknowledged upload ends FINISHED with a backup of the right content.
    let jobs = poll("queued jobs to settle", Duration::from_secs(60), || {
        let (_, body) = s.get("/api/jobs");
        let jobs = body["delayed"].as_array()?.clone();
        jobs.iter().all(|j| matches!(j["status"].as_str(), Some("FINISHED" | "ERROR"))).then_some(jobs)
    });
    let listed: Vec<Value> = backups(s, &w.single).into_iter().chain(backups(s, &w.multi)).collect();
    let by_id: HashMap<&str, &Value> = listed.iter().map(|b| (b["id"].as_str().unwrap_or_default(), b)).collect();
    for (job_id, hash) in &w.acked {
        if w.verified.contains(job_id) {
            continue;
        }
        let job = jobs
            .iter()
            .find(|j| j["id"] == *job_id)
            .unwrap_or_else(|| panic!("round {round}: acknowledged job {job_id} vanished"));
        assert_eq!(job["status"], "FINISHED", "round {round}: acknowledged job failed: {job}");
        let backup_id = job["backup_id"].as_str().unwrap_or_default();
        match by_id.get(backup_id) {
            Some(b) => assert_eq!(b["hash"], hash.as_str(), "round {round}: backup {backup_id} has the wrong content"),
            None => assert!(
                w.maybe_deleted.contains(backup_id),
                "round {round}: backup {backup_id} of acknowledged job {job_id} is lost"
            ),
        }
    }
    w.verified.extend(w.acked.keys().copied());

    // Every listed backup is whole on disk, where the database says, and nothing else is there.
    let bin = s.data_path().join("recycle_bin");
    let mut owned: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    for target in [&w.single, &w.multi] {
        let (t, list) = s.target(target);
        let location = PathBuf::from(t["location"].as_str().unwrap_or_default());
        owned.entry(location.clone()).or_default();
        for b in list {
            let id = b["id"].as_str().unwrap_or_default().to_string();
            let dir = if b["is_recycled"] == true { bin.clone() } else { location.clone() };
            let entry = names(&dir).into_iter().find(|n| n.contains(&id));
            let entry = entry.unwrap_or_else(|| {
                panic!("round {round}: backup {id} is listed but has no files in {}", dir.display())
            });
            let path = dir.join(&entry);
            let hash = if target == &w.single {
                hex(&std::fs::read(&path).unwrap_or_default())
            } else {
                tree_hash(&tree(&path))
            };
            assert_eq!(
                b["hash"],
                hash.as_str(),
                "round {round}: files of backup {id} at {} are not whole",
                path.display()
            );
            owned.entry(dir).or_default().insert(entry);
        }
    }
    owned.entry(bin).or_default();
    for (dir, entries) in &owned {
        for name in names(dir) {
            assert!(
                entries.contains(&name),
                "round {round}: {} in {} belongs to no listed backup",
                name,
                dir.display()
            );
        }
    }

    // Garbage collection after recovery removes nothing that is referenced.
    if downloads {
        let (status, reply) = s.get("/api/jobs/force_run/gc_job");
        assert_eq!(status, 200, "{reply}");
        for b in &listed {
            let id = b["id"].as_str().unwrap_or_default();
            let resp = s.get_raw(&format!("/api/backup/{id}/download"));
            assert_eq!(resp.status().as_u16(), 200, "round {round}: backup {id} cannot be downloaded after gc");
            let bytes = resp.bytes().expect("download body");
            let hash = if by_id[id]["target_id"] == w.single.as_str() {
                hex(&bytes)
            } else {
                let mut files = Vec::new();
                let mut archive = tar::Archive::new(bytes.as_ref());
                for e in archive.entries().expect("tar") {
                    let mut e = e.expect("tar entry");
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut buf).expect("tar read");
                    files.push((e.path().expect("path").to_string_lossy().into_owned(), buf));
                }
                tree_hash(&files)
            };
            assert_eq!(b["hash"], hash.as_str(), "round {round}: download of {id} after gc is wrong");
        }
    }
}

#[test]
fn kill_at_random_moments_loses_nothing_acknowledged() {
    let seed = std::env::var("BAKCH_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe_u64);
    let mut rng = Rng(seed);
    let mut s = TestServer::start_with_config("gc_grace_secs = 0\nworkers = 2\n");
    let single = s.create_target(json!({"backup_type": "single", "name_template": "cs0-$I", "location": s.location("cs-place0").to_string_lossy()}));
    let multi =
        s.create_target(json!({"name_template": "cm0-$I", "location": s.location("cm-place0").to_string_lossy()}));
    let mut w = World {
        single,
        multi,
        acked: HashMap::new(),
        maybe_deleted: HashSet::new(),
        verified: HashSet::new(),
        edits: 0,
    };
    let started = Instant::now();
    let mut kills = 0;
    let mut ops: HashMap<String, usize> = HashMap::new();
    while kills < KILLS && started.elapsed() < BUDGET {
        let (name, rx) = start_op(&s, &mut w, &mut rng);
        *ops.entry(name).or_default() += 1;
        // The kill moment is the point of the test: anywhere from before the request lands to
        // well after its reply, so a fixed random delay is right here, not a poll.
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        s.kill();
        kills += 1;
        if let Ok(Some((job_id, hash))) = rx.recv_timeout(Duration::from_secs(30)) {
            w.acked.insert(job_id, hash);
        }
        s.restart();
        check(&s, &mut w, kills, kills % 10 == 0);
    }
    check(&s, &mut w, kills, true);
    eprintln!(
        "crash test: seed {seed:#x}, {kills} kills in {:?}, {} acknowledged uploads, ops {ops:?}",
        started.elapsed(),
        w.acked.len()
    );
    assert!(kills >= KILLS, "only {kills} kills fit in the time budget");
    assert!(!w.acked.is_empty(), "no upload was ever acknowledged: the kills came too early to test anything");
}
