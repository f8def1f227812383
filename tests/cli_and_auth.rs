//! The command line (`newapikey`, `--help`, `--version`, refusals at start) and API key checks.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use common::routes::{registered_api_needs, registered_api_routes};
use common::{BIN, TestServer, free_port, poll};
use serde_json::json;

#[test]
fn newapikey_writes_a_private_key_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| Command::new(BIN).args(args).arg("--data-dir").arg(dir.path()).output().unwrap();
    let first = run(&["newapikey"]);
    assert!(first.status.success());
    let key = String::from_utf8_lossy(&first.stdout).lines().last().unwrap().to_string();
    assert!(
        key.starts_with("bakch-") && key.len() == 70 && key[6..].chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    );
    let path = dir.path().join("apikey.json");
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(file, json!({"key": key}));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    let again = run(&["newapikey"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
    let file_after: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(file_after["key"], key.as_str(), "the key changed without -o");
    let forced = run(&["newapikey", "-o"]);
    assert!(forced.status.success());
    let new_key = String::from_utf8_lossy(&forced.stdout).lines().last().unwrap().to_string();
    assert_ne!(new_key, key);
}

#[test]
fn help_and_version() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["newapikey", "--help"],
        vec!["passwd", "--help"],
        vec!["--version"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn refuses_to_listen_beyond_loopback_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--bind", &format!("0.0.0.0:{}", free_port()), "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API key"));
}

#[test]
fn bad_config_stops_start_up_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[schedules]\nrecycle_job = \"every tuesday\"\n").unwrap();
    let out = Command::new(BIN).args(["serve", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("recycle_job"));
    let out = Command::new(BIN).args(["serve", "--bind", "nowhere", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// A started `bakch`, killed if a test ends (or fails) while it still runs.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `bakch` with `args` and `env` on a fresh port; waits (bounded) for it to stop by itself
/// and returns its exit status, stdout and stderr.
fn run_until_it_stops(args: &[&str], env: &[(&str, &str)], data: &std::path::Path) -> (ExitStatus, String, String) {
    let port = free_port().to_string();
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--data-dir").arg(data).env("BAKCH_BIND", format!("127.0.0.1:{port}"));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut running = Running(cmd.spawn().unwrap());
    let status = poll("bakch to stop by itself", Duration::from_secs(20), || running.0.try_wait().unwrap());
    let (mut out, mut err) = (String::new(), String::new());
    running.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    running.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status, out, err)
}

/// Start-up problems stop bakch at once, with one message that names the culprit: a malformed
/// `BAKCH_*` variable whether or not `serve` is written, and a database file that is not one
/// (left as it was, and named with what to do).
#[test]
fn startup_errors_stop_once_with_a_clear_message() {
    let data = tempfile::tempdir().unwrap();
    for (var, value) in [("BAKCH_WORKERS", "many"), ("BAKCH_PAGE_SIZE", "-1")] {
        let serve = run_until_it_stops(&["serve"], &[(var, value)], data.path());
        let bare = run_until_it_stops(&[], &[(var, value)], data.path());
        assert_eq!(serve.0.code(), Some(2), "{var}={value} with serve: {}", serve.2);
        assert!(serve.2.contains(value), "{}", serve.2);
        assert_eq!((bare.0.code(), &bare.2), (serve.0.code(), &serve.2), "{var}={value} without a subcommand");
    }

    let db = data.path().join("bakch.sqlite3");
    let garbage: Vec<u8> = (0u32..8192).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    let (status, out, err) = run_until_it_stops(&["serve"], &[], data.path());
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(&db.display().to_string()) && err.contains("restore"), "{err}");
    assert_eq!(format!("{out}{err}").matches("not a database").count(), 1, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage, "the damaged file was changed");
}

/// Log lines written to a pipe (stdout here) and to the log file carry no colour codes.
#[test]
fn logs_off_a_terminal_have_no_colour() {
    let data = tempfile::tempdir().unwrap();
    let stdout_path = data.path().join("stdout.txt");
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data.path().join("data"))
        .env("BAKCH_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let stdout = poll("the listening line on stdout", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        text.contains("listening on").then_some(text)
    });
    assert!(!stdout.contains('\u{1b}'), "colour codes on a pipe: {stdout:?}");
    let logs = data.path().join("data/logs");
    let file = poll("the listening line in the log file", Duration::from_secs(30), || {
        let file = std::fs::read_dir(&logs).ok()?.flatten().next()?.path();
        let text = std::fs::read_to_string(file).unwrap_or_default();
        text.contains("listening on").then_some(text)
    });
    assert!(!file.contains('\u{1b}'), "colour codes in the log file: {file:?}");
}

#[test]
fn key_guards_every_route_and_is_picked_up_without_restart() {
    let mut s = TestServer::start();
    // No key file: open, whatever the header says (the client sends an empty Bearer).
    let (status, _) = s.get("/api/stats");
    assert_eq!(status, 200);
    let key = s.new_api_key();
    let client = reqwest::blocking::Client::new();
    let routes = ["/api/stats", "/api/target", "/api/jobs", "/api/log", "/api/recycle_bin", "/api/target/x"];
    for route in routes {
        let url = format!("{}{route}", s.url);
        let none = client.get(&url).send().unwrap();
        assert_eq!(none.status().as_u16(), 401, "{route} without a key");
        let body: serde_json::Value = none.json().unwrap();
        assert_eq!(body["success"], false);
        let basic = client.get(&url).header("authorization", format!("Basic {key}")).send().unwrap();
        assert_eq!(basic.status().as_u16(), 401, "{route} with a non-Bearer header");
        let wrong = client.get(&url).bearer_auth("bakch-0000").send().unwrap();
        assert_eq!(wrong.status().as_u16(), 403, "{route} with a wrong key");
    }
    let (status, _) = s.get("/api/stats");
    assert_eq!(status, 200, "the right key opens");
    let (status, _) = s.post("/api/target", json!({}));
    assert_eq!(status, 400, "requests with the key reach the handlers");
}

#[test]
fn config_layers_file_then_environment_then_flags() {
    let page = |s: &TestServer| -> usize {
        for _ in 0..8 {
            s.create_target(json!({}));
        }
        let (_, body) = s.get("/api/target");
        body["targets"].as_array().unwrap().len()
    };
    // The file sets the page size; the environment beats the file.
    assert_eq!(page(&TestServer::start_with(&[], Some("page_size = 3\n"))), 3);
    assert_eq!(page(&TestServer::start_with(&[("BAKCH_PAGE_SIZE", "5")], Some("page_size = 3\n"))), 5);
    // A flag beats both: the harness passes --bind, and the server answers there although the
    // file and the environment name another port.
    let s = TestServer::start_with(&[("BAKCH_BIND", "127.0.0.1:9")], Some("bind = \"127.0.0.1:9\"\n"));
    assert_eq!(s.get("/api/stats").0, 200);
}

/// Every route registered in `src/api/` refuses every method without the key (401) and with a
/// wrong key (403). The one exception is the OpenAPI document, open by design (it holds no data).
#[test]
fn every_registered_api_route_needs_the_key() {
    let routes = registered_api_routes();
    let mut s = TestServer::start();
    s.new_api_key();
    let client = reqwest::blocking::Client::new();
    for (path, _) in &routes {
        let route = path.replace("{id}", "x").replace("{name}", "x");
        for method in ["GET", "POST", "PATCH", "DELETE", "PUT"] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let url = format!("{}{route}", s.url);
            let none = client.request(method.clone(), &url).body("{}").send().unwrap();
            let wrong = client.request(method.clone(), &url).bearer_auth("bakch-wrong").body("{}").send().unwrap();
            if route == "/api/openapi.json" {
                // Exception: the API's description is served without the key (README, Security);
                // it answers GET, and any other method gets the usual 405, key or no key.
                let expected = if method == reqwest::Method::GET { 200 } else { 405 };
                assert_eq!(none.status().as_u16(), expected, "{method} {route} without a key");
                assert_eq!(wrong.status().as_u16(), expected, "{method} {route} with a wrong key");
                if expected == 405 {
                    assert_eq!(none.headers()["allow"], "GET", "a 405 names the methods the path takes");
                }
                continue;
            }
            assert_eq!(none.status().as_u16(), 401, "{method} {route} without a key");
            assert_eq!(wrong.status().as_u16(), 403, "{method} {route} with a wrong key");
        }
    }
}

/// The served OpenAPI document and the registered routes agree both ways: every route (path and
/// method) in `src/api/` is documented, and every documented operation is a registered route.
#[test]
fn openapi_document_covers_exactly_the_registered_routes() {
    let mut registered: Vec<String> = registered_api_routes()
        .into_iter()
        .flat_map(|(path, methods)| methods.into_iter().map(move |m| format!("{m} {path}")))
        .collect();
    registered.sort();
    let mut s = TestServer::start();
    s.new_api_key();
    let res = reqwest::blocking::get(format!("{}/api/openapi.json", s.url)).unwrap();
    assert_eq!(res.status().as_u16(), 200, "the document is served without the key");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: serde_json::Value = res.json().unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "delete", "put", "head", "options", "trace"].contains(&method.as_str()) {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.sort();
    let undocumented: Vec<&String> = registered.iter().filter(|r| !documented.contains(r)).collect();
    let unregistered: Vec<&String> = documented.iter().filter(|d| !registered.contains(d)).collect();
    assert!(undocumented.is_empty(), "registered but not in /api/openapi.json: {undocumented:?}");
    assert!(unregistered.is_empty(), "in /api/openapi.json but not registered: {unregistered:?}");
    assert_eq!(registered.len(), documented.len());
}

/// Runs `bakch key ...` on the server's data folder; returns stdout, asserting success.
fn key_cmd(s: &TestServer, args: &[&str]) -> String {
    let out = Command::new(BIN).arg("key").args(args).arg("--data-dir").arg(s.data_path()).output().unwrap();
    assert!(out.status.success(), "bakch key {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `bakch key add`: the key is the last line printed.
fn add_key(s: &TestServer, args: &[&str]) -> String {
    let key = key_cmd(s, &[&["add"], args].concat()).lines().last().unwrap().trim().to_string();
    assert!(
        key.starts_with("bakch-") && key.len() == 70 && key[6..].chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    );
    key
}

/// A request with `key` (the server's own key stays as it is).
fn with_key(s: &TestServer, key: &str, method: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let res = reqwest::blocking::Client::new()
        .request(method, format!("{}{path}", s.url))
        .bearer_auth(key)
        .json(body)
        .send()
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// A body that would change something if a refused request went through.
fn harmful_body(method: &str) -> serde_json::Value {
    match method {
        "DELETE" => json!({"delete_files": true}),
        "PATCH" => json!({"is_recycled": true, "name": "taken over", "recycle_criteria": "count", "recycle_value": 1}),
        _ => json!({"manual": true, "file_list": [{"path": "/", "name": "x", "uploaded": false}]}),
    }
}

/// Everything an admin can see, to prove a walk of refusals changed nothing.
fn everything(s: &TestServer, targets: &[&str]) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = targets.iter().map(|t| s.get(&format!("/api/target/{t}")).1).collect();
    for path in ["/api/target", "/api/recycle_bin", "/api/jobs"] {
        let mut body = s.get(path).1;
        if let Some(scheduled) = body.get_mut("scheduled") {
            *scheduled = json!(null); // next-run times move on their own
        }
        out.push(body);
    }
    // A target's health moves on its own too (its reason says how long ago; the monitor records
    // since when), so it is no sign of a change a request made.
    for body in &mut out {
        if let Some(t) = body.get_mut("target").and_then(|t| t.as_object_mut()) {
            t.remove("health");
        }
        for t in body.get_mut("targets").and_then(|t| t.as_array_mut()).into_iter().flatten() {
            if let Some(t) = t.as_object_mut() {
                t.remove("health");
            }
        }
    }
    out
}

struct World {
    s: TestServer,
    a: String,
    b: String,
    a_backup: String,
    b_backup: String,
    a_job: i64,
    b_job: i64,
}

/// An admin key (apikey.json), targets A (alias `alpha`) and B (alias `beta`), a backup each.
fn world() -> World {
    let mut s = TestServer::start();
    s.new_api_key();
    let a = s.create_target(json!({"name": "Photos", "alias": "alpha"}));
    let b = s.create_target(json!({"name": "Secrets", "alias": "beta"}));
    let a_job = s.upload_ok(&a, &[("a.txt", b"alpha")])["id"].as_i64().unwrap();
    let b_job = s.upload_ok(&b, &[("b.txt", b"beta")])["id"].as_i64().unwrap();
    let a_backup = s.target(&a).1[0]["id"].as_str().unwrap().to_string();
    let b_backup = s.target(&b).1[0]["id"].as_str().unwrap().to_string();
    World { s, a, b, a_backup, b_backup, a_job, b_job }
}

impl World {
    /// The query a read route needs to answer with data (file search, history, compare,
    /// single files and selections of a backup), for the object `id` in its path.
    fn query_for(&self, path: &str, id: &str) -> String {
        let of_a = [self.a.as_str(), "alpha", self.a_backup.as_str()].contains(&id);
        let (backup, file) = if of_a { (&self.a_backup, "a.txt") } else { (&self.b_backup, "b.txt") };
        match path.rsplit('/').next() {
            Some("files") => "?q=txt".into(),
            Some("history") | Some("file") | Some("select") => format!("?path={file}"),
            Some("compare") => format!("?from={backup}&to={backup}"),
            _ => String::new(),
        }
    }

    /// The ids to put in a route's `{id}` (and `{name}`), each with whether it is target A's.
    fn ids_for(&self, path: &str) -> Vec<(String, bool)> {
        if path.contains("/backup/") {
            vec![(self.a_backup.clone(), true), (self.b_backup.clone(), false), ("nope".into(), false)]
        } else if path.contains("/jobs/") {
            vec![(self.a_job.to_string(), true), (self.b_job.to_string(), false), ("gc_job".into(), false)]
        } else if path.contains("{id}") {
            let mut ids = vec![(self.a.clone(), true), ("alpha".into(), true), (self.b.clone(), false)];
            ids.extend([("beta".into(), false), ("nope".into(), false)]);
            ids
        } else {
            vec![(String::new(), false)]
        }
    }
}

/// An upload key scoped to one target uploads into it (plain and sequential), reads it, its
/// backups' downloads and its jobs; every other route and every other target's id, alias,
/// backup and job, walked from the registered routes, gets a 403 that says what the key may do,
/// and nothing changes.
#[test]
fn upload_key_reaches_only_its_targets() {
    let mut w = world();
    let key = add_key(&w.s, &["laptop", "--role", "upload", "--target", "alpha"]);
    let admin = w.s.key.clone().unwrap();

    // What it may do: plain upload, sequential upload, follow its jobs, read and download.
    w.s.key = Some(key.clone());
    let job = w.s.upload_ok(&w.a, &[("c.txt", b"more")]);
    assert_eq!(job["status"], "FINISHED");
    let list = json!([{"path": "/", "name": "s.txt", "uploaded": false}]);
    assert_eq!(w.s.post("/api/seq/alpha/begin", json!({"manual": true, "file_list": list})).0, 200);
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", "s.txt")
        .text("path", "/")
        .part("file", reqwest::blocking::multipart::Part::bytes(b"seq".to_vec()).file_name("s.txt"));
    assert_eq!(w.s.multipart("/api/seq/alpha/upload", form).0, 200);
    let (status, done) = w.s.post(&format!("/api/seq/{}/finish", w.a), json!({}));
    assert_eq!(status, 200, "{done}");
    if let Some(id) = done["job_id"].as_i64() {
        assert_eq!(w.s.wait_job(id)["status"], "FINISHED");
    }
    assert_eq!(w.s.get(&format!("/api/jobs/{}", w.a_job)).0, 200);
    let (status, listed) = w.s.get("/api/target");
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed["targets"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![w.a.as_str()], "the list shows only its target");
    let (_, found) = w.s.get("/api/target/search?name=s");
    let ids: Vec<&str> = found["targets"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![w.a.as_str()], "search shows only its target");
    assert_eq!(w.s.get("/api/target/alpha").0, 200);
    let download = w.s.get_raw(&format!("/api/backup/{}/download", w.a_backup));
    assert_eq!(download.status().as_u16(), 200);
    w.s.key = Some(admin);
    assert_eq!(w.s.target(&w.a).1.len(), 3, "the plain and the sequential upload landed");

    // Everything else, route by route from the source: 403, nothing changed.
    let before = everything(&w.s, &[&w.a, &w.b]);
    let mut checked = 0;
    for (path, method, need) in registered_api_needs() {
        if need == "Public" || need == "ListTargets" {
            continue;
        }
        for (id, own) in w.ids_for(&path) {
            let scoped = matches!(need.as_str(), "UploadTarget" | "ReadTarget" | "ReadBackup" | "ReadJob");
            if own && scoped {
                continue; // allowed, and used above
            }
            let route = path.replace("{id}", &id).replace("{name}", "gc_job");
            let (status, body) = with_key(&w.s, &key, &method, &route, &harmful_body(&method));
            assert_eq!(status, 403, "{method} {route} ({need}) with the upload key: {body}");
            let message = body["message"].as_str().unwrap();
            assert!(message.starts_with("key 'laptop' may only upload to and read targets Photos"), "{message}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} refusals checked");
    assert_eq!(everything(&w.s, &[&w.a, &w.b]), before, "a refused request changed something");
}

/// A read key reads every route (downloads included) and changes nothing: every method but GET,
/// and the GET that runs a job, get a 403.
#[test]
fn read_key_reads_everything_and_changes_nothing() {
    let w = world();
    let key = add_key(&w.s, &["auditor", "--role", "read"]);
    let before = everything(&w.s, &[&w.a, &w.b]);
    for (path, method, need) in registered_api_needs() {
        for (id, _) in w.ids_for(&path) {
            let mut route = path.replace("{id}", &id).replace("{name}", "gc_job");
            if route.ends_with("/search") {
                route.push_str("?name=e");
            }
            route.push_str(&w.query_for(&path, &id));
            let (status, body) = with_key(&w.s, &key, &method, &route, &harmful_body(&method));
            if method == "GET" && need != "Admin" {
                assert_ne!(status, 403, "GET {route} with the read key: {body}");
                // /api/health answers 503 on a machine whose disk is nearly full: still a read.
                assert!(matches!(status, 200 | 404) || (path == "/api/health" && status == 503), "GET {route}: {body}");
                // A real object answers (a target has no sequential upload open, so that 404s).
                if !id.is_empty() && id != "nope" && id != "gc_job" && !path.starts_with("/api/seq/") {
                    assert_eq!(status, 200, "GET {route}: {body}");
                }
            } else {
                assert_eq!(status, 403, "{method} {route} with the read key: {body}");
                assert!(body["message"].as_str().unwrap().starts_with("key 'auditor' may only read"), "{body}");
            }
        }
    }
    assert_eq!(everything(&w.s, &[&w.a, &w.b]), before, "a refused request changed something");
}

/// `bakch key revoke` stops a key on a running server at once; `bakch key list` shows each key's
/// role, scope and last use, and `apikey.json` as the admin key it still is.
#[test]
fn revoke_stops_a_key_at_once_and_list_shows_last_use() {
    let w = world();
    let key = add_key(&w.s, &["nas", "--role", "upload", "--target", &w.b]);
    assert_eq!(with_key(&w.s, &key, "GET", "/api/target/beta", &json!({})).0, 200);
    let line = poll("the key's use in `bakch key list`", Duration::from_secs(30), || {
        let listing = key_cmd(&w.s, &["list"]);
        let line = listing.lines().find(|l| l.starts_with("nas\t"))?.to_string();
        (!line.contains("last used never")).then_some(line)
    });
    assert!(line.contains("role upload") && line.contains("Secrets") && line.contains("from 127.0.0.1"), "{line}");
    let listing = key_cmd(&w.s, &["list"]);
    assert!(listing.lines().any(|l| l.starts_with("apikey.json\trole admin")), "{listing}");
    assert_eq!(w.s.get("/api/stats").0, 200, "apikey.json is still the admin key");

    key_cmd(&w.s, &["revoke", "nas"]);
    let (status, body) = poll("the revoked key to be refused", Duration::from_secs(10), || {
        let reply = with_key(&w.s, &key, "GET", "/api/target/beta", &json!({}));
        (reply.0 != 200).then_some(reply)
    });
    assert_eq!((status, body["message"].as_str()), (403, Some("Invalid API key")));
    assert!(key_cmd(&w.s, &["list"]).lines().any(|l| l.starts_with("nas\t") && l.contains("REVOKED")));
}
