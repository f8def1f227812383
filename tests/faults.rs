//! Faults: a disk that fills up during an upload, a target folder that cannot be written, and
//! retrying the failed job once the cause is fixed.

mod common;

use std::path::PathBuf;

use common::{TestServer, names, tar_gz};
use serde_json::json;

fn tmp_empty(s: &TestServer) -> bool {
    names(&s.data_path().join("store/tmp")).is_empty()
}

#[test]
fn a_full_disk_during_an_upload_gives_a_clear_error_and_keeps_nothing_half_written() {
    // The store pretends to have 300 kB left.
    let s = TestServer::start_with_env(&[("BAKCH_FAULT_DISK_FULL_AFTER", "300000")]);
    let id = s.create_target(json!({"name_template": "full-$I"}));
    s.upload_ok(&id, &[("small.bin", &[1u8; 10_000])]);

    let (status, reply) = s.upload(&id, &[("big.bin", &vec![2u8; 1_000_000])], "1");
    assert_eq!(status, 507, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("disk is full"), "{reply}");
    assert!(tmp_empty(&s), "a half-written upload was left in the store");
    let (_, jobs) = s.get("/api/jobs");
    assert_eq!(jobs["delayed"].as_array().unwrap().len(), 1, "the refused upload queued a job");

    // An archive small enough to arrive but too big to unpack fails in its job, with the reason.
    let archive = tar_gz(&[("zeros", &vec![0u8; 2_000_000])]);
    let (status, reply) = s.upload(&id, &[("big.tar.gz", &archive)], "1");
    assert_eq!(status, 200, "{reply}");
    let job = s.wait_job(reply["job_id"].as_i64().unwrap());
    assert_eq!(job["status"], "ERROR");
    assert!(job["error"].as_str().unwrap().contains("disk is full"), "{job}");
    let (t, backups) = s.target(&id);
    assert_eq!(backups.len(), 1, "a half-built backup is listed");
    assert_eq!(names(&PathBuf::from(t["location"].as_str().unwrap())).len(), 1, "a half-built backup is on disk");
    assert!(tmp_empty(&s));
}

#[test]
fn an_unwritable_target_folder_fails_the_job_and_a_retry_succeeds_once_fixed() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name_template": "w-$I"}));
    let (t, _) = s.target(&id);
    let loc = PathBuf::from(t["location"].as_str().unwrap());
    // A file where the folder should be: cannot be written, whoever bakch runs as (even root).
    std::fs::remove_dir(&loc).unwrap();
    std::fs::write(&loc, b"in the way").unwrap();

    let uploads = [("data.tar.gz", tar_gz(&[("a/b.txt", b"payload")])), ("plain.txt", b"plain".to_vec())];
    for (done, (name, bytes)) in uploads.iter().enumerate() {
        let (status, reply) = s.upload(&id, &[(name, bytes)], "1");
        assert_eq!(status, 200, "{reply}");
        let job_id = reply["job_id"].as_i64().unwrap();
        let job = s.wait_job(job_id);
        assert_eq!(job["status"], "ERROR", "{name}: {job}");
        let reason = job["error"].as_str().unwrap();
        assert!(reason.contains(&loc.to_string_lossy().to_string()) && reason.contains("retry"), "{name}: {reason}");
        assert_eq!(s.target(&id).1.len(), done, "a failed upload is listed");

        // Fix the cause and retry: the uploaded bytes were kept.
        std::fs::remove_file(&loc).unwrap();
        let (status, reply) = s.post(&format!("/api/jobs/{job_id}/retry"), json!({}));
        assert_eq!(status, 200, "{reply}");
        let job = s.wait_job(job_id);
        assert_eq!(job["status"], "FINISHED", "{name} after retry: {job}");
        let (status, _) = s.post(&format!("/api/jobs/{job_id}/retry"), json!({}));
        assert_eq!(status, 409, "a finished job cannot be retried");
        std::fs::remove_dir_all(&loc).unwrap();
        std::fs::write(&loc, b"in the way again").unwrap();
    }
    std::fs::remove_file(&loc).unwrap();
    let (_, backups) = s.target(&id);
    assert_eq!(backups.len(), 2);
    let (status, _) = s.post("/api/jobs/999999/retry", json!({}));
    assert_eq!(status, 404);
    assert!(names(&s.data_path().join("uploads")).is_empty(), "a retried archive was kept after it succeeded");
}
