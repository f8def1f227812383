//! Sequential upload over HTTP: begin, status, upload, finish, terminate; resume after a
//! restart; refusals.

mod common;

use std::path::PathBuf;

use common::{TestServer, tree};
use reqwest::blocking::multipart;
use serde_json::{Value, json};

fn send_file(s: &TestServer, target: &str, path: &str, name: &str, bytes: &[u8]) -> (u16, Value) {
    let form = multipart::Form::new()
        .text("name", name.to_string())
        .text("path", path.to_string())
        .part("file", multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()));
    s.multipart(&format!("/api/seq/{target}/upload"), form)
}

fn file_list() -> Value {
    json!([
        {"path": "/", "name": "a.txt", "uploaded": false},
        {"path": "/sub", "name": "b.txt", "uploaded": false},
        {"path": "/sub/deeper", "name": "c.txt", "uploaded": false},
    ])
}

#[test]
fn full_sequential_upload_with_resume_after_restart() {
    let mut s = TestServer::start();
    let id = s.create_target(json!({"name_template": "seq-$I", "alias": "seq"}));
    let (status, reply) = s.post("/api/seq/seq/begin", json!({"manual": 1, "file_list": file_list()}));
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = s.post(&format!("/api/seq/{id}/begin"), json!({"manual": 1, "file_list": file_list()}));
    assert_eq!((status, reply["message"].clone()), (400, json!("Target busy")));
    assert_eq!(send_file(&s, &id, "/", "a.txt", b"A").0, 200);
    let (status, _) = send_file(&s, &id, "/", "a.txt", b"A");
    assert_eq!(status, 409, "a second copy of an uploaded file is a conflict");
    let (status, _) = send_file(&s, &id, "/", "unlisted.txt", b"?");
    assert_eq!(status, 400);
    let (status, reply) = s.post(&format!("/api/seq/{id}/finish"), json!({}));
    assert_eq!(status, 409, "finish with files missing: {reply}");

    // The open upload survives a restart; the client resumes from the list.
    s.restart();
    let (status, open) = s.get(&format!("/api/seq/{id}"));
    assert_eq!(status, 200, "{open}");
    let uploaded: Vec<bool> = open["file_list"].as_array().unwrap().iter().map(|f| f["uploaded"] == true).collect();
    assert_eq!(uploaded, vec![true, false, false]);
    assert_eq!(send_file(&s, &id, "/sub", "b.txt", b"BB").0, 200);
    assert_eq!(send_file(&s, &id, "/sub/deeper", "c.txt", b"CCC").0, 200);
    let (status, reply) = s.post(&format!("/api/seq/{id}/finish"), json!({}));
    assert_eq!(status, 200, "{reply}");
    let job = s.wait_job(reply["job_id"].as_i64().unwrap());
    assert_eq!(job["status"], "FINISHED", "{job}");
    let (t, backups) = s.target(&id);
    assert_eq!(backups.len(), 1);
    let dir =
        PathBuf::from(t["location"].as_str().unwrap()).join(format!("seq-{}", backups[0]["id"].as_str().unwrap()));
    let expect: Vec<(String, Vec<u8>)> = vec![
        ("a.txt".into(), b"A".to_vec()),
        ("sub/b.txt".into(), b"BB".to_vec()),
        ("sub/deeper/c.txt".into(), b"CCC".to_vec()),
    ];
    assert_eq!(tree(&dir), expect);
    assert_eq!(backups[0]["filesize"], 6);
    let (status, _) = s.get(&format!("/api/seq/{id}"));
    assert_eq!(status, 404, "the upload is closed after finish");
}

#[test]
fn terminate_and_refusals() {
    let s = TestServer::start();
    let id = s.create_target(json!({}));
    let single = s.create_target(json!({"backup_type": "single"}));
    let (status, _) = s.post(&format!("/api/seq/{single}/begin"), json!({"manual": 0, "file_list": file_list()}));
    assert_eq!(status, 400, "single-file targets take no sequential upload");
    for bad in [
        json!({"file_list": file_list()}),
        json!({"manual": 0}),
        json!({"manual": 0, "file_list": []}),
        json!({"manual": 0, "file_list": "nope"}),
        json!({"manual": 0, "file_list": [{"path": "/../..", "name": "x"}]}),
        json!({"manual": 0, "file_list": [{"path": "/", "name": "../x"}]}),
        json!({"manual": 0, "file_list": [{"path": "/", "name": "a\\b"}]}),
        json!({"manual": 0, "file_list": [{"path": "/", "name": "x"}, {"path": "/", "name": "x"}]}),
        json!({"manual": 0, "file_list": [{"name": "x"}]}),
        json!({"manual": "yes", "file_list": file_list()}),
    ] {
        let (status, reply) = s.post(&format!("/api/seq/{id}/begin"), bad.clone());
        assert_eq!(status, 400, "{bad}: {reply}");
    }
    // A path listed as a file and as a folder of another, in either order, is refused at once.
    for list in [
        json!([{"path": "/", "name": "a"}, {"path": "/a", "name": "b"}]),
        json!([{"path": "/a/", "name": "b"}, {"path": "/", "name": "a"}]),
        json!([{"path": "/x", "name": "a"}, {"path": "/other", "name": "f"}, {"path": "/x/a/deep", "name": "b"}]),
    ] {
        let (status, reply) = s.post(&format!("/api/seq/{id}/begin"), json!({"manual": 0, "file_list": list}));
        assert_eq!(status, 400, "{list}: {reply}");
        let message = reply["message"].as_str().unwrap_or_default();
        assert!(message.contains("as a file and as a folder"), "{list}: {message}");
        assert_eq!(s.get(&format!("/api/seq/{id}")).0, 404, "{list}: an upload was opened");
    }
    let (status, _) = s.post(&format!("/api/seq/{id}/finish"), json!({}));
    assert_eq!(status, 400, "nothing open");
    let (status, _) = send_file(&s, &id, "/", "a.txt", b"A");
    assert_eq!(status, 400, "nothing open");
    s.post(&format!("/api/seq/{id}/begin"), json!({"manual": 0, "file_list": file_list()}));
    let form = multipart::Form::new().text("name", "a.txt").text("path", "/");
    let (status, reply) = s.multipart(&format!("/api/seq/{id}/upload"), form);
    assert_eq!((status, reply["message"].clone()), (400, json!("No file given")));
    let (status, _) = s.post(&format!("/api/seq/{id}/terminate"), json!({}));
    assert_eq!(status, 200);
    let (status, _) = s.get(&format!("/api/seq/{id}"));
    assert_eq!(status, 404);
    let (status, _) = s.post(&format!("/api/seq/{id}/begin"), json!({"manual": 0, "file_list": file_list()}));
    assert_eq!(status, 200, "a terminated upload frees the target");
    assert!(s.target(&id).1.is_empty());
}
