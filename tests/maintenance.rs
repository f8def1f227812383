//! Scheduled upkeep through force_run: integrity check, garbage collection, deduplication,
//! size recomputation, temp purge; storage figures.

mod common;

use std::path::PathBuf;

use common::{TestServer, names};
use serde_json::{Value, json};

/// One way to damage a backup, or to heal it.
type Step<'a> = Box<dyn Fn() + 'a>;

fn run(s: &TestServer, job: &str) -> String {
    let (status, reply) = s.get(&format!("/api/jobs/force_run/{job}"));
    assert_eq!(status, 200, "{job}: {reply}");
    reply["outcome"].as_str().unwrap_or_default().to_string()
}

fn mismatch(s: &TestServer, target: &str) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = s
        .target(target)
        .1
        .iter()
        .map(|b| (b["id"].as_str().unwrap().to_string(), b["hash_mismatch"] == true))
        .collect();
    v.sort();
    v
}

fn backup_dir(s: &TestServer, target: &str, prefix: &str, b: &Value) -> PathBuf {
    let (t, _) = s.target(target);
    PathBuf::from(t["location"].as_str().unwrap()).join(format!("{prefix}{}", b["id"].as_str().unwrap()))
}

/// Writes to a read-only placed file (shared with its blob), as a failing disk or a careless
/// admin would.
fn overwrite(path: &std::path::Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
}

#[test]
fn integrity_check_flags_exactly_the_damaged_backups_and_clears_when_healed() {
    let s = TestServer::start();
    let t = s.create_target(json!({"name_template": "i-$I"}));
    s.upload_ok(&t, &[("a", b"shared"), ("b", b"one")]);
    s.upload_ok(&t, &[("a", b"shared"), ("c", b"two")]);
    s.upload_ok(&t, &[("d", b"three")]);
    let (_, backups) = s.target(&t);
    // Newest first: [0] = {d}, [1] = {a, c}, [2] = {a, b}.
    let (third, second, first) = (&backups[0], &backups[1], &backups[2]);
    assert!(run(&s, "integrity_check_job").contains("all healthy"));
    assert!(mismatch(&s, &t).iter().all(|(_, m)| !m));

    // A flipped byte in content shared by two backups flags both, and only them.
    let shared = backup_dir(&s, &t, "i-", first).join("a");
    overwrite(&shared, b"sharEd");
    let outcome = run(&s, "integrity_check_job");
    assert!(outcome.contains("2 damaged"), "{outcome}");
    let flagged: Vec<String> = mismatch(&s, &t).into_iter().filter(|(_, m)| *m).map(|(id, _)| id).collect();
    let mut expect = vec![first["id"].as_str().unwrap().to_string(), second["id"].as_str().unwrap().to_string()];
    expect.sort();
    assert_eq!(flagged, expect);
    overwrite(&shared, b"shared");
    assert!(run(&s, "integrity_check_job").contains("all healthy"));
    assert!(mismatch(&s, &t).iter().all(|(_, m)| !m), "healthy again must clear the flag");

    let dir = backup_dir(&s, &t, "i-", third);
    let damage: Vec<(&str, Step, Step)> = vec![
        ("truncated", Box::new(|| overwrite(&dir.join("d"), b"thr")), Box::new(|| overwrite(&dir.join("d"), b"three"))),
        (
            "missing",
            Box::new(|| std::fs::rename(dir.join("d"), dir.with_extension("moved")).unwrap()),
            Box::new(|| std::fs::rename(dir.with_extension("moved"), dir.join("d")).unwrap()),
        ),
        (
            "extra",
            Box::new(|| std::fs::write(dir.join("extra"), b"x").unwrap()),
            Box::new(|| std::fs::remove_file(dir.join("extra")).unwrap()),
        ),
    ];
    for (what, break_it, heal) in damage {
        break_it();
        let outcome = run(&s, "integrity_check_job");
        assert!(outcome.contains("1 damaged") && outcome.contains(third["id"].as_str().unwrap()), "{what}: {outcome}");
        heal();
        assert!(run(&s, "integrity_check_job").contains("all healthy"), "{what} healed");
    }
    let (_, jobs) = s.get("/api/jobs");
    let job =
        jobs["scheduled"].as_array().unwrap().iter().find(|j| j["name"] == "integrity_check_job").unwrap().clone();
    assert!(job["last_outcome"].as_str().unwrap().contains("all healthy"));
    assert!(job["last_duration_ms"].is_i64() && job["last_run"].is_string(), "{job}");
}

#[test]
fn gc_removes_only_unreferenced_blobs() {
    // No hold on deletions: a deleted backup's content is unreferenced at once.
    let s = TestServer::start_with_config("gc_grace_secs = 0\n[protection]\nhold_days = 0\n");
    let t = s.create_target(json!({"name_template": "g-$I"}));
    s.upload_ok(&t, &[("keep", b"kept content"), ("gone", b"only here")]);
    s.upload_ok(&t, &[("keep", b"kept content")]);
    let store = s.data_path().join("store");
    let count_blobs =
        || names(&store).iter().filter(|n| n.len() == 2).map(|n| names(&store.join(n)).len()).sum::<usize>();
    assert_eq!(count_blobs(), 2);
    // An open sequential upload's file is referenced too.
    s.post(&format!("/api/seq/{t}/begin"), json!({"manual": 1, "file_list": [{"path": "/", "name": "s"}]}));
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", "s")
        .text("path", "/")
        .part("file", reqwest::blocking::multipart::Part::bytes(b"in flight".to_vec()).file_name("s"));
    s.multipart(&format!("/api/seq/{t}/upload"), form);
    assert_eq!(count_blobs(), 3);
    let (_, backups) = s.target(&t);
    let older = backups[1]["id"].as_str().unwrap();
    s.delete(&format!("/api/backup/{older}"), json!({"delete_files": true}));
    let outcome = run(&s, "gc_job");
    assert!(outcome.contains("removed 1"), "{outcome}");
    assert_eq!(count_blobs(), 2);
    let (_, remaining) = s.target(&t);
    let dir = backup_dir(&s, &t, "g-", &remaining[0]);
    assert_eq!(std::fs::read(dir.join("keep")).unwrap(), b"kept content");
    assert!(run(&s, "gc_job").contains("no unreferenced"));
}

#[test]
fn gc_keeps_young_blobs_within_the_grace_period() {
    let s = TestServer::start();
    let t = s.create_target(json!({}));
    s.upload_ok(&t, &[("f", b"soon garbage")]);
    let b = s.target(&t).1[0]["id"].as_str().unwrap().to_string();
    s.delete(&format!("/api/backup/{b}"), json!({"delete_files": true}));
    assert!(run(&s, "gc_job").contains("no unreferenced"), "the default grace period is a day");
}

#[test]
fn deduplicate_job_deletes_newer_repeats_in_targets_that_ask_for_it() {
    let s = TestServer::start();
    let on = s.create_target(json!({"deduplicate": true, "backup_type": "single"}));
    let off = s.create_target(json!({"deduplicate": false, "backup_type": "single"}));
    for t in [&on, &off] {
        s.upload_ok(t, &[("x.txt", b"same")]);
        s.upload_ok(t, &[("x.txt", b"different")]);
        s.upload_ok(t, &[("x.txt", b"same")]);
    }
    let oldest = s.target(&on).1[2]["id"].clone();
    let outcome = run(&s, "deduplicate_job");
    assert!(outcome.contains("deleted 1"), "{outcome}");
    let (t, left) = s.target(&on);
    assert_eq!(left.len(), 2);
    assert!(left.iter().any(|b| b["id"] == oldest), "the oldest copy stays");
    assert_eq!(names(&PathBuf::from(t["location"].as_str().unwrap())).len(), 2);
    assert_eq!(s.target(&off).1.len(), 3);
}

#[test]
fn filesize_tmp_purge_and_storage_figures() {
    let s = TestServer::start_with_config("tmp_max_age_secs = 0\n");
    let t = s.create_target(json!({"name_template": "f-$I"}));
    s.upload_ok(&t, &[("a", b"12345"), ("b", b"12345")]);
    s.upload_ok(&t, &[("a", b"12345")]);
    let (target, backups) = s.target(&t);
    assert_eq!(target["storage"], "hardlink");
    assert_eq!(
        (target["logical_size"].clone(), target["disk_used"].clone(), target["dedup_saved"].clone()),
        (json!(15), json!(5), json!(10))
    );

    let db = rusqlite::Connection::open(s.data_path().join("bakch.sqlite3")).unwrap();
    db.execute("UPDATE backups SET filesize = 999 WHERE id = ?1", [backups[0]["id"].as_str().unwrap()]).unwrap();
    drop(db);
    assert!(run(&s, "backup_filesize_job").contains("corrected the size of 1"));
    assert_eq!(s.target(&t).1[0]["filesize"], 5);

    std::fs::write(s.data_path().join("store/tmp/leftover"), b"x").unwrap();
    std::fs::write(s.data_path().join("uploads/orphan.upload"), b"x").unwrap();
    assert!(run(&s, "tmp_purge_job").contains("removed 2"));
    assert!(names(&s.data_path().join("store/tmp")).is_empty());
    assert!(names(&s.data_path().join("uploads")).is_empty());
}

#[test]
fn a_scheduled_run_missed_while_down_catches_up_once_at_start() {
    let mut s = TestServer::start();
    s.kill();
    let db = rusqlite::Connection::open(s.data_path().join("bakch.sqlite3")).unwrap();
    db.execute(
        "INSERT INTO scheduled_runs (name, last_run_at, last_outcome, last_duration_ms)
         VALUES ('recycle_job', '2020-01-01T00:00:00.000000+00:00', 'old', 1)",
        [],
    )
    .unwrap();
    drop(db);
    s.restart();
    let job = common::poll("recycle_job to catch up", std::time::Duration::from_secs(30), || {
        let (_, jobs) = s.get("/api/jobs");
        let job = jobs["scheduled"].as_array()?.iter().find(|j| j["name"] == "recycle_job")?.clone();
        (job["last_outcome"] != "old").then_some(job)
    });
    assert!(
        job["last_run"].as_str().unwrap().starts_with("20") && !job["last_run"].as_str().unwrap().starts_with("2020")
    );
    // A job that never ran is not started just because bakch started.
    let (_, jobs) = s.get("/api/jobs");
    let gc = jobs["scheduled"].as_array().unwrap().iter().find(|j| j["name"] == "gc_job").unwrap().clone();
    assert_eq!(gc["last_run"], json!(null));
}
