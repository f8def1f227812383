//! Reads answered from kept bytes: `ETag` and `If-None-Match`, gzip for clients that ask, and
//! never a stale reply after any kind of change.

mod common;

use std::io::Read;

use common::TestServer;
use serde_json::{Value, json};

/// (status, ETag, body as JSON) of a GET, sending `etag` back when given.
fn get(s: &TestServer, path: &str, etag: Option<&str>, gzip: bool) -> (u16, String, Option<Value>) {
    let (status, tag, _, body) = get_as(s, path, etag, gzip.then_some("gzip"));
    (status, tag, body)
}

/// (status, ETag, Content-Encoding, body as JSON, decoded) of a GET with `accept` as its
/// `Accept-Encoding`.
fn get_as(
    s: &TestServer,
    path: &str,
    etag: Option<&str>,
    accept: Option<&str>,
) -> (u16, String, String, Option<Value>) {
    let client = reqwest::blocking::Client::builder().no_gzip().build().unwrap();
    let mut req = client.get(format!("{}{path}", s.url));
    if let Some(key) = &s.key {
        req = req.bearer_auth(key);
    }
    if let Some(tag) = etag {
        req = req.header("If-None-Match", tag);
    }
    if let Some(accept) = accept {
        req = req.header("Accept-Encoding", accept);
    }
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (tag, encoding) = (header("etag"), header("content-encoding"));
    if status == 200 {
        assert_eq!(header("vary"), "Accept-Encoding", "{path}");
    }
    let bytes = res.bytes().unwrap().to_vec();
    let text = match encoding.as_str() {
        "gzip" => {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut out).unwrap();
            out
        }
        "zstd" => String::from_utf8(zstd::stream::decode_all(&bytes[..]).unwrap()).unwrap(),
        "" => String::from_utf8(bytes).unwrap(),
        other => panic!("{path}: unexpected Content-Encoding {other}"),
    };
    (status, tag, encoding, if status == 304 { None } else { Some(serde_json::from_str(&text).unwrap()) })
}

#[test]
fn etags_answer_304_and_gzip_carries_the_same_reply() {
    let mut s = TestServer::start();
    s.new_api_key();
    let t = s.create_target(json!({"name": "big"}));
    let names: Vec<String> = (0..40).map(|i| format!("f{i}.txt")).collect();
    for n in &names {
        s.upload_ok(&t, &[(n, n.as_bytes())]);
    }
    for path in [format!("/api/target/{t}"), "/api/target".to_string(), "/api/stats".to_string()] {
        let (status, tag, plain) = get(&s, &path, None, false);
        assert_eq!(status, 200);
        assert!(tag.starts_with('"') && tag.len() > 10, "{path}: etag {tag}");
        let (status, tag2, zipped) = get(&s, &path, None, true);
        assert_eq!((status, &tag2), (200, &tag), "{path}");
        assert_eq!(zipped, plain, "{path}: the gzip copy differs");
        let (status, _, body) = get(&s, &path, Some(&tag), false);
        assert_eq!((status, body), (304, None), "{path}: an unchanged reply is sent again");
        assert_eq!(get(&s, &path, Some("\"other\""), false).0, 200);
    }
}

/// A client that accepts zstd gets the kept zstd copy, which decodes to the same reply; the
/// client's q-values choose between zstd, gzip and none.
#[test]
fn zstd_carries_the_same_reply_and_q_values_choose() {
    let mut s = TestServer::start();
    s.new_api_key();
    let t = s.create_target(json!({"name": "big"}));
    for i in 0..40 {
        let n = format!("f{i}.txt");
        s.upload_ok(&t, &[(&n, n.as_bytes())]);
    }
    let path = format!("/api/target/{t}");
    let (status, tag, encoding, plain) = get_as(&s, &path, None, None);
    assert_eq!((status, encoding.as_str()), (200, ""));
    for (accept, expected) in [
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("zstd;q=0.5, gzip", "gzip"),
        ("zstd, gzip;q=0", "zstd"),
        ("zstd;q=0, gzip;q=0.3", "gzip"),
        ("*", "zstd"),
        ("*;q=0, identity", ""),
        ("br", ""),
    ] {
        let (status, tag2, encoding, body) = get_as(&s, &path, None, Some(accept));
        assert_eq!((status, tag2.as_str(), encoding.as_str()), (200, tag.as_str(), expected), "{accept}");
        assert_eq!(body, plain, "{accept}: the {expected} copy differs");
    }
    // The target list has its own copy (more targets make it worth compressing).
    for i in 0..5 {
        s.create_target(json!({"name": format!("other {i}")}));
    }
    let (_, _, encoding, body) = get_as(&s, "/api/target", None, Some("zstd"));
    assert_eq!((encoding.as_str(), body), ("zstd", get_as(&s, "/api/target", None, None).3));
    // An unchanged reply is a 304 whatever the encoding asked.
    assert_eq!(get_as(&s, &path, Some(&tag), Some("zstd")).0, 304);
}

/// After every kind of change, the next read shows it: the kept reply is never served stale.
#[test]
fn no_stale_reply_after_any_change() {
    let mut s = TestServer::start_with_config("gc_grace_secs = 0\n");
    s.new_api_key();
    let t = s.create_target(
        json!({"name": "watched", "recycle_criteria": "count", "recycle_value": 2, "recycle_action": "recycle"}),
    );
    s.upload_ok(&t, &[("a.txt", b"1")]);
    let path = format!("/api/target/{t}");
    let read = |s: &TestServer| {
        let (status, tag, body) = get(s, &path, None, false);
        assert_eq!(status, 200);
        (tag, body.unwrap())
    };
    let (mut tag, _) = read(&s);
    let mut step = |s: &TestServer, what: &str, check: &dyn Fn(&Value) -> bool| {
        // The old ETag no longer matches, and the body shows the change at once.
        let (status, _, _) = get(s, &path, Some(&tag), false);
        assert_eq!(status, 200, "after {what}, the old reply was still current");
        let (new_tag, body) = read(s);
        assert!(check(&body), "after {what}: {body}");
        tag = new_tag;
    };
    let backups = |b: &Value| b["backups"].as_array().unwrap().clone();

    s.upload_ok(&t, &[("b.txt", b"2")]);
    step(&s, "an upload", &|b| backups(b).len() == 2);
    let first = backups(&read(&s).1).iter().map(|b| b["id"].as_str().unwrap().to_string()).min().unwrap();
    s.patch(&format!("/api/backup/{first}"), json!({"is_recycled": true}));
    step(&s, "a recycle", &|b| backups(b).iter().any(|x| x["is_recycled"] == true));
    s.patch(&format!("/api/backup/{first}"), json!({"is_recycled": false}));
    step(&s, "a restore", &|b| backups(b).iter().all(|x| x["is_recycled"] == false));
    s.patch(&format!("/api/target/{t}"), json!({"name": "renamed"}));
    step(&s, "an edit", &|b| b["target"]["name"] == "renamed");
    s.upload_ok(&t, &[("c.txt", b"3")]);
    step(&s, "a third upload", &|b| backups(b).len() == 3);
    assert_eq!(s.get("/api/jobs/force_run/recycle_job").0, 200);
    step(&s, "retention", &|b| backups(b).iter().filter(|x| x["is_recycled"] == true).count() == 1);
    s.delete(&format!("/api/backup/{first}"), json!({"delete_files": true}));
    step(&s, "a delete", &|b| backups(b).len() == 2);
    let (_, stats) = s.get("/api/stats");
    assert_eq!(stats["total_backups"], 2);
    // A restart starts with nothing kept; the same content keeps its ETag.
    s.restart();
    assert_eq!(get(&s, &path, Some(&tag), false).0, 304);
    let (_, body) = read(&s);
    assert!(backups(&body).len() == 2 && body["target"]["name"] == "renamed");
}

/// A change renews exactly the kept replies that show it (`db::changes`): a target's own reply,
/// those of targets sharing its content (their exclusive bytes move), the list and the stats.
/// Every `true` below would fail on a stale reply; every `false` is a reply that must not differ.
#[test]
fn a_change_renews_the_replies_that_show_it() {
    let mut s = TestServer::start_with_config("gc_grace_secs = 0\n[protection]\nhold_days = 0\n");
    s.new_api_key();
    let a = s.create_target(json!({"name": "a", "name_template": "a-$I"}));
    let b = s.create_target(json!({"name": "b", "name_template": "b-$I"}));
    let shared: &[u8] = b"content both targets come to hold";
    s.upload_ok(&a, &[("x.txt", shared)]);
    s.upload_ok(&b, &[("y.txt", b"b only")]);
    let paths = [format!("/api/target/{a}"), format!("/api/target/{b}"), "/api/target".into(), "/api/stats".into()];
    let mut tags: Vec<String> = paths.iter().map(|p| get(&s, p, None, false).1).collect();
    // `expect` per path (a, b, list, stats): Some(changed), or None where either is right.
    let mut step = |s: &TestServer, what: &str, expect: [Option<bool>; 4]| {
        for ((path, tag), expect) in paths.iter().zip(tags.iter_mut()).zip(expect) {
            let (status, new_tag, _) = get(s, path, Some(tag), false);
            if let Some(changed) = expect {
                assert_eq!(status, if changed { 200 } else { 304 }, "{path} after {what}");
            }
            if status == 200 {
                *tag = new_tag;
            }
        }
    };
    let exclusive = |s: &TestServer, t: &str| -> Vec<i64> {
        s.target(t).1.iter().map(|b| b["exclusive_bytes"].as_i64().unwrap()).collect()
    };
    assert_eq!(exclusive(&s, &a), [shared.len() as i64]);

    s.upload_ok(&b, &[("z.txt", b"new in b")]);
    step(&s, "an upload to b", [Some(false), Some(true), Some(true), Some(true)]);
    s.upload_ok(&b, &[("copy.txt", shared)]);
    step(&s, "b taking a's content", [Some(true), Some(true), Some(true), Some(true)]);
    assert_eq!(exclusive(&s, &a), [0], "a's content is no longer a's alone");
    let copy = s.target(&b).1[0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.delete(&format!("/api/backup/{copy}"), json!({"delete_files": true})).0, 200);
    step(&s, "b dropping it", [Some(true), Some(true), Some(true), Some(true)]);
    assert_eq!(exclusive(&s, &a), [shared.len() as i64]);

    let first = s.target(&a).1[0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.patch(&format!("/api/backup/{first}"), json!({"pinned": true})).0, 200);
    step(&s, "a pin", [Some(true), Some(false), None, Some(false)]);
    assert_eq!(s.target(&a).1[0]["pinned"], true);

    // Damage found by the integrity check (a placed file overwritten behind bakch's back).
    let (t, _) = s.target(&a);
    let placed = std::path::PathBuf::from(t["location"].as_str().unwrap()).join(format!("a-{first}")).join("x.txt");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&placed, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&placed, b"tampered").unwrap();
    assert_eq!(s.get("/api/jobs/force_run/integrity_check_job").0, 200);
    step(&s, "damage found", [Some(true), Some(false), None, None]);
    assert_eq!(s.target(&a).1[0]["hash_mismatch"], true);

    assert_eq!(s.patch(&format!("/api/target/{b}"), json!({"name": "b renamed"})).0, 200);
    // a's health may be moving meanwhile (the monitor records the damage as it finds it).
    step(&s, "an edit of b", [None, Some(true), Some(true), Some(false)]);
}
