//! The audit trail against the real binary: a scripted session leaves exactly its entries, in
//! order; `GET /api/audit` filters and pages them and is for admin keys only; the `/audit`
//! page shows them; `audit_purge_job` drops what is older than `[audit] keep_days`; every web
//! form route, read from the source, is recorded.

mod common;
#[path = "common/web.rs"]
mod web;

use std::process::Command;
use std::time::Duration;

use common::{BIN, TestServer, poll};
use serde_json::{Value, json};
use web::{Web, set_password};

const PASSWORD: &str = "correct horse battery";

fn key_cmd(s: &TestServer, args: &[&str]) -> String {
    let out = Command::new(BIN).arg("key").args(args).arg("--data-dir").arg(s.data_path()).output().unwrap();
    assert!(out.status.success(), "bakch key {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string()
}

/// The entries (oldest first) as (who, from, action, outcome, status, target, backup, job).
fn entries(s: &TestServer, query: &str) -> Vec<Value> {
    let (status, body) = s.get(&format!("/api/audit?limit=500{query}"));
    assert_eq!(status, 200, "{body}");
    let mut list = body["entries"].as_array().unwrap().clone();
    list.reverse();
    list
}

fn summary(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
    format!("{} {} {} {} {}", s("who"), s("from"), s("action"), s("outcome"), e["status"])
}

#[test]
fn a_scripted_session_leaves_exactly_its_entries() {
    let mut s = TestServer::start();
    let admin = s.new_api_key();
    assert!(set_password(&s, PASSWORD).status.success());
    let t = s.create_target(json!({"name": "Photos", "alias": "pics"}));
    let upload_key = key_cmd(&s, &["add", "laptop", "--role", "upload", "--target", &t]);
    let read_key = key_cmd(&s, &["add", "auditor", "--role", "read"]);

    s.key = Some(upload_key.clone());
    let (status, body) = s.upload(&t, &[("a.txt", b"alpha")], "true");
    assert_eq!(status, 200, "{body}");
    let job = body["job_id"].as_i64().unwrap();
    s.wait_job(job);
    assert_eq!(s.delete(&format!("/api/target/{t}"), json!({"delete_files": true})).0, 403);
    s.key = Some(admin.clone());
    let backup = s.target(&t).1[0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.patch(&format!("/api/backup/{backup}"), json!({"is_recycled": true})).0, 200);
    assert_eq!(s.patch(&format!("/api/backup/{backup}"), json!({"is_recycled": false})).0, 200);
    assert_eq!(s.delete(&format!("/api/backup/{backup}"), json!({"delete_files": true})).0, 200);
    assert_eq!(s.patch("/api/target/pics", json!({"name": "Pictures"})).0, 200);
    key_cmd(&s, &["revoke", "laptop"]);
    let w = Web::new(&s);
    let csrf = w.csrf();
    assert_eq!(w.post("/login", &[("csrf", &csrf), ("password", "wrong")]).status, 401);
    w.login(PASSWORD);
    assert_eq!(s.get("/api/jobs/force_run/tmp_purge_job").0, 200);

    let got: Vec<String> = entries(&s, "").iter().map(summary).collect();
    let want = [
        "cli local password_changed ok 200",
        "apikey.json 127.0.0.1 target_created ok 201",
        "cli local key_added ok 200",
        "cli local key_added ok 200",
        "laptop 127.0.0.1 backup_uploaded ok 200",
        "laptop 127.0.0.1 target_deleted refused 403",
        "apikey.json 127.0.0.1 backup_recycled ok 200",
        "apikey.json 127.0.0.1 backup_restored ok 200",
        "apikey.json 127.0.0.1 backup_deleted_with_files ok 200",
        "apikey.json 127.0.0.1 target_edited ok 200",
        "cli local key_revoked ok 200",
        "web 127.0.0.1 login_failed refused 401",
        "web 127.0.0.1 login ok 303",
        "apikey.json 127.0.0.1 job_forced ok 200",
    ];
    assert_eq!(got, want);
    let all = entries(&s, "");
    // Which object each concerns: the target by id (never the alias), the backup, the job.
    for i in [1, 4, 5, 6, 7, 8, 9] {
        assert_eq!(all[i]["target"], json!(t), "{}", all[i]);
    }
    assert_eq!(all[4]["job"], json!(job.to_string()));
    for i in [6, 7, 8] {
        assert_eq!(all[i]["backup"], json!(backup));
    }
    assert_eq!(all[13]["job"], json!("tmp_purge_job"));
    assert!(all[5]["message"].as_str().unwrap().starts_with("key 'laptop' may only upload"), "{}", all[5]);
    assert_eq!(all[5]["route"], json!("DELETE /api/target/{id}"));
    assert_eq!(all[11]["message"], json!("wrong password"));
    assert!(all[12]["session"].as_str().is_some_and(|s| s.len() == 8));

    // Filters and paging.
    let by: Vec<String> = entries(&s, "&who=laptop").iter().map(|e| e["action"].as_str().unwrap().into()).collect();
    assert_eq!(by, ["backup_uploaded", "target_deleted"]);
    assert_eq!(entries(&s, "&action=backup_restored").len(), 1);
    assert_eq!(entries(&s, &format!("&target={t}")).len(), 8);
    let (_, first) = s.get("/api/audit?limit=3");
    let before = first["before"].as_i64().unwrap();
    let (_, second) = s.get(&format!("/api/audit?limit=3&before={before}"));
    let ids =
        |v: &Value| v["entries"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(
        [ids(&first), ids(&second)].concat(),
        all.iter().rev().take(6).map(|e| e["id"].as_i64().unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(s.get("/api/audit?action=nope").0, 400);

    // The page, filtered, and the target page's link to it.
    let page = w.get("/audit?who=laptop");
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("<tr class=\"outcome-").count(), 2, "{}", page.body);
    assert!(page.body.contains("outcome-refused"));
    assert!(w.get(&format!("/targets/{t}")).body.contains(&format!("/audit?target={t}")));

    // Only admin keys read it; the refusals are recorded too.
    s.key = Some(read_key);
    assert_eq!(s.get("/api/audit").0, 403);
    let upload2 = key_cmd(&s, &["add", "nas", "--role", "upload", "--target", &t]);
    s.key = Some(upload2);
    assert_eq!(s.get("/api/audit").0, 403);
    s.key = Some(admin);
    let tail: Vec<String> = entries(&s, "").iter().rev().take(3).map(summary).collect();
    assert_eq!(
        tail,
        ["nas 127.0.0.1 read refused 403", "cli local key_added ok 200", "auditor 127.0.0.1 read refused 403"]
    );
}

#[test]
fn purge_job_removes_entries_older_than_keep_days() {
    let mut s = TestServer::start_with_config("[audit]\nkeep_days = 2\n");
    s.new_api_key();
    let t = s.create_target(json!({"name": "Docs"}));
    let db = rusqlite::Connection::open(s.data_path().join("bakch.sqlite3")).unwrap();
    let old = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    db.execute(
        "INSERT INTO audit (at, who, origin, action, status) VALUES (?1, 'old', 'local', 'target_edited', 200)",
        [&old],
    )
    .unwrap();
    assert_eq!(entries(&s, "&who=old").len(), 1);
    assert_eq!(s.get("/api/jobs/force_run/audit_purge_job").0, 200);
    poll("the old entry to go", Duration::from_secs(30), || entries(&s, "&who=old").is_empty().then_some(()));
    assert_eq!(entries(&s, &format!("&target={t}")).len(), 1, "recent entries stay");
}

#[test]
fn a_bad_keep_days_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[audit]\nkeep_days = 0\n").unwrap();
    let out = Command::new(BIN).args(["key", "list", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keep_days"));
}

/// Every web route that takes a POST, read from the source: (path pattern).
fn web_post_routes() -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for (i, _) in source.match_indices("web::resource(\"") {
                let rest = &source[i + "web::resource(\"".len()..];
                let route = &rest[..rest.find('"').unwrap()];
                let end =
                    rest.find("web::resource(").unwrap_or(rest.len()).min(rest.find("\n}\n").unwrap_or(rest.len()));
                if rest[..end].contains("web::post()") {
                    out.push(route.to_string());
                }
            }
        }
    }
    out.sort();
    assert!(out.len() >= 14, "found only {out:?}");
    out
}

/// A web form route without an audit action is refused (500) before its handler; walking them
/// all (without the CSRF token, so nothing changes) proves each has one and is recorded.
#[test]
fn every_web_form_route_is_audited() {
    let mut s = TestServer::start();
    s.new_api_key();
    assert!(set_password(&s, PASSWORD).status.success());
    let t = s.create_target(json!({"name": "Photos"}));
    let job = s.upload_ok(&t, &[("a.txt", b"x")]);
    let backup = s.target(&t).1[0]["id"].as_str().unwrap().to_string();
    let w = Web::new(&s);
    w.login(PASSWORD);
    for route in web_post_routes() {
        let before = entries(&s, "").len();
        let path = route
            .replace("{id}", if route.starts_with("/backups/") { &backup } else { &t })
            .replace("{target}", &t)
            .replace("{name}", "tmp_purge_job");
        let page = w.post(&path, &[("nothing", "1")]);
        assert_ne!(page.status, 500, "POST {route}: {}", page.body);
        if route == "/backups/{id}/select" {
            // A read sent by POST (the ticked paths outgrow a URL): refused without the token,
            // and not recorded, like every read.
            assert_eq!(page.status, 403, "POST {route}: {}", page.body);
            assert_eq!(entries(&s, "").len(), before, "POST {route} was recorded");
            continue;
        }
        let after = entries(&s, "");
        assert_eq!(after.len(), before + 1, "POST {route} left no entry");
        let last = after.last().unwrap();
        assert_eq!(last["route"], json!(format!("POST {route}")), "{last}");
        assert_eq!((last["who"].as_str(), last["outcome"].as_str()), (Some("web"), Some("refused")), "{last}");
    }
    let _ = job;
}
