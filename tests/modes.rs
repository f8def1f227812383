//! File modes: bakch's own files are private to its user; what it creates in target folders
//! follows `[permissions]`; folders it did not create keep their mode. (Tests run as root, so
//! they check modes, not access denials.)

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, TestServer, poll, tar_gz};
use serde_json::json;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

fn assert_mode(path: &Path, want: u32) {
    assert_eq!(mode(path), want, "mode of {} is {:04o}, want {want:04o}", path.display(), mode(path));
}

fn set_mode(path: &Path, m: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).expect("chmod");
}

/// Every folder and file under `dir` (itself included), split.
fn walk(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut files) = (vec![dir.to_path_buf()], Vec::new());
    let mut i = 0;
    while i < dirs.len() {
        for e in std::fs::read_dir(&dirs[i]).expect("read folder").flatten() {
            let p = e.path();
            if p.is_dir() { dirs.push(p) } else { files.push(p) }
        }
        i += 1;
    }
    (dirs, files)
}

/// The backups of a target, each with its path (templates here are `<prefix>-$I`).
fn backup_paths(s: &TestServer, target: &str, loc: &Path, prefix: &str, ext: &str) -> Vec<(String, PathBuf)> {
    s.target(target)
        .1
        .iter()
        .map(|b| {
            let id = b["id"].as_str().expect("id").to_string();
            let path = loc.join(format!("{prefix}-{id}{ext}"));
            (id, path)
        })
        .collect()
}

/// Uploads a single file, plain files and archives (with subfolders and an empty file) into
/// fresh targets; recycles one backup; checks every mode against `file` and `dir`.
fn check_modes(s: &TestServer, file: u32, dir: u32) {
    // bakch's own: private whatever `[permissions]` says.
    let data = s.data_path();
    for d in ["", "store", "store/tmp", "uploads", "recycle_bin", "logs"] {
        assert_mode(&data.join(d), 0o700);
    }
    for f in ["bakch.sqlite3", "bakch.sqlite3-wal", "bakch.sqlite3-shm"] {
        assert_mode(&data.join(f), 0o600);
    }

    // A location bakch creates, two levels deep: both folders are its own.
    let created = s.location("made-by-bakch");
    let single_loc = created.join("deeper");
    let single = s.create_target(json!({"backup_type": "single", "name_template": "one-$I",
        "location": single_loc.to_string_lossy()}));
    assert_mode(&created, dir);
    assert_mode(&single_loc, dir);
    s.upload_ok(&single, &[("db.sql", b"single file content")]);

    // A location that is the user's own folder keeps its mode.
    let users = s.location("users-own");
    std::fs::create_dir(&users).expect("mkdir");
    set_mode(&users, 0o755);
    let multi = s.create_target(json!({"name_template": "m-$I", "location": users.to_string_lossy()}));
    s.upload_ok(&multi, &[("a.txt", b"plain a"), ("b.txt", b"plain b")]);
    let archive = tar_gz(&[("site/index.html", b"<h1>new</h1>"), ("site/img/logo.png", b"PNG"), ("empty", b"")]);
    s.upload_ok(&multi, &[("site.tar.gz", &archive)]);
    assert_mode(&users, 0o755);

    let (_, single_path) = backup_paths(s, &single, &single_loc, "one", ".sql").remove(0);
    assert_mode(&single_path, file);
    // A placed file is a hard link to its blob: the blob has the same mode.
    let blob_hash = blake3::hash(b"single file content").to_hex().to_string();
    let blob = data.join("store").join(&blob_hash[..2]).join(&blob_hash[2..]);
    assert_eq!(std::fs::metadata(&blob).expect("blob").ino(), std::fs::metadata(&single_path).expect("placed").ino());
    assert_mode(&blob, file);
    assert_mode(blob.parent().expect("fan-out folder"), 0o700);

    let backups = backup_paths(s, &multi, &users, "m", "");
    assert_eq!(backups.len(), 2);
    for (_, path) in &backups {
        let (dirs, files) = walk(path);
        assert!(!files.is_empty(), "{} is empty", path.display());
        dirs.iter().for_each(|d| assert_mode(d, dir));
        files.iter().for_each(|f| assert_mode(f, file));
    }
    assert!(backups.iter().any(|(_, p)| p.join("site/img").is_dir() && p.join("empty").is_file()));

    // Recycling moves the backup as it is.
    let (id, _) = &backups[0];
    let (status, reply) = s.patch(&format!("/api/backup/{id}"), json!({"is_recycled": true}));
    assert_eq!(status, 200, "{reply}");
    let recycled = data.join("recycle_bin").join(format!("m-{id}"));
    let (dirs, files) = walk(&recycled);
    dirs.iter().for_each(|d| assert_mode(d, dir));
    files.iter().for_each(|f| assert_mode(f, file));
    assert_mode(&data.join("recycle_bin"), 0o700);

    for log in std::fs::read_dir(data.join("logs")).expect("logs").flatten() {
        assert_eq!(mode(&log.path()) & 0o077, 0, "log file {} is open to others", log.path().display());
    }
}

#[test]
fn by_default_nothing_is_open_to_other_accounts() {
    let mut s = TestServer::start();
    check_modes(&s, 0o400, 0o700);

    // A data folder opened up by hand is narrowed again at the next start, and that is logged.
    set_mode(&s.data_path(), 0o755);
    s.restart();
    assert_mode(&s.data_path(), 0o700);
    let (_, log) = s.get("/api/log?tail=0");
    assert!(log["log"].as_str().unwrap_or_default().contains("narrowed it to owner-only"), "{log}");

    // Commands that create the data folder create it private too.
    let fresh = s.root.path().join("fresh/data");
    let out = Command::new(BIN).args(["newapikey", "--data-dir"]).arg(&fresh).output().expect("run newapikey");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_mode(&fresh, 0o700);
    assert_mode(&fresh.join("apikey.json"), 0o600);
}

#[test]
fn permissions_open_target_folders_to_a_group_on_purpose() {
    let s = TestServer::start_with_config("[permissions]\nfile_mode = \"0440\"\ndir_mode = \"0750\"\n");
    check_modes(&s, 0o440, 0o750);

    // A target on another filesystem gets copies, not links, with the same mode.
    let shm = Path::new("/dev/shm");
    let other_fs = shm.is_dir()
        && std::fs::metadata(shm).map(|m| m.dev()).ok() != std::fs::metadata(s.data_path()).map(|m| m.dev()).ok();
    if !other_fs {
        eprintln!("no second filesystem at /dev/shm: the copy case is not checked");
        return;
    }
    let elsewhere = tempfile::tempdir_in(shm).expect("temp folder in /dev/shm");
    let loc = elsewhere.path().join("copies");
    let id = s.create_target(json!({"name_template": "c-$I", "location": loc.to_string_lossy()}));
    // Enough files that several threads place them (the copies each thread made are all synced).
    let names: Vec<String> = (0..600).map(|i| format!("n{i}.txt")).collect();
    let contents: Vec<Vec<u8>> = (0..600).map(|i| format!("copied {i}").into_bytes()).collect();
    let mut files: Vec<(&str, &[u8])> = vec![("a.txt", b"copied a"), ("b.txt", b"copied b")];
    files.extend(names.iter().map(String::as_str).zip(contents.iter().map(Vec::as_slice)));
    s.upload_ok(&id, &files);
    let (_, path) = backup_paths(&s, &id, &loc, "c", "").remove(0);
    assert_mode(&loc, 0o750);
    assert_mode(&path, 0o750);
    for (f, content) in &files {
        assert_eq!(std::fs::metadata(path.join(f)).expect("copied file").nlink(), 1, "{f} should be a copy");
        assert_eq!(std::fs::read(path.join(f)).expect("copied file"), *content, "{f}");
        assert_mode(&path.join(f), 0o440);
    }
}

/// A child process killed when the test ends, even by a failed assertion.
struct Stops(std::process::Child);

impl Drop for Stops {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_bad_mode_stops_start_up_with_a_clear_message() {
    for (table, says) in [
        ("file_mode = \"0644\"", "file_mode 0644 has a write bit"),
        ("file_mode = \"0040\"", "must let the owner read"),
        ("dir_mode = \"0600\"", "dir_mode 0600 must give the owner rwx"),
        ("dir_mode = \"4755\"", "only permission bits"),
        ("file_mode = \"r--r-----\"", "is not a mode"),
        ("file_mode = 0o440", "string"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("bakch.toml");
        std::fs::write(&config, format!("[permissions]\n{table}\n")).expect("write config");
        let mut child = Stops(
            Command::new(BIN)
                .args(["serve", "--bind", &format!("127.0.0.1:{}", common::free_port())])
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .arg("--config")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start bakch"),
        );
        let status = poll("bakch to stop", Duration::from_secs(30), || child.0.try_wait().ok().flatten());
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.0.stderr.take().expect("stderr"), &mut stderr).expect("read stderr");
        assert!(!status.success(), "{table}: bakch started");
        assert!(stderr.contains(says), "{table}: {stderr}");
        assert!(!dir.path().join("data").exists(), "{table}: the data folder was created before the check");
    }
}
