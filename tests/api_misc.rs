//! Jobs list, stats and log.

mod common;

use common::TestServer;
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
