//! Retention with a GFS keep policy, its preview, pinning, and what each backup frees.
//!
//! Creation times: the server's clock is set through `BAKCH_TEST_CLOCK_FILE` (a debug-build-only
//! seam, see `src/time.rs`): the test writes a time into that file before each upload, and the
//! server stamps the backup with it. `TZ=UTC` fixes the calendar the buckets follow.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{Duration, TimeZone, Utc};
use common::{TestServer, names};
use serde_json::{Value, json};

/// Collects unreferenced content at once and holds nothing, so a deletion frees its bytes.
const NO_HOLD: &str = "gc_grace_secs = 0\n[protection]\nhold_days = 0\n";

fn clock_server(config: &str) -> (TestServer, PathBuf) {
    let dir = tempfile::tempdir().expect("clock dir").keep();
    let clock = dir.join("clock");
    let clock_str = clock.to_string_lossy().into_owned();
    let s = TestServer::start_with(&[("BAKCH_TEST_CLOCK_FILE", &clock_str), ("TZ", "UTC")], Some(config));
    (s, clock)
}

fn set_clock(clock: &Path, at: chrono::DateTime<Utc>) {
    std::fs::write(clock, at.to_rfc3339()).expect("write clock");
}

fn force(s: &TestServer, job: &str) -> String {
    let (status, reply) = s.get(&format!("/api/jobs/force_run/{job}"));
    assert_eq!(status, 200, "{job}: {reply}");
    reply["outcome"].as_str().unwrap_or_default().to_string()
}

fn day(b: &Value) -> String {
    b["created_at"].as_str().unwrap()[5..10].to_string()
}

/// The month-days the preview keeps, and the reasons of one backup.
fn preview(s: &TestServer, target: &str, query: &str) -> Value {
    let (status, reply) = s.get(&format!("/api/target/{target}/retention{query}"));
    assert_eq!(status, 200, "{reply}");
    reply
}

fn kept_days(p: &Value) -> BTreeSet<String> {
    p["backups"].as_array().unwrap().iter().filter(|b| b["decision"] == "keep").map(day).collect()
}

#[test]
fn a_year_of_dailies_keeps_what_restic_keeps_and_the_preview_is_what_the_run_does() {
    let (s, clock) = clock_server(NO_HOLD);
    let t = s.create_target(json!({"backup_type": "single", "recycle_action": "delete"}));
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
    let mut ids = Vec::new();
    for d in 0..365 {
        set_clock(&clock, start + Duration::days(d));
        let job = s.upload_ok(&t, &[("day.txt", format!("day {d}\n").as_bytes())]);
        ids.push(job["backup_id"].as_str().map(str::to_string));
    }
    let (_, backups) = s.target(&t);
    assert_eq!(backups.len(), 365);
    assert_eq!(backups.last().map(day).as_deref(), Some("01-01"), "created times follow the test clock");

    // Pin one backup that no rule keeps: it survives every policy.
    let pinned = backups.iter().find(|b| day(b) == "06-15").unwrap()["id"].as_str().unwrap().to_string();
    let (status, reply) = s.patch(&format!("/api/backup/{pinned}"), json!({"pinned": true}));
    assert_eq!(status, 200, "{reply}");

    // The table: restic's forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --keep-yearly 3
    // over these dates. Dailies Dec 25-31; ISO weeks 2026-W01 (Dec 29-31, newest Dec 31), W52
    // (Dec 28), W51 (Dec 21), W50 (Dec 14); the last day of each month; 2025's newest, and the
    // oldest backup (Jan 1) because `yearly` still had counts left.
    let table: BTreeSet<String> = [
        "01-01", "01-31", "02-28", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30", "10-31", "11-30",
        "12-14", "12-21", "12-25", "12-26", "12-27", "12-28", "12-29", "12-30", "12-31",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // A proposed policy previewed before it is saved changes nothing.
    let proposed = preview(&s, &t, "?keep_daily=7&keep_weekly=4&keep_monthly=12&keep_yearly=3");
    assert_eq!(proposed["current"], false);
    let mut want = table.clone();
    want.insert("06-15".into());
    assert_eq!(kept_days(&proposed), want);
    let reasons = |p: &Value, d: &str| -> Vec<String> {
        let b = p["backups"].as_array().unwrap().iter().find(|b| day(b) == d).unwrap();
        b["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(reasons(&proposed, "12-31"), ["daily", "weekly", "monthly", "yearly"]);
    assert_eq!(reasons(&proposed, "01-01"), ["yearly"]);
    assert_eq!(reasons(&proposed, "06-15"), ["pinned"]);
    assert_eq!(reasons(&proposed, "06-14"), Vec::<String>::new());
    assert_eq!(proposed["taken"], 365 - 22);
    assert_eq!(s.target(&t).1.len(), 365, "a preview changes nothing");

    // Saved: the target's own preview is the same, and the run does exactly that.
    let (status, reply) =
        s.patch(&format!("/api/target/{t}"), json!({"keep": {"daily": 7, "weekly": 4, "monthly": 12, "yearly": 3}}));
    assert_eq!(status, 200, "{reply}");
    let current = preview(&s, &t, "");
    assert_eq!(current["current"], true);
    assert_eq!(current["backups"], proposed["backups"]);
    let frees = current["frees_bytes"].as_i64().unwrap();
    // Every day's content is distinct: the run frees the size of each backup it takes.
    let taken_bytes: i64 = current["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["decision"] == "delete")
        .map(|b| b["filesize"].as_i64().unwrap())
        .sum();
    assert_eq!(frees, taken_bytes);
    let outcome = force(&s, "recycle_job");
    assert!(outcome.contains("deleted 343"), "{outcome}");
    let (target, left) = s.target(&t);
    assert_eq!(left.iter().map(day).collect::<BTreeSet<_>>(), want);
    assert_eq!(target["recycle_criteria"], "none", "what official clients read keeps its value");
    // A second run finds nothing more to take.
    assert!(force(&s, "recycle_job").contains("deleted 0"));

    // A pinned backup cannot be deleted until unpinned.
    let (status, reply) = s.delete(&format!("/api/backup/{pinned}"), json!({"delete_files": true}));
    assert_eq!(status, 409, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("unpin"), "{reply}");
    let (status, reply) = s.delete(&format!("/api/target/{t}/all"), json!({"delete_files": true}));
    assert_eq!(status, 409, "{reply}");
    assert_eq!(s.target(&t).1.len(), 22, "a refused bulk delete deletes nothing");
    assert_eq!(s.patch(&format!("/api/backup/{pinned}"), json!({"pinned": false})).0, 200);
    assert_eq!(s.delete(&format!("/api/backup/{pinned}"), json!({"delete_files": true})).0, 200);
    let _ = ids;
}

/// Bytes of every blob file in the store.
fn store_bytes(s: &TestServer) -> u64 {
    let store = s.data_path().join("store");
    let mut total = 0;
    for d in names(&store).into_iter().filter(|n| n.len() == 2) {
        for f in names(&store.join(&d)) {
            total += std::fs::metadata(store.join(&d).join(f)).map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

#[test]
fn exclusive_bytes_add_up_to_what_deleting_frees() {
    let s = TestServer::start_with_config(NO_HOLD);
    let t = s.create_target(json!({}));
    let other = s.create_target(json!({}));
    let shared = vec![b's'; 5000];
    s.upload_ok(&t, &[("shared.bin", &shared), ("a.bin", &[b'a'; 1000]), ("twice.bin", &[b'a'; 1000])]);
    s.upload_ok(&t, &[("shared.bin", &shared), ("b.bin", &[b'b'; 2000])]);
    s.upload_ok(&t, &[("shared.bin", &shared), ("c.bin", &[b'c'; 3000]), ("d.bin", &[b'd'; 700])]);
    s.upload_ok(&other, &[("d.bin", &[b'd'; 700])]);
    let (_, backups) = s.target(&t);
    let exclusive: Vec<i64> = backups.iter().map(|b| b["exclusive_bytes"].as_i64().unwrap()).collect();
    // Newest first: c (d is shared with the other target), b, a (one blob at two paths).
    assert_eq!(exclusive, [3000, 2000, 1000]);
    force(&s, "gc_job");
    // Deleted one by one, each frees exactly what the listing said just before; the last one
    // alone holds the shared content by then.
    let mut freed_all = Vec::new();
    while let Some(b) = s.target(&t).1.first().cloned() {
        let before = store_bytes(&s);
        let id = b["id"].as_str().unwrap();
        assert_eq!(s.delete(&format!("/api/backup/{id}"), json!({"delete_files": true})).0, 200);
        force(&s, "gc_job");
        let freed = (before - store_bytes(&s)) as i64;
        assert_eq!(freed, b["exclusive_bytes"].as_i64().unwrap(), "backup {id}");
        freed_all.push(freed);
    }
    assert_eq!(freed_all, [3000, 2000, 5000 + 1000]);
}

#[test]
fn a_quota_refuses_the_upload_that_would_cross_it_and_leaves_nothing_behind() {
    // A failed upload's content is normally kept a week for a retry; here not at all, so the
    // store shows that the refused job left nothing else.
    let s = TestServer::start_with_config(&format!("failed_upload_keep_secs = 0\n{NO_HOLD}"));
    let t = s.create_target(json!({"quota_bytes": 10_000, "quota_warning_percent": 50}));
    let (target, _) = s.target(&t);
    assert_eq!((target["quota_bytes"].as_i64(), target["quota_warning_percent"].as_i64()), (Some(10_000), Some(50)));
    let first = vec![b'1'; 4000];
    s.upload_ok(&t, &[("first.bin", &first)]);
    let location = PathBuf::from(target["location"].as_str().unwrap());
    let before = (names(&location), store_bytes(&s));

    // Known size (the body's length): refused before a byte is stored.
    let (status, reply) = s.upload(&t, &[("big.bin", &[b'2'; 7000])], "1");
    assert_eq!(status, 413, "{reply}");
    let msg = reply["message"].as_str().unwrap();
    assert!(msg.contains("quota") && msg.contains("3.9 KiB of 9.8 KiB"), "{msg}");
    force(&s, "gc_job");
    assert_eq!((names(&location), store_bytes(&s)), before, "nothing stored");
    assert!(names(&s.data_path().join("uploads")).is_empty(), "no spooled upload left");

    // Content the target already holds costs nothing: the quota counts distinct content. (Before
    // the bytes arrive every byte of the body counts, so this body must fit on its own.)
    s.upload_ok(&t, &[("first.bin", &first)]);
    assert_eq!(s.target(&t).1.len(), 2);
    assert_eq!(s.target(&t).0["disk_used"], 4000);

    // A sequential upload's size is known only at its end: its job fails cleanly.
    let (status, reply) = s.post(
        &format!("/api/seq/{t}/begin"),
        json!({"manual": 1,
        "file_list": [{"path": "/", "name": "big.bin"}]}),
    );
    assert_eq!(status, 200, "{reply}");
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", "big.bin")
        .text("path", "/")
        .part("file", reqwest::blocking::multipart::Part::bytes(vec![b'3'; 7000]).file_name("big.bin"));
    assert_eq!(s.multipart(&format!("/api/seq/{t}/upload"), form).0, 200);
    let (status, reply) = s.post(&format!("/api/seq/{t}/finish"), json!({}));
    assert_eq!(status, 200, "{reply}");
    let job = s.wait_job(reply["job_id"].as_i64().unwrap());
    assert_eq!(job["status"], "ERROR", "{job}");
    assert!(job["error"].as_str().unwrap_or_default().contains("quota"), "{job}");
    force(&s, "gc_job");
    assert_eq!(s.target(&t).1.len(), 2, "no backup from the refused job");
    assert_eq!(names(&location).len(), 2, "nothing placed in the target folder");
    assert_eq!(store_bytes(&s), 4000, "the refused content was collected");
}

/// What a preview says the run frees counts content only the taken backups hold: not content a
/// kept backup, another target or a recycled backup still holds, and a content held twice by one
/// taken backup once. Whether the preview counts from the taken side (few taken) or from the
/// kept side (few kept), the figure is the same, and deleting frees it on disk.
#[test]
fn the_preview_frees_only_what_the_taken_backups_alone_hold() {
    let s = TestServer::start_with_config(NO_HOLD);
    let t = s.create_target(json!({"name": "T", "min_backups": 0}));
    let u = s.create_target(json!({"name": "U"}));
    let bytes = |c: u8, n: usize| vec![c; n];
    let (shared, other) = (bytes(b's', 10), bytes(b'o', 1000));
    let own: Vec<Vec<u8>> =
        [(b'1', 100), (b'2', 200), (b'3', 400), (b'4', 800)].iter().map(|(c, n)| bytes(*c, *n)).collect();
    s.upload_ok(&u, &[("other.txt", &other)]);
    s.upload_ok(&t, &[("shared.txt", &shared), ("own.txt", &own[0]), ("other.txt", &other)]);
    s.upload_ok(&t, &[("shared.txt", &shared), ("own.txt", &own[1]), ("again.txt", &own[1])]);
    s.upload_ok(&t, &[("shared.txt", &shared), ("own.txt", &own[2])]);
    s.upload_ok(&t, &[("shared.txt", &shared), ("own.txt", &own[3])]);
    // Keep the k newest: the rest's own content is freed, nothing else.
    for (keep, frees) in [(4, 0), (3, 100), (2, 300), (1, 700)] {
        let p = preview(&s, &t, &format!("?recycle_criteria=count&recycle_value={keep}&min_backups=0"));
        assert_eq!(p["taken"], 4 - keep, "{p}");
        assert_eq!(p["frees_bytes"], frees, "keeping the {keep} newest");
    }
    // A recycled backup still holds its content: a preview taking the others does not count it.
    let (_, backups) = s.target(&t);
    let oldest = backups.last().unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(s.patch(&format!("/api/backup/{oldest}"), json!({"is_recycled": true})).0, 200);
    let (_, backups) = s.target(&t);
    let newest = backups[0]["id"].as_str().unwrap().to_string();
    let p = preview(&s, &t, "?recycle_criteria=count&recycle_value=1&min_backups=0");
    assert_eq!((p["taken"].clone(), p["frees_bytes"].clone()), (json!(2), json!(600)), "{p}");
    // Deleting what the preview takes frees what it said.
    let store_before = store_bytes(&s);
    let (status, reply) = s.patch(
        &format!("/api/target/{t}"),
        json!({"recycle_criteria": "count", "recycle_value": 1, "recycle_action": "delete"}),
    );
    assert_eq!(status, 200, "{reply}");
    assert!(force(&s, "recycle_job").contains("deleted 2"));
    force(&s, "gc_job");
    assert_eq!(store_before - store_bytes(&s), 600);
    assert_eq!(s.target(&t).1.iter().filter(|b| b["is_recycled"] == false).count(), 1);
    assert_eq!(s.target(&t).1[0]["id"], newest);
}
