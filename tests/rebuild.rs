//! The database is a cache (issue 13): every finished backup and every target has a manifest in
//! the data folder, `bakch rebuild-db` makes a lost or damaged database again from them, and
//! `bakch check` reports what disagrees. All against the real binary, with bakch stopped between.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, TestServer, tar_gz};
use reqwest::blocking::multipart;
use serde_json::{Value, json};

fn bakch(args: &[&str], data: &Path) -> Output {
    Command::new(BIN).args(args).arg("--data-dir").arg(data).env("BAKCH_LOG", "warn").output().expect("run bakch")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn remove_database(data: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("bakch.sqlite3{suffix}")));
    }
}

/// Everything the API says of the targets and their backups, with every backup's download.
fn snapshot(s: &TestServer, targets: &[&str]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for t in targets {
        let (status, body) = s.get(&format!("/api/target/{t}"));
        assert_eq!(status, 200, "{body}");
        for b in body["backups"].as_array().expect("backups") {
            let id = b["id"].as_str().expect("id");
            let resp = s.get_raw(&format!("/api/backup/{id}/download"));
            assert_eq!(resp.status().as_u16(), 200, "download of {id}");
            let bytes = resp.bytes().expect("download");
            out.insert(format!("download {id}"), json!(blake3::hash(&bytes).to_hex().to_string()));
        }
        let mut body = body;
        // Not rebuilt: a target's health moves on its own (the monitor records since when), and
        // the change canary's record is not in the manifests (a rebuilt backup shows null).
        if let Some(t) = body["target"].as_object_mut() {
            t.remove("health");
        }
        for b in body["backups"].as_array_mut().into_iter().flatten() {
            if let Some(b) = b.as_object_mut() {
                for key in ["changes", "unusual", "unusual_reason"] {
                    b.remove(key);
                }
            }
        }
        out.insert(format!("target {t}"), body);
    }
    let (_, mut stats) = s.get("/api/stats");
    // What the store holds beyond the backups (sizes on disk) may differ; the counts may not.
    for key in
        ["total_targets", "total_backups", "total_recycled_backups", "total_target_size", "total_recycle_bin_size"]
    {
        out.insert(format!("stats {key}"), stats[key].take());
    }
    out
}

/// Single and multi targets; archive, plain and sequential uploads; a recycled backup; a target
/// whose folder moved and whose backups were renamed.
fn varied_state(s: &TestServer) -> Vec<String> {
    let single = s.create_target(json!({"backup_type": "single", "alias": "db-dumps", "tags": ["sql", "nightly"]}));
    let multi = s.create_target(json!({"recycle_criteria": "count", "recycle_value": 5, "deduplicate": true}));
    s.upload_ok(&single, &[("dump.sql", b"create table t;")]);
    let recycled = s.upload_ok(&single, &[("dump.sql", b"create table u;")]);
    s.upload_ok(
        &multi,
        &[("site.tar.gz", &tar_gz(&[("www/index.html", b"<h1>hi</h1>"), ("www/a/b.css", b"b{}"), ("empty", b"")]))],
    );
    s.upload_ok(&multi, &[("one.txt", b"one"), ("two.txt", b"two")]);
    let (status, body) = s.post(
        &format!("/api/seq/{multi}/begin"),
        json!({"manual": 0, "file_list": [{"path": "/docs", "name": "a.md"}, {"path": "/", "name": "b.md"}]}),
    );
    assert_eq!(status, 200, "{body}");
    for (path, name, bytes) in [("/docs", "a.md", &b"# a"[..]), ("/", "b.md", b"# b")] {
        let form = multipart::Form::new()
            .text("path", path)
            .text("name", name)
            .part("file", multipart::Part::bytes(bytes.to_vec()).file_name(name));
        let (status, body) = s.multipart(&format!("/api/seq/{multi}/upload"), form);
        assert_eq!(status, 200, "{body}");
    }
    let (_, body) = s.post(&format!("/api/seq/{multi}/finish"), json!({}));
    let job = s.wait_job(body["job_id"].as_i64().expect("job id"));
    assert_eq!(job["status"], "FINISHED", "{job}");
    let id = recycled["backup_id"].as_str().expect("backup id");
    let (status, _) = s.patch(&format!("/api/backup/{id}"), json!({"is_recycled": true}));
    assert_eq!(status, 200);
    let moved = s.location("moved-here");
    let (status, body) = s.patch(
        &format!("/api/target/{multi}"),
        json!({"location": moved.to_string_lossy(), "name_template": "m-$D-$I"}),
    );
    assert_eq!(status, 200, "{body}");
    vec![single, multi]
}

#[test]
fn a_lost_database_is_rebuilt_from_the_manifests_and_everything_reads_the_same() {
    let mut s = TestServer::start();
    let targets = varied_state(&s);
    let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    let before = snapshot(&s, &refs);
    let data = s.data_path();

    // The upgrade path: a manifest missing (a backup made before manifests existed) is written
    // at the next start, the same as it was.
    let one = data.join("manifests").join(&targets[0]);
    let manifest = std::fs::read_dir(&one)
        .expect("manifests of a target")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n != "target.json"))
        .expect("a backup manifest");
    let written = std::fs::read_to_string(&manifest).expect("read manifest");
    std::fs::remove_file(&manifest).expect("remove manifest");
    std::fs::remove_file(one.join("target.json")).expect("remove target.json");
    s.restart();
    assert_eq!(std::fs::read_to_string(&manifest).expect("manifest written again"), written);
    assert!(one.join("target.json").exists(), "the target's definition was not written again");

    let beside_server = bakch(&["rebuild-db"], &data);
    assert!(!beside_server.status.success(), "rebuild-db ran beside a server: {}", text(&beside_server));
    assert!(text(&beside_server).contains("stop it first"), "{}", text(&beside_server));

    s.kill();
    remove_database(&data);
    // Neither a check nor a server start may put an empty database in its place.
    let check = bakch(&["check"], &data);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(text(&check).contains("rebuild-db"), "{}", text(&check));
    let serve =
        Command::new(BIN).args(["serve", "--bind", "127.0.0.1:0", "--data-dir"]).arg(&data).output().expect("serve");
    assert!(!serve.status.success(), "bakch served an empty database over the manifests");
    assert!(text(&serve).contains("run `bakch rebuild-db`"), "{}", text(&serve));
    assert!(!data.join("bakch.sqlite3").exists(), "a check or a start created an empty database");
    let rebuilt = bakch(&["rebuild-db"], &data);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    assert!(text(&rebuilt).contains("2 target(s), 5 backup(s)"), "{}", text(&rebuilt));
    s.restart();
    assert_eq!(snapshot(&s, &refs), before, "the rebuilt database lists something else");

    // A second rebuild of the same manifests gives the same database; the first is kept aside.
    s.kill();
    let again = bakch(&["rebuild-db"], &data);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("The previous database is kept as"), "{}", text(&again));
    s.restart();
    assert_eq!(snapshot(&s, &refs), before, "a second rebuild differs");
    // The nightly verification finds nothing to put right, and the jobs page says when it ran.
    let (status, run) = s.get("/api/jobs/force_run/manifest_check_job");
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["outcome"], "manifests verified: 0 rewritten, 0 without a row", "{run}");
    let page = s.get_raw("/jobs").text().expect("jobs page");
    let row = page.split("Verify manifests against the database").nth(1).expect("the job is listed");
    assert!(!row[..row.find("</tr>").unwrap_or(row.len())].contains("never"), "no last run shown");
    // The rebuilt database works on: a new upload gets its manifest too.
    s.upload_ok(&targets[0], &[("new.sql", b"insert;")]);
    s.kill();
    let check = bakch(&["check", "--deep"], &data);
    assert!(check.status.success(), "{}", text(&check));
}

#[test]
fn a_damaged_database_is_refused_at_start_and_rebuild_db_recovers_it() {
    let mut s = TestServer::start();
    let t = s.create_target(json!({"backup_type": "single"}));
    s.upload_ok(&t, &[("f.bin", b"kept through the damage")]);
    let before = snapshot(&s, &[&t]);
    let data = s.data_path();
    s.kill();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    remove_database(&data);
    std::fs::write(data.join("bakch.sqlite3"), &garbage).expect("damage the database");

    let serve = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run serve");
    assert!(!serve.status.success());
    assert!(text(&serve).contains("bakch rebuild-db"), "the refusal does not point at rebuild-db: {}", text(&serve));

    let rebuilt = bakch(&["rebuild-db"], &data);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    let kept: Vec<_> = std::fs::read_dir(&data)
        .expect("data folder")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("bakch.sqlite3.before-rebuild-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged database was not kept aside");
    assert_eq!(std::fs::read(kept[0].path()).expect("kept file"), garbage);
    s.restart();
    assert_eq!(snapshot(&s, &[&t]), before);
}

#[test]
fn check_reports_each_disagreement_and_its_exit_status_says_so() {
    let mut s = TestServer::start();
    let single = s.create_target(json!({"backup_type": "single"}));
    let multi = s.create_target(json!({}));
    let a = s.upload_ok(&single, &[("a.bin", b"the bytes of a")]);
    let b = s.upload_ok(&multi, &[("x.txt", b"xxxx"), ("y.txt", b"yyyy")]);
    let c = s.upload_ok(&single, &[("c.bin", b"the bytes of c")]);
    let data = s.data_path();
    let multi_dir = std::path::PathBuf::from(s.target(&multi).0["location"].as_str().expect("location").to_string());
    s.kill();
    let clean = bakch(&["check", "--deep"], &data);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert!(text(&clean).contains("3 backup(s) checked (deep): 0 problem(s)"), "{}", text(&clean));

    let id = |job: &Value| job["backup_id"].as_str().expect("backup id").to_string();
    let (a, b, c) = (id(&a), id(&b), id(&c));
    // One manifest gone, one manifest with no row, a file added to a backup, a file changed in
    // place with its size kept (only --deep sees that), and a blob removed from the store.
    std::fs::remove_file(data.join("manifests").join(&single).join(format!("{c}.json"))).expect("remove manifest");
    let orphan = "0e5a3f0c-8d8e-4a43-9a8e-2d5b1c7f9e01";
    let text_of_a =
        std::fs::read_to_string(data.join("manifests").join(&single).join(format!("{a}.json"))).expect("read");
    std::fs::write(data.join("manifests").join(&single).join(format!("{orphan}.json")), text_of_a.replace(&a, orphan))
        .expect("orphan manifest");
    let b_dir = multi_dir.join(common::names(&multi_dir).into_iter().find(|n| n.contains(&b)).expect("backup b"));
    std::fs::write(b_dir.join("stray.txt"), b"not part of the backup").expect("extra file");
    let blob = blake3::hash(b"xxxx").to_hex().to_string();
    let x = b_dir.join("x.txt");
    std::fs::remove_file(&x).expect("unlink placed file");
    std::fs::write(&x, b"XXXX").expect("same size, other content");
    std::fs::remove_file(data.join("store").join(&blob[..2]).join(&blob[2..])).expect("remove blob");

    let shallow = bakch(&["check"], &data);
    let report = text(&shallow);
    assert_eq!(shallow.status.code(), Some(1), "{report}");
    for expected in [
        format!("backup {c} is in the database but has no manifest"),
        format!("backup {orphan} has a manifest but is not in the database"),
        "'stray.txt'".to_string(),
        format!("backup {b}: the content of 'x.txt' is missing from the store"),
    ] {
        assert!(report.contains(&expected), "check did not report {expected:?}:\n{report}");
    }
    assert!(!report.contains("differs from its recorded content"), "only --deep re-hashes:\n{report}");
    let deep = text(&bakch(&["check", "--deep"], &data));
    assert!(deep.contains(&format!("backup {b}: 'x.txt' differs from its recorded content")), "{deep}");
}
