//! File history across backups: search from the index, the versions of one path, comparing two
//! backups, and downloading a chosen set of files and folders as tar or zip.

mod common;

use std::io::Read;

use common::TestServer;
use serde_json::{Value, json};

fn get_ok(s: &TestServer, path: &str) -> Value {
    let (status, reply) = s.get(path);
    assert_eq!(status, 200, "{path}: {reply}");
    reply
}

fn paths(reply: &Value) -> Vec<String> {
    reply["paths"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap().to_string()).collect()
}

#[test]
fn search_history_compare_and_selection_on_a_generated_series() {
    let s = TestServer::start();
    let t = s.create_target(json!({"alias": "docs"}));
    let other = s.create_target(json!({}));
    // Five backups: notes/a.txt changes in the 2nd and 4th, b.txt goes in the 3rd, which adds
    // notes/deep/New.TXT.
    let series: [&[(&str, &[u8])]; 5] = [
        &[("notes/a.txt", b"a1"), ("b.txt", b"b")],
        &[("notes/a.txt", b"a2"), ("b.txt", b"b")],
        &[("notes/a.txt", b"a2"), ("notes/deep/New.TXT", b"new")],
        &[("notes/a.txt", b"a3-longer"), ("notes/deep/New.TXT", b"new")],
        &[("notes/a.txt", b"a3-longer"), ("notes/deep/New.TXT", b"new")],
    ];
    for files in series {
        let archive = common::tar_gz(files);
        s.upload_ok(&t, &[("b.tar.gz", &archive)]);
    }
    s.upload_ok(&other, &[("a.txt", b"elsewhere")]);
    let (_, backups) = s.target(&t);
    let ids: Vec<String> = backups.iter().rev().map(|b| b["id"].as_str().unwrap().to_string()).collect();

    // Search: by name or path fragment, case-insensitive, paged; only this target's paths.
    assert_eq!(paths(&get_ok(&s, "/api/target/docs/files?q=txt")), ["b.txt", "notes/a.txt", "notes/deep/New.TXT"]);
    let found = get_ok(&s, "/api/target/docs/files?q=new.txt");
    assert_eq!(found["paths"], json!([{"path": "notes/deep/New.TXT", "backups": 3}]));
    let p1 = get_ok(&s, "/api/target/docs/files?q=notes&page_size=1");
    let p2 = get_ok(&s, "/api/target/docs/files?q=notes&page_size=1&page=2");
    assert_eq!((paths(&p1), p1["more"].clone()), (vec!["notes/a.txt".to_string()], json!(true)));
    assert_eq!((paths(&p2), p2["more"].clone()), (vec!["notes/deep/New.TXT".to_string()], json!(false)));
    assert!(paths(&get_ok(&s, "/api/target/docs/files?q=%25")).is_empty(), "% is a character, not a wildcard");
    let (status, reply) = s.get("/api/target/docs/files");
    assert_eq!((status, reply["field"].as_str()), (400, Some("q")), "{reply}");

    // History: newest first, with whether each version changed.
    let h = get_ok(&s, "/api/target/docs/history?path=notes/a.txt");
    let versions = h["versions"].as_array().unwrap();
    let got: Vec<(String, i64, bool)> = versions
        .iter()
        .map(|v| (v["backup_id"].as_str().unwrap().to_string(), v["size"].as_i64().unwrap(), v["changed"] == true))
        .collect();
    let want: Vec<(String, i64, bool)> = vec![
        (ids[4].clone(), 9, false),
        (ids[3].clone(), 9, true),
        (ids[2].clone(), 2, false),
        (ids[1].clone(), 2, true),
        (ids[0].clone(), 2, true),
    ];
    assert_eq!(got, want);
    assert_eq!(versions[1]["hash"], blake3::hash(b"a3-longer").to_hex().to_string());
    // Any version downloads directly.
    let res = s.get_raw(&format!("/api/backup/{}/file?path=notes/a.txt", ids[0]));
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().unwrap().as_ref(), b"a1");
    assert_eq!(get_ok(&s, "/api/target/docs/history?path=b.txt")["versions"].as_array().unwrap().len(), 2);

    // Compare the 2nd with the 4th.
    let c = get_ok(&s, &format!("/api/target/docs/compare?from={}&to={}", ids[1], ids[3]));
    assert_eq!(c["added"], json!([{"path": "notes/deep/New.TXT", "size": 3}]));
    assert_eq!(c["removed"], json!([{"path": "b.txt", "size": 1}]));
    assert_eq!(c["changed"], json!([{"path": "notes/a.txt", "old_size": 2, "new_size": 9}]));
    assert_eq!(c["unchanged"], 0);
    let (_, other_backups) = s.target(&other);
    let foreign = other_backups[0]["id"].as_str().unwrap();
    let (status, _) = s.get(&format!("/api/target/docs/compare?from={}&to={foreign}", ids[1]));
    assert_eq!(status, 404, "a backup of another target is not compared");

    // A selection of one file and one folder, as tar and as zip.
    let sel = format!("/api/backup/{}/select?path=notes/a.txt&path=notes/deep/", ids[2]);
    let res = s.get_raw(&sel);
    assert_eq!(res.status(), 200);
    let tar_bytes = res.bytes().unwrap();
    let entries = common::tar_entries(&tar_bytes);
    assert_eq!(
        entries,
        [("notes/a.txt".to_string(), b"a2".to_vec()), ("notes/deep/New.TXT".to_string(), b"new".to_vec())]
    );
    let sel = format!("/api/backup/{}/select?path=notes/a.txt&path=notes/deep&format=zip", ids[2]);
    let res = s.get_raw(&sel);
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let zip_bytes = res.bytes().unwrap().to_vec();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let mut names: Vec<(String, Vec<u8>)> = (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect();
    names.sort();
    assert_eq!(names, entries);
    let (status, reply) = s.get(&format!("/api/backup/{}/select?path=nothing", ids[2]));
    assert_eq!(status, 404, "{reply}");
    let (status, reply) = s.get(&format!("/api/backup/{}/select?path=notes&format=rar", ids[2]));
    assert_eq!((status, reply["field"].as_str()), (400, Some("format")), "{reply}");

    // Deleting backups keeps the index right: b.txt goes once no backup holds it.
    for id in &ids[..2] {
        assert_eq!(s.delete(&format!("/api/backup/{id}"), json!({"delete_files": true})).0, 200);
    }
    assert_eq!(paths(&get_ok(&s, "/api/target/docs/files?q=txt")), ["notes/a.txt", "notes/deep/New.TXT"]);
}
