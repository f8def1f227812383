//! `bakch push` against the real binary: incremental snapshots equal to the tree byte for byte,
//! only new content on the wire (as the server counts it), resume after a cut, refused
//! mismatches, keys without rights, no probing for content outside a key's targets, files that
//! change while read, special files, and --one-file-system.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BIN, TestServer, names, tree};
use serde_json::{Value, json};

fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// A key file for the client.
fn key_file(dir: &Path, key: &str) -> PathBuf {
    let path = dir.join(format!("key-{}.json", &hash(key.as_bytes())[..8]));
    std::fs::write(&path, json!({ "key": key }).to_string()).unwrap();
    path
}

/// Runs `bakch push` with `--json`; (success, summary JSON, stdout + stderr).
fn push(
    s: &TestServer,
    key: &Path,
    cache: &Path,
    target: &str,
    paths: &[&Path],
    extra: &[&str],
) -> (bool, Value, String) {
    let out = Command::new(BIN)
        .arg("push")
        .args(["--server", &s.url, "--target", target, "--json", "--rehash-percent", "0"])
        .arg("--key-file")
        .arg(key)
        .arg("--cache-dir")
        .arg(cache)
        .args(extra)
        .args(paths)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok()).unwrap_or(Value::Null);
    (out.status.success(), summary, format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

/// The newest backup's folder of a target.
fn newest_backup(s: &TestServer, target: &str) -> PathBuf {
    let (t, backups) = s.target(target);
    assert!(!backups.is_empty(), "no backup");
    let location = PathBuf::from(t["location"].as_str().unwrap());
    let mut dirs: Vec<PathBuf> = names(&location).into_iter().map(|n| location.join(n)).collect();
    dirs.sort_by_key(|d| std::fs::metadata(d).and_then(|m| m.modified()).ok());
    dirs.pop().unwrap()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Some folders of files, a few with the same content, an empty one.
fn make_tree(root: &Path) {
    for i in 0..20 {
        let dir = root.join(format!("d{}", i % 4)).join(if i % 3 == 0 { "deep/er" } else { "" });
        write(&dir.join(format!("f{i}.bin")), format!("file {i} ").repeat(100 + i * 50).as_bytes());
    }
    write(&root.join("same1.txt"), b"same content");
    write(&root.join("d1/same2.txt"), b"same content");
    write(&root.join("empty"), b"");
    write(&root.join("big.bin"), &(0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>());
}

#[test]
fn a_second_push_sends_only_new_content_and_equals_the_tree() {
    let mut s = TestServer::start();
    let key = s.new_api_key();
    let target = s.create_target(json!({"alias": "home"}));
    let work = tempfile::tempdir().unwrap();
    let (src, cache) = (work.path().join("src"), work.path().join("cache"));
    make_tree(&src);
    // A symlink out of the tree is never followed, nor stored.
    write(&work.path().join("outside/secret"), b"not to be backed up");
    std::os::unix::fs::symlink(work.path().join("outside"), src.join("link-out")).unwrap();
    std::os::unix::fs::symlink("same1.txt", src.join("link-in")).unwrap();
    let kf = key_file(work.path(), &key);

    let (ok, first, out) = push(&s, &kf, &cache, "home", &[&src], &[]);
    assert!(ok, "{out}");
    let mut expected = tree(&src);
    expected.retain(|(p, _)| !p.starts_with("link-"));
    assert_eq!(tree(&newest_backup(&s, &target)), expected, "{out}");
    let distinct: std::collections::BTreeMap<String, usize> =
        expected.iter().map(|(_, b)| (hash(b), b.len())).collect();
    assert_eq!(first["bytes_received"].as_u64().unwrap(), distinct.values().sum::<usize>() as u64, "{out}");
    assert_eq!(first["symlinks"], 2, "{out}");

    // Change, add, remove, rename.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(&src.join("d0/f4.bin"), b"changed content of f0");
    write(&src.join("d2/new.txt"), b"a new file");
    std::fs::remove_file(src.join("d1/f1.bin")).unwrap();
    std::fs::rename(src.join("d3/f7.bin"), src.join("renamed.bin")).unwrap();
    std::fs::rename(src.join("big.bin"), src.join("d2/big-moved.bin")).unwrap();
    let (ok, second, out) = push(&s, &kf, &cache, "home", &[&src], &[]);
    assert!(ok, "{out}");
    let mut expected = tree(&src);
    expected.retain(|(p, _)| !p.starts_with("link-"));
    assert_eq!(tree(&newest_backup(&s, &target)), expected, "{out}");
    let new_bytes = ("changed content of f0".len() + "a new file".len()) as u64;
    assert_eq!(second["bytes_received"].as_u64().unwrap(), new_bytes, "only the new content crossed: {out}");
    assert_eq!(second["sent_bytes"].as_u64().unwrap(), new_bytes, "{out}");
    assert_eq!((second["changed"].as_u64(), second["removed"].as_u64()), (Some(1), Some(3)), "{out}");
    // Unchanged files were not read again (the renamed ones are new paths, so they were).
    let renamed = std::fs::metadata(src.join("renamed.bin")).unwrap().len()
        + std::fs::metadata(src.join("d2/big-moved.bin")).unwrap().len();
    assert_eq!(second["read_bytes"].as_u64().unwrap(), new_bytes + renamed, "{out}");

    // Nothing changed: nothing is read or sent, and a backup is still made.
    let (ok, third, out) = push(&s, &kf, &cache, "home", &[&src], &[]);
    assert!(ok, "{out}");
    assert_eq!((third["read_bytes"].as_u64(), third["bytes_received"].as_u64()), (Some(0), Some(0)), "{out}");
    assert_eq!(s.target(&target).1.len(), 3);
}

/// A wide tree (2,500 files in about 2,500 folders, three levels deep) is built by several
/// threads and recorded in statements of many rows: every file lands, every folder gets the
/// configured mode, and the rows, the path index and a comparison see every file.
#[test]
fn a_wide_tree_is_placed_and_recorded_whole() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = TestServer::start();
    let key = s.new_api_key();
    let target = s.create_target(json!({"alias": "wide"}));
    let work = tempfile::tempdir().unwrap();
    let (src, cache) = (work.path().join("src"), work.path().join("cache"));
    let file = |i: usize| format!("a{}/b{}/c{}/f{i}", i % 7, i % 50, i % 300);
    for i in 0..2_500 {
        let content = match i {
            _ if i % 100 == 0 => Vec::new(),
            _ if i % 10 == 0 => b"shared".to_vec(),
            _ => format!("file {i}").into_bytes(),
        };
        write(&src.join(file(i)), &content);
    }
    let kf = key_file(work.path(), &key);
    let (ok, _, out) = push(&s, &kf, &cache, "wide", &[&src], &[]);
    assert!(ok, "{out}");
    let first = newest_backup(&s, &target);
    assert_eq!(tree(&first), tree(&src));
    let first_id = s.target(&target).1[0]["id"].as_str().unwrap().to_string();
    // Every folder under `root` with its mode.
    let folders = |root: &Path| -> Vec<(PathBuf, u32)> {
        let (mut todo, mut found) = (vec![root.to_path_buf()], Vec::new());
        while let Some(dir) = todo.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                }
            }
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            found.push((dir.strip_prefix(root).unwrap().to_path_buf(), mode));
        }
        found.sort();
        found
    };
    let placed = folders(&first);
    assert!(placed.len() > 2_000, "{} folders", placed.len());
    let expected: Vec<(PathBuf, u32)> = folders(&src).into_iter().map(|(d, _)| (d, 0o700)).collect();
    assert_eq!(placed, expected, "every folder of the tree, with the configured mode");

    // Change, remove and add a few, push again: the recorded rows of both backups tell exactly that.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(&src.join(file(1)), b"changed");
    std::fs::remove_file(src.join(file(2))).unwrap();
    write(&src.join("a0/new"), b"new");
    let (ok, _, out) = push(&s, &kf, &cache, "wide", &[&src], &[]);
    assert!(ok, "{out}");
    assert_eq!(tree(&newest_backup(&s, &target)), tree(&src));
    let (_, backups) = s.target(&target);
    assert_eq!(backups.len(), 2);
    let second_id = backups.iter().map(|b| b["id"].as_str().unwrap()).find(|id| *id != first_id).unwrap();
    let (status, cmp) = s.get(&format!("/api/target/{target}/compare?from={first_id}&to={second_id}"));
    assert_eq!(status, 200, "{cmp}");
    let paths = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(paths(&cmp["added"]), vec!["a0/new"]);
    assert_eq!(paths(&cmp["removed"]), vec![file(2)]);
    assert_eq!(paths(&cmp["changed"]), vec![file(1)]);
    assert_eq!(cmp["unchanged"], 2_498);
    // The path index (kept by the rows' triggers) counts both backups for a kept path, one for
    // the removed and the added ones.
    for (q, backups) in [(file(2499), 2), (file(2), 1), ("a0/new".to_string(), 1)] {
        let (status, found) = s.get(&format!("/api/target/{target}/files?q={q}"));
        assert_eq!(status, 200, "{found}");
        let hit = found["paths"].as_array().unwrap().iter().find(|p| p["path"] == q.as_str()).cloned();
        assert_eq!(hit.map(|p| p["backups"].clone()), Some(json!(backups)), "{q}: {found}");
    }
}

#[test]
fn excludes_and_dry_run() {
    let mut s = TestServer::start();
    let key = s.new_api_key();
    let target = s.create_target(json!({"alias": "ex"}));
    let work = tempfile::tempdir().unwrap();
    let (src, cache) = (work.path().join("src"), work.path().join("cache"));
    make_tree(&src);
    write(&src.join("node_modules/x/y.js"), b"skip me");
    write(&src.join("d0/scratch.tmp"), b"skip me too");
    let patterns = work.path().join("excludes");
    std::fs::write(&patterns, "# comment\n*.tmp\n").unwrap();
    let kf = key_file(work.path(), &key);
    let (ok, _, out) = push(&s, &kf, &cache, "ex", &[&src], &["--dry-run"]);
    assert!(ok, "{out}");
    assert!(out.contains("dry run: would send"), "{out}");
    assert!(s.target(&target).1.is_empty(), "a dry run made a backup");
    let excl = ["--exclude", "node_modules/", "--exclude-from", patterns.to_str().unwrap()];
    let (ok, _, out) = push(&s, &kf, &cache, "ex", &[&src], &excl);
    assert!(ok, "{out}");
    let got: Vec<String> = tree(&newest_backup(&s, &target)).into_iter().map(|(p, _)| p).collect();
    assert!(!got.iter().any(|p| p.contains("node_modules") || p.ends_with(".tmp")), "{got:?}");
    assert!(got.contains(&"d1/same2.txt".to_string()), "{got:?}");
}

/// The protocol by hand, for what the client never does on purpose.
struct Proto<'a> {
    s: &'a TestServer,
    key: String,
    client: reqwest::blocking::Client,
}

impl Proto<'_> {
    fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let res = self.client.post(format!("{}{path}", self.s.url)).bearer_auth(&self.key).body(body).send().unwrap();
        let status = res.status().as_u16();
        (status, res.json().unwrap_or(Value::Null))
    }

    fn begin(&self, target: &str) -> (u16, String) {
        let (status, v) = self.post(&format!("/api/push/{target}/begin"), b"{}".to_vec());
        (status, v["push_id"].as_str().unwrap_or_default().to_string())
    }

    fn list(&self, target: &str, push: &str, files: &[(&str, &[u8])]) -> (u16, Value) {
        let files: Vec<Value> = files
            .iter()
            .map(|(p, b)| json!({"path": p, "size": b.len(), "hash": hash(b), "mode": 420, "mtime": 0}))
            .collect();
        self.post(&format!("/api/push/{target}/{push}/files"), serde_json::to_vec(&json!({ "files": files })).unwrap())
    }
}

fn record(hash: &str, content: &[u8]) -> Vec<u8> {
    let mut v = format!("{hash} {}\n", content.len()).into_bytes();
    v.extend_from_slice(content);
    v
}

#[test]
fn a_cut_off_push_resumes_without_resending_what_arrived() {
    let mut s = TestServer::start();
    let key = s.new_api_key();
    let target = s.create_target(json!({"alias": "cut"}));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let a: Vec<u8> = (0..2_000_000u32).map(|i| (i % 199) as u8).collect();
    let b: Vec<u8> = (0..1_500_000u32).map(|i| (i % 97) as u8).collect();
    write(&src.join("a.bin"), &a);
    write(&src.join("b.bin"), &b);
    let p = Proto { s: &s, key: key.clone(), client: reqwest::blocking::Client::new() };
    let (status, push_id) = p.begin("cut");
    assert_eq!(status, 200);
    let (status, listed) = p.list("cut", &push_id, &[("a.bin", &a), ("b.bin", &b)]);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["missing"].as_array().unwrap().len(), 2);
    // One pack: all of a, then b cut off half-way.
    let mut body = record(&hash(&a), &a);
    body.extend(format!("{} {}\n", hash(&b), b.len()).into_bytes());
    body.extend_from_slice(&b[..b.len() / 2]);
    let (status, reply) = p.post(&format!("/api/push/cut/{push_id}/blobs"), body);
    assert_eq!(status, 400, "{reply}");
    assert!(s.target(&target).1.is_empty());

    // The client, run again, sends only b.
    let kf = key_file(work.path(), &key);
    let (ok, summary, out) = push(&s, &kf, &work.path().join("cache"), "cut", &[&src], &[]);
    assert!(ok, "{out}");
    assert_eq!(summary["bytes_received"].as_u64().unwrap(), b.len() as u64, "{out}");
    assert_eq!(tree(&newest_backup(&s, &target)), tree(&src));
}

#[test]
fn a_blob_that_does_not_match_its_hash_is_refused() {
    let mut s = TestServer::start();
    let key = s.new_api_key();
    let target = s.create_target(json!({"alias": "mm"}));
    let p = Proto { s: &s, key, client: reqwest::blocking::Client::new() };
    let (_, push_id) = p.begin("mm");
    let claimed = b"what the list says";
    assert_eq!(p.list("mm", &push_id, &[("f", claimed)]).0, 200);
    let forged = b"something else here";
    let mut body = format!("{} {}\n", hash(claimed), claimed.len()).into_bytes();
    body.extend_from_slice(&forged[..claimed.len()]);
    let (status, reply) = p.post(&format!("/api/push/mm/{push_id}/blobs"), body);
    assert_eq!(status, 400, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("does not match its hash"), "{reply}");
    // Nor can it be finished without the content; the store holds no such blob.
    let (status, reply) = p.post(&format!("/api/push/mm/{push_id}/finish"), Vec::new());
    assert_eq!(status, 409, "{reply}");
    let h = hash(claimed);
    assert!(!s.data_path().join("store").join(&h[..2]).join(&h[2..]).exists());
    // Malformed pages and packs get a 400, an unknown push a 404.
    assert_eq!(p.post(&format!("/api/push/mm/{push_id}/files"), b"{\"files\": 3}".to_vec()).0, 400);
    let (status, _) = p.list("mm", &push_id, &[("../escape", b"x")]);
    assert_eq!(status, 400);
    assert_eq!(p.post(&format!("/api/push/mm/{push_id}/blobs"), b"nonsense\n".to_vec()).0, 400);
    assert_eq!(p.post("/api/push/mm/no-such-push/finish", Vec::new()).0, 404);
    // The right content goes in and the push finishes.
    assert_eq!(p.post(&format!("/api/push/mm/{push_id}/blobs"), record(&h, claimed)).0, 200);
    let (status, reply) = p.post(&format!("/api/push/mm/{push_id}/finish"), Vec::new());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(s.wait_job(reply["job_id"].as_i64().unwrap())["status"], "FINISHED");
    assert_eq!(tree(&newest_backup(&s, &target)), vec![("f".to_string(), claimed.to_vec())]);
}

fn add_key(s: &TestServer, args: &[&str]) -> String {
    let out = Command::new(BIN).args(["key", "add"]).args(args).arg("--data-dir").arg(s.data_path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string()
}

#[test]
fn an_upload_key_pushes_only_into_its_targets_and_learns_nothing_of_others() {
    let mut s = TestServer::start();
    s.new_api_key();
    let mine = s.create_target(json!({"alias": "mine"}));
    s.create_target(json!({"alias": "theirs"}));
    // Another target holds a secret.
    let secret = b"the neighbour's secret".as_slice();
    s.upload_ok("theirs", &[("secret.txt", secret)]);
    s.upload_ok("mine", &[("own.txt", b"my own content")]);
    let laptop = add_key(&s, &["laptop", "--role", "upload", "--target", "mine"]);
    let reader = add_key(&s, &["auditor", "--role", "read"]);

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    write(&src.join("x.txt"), b"x");
    for (key, target) in [(&reader, "mine"), (&laptop, "theirs")] {
        let (ok, _, out) = push(&s, &key_file(work.path(), key), &work.path().join("c"), target, &[&src], &[]);
        assert!(!ok && out.contains("403"), "{out}");
    }
    let p = Proto { s: &s, key: laptop.clone(), client: reqwest::blocking::Client::new() };
    assert_eq!(p.begin("theirs").0, 403);
    let (status, push_id) = p.begin("mine");
    assert_eq!(status, 200);
    // Content of its own target is known; the other target's is "missing" like anything new.
    let (status, listed) =
        p.list("mine", &push_id, &[("own.txt", b"my own content"), ("guess.txt", secret), ("new.txt", b"new")]);
    assert_eq!(status, 200, "{listed}");
    let missing: Vec<&str> = listed["missing"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    assert_eq!(missing, vec![hash(secret), hash(b"new")]);
    // Claiming it without the content does not work either.
    let (status, reply) = p.post(&format!("/api/push/mine/{push_id}/finish"), Vec::new());
    assert_eq!(status, 409, "{reply}");
    // Another target's push is as unknown as none.
    let admin = Proto { s: &s, key: s.key.clone().unwrap(), client: reqwest::blocking::Client::new() };
    let (_, theirs_push) = admin.begin("theirs");
    assert_eq!(p.post(&format!("/api/push/mine/{theirs_push}/finish"), Vec::new()).0, 404);
    assert_eq!(p.post(&format!("/api/push/theirs/{theirs_push}/abort"), Vec::new()).0, 403);
    // Sending the content (which it knows) works, deduplicated silently on the server.
    let mut body = record(&hash(secret), secret);
    body.extend(record(&hash(b"new"), b"new"));
    assert_eq!(p.post(&format!("/api/push/mine/{push_id}/blobs"), body).0, 200);
    let (status, reply) = p.post(&format!("/api/push/mine/{push_id}/finish"), Vec::new());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(s.wait_job(reply["job_id"].as_i64().unwrap())["status"], "FINISHED");
    let names: Vec<String> = tree(&newest_backup(&s, &mine)).into_iter().map(|(p, _)| p).collect();
    assert_eq!(names, vec!["guess.txt", "new.txt", "own.txt"]);
}

/// The newest backup's manifest: its files with the blob each was recorded with.
fn newest_files(s: &TestServer, target: &str) -> Vec<Value> {
    let (_, backups) = s.target(target);
    let newest = backups.iter().max_by_key(|b| b["created_at"].as_str().unwrap_or_default().to_string()).unwrap();
    let path = s.data_path().join("manifests").join(target).join(format!("{}.json", newest["id"].as_str().unwrap()));
    let manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["files"].as_array().unwrap().clone()
}

#[test]
fn a_file_that_changes_while_read_is_read_again_or_left_out_never_stored_torn() {
    let mut s = TestServer::start();
    let key = s.new_api_key();
    let target = s.create_target(json!({"alias": "moving"}));
    let work = tempfile::tempdir().unwrap();
    let (src, cache) = (work.path().join("src"), work.path().join("cache"));
    make_tree(&src);
    let moving = src.join("log/growing.log");
    write(&moving, b"");
    let kf = key_file(work.path(), &key);
    // A writer rewrites the file in place, 64 KiB at a time, for as long as the push runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, moving) = (stop.clone(), moving.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                rounds += 1;
                let mut f = std::fs::File::create(&moving).unwrap();
                for _ in 0..64 {
                    f.write_all(&[rounds as u8; 64 * 1024]).unwrap();
                }
            }
            rounds
        })
    };
    let outcomes: Vec<(bool, Value, String)> = (0..3).map(|_| push(&s, &kf, &cache, "moving", &[&src], &[])).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 1, "the writer ran");
    for (ok, summary, out) in &outcomes {
        assert!(ok, "{out}");
        // Left out (with a note) or stored: either way counted, and the summary adds up.
        let left_out = out.contains("growing.log: it vanished or kept changing")
            || out.contains("growing.log: it kept changing while sent");
        assert_eq!(summary["skipped"].as_u64().unwrap() > 0, left_out, "{out}");
    }
    // Every stored file's bytes are exactly the content its recorded hash names.
    let backup = newest_backup(&s, &target);
    for f in newest_files(&s, &target) {
        let bytes = std::fs::read(backup.join(f["path"].as_str().unwrap())).unwrap();
        assert_eq!(hash(&bytes), f["blob"].as_str().unwrap(), "{f}");
        if f["path"] == "log/growing.log" {
            // One round of the writer, whole: never a mix of two.
            assert!(bytes.windows(2).all(|w| w[0] == w[1]), "a torn read was stored");
        }
    }
}

#[test]
fn sockets_and_fifos_are_skipped_with_a_note() {
    let mut s = TestServer::start();
    let key = s.new_api_key();
    let target = s.create_target(json!({"alias": "special"}));
    let work = tempfile::tempdir().unwrap();
    let (src, cache) = (work.path().join("src"), work.path().join("cache"));
    write(&src.join("plain.txt"), b"a plain file");
    let _socket = std::os::unix::net::UnixListener::bind(src.join("app.sock")).unwrap();
    let fifo = Command::new("mkfifo").arg(src.join("pipe")).status().unwrap();
    assert!(fifo.success());
    let kf = key_file(work.path(), &key);
    let (ok, summary, out) = push(&s, &kf, &cache, "special", &[&src], &[]);
    assert!(ok, "{out}");
    assert_eq!(summary["skipped"], 2, "{out}");
    assert!(out.contains("skipped app.sock: not a regular file"), "{out}");
    assert!(out.contains("skipped pipe: not a regular file"), "{out}");
    assert_eq!(tree(&newest_backup(&s, &target)), vec![("plain.txt".to_string(), b"a plain file".to_vec())]);
}

/// A tmpfs mounted at `at` while it lives; `None` where mounting is not allowed (not root).
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(at: &Path) -> Option<Mounted> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "bakch-test", at.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mounted(at.to_path_buf()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn one_file_system_leaves_out_a_filesystem_mounted_inside() {
    let work = tempfile::tempdir().unwrap();
    let (src, cache) = (work.path().join("src"), work.path().join("cache"));
    write(&src.join("home.txt"), b"on the root's filesystem");
    let Some(_mount) = Mounted::tmpfs(&src.join("mnt")) else {
        // The decision itself is unit-tested in src/push (`enters`).
        println!("NOT RUN: cannot mount a tmpfs here (needs root)");
        return;
    };
    write(&src.join("mnt/elsewhere.txt"), b"on another filesystem");
    let mut s = TestServer::start();
    let key = s.new_api_key();
    let target = s.create_target(json!({"alias": "onefs"}));
    let kf = key_file(work.path(), &key);
    let (ok, summary, out) = push(&s, &kf, &cache, "onefs", &[&src], &["--one-file-system"]);
    assert!(ok, "{out}");
    assert!(out.contains("skipped mnt: another filesystem"), "{out}");
    assert_eq!(summary["skipped"], 1, "{out}");
    assert_eq!(tree(&newest_backup(&s, &target)), vec![("home.txt".to_string(), b"on the root's filesystem".to_vec())]);
    // Without the option, the mounted files are part of the backup.
    let (ok, _, out) = push(&s, &kf, &cache, "onefs", &[&src], &[]);
    assert!(ok, "{out}");
    let names: Vec<String> = tree(&newest_backup(&s, &target)).into_iter().map(|(p, _)| p).collect();
    assert_eq!(names, vec!["home.txt".to_string(), "mnt/elsewhere.txt".to_string()], "{out}");
}
