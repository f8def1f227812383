//! Backups over HTTP: recycle and restore move files, deletes with and without files, the
//! recycle bin, retention, and edits that move or rename backups on disk.

mod common;

use std::path::{Path, PathBuf};

use common::{TestServer, names};
use serde_json::{Value, json};

fn location(t: &Value) -> PathBuf {
    PathBuf::from(t["location"].as_str().unwrap())
}

fn id_of(b: &Value) -> String {
    b["id"].as_str().unwrap().to_string()
}

#[test]
fn recycle_and_restore_move_the_files() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name_template": "r-$I"}));
    s.upload_ok(&id, &[("a.txt", b"A")]);
    let (t, backups) = s.target(&id);
    let bid = id_of(&backups[0]);
    let in_target = location(&t).join(format!("r-{bid}"));
    let in_bin = s.data_path().join("recycle_bin").join(format!("r-{bid}"));
    assert!(in_target.join("a.txt").is_file());

    let (status, reply) = s.patch(&format!("/api/backup/{bid}"), json!({"is_recycled": true}));
    assert_eq!(status, 200, "{reply}");
    assert!(!in_target.exists() && in_bin.join("a.txt").is_file());
    let (_, bin) = s.get("/api/recycle_bin");
    assert_eq!(bin["backups"][0]["id"], bid.as_str());
    assert_eq!(bin["backups"][0]["is_recycled"], true);
    assert_eq!(s.target(&id).1[0]["is_recycled"], true, "recycled backups stay listed on their target");

    let (status, _) = s.patch(&format!("/api/backup/{bid}"), json!({"is_recycled": false}));
    assert_eq!(status, 200);
    assert!(in_target.join("a.txt").is_file() && !in_bin.exists());
    let (_, bin) = s.get("/api/recycle_bin");
    assert!(bin["backups"].as_array().unwrap().is_empty());

    for bad in [json!({}), json!({"is_recycled": "sometimes"})] {
        let (status, _) = s.patch(&format!("/api/backup/{bid}"), bad);
        assert_eq!(status, 400);
    }
    assert!(in_target.join("a.txt").is_file());
}

#[test]
fn delete_with_and_without_files() {
    let s = TestServer::start();
    let id = s.create_target(json!({"backup_type": "single", "name_template": "d-$I"}));
    s.upload_ok(&id, &[("x.txt", b"same")]);
    s.upload_ok(&id, &[("x.txt", b"same")]);
    let (t, backups) = s.target(&id);
    let loc = location(&t);
    let (keep, drop) = (id_of(&backups[0]), id_of(&backups[1]));

    let (status, _) = s.delete(&format!("/api/backup/{drop}"), json!({}));
    assert_eq!(status, 400, "delete_files is required");
    let (status, _) = s.delete(&format!("/api/backup/{drop}"), json!({"delete_files": true}));
    assert_eq!(status, 200);
    assert!(!loc.join(format!("d-{drop}.txt")).exists());
    assert_eq!(std::fs::read(loc.join(format!("d-{keep}.txt"))).unwrap(), b"same", "another backup's file changed");

    let (status, _) = s.delete(&format!("/api/backup/{keep}"), json!({"delete_files": false}));
    assert_eq!(status, 200);
    assert!(s.target(&id).1.is_empty());
    assert_eq!(std::fs::read(loc.join(format!("d-{keep}.txt"))).unwrap(), b"same", "files were to be kept");
}

#[test]
fn bulk_deletes_and_recycle_bin_clear() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name_template": "b-$I"}));
    for n in 0..3 {
        s.upload_ok(&id, &[("f", format!("{n}").as_bytes())]);
    }
    let (t, backups) = s.target(&id);
    let loc = location(&t);
    let first = id_of(&backups[0]);
    s.patch(&format!("/api/backup/{first}"), json!({"is_recycled": true}));

    let (status, _) = s.delete(&format!("/api/target/{id}/recycled"), json!({"delete_files": true}));
    assert_eq!(status, 200);
    let (_, left) = s.target(&id);
    assert_eq!(left.len(), 2);
    assert!(names(&s.data_path().join("recycle_bin")).is_empty());

    let (status, _) = s.delete(&format!("/api/target/{id}/all"), json!({"delete_files": false}));
    assert_eq!(status, 200);
    assert!(s.target(&id).1.is_empty());
    assert_eq!(names(&loc).len(), 2, "delete_files=false keeps the folders");

    // The recycle bin of all targets.
    s.upload_ok(&id, &[("g", b"g")]);
    let bid = id_of(&s.target(&id).1[0]);
    s.patch(&format!("/api/backup/{bid}"), json!({"is_recycled": true}));
    let (status, _) = s.delete("/api/recycle_bin", json!({"delete_files": true}));
    assert_eq!(status, 200);
    let (_, bin) = s.get("/api/recycle_bin");
    assert!(bin["backups"].as_array().unwrap().is_empty());
    assert!(names(&s.data_path().join("recycle_bin")).is_empty());

    let (status, _) = s.delete(&format!("/api/target/{id}"), json!({"delete_files": true}));
    assert_eq!(status, 200);
    let (status, _) = s.get(&format!("/api/target/{id}"));
    assert_eq!(status, 404);
    assert!(names(&loc).len() == 2, "only the backups bakch still knew are removed with the target");
}

#[test]
fn retention_by_count_keeps_the_newest_and_never_below_min_backups() {
    let s = TestServer::start();
    let recycle =
        s.create_target(json!({"recycle_criteria": "count", "recycle_value": 2, "recycle_action": "recycle"}));
    let delete = s.create_target(
        json!({"recycle_criteria": "count", "recycle_value": 0, "recycle_action": "delete", "min_backups": 1}),
    );
    let none = s.create_target(json!({}));
    for n in 0..4 {
        for t in [&recycle, &delete, &none] {
            s.upload_ok(t, &[("f", format!("{n}").as_bytes())]);
        }
    }
    let newest = |t: &str| -> Vec<String> { s.target(t).1.iter().take(2).map(id_of).collect() };
    let keep_recycle = newest(&recycle);
    let keep_delete = newest(&delete)[..1].to_vec();
    let (status, reply) = s.get("/api/jobs/force_run/recycle_job");
    assert_eq!(status, 200, "{reply}");

    let (_, b) = s.target(&recycle);
    let active: Vec<String> = b.iter().filter(|b| b["is_recycled"] == false).map(id_of).collect();
    assert_eq!(active, keep_recycle);
    assert_eq!(b.iter().filter(|b| b["is_recycled"] == true).count(), 2);
    let (t, b) = s.target(&delete);
    assert_eq!(b.iter().map(id_of).collect::<Vec<_>>(), keep_delete);
    assert_eq!(names(&location(&t)).len(), 1, "deleted backups' files must go");
    assert_eq!(s.target(&none).1.len(), 4);

    let (_, jobs) = s.get("/api/jobs");
    let job = jobs["scheduled"].as_array().unwrap().iter().find(|j| j["name"] == "recycle_job").unwrap().clone();
    assert_eq!(job["interval"], 3600);
    assert!(job["next_run"].as_i64().unwrap() > 1_700_000_000);
    assert!(job["last_outcome"].as_str().unwrap().contains("recycled 2"), "{job}");
}

#[test]
fn retention_by_age_zero_days_keeps_min_backups() {
    let s = TestServer::start();
    let id = s.create_target(
        json!({"recycle_criteria": "age", "recycle_value": 0, "recycle_action": "recycle", "min_backups": 2}),
    );
    for n in 0..3 {
        s.upload_ok(&id, &[("f", format!("{n}").as_bytes())]);
    }
    s.get("/api/jobs/force_run/recycle_job");
    let (_, b) = s.target(&id);
    assert_eq!(b.iter().filter(|b| b["is_recycled"] == false).count(), 2);
}

#[test]
fn editing_location_or_template_moves_the_files() {
    let s = TestServer::start();
    let id = s.create_target(json!({"backup_type": "single", "name_template": "old-$I"}));
    s.upload_ok(&id, &[("a.txt", b"one")]);
    s.upload_ok(&id, &[("a.txt", b"two")]);
    let (t, backups) = s.target(&id);
    let old_loc = location(&t);
    // Newest first: [0] holds "two", [1] holds "one".
    let recycled = id_of(&backups[0]);
    s.patch(&format!("/api/backup/{recycled}"), json!({"is_recycled": true}));
    let new_loc = s.location("moved/here");
    let (status, reply) = s
        .patch(&format!("/api/target/{id}"), json!({"location": new_loc.to_string_lossy(), "name_template": "new-$I"}));
    assert_eq!(status, 200, "{reply}");
    let active = id_of(&backups[1]);
    assert_eq!(std::fs::read(new_loc.join(format!("new-{active}.txt"))).unwrap(), b"one");
    assert!(names(&old_loc).is_empty(), "{:?}", names(&old_loc));
    let bin = s.data_path().join("recycle_bin");
    assert!(bin.join(format!("new-{recycled}.txt")).is_file(), "{:?}", names(&bin));
    // Restoring lands in the new place.
    s.patch(&format!("/api/backup/{recycled}"), json!({"is_recycled": false}));
    assert_eq!(std::fs::read(new_loc.join(format!("new-{recycled}.txt"))).unwrap(), b"two");
    // A refused edit moves nothing.
    let (status, _) = s.patch(&format!("/api/target/{id}"), json!({"location": "relative", "name_template": "x-$I"}));
    assert_eq!(status, 400);
    assert_eq!(names(&new_loc).len(), 2);
    assert!(Path::new(&new_loc).join(format!("new-{active}.txt")).is_file());
}
