//! Jobs list, stats and log.

mod common;

use common::TestServer;
use reqwest::blocking::multipart;
use serde_json::json;

#[test]
fn jobs_stats_and_log_have_the_shapes_clients_parse() {
    let s = TestServer::start();
    let id = s.create_target(json!({}));
    s.upload_ok(&id, &[("f", b"1234")]);
    let (_, jobs) = s.get("/api/jobs");
    let job = &jobs["delayed"][0];
    assert_eq!(job["name"], "upload_job");
    assert_eq!(job["status"], "FINISHED");
    for key in ["start_time", "end_time"] {
        let text = job[key].as_str().unwrap();
        assert!(chrono::NaiveDateTime::parse_from_str(text, "%a, %d %b %Y %H:%M:%S GMT").is_ok(), "{key}: {text}");
    }
    let names: Vec<&str> = jobs["scheduled"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"recycle_job") && names.contains(&"stale_seq_upload_job"), "{names:?}");
    for j in jobs["scheduled"].as_array().unwrap() {
        assert!(j["interval"].as_i64().unwrap() > 0 && j["next_run"].is_number(), "{j}");
    }
    let (status, reply) = s.get("/api/jobs/force_run/stale_seq_upload_job");
    assert_eq!(status, 200, "{reply}");

    let (_, stats) = s.get("/api/stats");
    assert!(stats["program_version"].is_string());
    for key in
        ["total_target_size", "total_recycle_bin_size", "total_targets", "total_backups", "total_recycled_backups"]
    {
        assert!(stats[key].is_i64(), "{key}: {stats}");
    }
    assert_eq!((stats["total_targets"].clone(), stats["total_target_size"].clone()), (json!(1), json!(4)));

    let (_, log) = s.get("/api/log?tail=2");
    let text = log["log"].as_str().unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let (_, all) = s.get("/api/log?tail=0");
    assert!(all["log"].as_str().unwrap().contains("listening on"));
    let (status, _) = s.get("/api/log?tail=-1");
    assert_eq!(status, 400);
}

#[test]
fn a_recycled_backup_is_still_a_backup_in_the_totals() {
    let s = TestServer::start();
    let id = s.create_target(json!({}));
    s.upload_ok(&id, &[("f", b"1234")]);
    let job = s.upload_ok(&id, &[("g", b"56")]);
    let backup = job["backup_id"].as_str().expect("backup_id");
    let (status, reply) = s.patch(&format!("/api/backup/{backup}"), json!({"is_recycled": true}));
    assert_eq!(status, 200, "{reply}");
    let (_, stats) = s.get("/api/stats");
    let figures = ["total_backups", "total_recycled_backups", "total_target_size", "total_recycle_bin_size"]
        .map(|k| stats[k].as_i64().unwrap_or(-1));
    assert_eq!(figures, [2, 1, 4, 2], "{stats}");
}

/// Booleans are JSON `true`/`false`, `1`/`0`, or those as strings (any case for the words);
/// other words are a 400 naming the field, before anything changes.
#[test]
fn booleans_take_true_false_one_zero_and_nothing_else() {
    let s = TestServer::start();
    let id = s.create_target(json!({}));
    for manual in ["1", "0", "true", "False", "TRUE"] {
        let (status, reply) = s.upload(&id, &[("f", b"x")], manual);
        assert_eq!(status, 200, "manual={manual}: {reply}");
        s.wait_job(reply["job_id"].as_i64().unwrap_or_default());
    }
    let backups = s.target(&id).1;
    assert_eq!(backups.iter().filter(|b| b["manual"] == true).count(), 3, "{backups:?}");
    for manual in ["yes", "no", "on", "off", "2", ""] {
        let form = multipart::Form::new()
            .text("manual", manual.to_string())
            .part("backup_file", multipart::Part::bytes(b"x".to_vec()).file_name("f"));
        let (status, reply) = s.multipart(&format!("/api/target/{id}/upload"), form);
        assert_eq!(status, 400, "manual={manual:?}: {reply}");
        assert!(reply["message"].as_str().unwrap_or_default().contains("'manual'"), "{reply}");
    }
    let backup = backups[0]["id"].as_str().expect("id").to_string();
    for word in [json!("yes"), json!("on"), json!(2), json!("y"), json!([true])] {
        let mut body = common::target_body(&s, json!({}));
        body["deduplicate"] = word.clone();
        let (status, reply) = s.post("/api/target", body);
        assert_eq!(status, 400, "deduplicate={word}: {reply}");
        assert!(reply["message"].as_str().unwrap_or_default().contains("'deduplicate'"), "{reply}");
        let (status, reply) = s.patch(&format!("/api/target/{id}"), json!({"deduplicate": word}));
        assert_eq!(status, 400, "edit deduplicate={word}: {reply}");
        let (status, reply) = s.patch(&format!("/api/backup/{backup}"), json!({"is_recycled": word}));
        assert_eq!(status, 400, "is_recycled={word}: {reply}");
        assert!(reply["message"].as_str().unwrap_or_default().contains("'is_recycled'"), "{reply}");
        let (status, reply) = s.delete(&format!("/api/backup/{backup}"), json!({"delete_files": word}));
        assert_eq!(status, 400, "delete_files={word}: {reply}");
        assert!(reply["message"].as_str().unwrap_or_default().contains("'delete_files'"), "{reply}");
    }
    assert_eq!(s.target(&id).1.len(), 5, "a refused request changed the backups");
    assert_eq!(s.get("/api/recycle_bin").1["backups"], json!([]));
    // The string forms the Python clients send are taken.
    let mut body = common::target_body(&s, json!({}));
    body["deduplicate"] = json!("True");
    let (status, reply) = s.post("/api/target", body);
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = s.patch(&format!("/api/backup/{backup}"), json!({"is_recycled": "1"}));
    assert_eq!(status, 200, "{reply}");
}
