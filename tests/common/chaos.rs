//! Chaos for the durability tests: random operations against a running bakch and the invariant
//! checker that must hold after a crash (tests/crash.rs) or a storm of parallel requests
//! (tests/concurrency.rs).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};

use super::{TestServer, names, poll, tar_gz, tree};

/// A small deterministic generator, so a failing run can be replayed from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Random bytes, of a random length below `max`.
    pub fn bytes(&mut self, max: u64) -> Vec<u8> {
        let len = self.below(max) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The whole-backup hash of a tree, by the rule bakch documents (sorted `path NUL blob NUL size LF`).
pub fn tree_hash(files: &[(String, Vec<u8>)]) -> String {
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

pub struct World {
    pub single: String,
    pub multi: String,
    /// Job ids whose upload was acknowledged, with the content hash the backup must have.
    pub acked: HashMap<i64, String>,
    /// Backups a delete was sent for (acknowledged or not): they may be gone.
    pub maybe_deleted: HashSet<String>,
    /// Jobs already checked FINISHED with the right backup.
    pub verified: HashSet<i64>,
    /// Files bakch did not write (in target folders and beside the data folder), with their
    /// content: they must survive every round untouched.
    pub foreign: HashMap<PathBuf, Vec<u8>>,
}

impl World {
    /// Takes in what an operation planted.
    pub fn absorb(&mut self, outcome: &mut Outcome) {
        self.maybe_deleted.extend(outcome.maybe_deleted.take());
        self.foreign.extend(outcome.planted.drain(..));
    }
}

/// Files a user keeps in the folders bakch works in, named like bakch's own leftovers and like
/// another installation's; written before the first operation.
fn seed_foreign(s: &TestServer) -> HashMap<PathBuf, Vec<u8>> {
    let uuid = "6f1c1d2e-5b2a-4e1f-9a0b-0c1d2e3f4a5b";
    let token = std::fs::read_to_string(s.data_path().join("install_token")).unwrap_or_default();
    let rels = [
        ".bakch-notes.txt".to_string(),
        ".bakch-archive/inner.txt".to_string(),
        ".bakch-data/bakch.sqlite3".to_string(),
        format!(".bakch-staging-{uuid}/f"),
        ".bakch-trash-0123456789abcdef0123456789abcdef".to_string(),
        format!(".bakch-{}-notes.txt", token.trim()),
        "README.txt".to_string(),
    ];
    let beside_data = s.data_path().parent().map(PathBuf::from).unwrap_or_default();
    let mut dirs = vec![beside_data];
    for prefix in ["cs", "cm"] {
        dirs.extend((0..3).map(|n| s.root.path().join(format!("{prefix}-place{n}"))));
    }
    let mut foreign = HashMap::new();
    for (d, dir) in dirs.iter().enumerate() {
        for (r, rel) in rels.iter().enumerate() {
            let path = dir.join(rel);
            let bytes = format!("the user's file {d}.{r}").into_bytes();
            std::fs::create_dir_all(path.parent().expect("parent")).expect("create folders");
            std::fs::write(&path, &bytes).expect("seed a foreign file");
            foreign.insert(path, bytes);
        }
    }
    foreign
}

pub fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

fn upload(out: &mut Outcome, url: &str, target: &str, name: &str, bytes: Vec<u8>) -> Option<i64> {
    let form = multipart::Form::new()
        .text("manual", "1")
        .part("backup_file", multipart::Part::bytes(bytes).file_name(name.to_string()));
    let body = status_of(out, client().post(format!("{url}/api/target/{target}/upload")).multipart(form).send())?;
    body["job_id"].as_i64()
}

fn seq_upload(out: &mut Outcome, url: &str, target: &str, files: &[(String, Vec<u8>)]) -> Option<i64> {
    let c = client();
    status_of(out, c.post(format!("{url}/api/seq/{target}/terminate")).json(&json!({})).send());
    let list: Vec<Value> = files
        .iter()
        .map(|(p, _)| {
            let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
            json!({"path": format!("/{dir}"), "name": name})
        })
        .collect();
    let begun = status_of(
        out,
        c.post(format!("{url}/api/seq/{target}/begin")).json(&json!({"manual": 0, "file_list": list})).send(),
    )?;
    if begun["success"] != true {
        return None;
    }
    for (p, bytes) in files {
        let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
        let form = multipart::Form::new()
            .text("name", name.to_string())
            .text("path", format!("/{dir}"))
            .part("file", multipart::Part::bytes(bytes.clone()).file_name(name.to_string()));
        status_of(out, c.post(format!("{url}/api/seq/{target}/upload")).multipart(form).send())?;
    }
    status_of(out, c.post(format!("{url}/api/seq/{target}/finish")).json(&json!({})).send())?["job_id"].as_i64()
}

/// Listed backups of a target.
pub fn backups(s: &TestServer, target: &str) -> Vec<Value> {
    s.target(target).1
}

/// What one operation left to check: an acknowledged upload, a backup that may be gone, and
/// whether the server answered with a 5xx.
#[derive(Default)]
pub struct Outcome {
    pub name: &'static str,
    pub ack: Option<(i64, String)>,
    pub maybe_deleted: Option<String>,
    /// Foreign files the operation put where a backup may move.
    pub planted: Vec<(PathBuf, Vec<u8>)>,
    pub server_errors: usize,
    /// The replies of requests that got a 5xx.
    pub error_replies: Vec<String>,
}

/// Where the operations aim.
#[derive(Clone)]
pub struct Env {
    pub url: String,
    pub single: String,
    pub multi: String,
    /// Folder that edits move targets between (`<root>/<prefix>-placeN`).
    pub root: PathBuf,
    /// One sequential upload per target at a time, as one client would: the protocol keys an
    /// open upload by target, so two clients at once would fill each other's file lists.
    pub seq_lock: std::sync::Arc<std::sync::Mutex<()>>,
}

fn status_of(outcome: &mut Outcome, resp: reqwest::Result<reqwest::blocking::Response>) -> Option<Value> {
    let resp = resp.ok()?;
    if resp.status().is_server_error() {
        outcome.server_errors += 1;
        let status = resp.status();
        outcome.error_replies.push(format!("{status} {}", resp.text().unwrap_or_default()));
        return None;
    }
    resp.json().ok()
}

/// A single-file and a multi-file target on `s`, and the environment and model for them.
pub fn setup(s: &TestServer) -> (Env, World) {
    let place = |p: &str| s.location(p).to_string_lossy().into_owned();
    let single =
        s.create_target(json!({"backup_type": "single", "name_template": "cs0-$I", "location": place("cs-place0")}));
    let multi = s.create_target(json!({"name_template": "cm0-$I", "location": place("cm-place0")}));
    let env = Env {
        url: s.url.clone(),
        single: single.clone(),
        multi: multi.clone(),
        root: s.root.path().to_path_buf(),
        seq_lock: Default::default(),
    };
    let world = World {
        single,
        multi,
        acked: HashMap::new(),
        maybe_deleted: HashSet::new(),
        verified: HashSet::new(),
        foreign: seed_foreign(s),
    };
    (env, world)
}

/// Runs one random operation to its end (or until the server dies under it).
pub fn run_op(env: &Env, rng: &mut Rng) -> Outcome {
    let mut out = Outcome::default();
    let c = client();
    let url = &env.url;
    let mut listed = Vec::new();
    for t in [&env.single, &env.multi] {
        if let Some(body) = status_of(&mut out, c.get(format!("{url}/api/target/{t}")).send()) {
            listed.extend(body["backups"].as_array().cloned().unwrap_or_default());
        }
    }
    let pick = |rng: &mut Rng, recycled: bool| -> Option<String> {
        let candidates: Vec<&Value> = listed.iter().filter(|b| b["is_recycled"] == recycled).collect();
        (!candidates.is_empty()).then(|| {
            candidates[rng.below(candidates.len() as u64) as usize]["id"].as_str().unwrap_or_default().to_string()
        })
    };
    match rng.below(9) {
        0 => {
            out.name = "single upload";
            let bytes = rng.bytes(300_000);
            let hash = hex(&bytes);
            out.ack = upload(&mut out, url, &env.single, "data.bin", bytes).map(|id| (id, hash));
        }
        1 => {
            out.name = "archive upload";
            let files: Vec<(String, Vec<u8>)> =
                (0..1 + rng.below(4)).map(|i| (format!("d{}/f{i}", i % 2), rng.bytes(100_000))).collect();
            let entries: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
            let hash = tree_hash(&files);
            out.ack = upload(&mut out, url, &env.multi, "a.tar.gz", tar_gz(&entries)).map(|id| (id, hash));
        }
        2 => {
            out.name = "sequential upload";
            let files: Vec<(String, Vec<u8>)> =
                (0..1 + rng.below(3)).map(|i| (format!("s/f{i}"), rng.bytes(50_000))).collect();
            let hash = tree_hash(&files);
            let _one_at_a_time = env.seq_lock.lock().unwrap_or_else(|e| e.into_inner());
            out.ack = seq_upload(&mut out, url, &env.multi, &files).map(|id| (id, hash));
        }
        op @ (3 | 4) => {
            let recycle = op == 3;
            out.name = if recycle { "recycle" } else { "restore" };
            if let Some(id) = pick(rng, !recycle) {
                status_of(
                    &mut out,
                    c.patch(format!("{url}/api/backup/{id}")).json(&json!({"is_recycled": recycle})).send(),
                );
            }
        }
        5 => {
            out.name = "delete";
            let recycled = rng.below(2) == 0;
            if let Some(id) = pick(rng, recycled).or_else(|| pick(rng, !recycled)) {
                out.maybe_deleted = Some(id.clone());
                status_of(
                    &mut out,
                    c.delete(format!("{url}/api/backup/{id}")).json(&json!({"delete_files": true})).send(),
                );
            }
        }
        6 => {
            out.name = "edit with folder move";
            let n = rng.below(3);
            let (target, prefix) = if rng.below(2) == 0 { (&env.single, "cs") } else { (&env.multi, "cm") };
            let body = json!({
                "location": env.root.join(format!("{prefix}-place{n}")).to_string_lossy(),
                "name_template": format!("{prefix}{}-$I", rng.below(2)),
            });
            status_of(&mut out, c.patch(format!("{url}/api/target/{target}")).json(&body).send());
        }
        7 => {
            // A user file squats on the name a backup would take in another folder; created
            // exclusively, so it never replaces a backup that got there first.
            out.name = "foreign file";
            if let Some(id) = pick(rng, false) {
                let (prefix, ext) = if rng.below(2) == 0 { ("cs", ".bin") } else { ("cm", "") };
                let dir = env.root.join(format!("{prefix}-place{}", rng.below(3)));
                let path = dir.join(format!("{prefix}{}-{id}{ext}", rng.below(2)));
                let bytes = format!("squatter {id}").into_bytes();
                let written = std::fs::create_dir_all(&dir).and_then(|()| {
                    use std::io::Write;
                    std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?.write_all(&bytes)
                });
                if written.is_ok() {
                    out.planted.push((path, bytes));
                }
            }
        }
        _ => {
            out.name = "garbage collection";
            status_of(&mut out, c.get(format!("{url}/api/jobs/force_run/gc_job")).send());
        }
    }
    out
}

/// Asserts the invariants after a restart (see the module doc).
pub fn check(s: &TestServer, w: &mut World, round: usize, downloads: bool) {
    // Every acknowledged upload ends FINISHED with a backup of the right content.
    poll("queued jobs to settle", Duration::from_secs(240), || {
        let (_, body) = s.get("/api/jobs");
        let jobs = body["delayed"].as_array()?.clone();
        jobs.iter().all(|j| matches!(j["status"].as_str(), Some("FINISHED" | "ERROR"))).then_some(())
    });
    let listed: Vec<Value> = backups(s, &w.single).into_iter().chain(backups(s, &w.multi)).collect();
    let by_id: HashMap<&str, &Value> = listed.iter().map(|b| (b["id"].as_str().unwrap_or_default(), b)).collect();
    for (job_id, hash) in &w.acked {
        if w.verified.contains(job_id) {
            continue;
        }
        let job = poll(&format!("job {job_id} to settle"), Duration::from_secs(240), || {
            let (status, reply) = s.get(&format!("/api/jobs/{job_id}"));
            assert_eq!(status, 200, "round {round}: acknowledged job {job_id} vanished: {reply}");
            matches!(reply["job"]["status"].as_str(), Some("FINISHED" | "ERROR")).then(|| reply["job"].clone())
        });
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

    // Nothing bakch did not write was moved, changed or removed.
    for (path, bytes) in &w.foreign {
        let now =
            std::fs::read(path).unwrap_or_else(|e| panic!("round {round}: foreign {} is gone: {e}", path.display()));
        assert_eq!(&now, bytes, "round {round}: foreign {} was changed", path.display());
    }
    // Top-level names of foreign files, which the listing below leaves out.
    let foreign_names: HashSet<PathBuf> = w
        .foreign
        .keys()
        .filter_map(|p| {
            let dir = p.ancestors().find(|a| {
                a.parent().is_some_and(|d| {
                    d.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with("cs-place") || n.starts_with("cm-place")
                    })
                })
            })?;
            Some(dir.to_path_buf())
        })
        .collect();
    let names = |dir: &PathBuf| -> Vec<String> {
        names(dir).into_iter().filter(|n| !foreign_names.contains(&dir.join(n))).collect()
    };

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
            // Its manifest agrees with its row and names where its files are.
            let manifest_path = s.data_path().join("manifests").join(target.as_str()).join(format!("{id}.json"));
            let manifest: Value = std::fs::read_to_string(&manifest_path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_else(|| panic!("round {round}: listed backup {id} has no readable manifest"));
            for (m, b_key) in
                [("hash", "hash"), ("recycled", "is_recycled"), ("size", "filesize"), ("manual", "manual")]
            {
                assert_eq!(manifest[m], b[b_key], "round {round}: manifest of {id} disagrees on {m}: {manifest}");
            }
            assert_eq!(manifest["name"], entry.as_str(), "round {round}: manifest of {id} names another place");
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
