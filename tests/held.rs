//! The hold on deletions: a deleted backup's content stays held for `[protection] hold_days`,
//! a local `bakch held restore` brings it back byte-identical, nothing over HTTP shortens a
//! hold (walked route by route), the hold ends on its own and garbage collection takes the
//! content after, `bakch held purge` ends it early, a full disk says what is held, and
//! `rebuild-db` keeps held entries.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::routes::registered_api_needs;
use common::{BIN, TestServer, names, poll, tree};
use serde_json::{Value, json};

/// Holds for a week, collects unreferenced content at once: only a hold keeps anything.
const WEEK: &str = "gc_grace_secs = 0\n[protection]\nhold_days = 7\n";

fn held_cmd(s: &TestServer, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("held")
        .args(args)
        .arg("--data-dir")
        .arg(s.data_path())
        .stdin(Stdio::null())
        .output()
        .expect("run bakch held")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "bakch held failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn force(s: &TestServer, job: &str) -> String {
    let (status, reply) = s.get(&format!("/api/jobs/force_run/{job}"));
    assert_eq!(status, 200, "{job}: {reply}");
    reply["outcome"].as_str().unwrap_or_default().to_string()
}

/// Every blob file in the store.
fn blobs(s: &TestServer) -> Vec<PathBuf> {
    let store = s.data_path().join("store");
    let mut out = Vec::new();
    for d in names(&store).into_iter().filter(|n| n.len() == 2) {
        out.extend(names(&store.join(&d)).into_iter().map(|n| store.join(&d).join(n)));
    }
    out.sort();
    out
}

fn held(s: &TestServer) -> Vec<Value> {
    let (status, reply) = s.get("/api/held");
    assert_eq!(status, 200, "{reply}");
    reply["held"].as_array().unwrap().clone()
}

fn download(s: &TestServer, backup: &str) -> Vec<u8> {
    let res = s.get_raw(&format!("/api/backup/{backup}/download"));
    assert_eq!(res.status().as_u16(), 200);
    res.bytes().unwrap().to_vec()
}

/// A target with one backup of two files; returns (target id, backup id, its folder's tree).
fn target_with_backup(s: &TestServer, name: &str) -> (String, String, Vec<(String, Vec<u8>)>) {
    let t = s.create_target(json!({"name": name, "name_template": format!("{name}-$I")}));
    // Content of its own, so no other target's backup shares (deduplicates) it.
    let big = name.as_bytes().repeat(50_000 / name.len() + 1);
    s.upload_ok(&t, &[("a.txt", format!("first file of {name}").as_bytes()), ("b.bin", &big)]);
    let (_, backups) = s.target(&t);
    let b = backups[0]["id"].as_str().unwrap().to_string();
    (t.clone(), b, tree(&only_folder(s, &t)))
}

/// The one backup folder in a target's folder.
fn only_folder(s: &TestServer, target: &str) -> PathBuf {
    let location = PathBuf::from(s.target(target).0["location"].as_str().unwrap());
    let found = names(&location);
    assert_eq!(found.len(), 1, "{found:?}");
    location.join(&found[0])
}

#[test]
fn an_admin_delete_is_held_and_a_local_restore_brings_it_back_byte_identical() {
    let mut s = TestServer::start_with_config(WEEK);
    s.new_api_key();
    let (t, b, files) = target_with_backup(&s, "photos");
    let bytes = download(&s, &b);
    let stored = blobs(&s);

    let (status, reply) = s.delete(&format!("/api/backup/{b}"), json!({"delete_files": true}));
    assert_eq!(status, 200, "{reply}");
    let (target, backups) = s.target(&t);
    assert!(backups.is_empty(), "the deleted backup is still listed");
    assert_eq!(s.get_raw(&format!("/api/backup/{b}/download")).status().as_u16(), 404);
    assert!(names(Path::new(target["location"].as_str().unwrap())).is_empty(), "its files are still in the folder");

    // Held, with who deleted it, from where and until when; its content survives collection.
    let entries = held(&s);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let h = &entries[0];
    assert_eq!((h["id"].as_str(), h["target_id"].as_str()), (Some(b.as_str()), Some(t.as_str())));
    assert_eq!(h["deleted_by"]["who"], "apikey.json");
    assert_eq!(h["deleted_by"]["from"], "127.0.0.1");
    let deleted = chrono::DateTime::parse_from_rfc3339(h["deleted_at"].as_str().unwrap()).unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(h["hold_until"].as_str().unwrap()).unwrap();
    assert_eq!((until - deleted).num_seconds(), 7 * 86400, "{h}");
    let (_, stats) = s.get("/api/stats");
    assert_eq!(stats["held_backups"], 1);
    assert!(stats["held_bytes"].as_i64().unwrap() >= 50_000, "{stats}");
    force(&s, "gc_job");
    assert_eq!(blobs(&s), stored, "garbage collection took held content");
    let listed = ok(&held_cmd(&s, &["list"]));
    assert!(listed.contains(&b) && listed.contains("apikey.json") && listed.contains("photos"), "{listed}");

    // A local restore beside the running server: same id, same bytes, same files.
    let out = ok(&held_cmd(&s, &["restore", &b]));
    assert!(out.contains(&format!("restored backup {b}")), "{out}");
    let backups = s.target(&t).1;
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0]["id"], b.as_str());
    assert_eq!(download(&s, &b), bytes, "the restored backup differs");
    assert_eq!(tree(&only_folder(&s, &t)), files);
    assert!(held(&s).is_empty(), "the restored backup is still held");
    assert!(names(&s.data_path().join("held")).is_empty(), "its held file stayed");

    // The audit trail holds every step.
    let (_, audit) = s.get("/api/audit?limit=50");
    let steps: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["who"].as_str().unwrap().to_string()))
        .collect();
    for step in [("backup_deleted_with_files", "apikey.json"), ("held_restored", "cli"), ("job_forced", "apikey.json")]
    {
        assert!(steps.contains(&(step.0.to_string(), step.1.to_string())), "{step:?} missing from {steps:?}");
    }
}

#[test]
fn a_deleted_target_comes_back_with_its_held_backup_through_the_api() {
    let mut s = TestServer::start_with_config(WEEK);
    s.new_api_key();
    let (t, b, files) = target_with_backup(&s, "docs");
    let bytes = download(&s, &b);
    let (status, reply) = s.delete(&format!("/api/target/{t}"), json!({"delete_files": true}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(s.get(&format!("/api/target/{t}")).0, 404);
    force(&s, "gc_job");

    let (status, reply) = s.post(&format!("/api/held/{b}/restore"), json!({}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["target_recreated"], true, "{reply}");
    let (target, backups) = s.target(&t);
    assert_eq!(target["name"], "docs");
    assert_eq!(backups[0]["id"], b.as_str());
    assert_eq!(download(&s, &b), bytes);
    assert_eq!(tree(&only_folder(&s, &t)), files);
    // Restoring twice, or something never held: a clear refusal, nothing changes.
    let (status, reply) = s.post(&format!("/api/held/{b}/restore"), json!({}));
    assert_eq!(status, 404, "{reply}");
    assert_eq!(s.post("/api/held/nope/restore", json!({})).0, 404);
    assert_eq!(s.target(&t).1.len(), 1);
}

#[test]
fn a_name_taken_meanwhile_sends_the_restored_backup_to_a_new_folder() {
    let s = TestServer::start_with_config(WEEK);
    let (t, b, files) = target_with_backup(&s, "mail");
    // Deleted without its files: the folder stays where the backup would go back.
    assert_eq!(s.delete(&format!("/api/backup/{b}"), json!({"delete_files": false})).0, 200);
    let (target, _) = s.target(&t);
    let location = PathBuf::from(target["location"].as_str().unwrap());
    let left = names(&location);
    assert_eq!(left.len(), 1);
    let (status, reply) = s.post(&format!("/api/held/{b}/restore"), json!({}));
    assert_eq!(status, 200, "{reply}");
    let name = reply["name"].as_str().unwrap();
    assert_ne!(name, left[0], "restored over the files left in place");
    assert_eq!(tree(&location.join(name)), files);
    assert_eq!(tree(&location.join(&left[0])), files, "the files left in place were touched");
}

/// Every registered route, with the admin key and bodies meant to do harm, then every scheduled
/// job forced and every job retried: the held entry keeps its hold and its content.
#[test]
fn no_http_route_shortens_a_hold() {
    let mut s = TestServer::start_with_config(WEEK);
    s.new_api_key();
    let (_, victim, _) = target_with_backup(&s, "victim");
    let (other, other_backup, _) = target_with_backup(&s, "other");
    assert_eq!(s.delete(&format!("/api/backup/{victim}"), json!({"delete_files": true})).0, 200);
    let before = held(&s);
    let victim_blobs = blobs(&s);
    let job = s.get("/api/jobs").1["delayed"][0]["id"].as_i64().unwrap();

    let bodies = [
        json!({"delete_files": true}),
        json!({"is_recycled": true, "hold_until": "2000-01-01T00:00:00Z", "hold_days": 0}),
        json!({"purge": true, "ids": [victim], "older_than_secs": 0}),
    ];
    let mut walked = 0;
    for (path, method, _) in registered_api_needs() {
        let ids: Vec<String> = if path.contains("/backup/") {
            vec![other_backup.clone(), victim.clone()]
        } else if path.contains("/jobs/") && path.contains("{id}") {
            vec![job.to_string()]
        } else if path.contains("/held/") {
            vec!["nope".into()] // a restore is allowed; it does not end a hold early
        } else if path.contains("{name}") {
            vec![
                "gc_job",
                "tmp_purge_job",
                "recycle_job",
                "deduplicate_job",
                "manifest_check_job",
                "audit_purge_job",
                "held_purge_job",
            ]
            .into_iter()
            .map(String::from)
            .collect()
        } else if path.contains("{id}") {
            vec![other.clone(), victim.clone()]
        } else {
            vec![String::new()]
        };
        for id in ids {
            let route = path.replace("{id}", &id).replace("{name}", &id);
            for body in &bodies {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let res = reqwest::blocking::Client::new()
                    .request(method.clone(), format!("{}{route}", s.url))
                    .bearer_auth(s.key.as_deref().unwrap())
                    .json(body)
                    .send()
                    .unwrap();
                assert!(res.status().as_u16() < 500, "{method} {route}: {}", res.status());
                walked += 1;
            }
        }
    }
    assert!(walked >= 60, "walked only {walked} requests");
    force(&s, "gc_job");
    let after = held(&s);
    let victim_entry = after.iter().find(|h| h["id"] == victim.as_str()).expect("the held entry is gone");
    assert_eq!(victim_entry, &before[0], "the held entry changed");
    let left = blobs(&s);
    assert!(victim_blobs.iter().all(|b| left.contains(b)), "held content was collected");
}

#[test]
fn the_hold_ends_on_its_own_and_garbage_collection_takes_the_content_after() {
    // A one-second hold (hold_days takes fractions for this).
    let s = TestServer::start_with_config("gc_grace_secs = 0\n[protection]\nhold_days = 0.0000116\n");
    let (_, b, _) = target_with_backup(&s, "short");
    assert_eq!(s.delete(&format!("/api/backup/{b}"), json!({"delete_files": true})).0, 200);
    assert_eq!(held(&s).len(), 1);
    poll("the hold to end and collection to remove the content", Duration::from_secs(30), || {
        force(&s, "gc_job");
        (held(&s).is_empty() && blobs(&s).is_empty()).then_some(())
    });
    assert!(names(&s.data_path().join("held")).is_empty());
    let (status, reply) = s.post(&format!("/api/held/{b}/restore"), json!({}));
    assert_eq!(status, 404, "{reply}");
}

#[test]
fn held_purge_is_local_asks_first_and_frees_the_space_at_once() {
    // The default grace of a day: only a purge frees content this young.
    let s = TestServer::start_with_config("[protection]\nhold_days = 7\n");
    let (_, b, _) = target_with_backup(&s, "big");
    let (_, keep, _) = target_with_backup(&s, "kept");
    let kept_bytes = download(&s, &keep);
    assert_eq!(s.delete(&format!("/api/backup/{b}"), json!({"delete_files": true})).0, 200);
    let with_held = blobs(&s);

    // Without a terminal to confirm on, and without --yes, nothing happens.
    let refused = held_cmd(&s, &["purge"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"), "{refused:?}");
    assert_eq!(held(&s).len(), 1);
    assert_eq!(blobs(&s), with_held);
    let bad = held_cmd(&s, &["purge", "--older-than", "3 weeks", "--yes"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("3d"), "{bad:?}");
    // Deleted less than a day ago: an --older-than 1d purge leaves it.
    ok(&held_cmd(&s, &["purge", "--older-than", "1d", "--yes"]));
    assert_eq!(held(&s).len(), 1);

    let out = ok(&held_cmd(&s, &["purge", "--yes"]));
    assert!(out.contains(&b), "the purge did not say what it ends: {out}");
    assert!(held(&s).is_empty());
    let left = blobs(&s);
    assert!(left.len() < with_held.len(), "the purge freed nothing");
    assert_eq!(download(&s, &keep), kept_bytes, "a listed backup lost content");
    let (_, audit) = s.get("/api/audit?action=held_purged");
    assert_eq!(audit["entries"][0]["who"], "cli", "{audit}");
}

#[test]
fn a_full_disk_says_what_is_held_and_how_to_free_it() {
    let s = TestServer::start_with(&[("BAKCH_FAULT_DISK_FULL_AFTER", "300000")], Some(WEEK));
    let t = s.create_target(json!({"name_template": "full-$I"}));
    s.upload_ok(&t, &[("old.bin", &[1u8; 200_000])]);
    let b = s.target(&t).1[0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.delete(&format!("/api/backup/{b}"), json!({"delete_files": true})).0, 200);
    let (status, reply) = s.upload(&t, &[("new.bin", &[2u8; 200_000])], "1");
    assert_eq!(status, 507, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains("disk is full"), "{message}");
    assert!(message.contains("held from 1 deleted backup") && message.contains("bakch held purge"), "{message}");
}

#[test]
fn rebuild_db_keeps_held_entries_and_their_content() {
    let mut s = TestServer::start_with_config(WEEK);
    let (t, b, files) = target_with_backup(&s, "rebuilt");
    assert_eq!(s.delete(&format!("/api/backup/{b}"), json!({"delete_files": true})).0, 200);
    s.kill();
    let check = Command::new(BIN).arg("check").arg("--data-dir").arg(s.data_path()).output().unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && report.contains("1 deleted backup(s) are held"), "{report}");
    let out = Command::new(BIN).arg("rebuild-db").arg("--data-dir").arg(s.data_path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 held backup(s)"), "{out:?}");
    // With no server running, the command lists and restores by itself.
    assert!(ok(&held_cmd(&s, &["list"])).contains(&b));
    let out = ok(&held_cmd(&s, &["restore", &b]));
    assert!(out.contains(&format!("restored backup {b}")), "{out}");
    s.restart();
    assert!(held(&s).is_empty());
    force(&s, "gc_job");
    assert_eq!(s.target(&t).1[0]["id"], b.as_str());
    assert_eq!(tree(&only_folder(&s, &t)), files);
}

#[test]
fn with_the_hold_off_a_deletion_is_collected_as_before() {
    let s = TestServer::start_with_config("gc_grace_secs = 0\n[protection]\nhold_days = 0\n");
    let (_, b, _) = target_with_backup(&s, "off");
    assert_eq!(s.delete(&format!("/api/backup/{b}"), json!({"delete_files": true})).0, 200);
    assert!(held(&s).is_empty());
    assert!(force(&s, "gc_job").contains("removed 2"));
    assert!(blobs(&s).is_empty());
}
