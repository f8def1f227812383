//! Hostile input: size, part and idle limits on bodies; decompression bombs, huge entry counts,
//! odd entries and over-long names in archives. Each gets a clear error and changes nothing.

mod common;
#[path = "common/web.rs"]
mod web;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use common::{TestServer, names, raw_tar, tar_gz};
use serde_json::json;

fn nothing_kept(s: &TestServer) {
    assert!(names(&s.data_path().join("store/tmp")).is_empty(), "temp files were left behind");
    assert!(names(&s.data_path().join("uploads")).is_empty(), "an upload was kept");
}

#[test]
fn upload_size_json_size_and_part_count_are_limited() {
    let s = TestServer::start_with_config(
        "[limits]\nmax_upload_bytes = 100000\nmax_json_bytes = 2000\nmax_upload_parts = 3\n",
    );
    let id = s.create_target(json!({}));
    let (status, reply) = s.upload(&id, &[("big.bin", &vec![7u8; 300_000])], "1");
    assert_eq!(status, 413, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("max_upload_bytes"), "{reply}");
    // Two parts that together pass the limit, each under it.
    let (status, _) = s.upload(&id, &[("a", &vec![1u8; 60_000]), ("b", &vec![2u8; 60_000])], "1");
    assert_eq!(status, 413);
    let (status, reply) = s.upload(&id, &[("a", b"1"), ("b", b"2"), ("c", b"3"), ("d", b"4")], "1");
    assert_eq!(status, 400, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("max_upload_parts"));
    nothing_kept(&s);
    let (_, jobs) = s.get("/api/jobs");
    assert!(jobs["delayed"].as_array().unwrap().is_empty());

    let long_name = "x".repeat(5000);
    let (status, reply) = s.post("/api/target", common::target_body(&s, json!({"name": long_name})));
    assert_eq!((status, reply["success"].clone()), (413, json!(false)), "{reply}");
    let (_, list) = s.get("/api/target");
    assert_eq!(list["targets"].as_array().unwrap().len(), 1);
}

#[test]
fn a_body_that_trickles_in_is_cut_off() {
    let s = TestServer::start_with_config("[limits]\nbody_idle_timeout_secs = 1\n");
    let id = s.create_target(json!({}));
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /api/target/{id}/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n"
    );
    let start =
        "--B\r\nContent-Disposition: form-data; name=\"backup_file\"; filename=\"f\"\r\n\r\nsome bytes then silence";
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(start.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // The server answers on its own once the client has been silent for a second.
    while !String::from_utf8_lossy(&reply).contains("}") {
        let n = conn.read(&mut buf).expect("the server never answered a stalled upload");
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"success\":false"), "{text}");
    common::poll("the stalled spool to be removed", Duration::from_secs(10), || {
        names(&s.data_path().join("store/tmp")).is_empty().then_some(())
    });
}

/// Uploads an archive and returns the finished job.
fn upload_archive(s: &TestServer, id: &str, name: &str, bytes: &[u8]) -> serde_json::Value {
    let (status, reply) = s.upload(id, &[(name, bytes)], "1");
    assert_eq!(status, 200, "{name}: {reply}");
    s.wait_job(reply["job_id"].as_i64().unwrap())
}

#[test]
fn decompression_bombs_and_entry_floods_stop_at_the_limits() {
    let s = TestServer::start_with_config("[limits]\nmax_archive_bytes = 1000000\nmax_archive_entries = 1000\n");
    let id = s.create_target(json!({}));
    let gzip_bomb = tar_gz(&[("zeros", &vec![0u8; 20_000_000])]);
    let mut zip_bomb = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut zip_bomb);
        z.start_file("zeros", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(&vec![0u8; 20_000_000]).unwrap();
        z.finish().unwrap();
    }
    let entries: Vec<(String, Vec<u8>)> = (0..1001).map(|i| (format!("f{i}"), vec![])).collect();
    let flood = tar_gz(&entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect::<Vec<_>>());
    for (name, bytes, reason) in [
        ("bomb.tar.gz", gzip_bomb, "max_archive_bytes"),
        ("bomb.zip", zip_bomb.into_inner(), "max_archive_bytes"),
        ("flood.tar.gz", flood, "max_archive_entries"),
    ] {
        let job = upload_archive(&s, &id, name, &bytes);
        assert_eq!(job["status"], "ERROR", "{name}: {job}");
        assert!(job["error"].as_str().unwrap().contains(reason), "{name}: {job}");
    }
    let (t, backups) = s.target(&id);
    assert!(backups.is_empty());
    assert!(names(&PathBuf::from(t["location"].as_str().unwrap())).is_empty());
    nothing_kept(&s);
}

#[test]
fn a_hundred_thousand_empty_entries_are_stored_safely() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name_template": "e-$I"}));
    let entries: Vec<String> = (0..100_000).map(|i| format!("d{}/e{i}", i % 100)).collect();
    let archive = tar_gz(&entries.iter().map(|n| (n.as_str(), &b""[..])).collect::<Vec<_>>());
    let job = upload_archive(&s, &id, "empty.tar.gz", &archive);
    assert_eq!(job["status"], "FINISHED", "{job}");
    let (t, backups) = s.target(&id);
    assert_eq!(backups[0]["filesize"], 0);
    let dir = PathBuf::from(t["location"].as_str().unwrap()).join(format!("e-{}", backups[0]["id"].as_str().unwrap()));
    assert_eq!(names(&dir).len(), 100);
    assert_eq!(names(&dir.join("d7")).len(), 1000);
}

#[test]
fn odd_entries_are_skipped_or_refused_with_a_reason() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name_template": "o-$I"}));
    let regular = tar::EntryType::Regular;
    // Devices, fifos and in-tree symlinks are not plain files: skipped, the rest is kept.
    let odd = raw_tar(&[
        ("keep.txt", b"kept", regular, ""),
        ("dev", b"", tar::EntryType::Char, ""),
        ("fifo", b"", tar::EntryType::Fifo, ""),
        ("sub/link", b"", tar::EntryType::Symlink, "../keep.txt"),
        ("dup", b"first", regular, ""),
        ("dup", b"second", regular, ""),
    ]);
    let job = upload_archive(&s, &id, "odd.tar", &odd);
    assert_eq!(job["status"], "FINISHED", "{job}");
    let (t, backups) = s.target(&id);
    let dir = PathBuf::from(t["location"].as_str().unwrap()).join(format!("o-{}", backups[0]["id"].as_str().unwrap()));
    assert_eq!(common::tree(&dir), vec![("dup".into(), b"second".to_vec()), ("keep.txt".into(), b"kept".to_vec())]);

    // A symlink out of the tree followed by a file written "through" it: refused.
    let through = raw_tar(&[("link", b"", tar::EntryType::Symlink, "/tmp"), ("link/evil", b"x", regular, "")]);
    let long = format!("{}/f", "n".repeat(300));
    let long_tar = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(regular);
        b.append_data(&mut h, &long, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    };
    for (name, bytes, reason) in [("through.tar", through, "outside"), ("long.tar", long_tar, "too long")] {
        let job = upload_archive(&s, &id, name, &bytes);
        assert_eq!(job["status"], "ERROR", "{name}: {job}");
        assert!(job["error"].as_str().unwrap().contains(reason), "{name}: {job}");
    }
    assert_eq!(s.target(&id).1.len(), 1);
    assert!(!std::path::Path::new("/tmp/evil").exists());
}

#[test]
fn path_bearing_inputs_cannot_climb_out() {
    let s = TestServer::start();
    let id = s.create_target(json!({}));
    let data = s.data_path().to_string_lossy().into_owned();
    for location in [format!("{data}/store/x"), format!("{data}/recycle_bin"), "/".into(), "rel".into()] {
        let (status, _) = s.post("/api/target", common::target_body(&s, json!({"location": location})));
        assert_eq!(status, 400, "{location}");
    }
    for template in ["a/$I", "..$I", "a\\$I"] {
        let (status, _) = s.patch(&format!("/api/target/{id}"), json!({"name_template": template}));
        assert_eq!(status, 400, "{template}");
    }
    for (path, name) in [("/", "a\0b"), ("/a\0", "b"), ("/..", "b"), ("C:\\x", "b"), ("/", "../../b")] {
        let (status, reply) =
            s.post(&format!("/api/seq/{id}/begin"), json!({"manual": 0, "file_list": [{"path": path, "name": name}]}));
        assert_eq!(status, 400, "{path:?} {name:?}: {reply}");
    }
}

/// A line the log would show as a real error if a name could start a line of its own.
const FORGED: &str = "2099-01-01T00:00:00.000000Z ERROR bakch: FORGED";

/// Every name-like field of a target refuses control characters, through the API and the web
/// form alike (the form shows the error by its field), and user text that does reach the log
/// (an archive entry's name in a job's error) stays inside its own line, escaped.
#[test]
fn control_characters_in_names_are_refused_and_cannot_forge_log_lines() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name": "plain", "alias": "plain", "tags": ["t"]}));
    let (before, _) = s.target(&id);
    let location = s.location("cc").to_string_lossy().into_owned();
    for c in ["\n", "\r", "\t", "\0", "\u{7f}", "\u{85}", "\u{1b}"] {
        let fields = [
            ("name", "Target name", json!(format!("x{c}{FORGED}"))),
            ("name_template", "Name template", json!(format!("b-$I{c}"))),
            ("location", "Location", json!(format!("{location}{c}x"))),
            ("alias", "Alias", json!(format!("a{c}"))),
            ("tags", "Tags", json!([format!("t{c}x")])),
        ];
        for (field, label, value) in fields {
            let (status, reply) = s.post("/api/target", common::target_body(&s, json!({ field: value.clone() })));
            assert_eq!(status, 400, "create with {field} holding {c:?}: {reply}");
            let message = reply["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("{label} cannot contain control characters")), "{message}");
            let (status, reply) = s.patch(&format!("/api/target/{id}"), json!({ field: value }));
            assert_eq!(status, 400, "edit with {field} holding {c:?}: {reply}");
        }
    }
    assert_eq!(s.target(&id).0, before, "a refused edit changed the target");
    let (_, all) = s.get("/api/target");
    assert_eq!(all["targets"].as_array().unwrap().len(), 1, "a refused create made a target");

    // The web form: the same rule, its message beside the field.
    let w = web::Web::new(&s);
    let csrf = web::csrf_in(&w.get("/targets/new").body).unwrap();
    for (field, value, error_id) in [
        ("name", "two\nlines", "e-name"),
        ("location", "/tmp/a\tb", "e-location"),
        ("name_template", "b-$I\u{7f}", "e-template"),
        ("alias", "a\rb", "e-alias"),
    ] {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("name", "web"),
            ("backup_type", "multi"),
            ("recycle_criteria", "none"),
            ("location", location.as_str()),
            ("name_template", "web-$I"),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let page = w.post("/targets/new", &form);
        assert_eq!(page.status, 400, "web form with {field} = {value:?}: {}", page.body);
        assert!(page.body.contains("cannot contain control characters"), "{}", page.body);
        assert!(page.body.contains(&format!("id=\"{error_id}\"")), "{field}: the error sits by its field");
    }

    // An archive entry's name reaches the log through the job's error, escaped.
    let entry = format!("/abs\n{FORGED}");
    let bad = raw_tar(&[(entry.as_str(), b"x", tar::EntryType::Regular, "")]);
    let job = upload_archive(&s, &id, "forge.tar", &bad);
    assert_eq!(job["status"], "ERROR", "{job}");
    let log = common::poll("the job's failure in the log", Duration::from_secs(10), || {
        let (_, body) = s.get("/api/log?tail=0");
        let log = body["log"].as_str().unwrap_or_default().to_string();
        log.contains("FORGED").then_some(log)
    });
    let forged: Vec<&str> = log.lines().filter(|l| l.contains("FORGED")).collect();
    assert!(forged.iter().all(|l| l.contains("failed") && l.contains("\\n2099-01-01")), "{forged:?}");
    assert!(!log.lines().any(|l| l.starts_with("2099")), "a forged line in the log:\n{log}");
}
