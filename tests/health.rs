//! Health (issue 15) against the real binary: a target's states and the notifications their
//! changes send to a local webhook receiver (signature checked), an ntfy-style endpoint and an
//! SMTP sink, all in this file; `/api/health` flipping between 200 and 503; the change canary
//! flagging an unusual backup with its numbers; a quota's warning level on the dashboard and in
//! a notification; and `/metrics` read by a Prometheus parser.

mod common;
#[path = "common/web.rs"]
mod web;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestServer, poll, raw_tar, tar_gz};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Generous bounds for a loaded machine; every wait returns as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(60);

/// One HTTP request a receiver got: lower-case headers and the body.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

type Inbox<T> = Arc<Mutex<Vec<T>>>;

/// A tiny HTTP server answering 200 to every POST and keeping what it got.
fn http_receiver() -> (u16, Inbox<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox: Inbox<Received> = Arc::default();
    let kept = inbox.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(r) = read_request(stream) {
                kept.lock().unwrap().push(r);
            }
        }
    });
    (port, inbox)
}

fn read_request(mut stream: TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok())?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").ok()?;
    Some(Received { headers, body })
}

/// A tiny SMTP server that accepts every message and keeps its DATA.
fn smtp_sink() -> (u16, Inbox<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox: Inbox<String> = Arc::default();
    let kept = inbox.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(mail) = smtp_session(stream) {
                kept.lock().unwrap().push(mail);
            }
        }
    });
    (port, inbox)
}

fn smtp_session(mut stream: TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    stream.write_all(b"220 sink ESMTP\r\n").ok()?;
    let mut mail = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return mail;
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
            stream.write_all(b"250-sink\r\n250 8BITMIME\r\n").ok()?;
        } else if cmd.starts_with("DATA") {
            stream.write_all(b"354 go on\r\n").ok()?;
            let mut data = String::new();
            loop {
                line.clear();
                reader.read_line(&mut line).ok()?;
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            mail = Some(data);
            stream.write_all(b"250 kept\r\n").ok()?;
        } else if cmd.starts_with("QUIT") {
            stream.write_all(b"221 bye\r\n").ok()?;
            return mail;
        } else {
            stream.write_all(b"250 ok\r\n").ok()?;
        }
    }
}

const SECRET: &str = "a shared secret";

fn server_with_destinations() -> (TestServer, Inbox<Received>, Inbox<Received>, Inbox<String>) {
    let (hook, hooks) = http_receiver();
    let (ntfy, pushes) = http_receiver();
    let (smtp, mails) = smtp_sink();
    let config = format!(
        r#"
[[notify]]
kind = "webhook"
name = "hook"
url = "http://127.0.0.1:{hook}/bakch"
secret = "{SECRET}"

[[notify]]
kind = "ntfy"
name = "phone"
url = "http://127.0.0.1:{ntfy}/backups"
events = ["late", "failed", "recovered"]

[[notify]]
kind = "email"
name = "mail"
smtp_host = "127.0.0.1"
smtp_port = {smtp}
tls = "none"
from = "bakch@example.org"
to = ["owner@example.org"]
"#
    );
    let mut s = TestServer::start_with_config(&config);
    s.new_api_key();
    (s, hooks, pushes, mails)
}

/// The events a webhook receiver got, in order, each with a valid signature.
fn hook_events(hooks: &Inbox<Received>) -> Vec<Value> {
    hooks
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(&r.body);
            let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(r.header("x-bakch-signature"), Some(format!("sha256={hex}").as_str()), "signature");
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(r.header("x-bakch-event"), body["event"].as_str());
            body
        })
        .collect()
}

fn state_of(s: &TestServer, id: &str) -> String {
    s.target(id).0["health"]["state"].as_str().unwrap().to_string()
}

fn wait_state(s: &TestServer, id: &str, want: &str) -> Value {
    poll(&format!("state {want}"), WAIT, || {
        let t = s.target(id).0;
        (t["health"]["state"] == want).then_some(t["health"].clone())
    })
}

/// Waits until `inbox` holds `n` items and returns them.
fn wait_count<T: Clone>(what: &str, inbox: &Inbox<T>, n: usize) -> Vec<T> {
    poll(what, WAIT, || {
        let got = inbox.lock().unwrap().clone();
        (got.len() >= n).then_some(got)
    })
}

#[test]
fn a_target_goes_never_ok_late_recovered_failed_and_each_change_is_told_once() {
    let (s, hooks, pushes, mails) = server_with_destinations();
    let id = s.create_target(json!({"expected_interval": 3600}));
    let (t, _) = s.target(&id);
    assert_eq!(t["expected_interval"], 3600);
    assert_eq!(t["health"]["state"], "never");
    assert_eq!(s.get("/api/health").0, 503, "a monitored target without a backup is not healthy");

    s.upload_ok(&id, &[("a.txt", b"one")]);
    let h = wait_state(&s, &id, "ok");
    assert!(h["last_success"].as_str().unwrap().ends_with('Z'), "{h}");
    assert!(h["next_due"].is_string(), "{h}");
    let (status, body) = s.get("/api/health");
    assert_eq!((status, body["success"].clone()), (200, json!(true)), "{body}");
    assert_eq!(body["counts"]["ok"], 1);

    // An edit without the field keeps it (the official clients never send it).
    assert_eq!(s.patch(&format!("/api/target/{id}"), json!({"name": "renamed"})).0, 200);
    assert_eq!(s.target(&id).0["expected_interval"], 3600);
    // Bad input: a clear error naming the field, nothing changed.
    let (status, body) = s.patch(&format!("/api/target/{id}"), json!({"expected_interval": -5}));
    assert_eq!((status, body["field"].as_str()), (400, Some("expected_interval")), "{body}");
    assert_eq!(s.target(&id).0["expected_interval"], 3600);

    // Two seconds expected: late once 2.2 s have passed since the backup, without anyone asking.
    assert_eq!(s.patch(&format!("/api/target/{id}"), json!({"expected_interval": 2})).0, 200);
    let events = wait_count("the late event", &hooks, 1);
    assert_eq!(hook_events(&hooks)[0]["event"], "late", "{events:?}");
    let h = wait_state(&s, &id, "late");
    assert!(h["reason"].as_str().unwrap().contains("expected every 2 seconds"), "{h}");
    let (status, body) = s.get("/api/health");
    assert_eq!(status, 503);
    assert_eq!(body["problems"][0]["state"], "late", "{body}");
    assert_eq!(body["problems"][0]["target_name"], "renamed");

    // A backup again: recovered. Then a long interval, so it stays ok until the failure.
    s.upload_ok(&id, &[("a.txt", b"two")]);
    assert_eq!(s.patch(&format!("/api/target/{id}"), json!({"expected_interval": 3600})).0, 200);
    wait_count("the recovered event", &hooks, 2);
    assert_eq!(state_of(&s, &id), "ok");
    assert_eq!(s.get("/api/health").0, 200);

    // An upload that fails (an archive leaving its tree): failed.
    let bad = raw_tar(&[("../escape.txt", b"x", tar::EntryType::Regular, "")]);
    let (status, body) = s.upload(&id, &[("bad.tar", &bad)], "0");
    assert_eq!(status, 200, "{body}");
    let job = s.wait_job(body["job_id"].as_i64().unwrap());
    assert_eq!(job["status"], "ERROR");
    let h = wait_state(&s, &id, "failed");
    assert!(h["reason"].as_str().unwrap().starts_with("the last upload failed"), "{h}");
    assert!(h["last_failure"].is_string(), "{h}");
    wait_count("the failed event", &hooks, 3);

    // Each change once, in order, to every destination that wants it.
    let events = hook_events(&hooks);
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["late", "recovered", "failed"]);
    for e in &events {
        assert_eq!(e["target_id"], id.as_str());
        assert_eq!(e["target_name"], "renamed");
        for key in ["state", "reason", "time"] {
            assert!(e[key].is_string(), "{key} in {e}");
        }
    }
    assert_eq!(events[2]["state"], "failed");
    let pushes = wait_count("three pushes", &pushes, 3);
    let tags: Vec<&str> = pushes.iter().map(|p| p.header("tags").unwrap()).collect();
    assert_eq!(tags, ["late", "recovered", "failed"]);
    assert!(pushes[0].header("title").unwrap().contains("is late"));
    let mails = wait_count("three e-mails", &mails, 3);
    assert!(mails[0].contains("Subject: target 'renamed' is late"), "{}", mails[0]);
    assert!(mails[2].contains("the last upload failed"), "{}", mails[2]);
    // Nothing more: a state that stays does not notify again (no reminder is configured). The
    // monitor has checked since the failure (its state is recorded), so a repeat would be queued.
    let (_, jobs) = s.get("/api/jobs");
    let notify_jobs = jobs["delayed"].as_array().unwrap().iter().filter(|j| j["name"] == "notify_job").count();
    assert_eq!(notify_jobs, 9, "3 events x 3 destinations: {jobs}");
}

#[test]
fn an_unusual_change_is_flagged_with_its_numbers_and_told() {
    let (s, hooks, _pushes, _mails) = server_with_destinations();
    let id = s.create_target(json!({}));
    let files = |changed: usize, round: usize| -> Vec<u8> {
        let contents: Vec<(String, Vec<u8>)> = (0..20)
            .map(|i| {
                let body = if i < changed { format!("file {i} round {round}") } else { format!("file {i}") };
                (format!("docs/f{i}.txt"), body.into_bytes())
            })
            .collect();
        let entries: Vec<(&str, &[u8])> = contents.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
        tar_gz(&entries)
    };
    for round in 1..=3 {
        s.upload_ok(&id, &[("b.tar.gz", &files(1, round))]);
    }
    let (_, backups) = s.target(&id);
    let newest = &backups[0];
    assert_eq!(
        newest["changes"],
        json!({"files_new": 0, "files_changed": 1, "files_removed": 0, "files_same": 19,
               "bytes_new": "file 0 round 3".len()})
    );
    assert_eq!(newest["unusual"], false);
    assert_eq!(backups[2]["changes"]["files_new"], 20, "the first backup: all new");

    s.upload_ok(&id, &[("b.tar.gz", &files(19, 4))]);
    let (_, backups) = s.target(&id);
    let storm = &backups[0];
    assert_eq!(storm["changes"]["files_changed"], 19);
    assert_eq!(storm["changes"]["files_same"], 1);
    assert_eq!(storm["unusual"], true);
    let reason = storm["unusual_reason"].as_str().unwrap();
    assert_eq!(reason, "95 % of the files changed (19 of 20); usually at most 5 %");
    wait_count("the unusual_change event", &hooks, 1);
    let events = hook_events(&hooks);
    assert_eq!(events[0]["event"], "unusual_change");
    assert_eq!(events[0]["backup_id"], storm["id"]);
    assert_eq!(events[0]["reason"], reason);
}

#[test]
fn metrics_parse_and_need_the_key() {
    let (s, _, _, _) = server_with_destinations();
    let id = s.create_target(json!({"expected_interval": 86400}));
    s.upload_ok(&id, &[("a.txt", b"hello")]);
    wait_state(&s, &id, "ok");
    assert_eq!(s.get("/api/stats").0, 200);
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/metrics", s.url);
    assert_eq!(client.get(&url).send().unwrap().status().as_u16(), 401);
    assert_eq!(client.get(&url).bearer_auth("bakch-wrong").send().unwrap().status().as_u16(), 403);
    let text = client.get(&url).bearer_auth(s.key.as_ref().unwrap()).send().unwrap().text().unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a Prometheus text document");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .and_then(|s| match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => Some(v),
                _ => None,
            })
    };
    assert_eq!(value("bakch_target_health", &[("target_id", &id), ("state", "ok")]), Some(1.0));
    assert_eq!(value("bakch_target_health", &[("target_id", &id), ("state", "late")]), Some(0.0));
    assert_eq!(value("bakch_target_backups", &[("target_id", &id)]), Some(1.0));
    assert_eq!(value("bakch_target_logical_bytes", &[("target_id", &id)]), Some(5.0));
    assert!(value("bakch_target_last_success_timestamp_seconds", &[("target_id", &id)]).unwrap() > 1.7e9);
    assert!(value("bakch_data_disk_free_bytes", &[]).unwrap() > 0.0);
    assert_eq!(value("bakch_upload_bytes_total", &[]), Some(5.0));
    assert_eq!(value("bakch_jobs", &[("status", "FINISHED")]), Some(1.0));
    for name in ["bakch_store_disk_bytes", "bakch_dedup_saved_bytes"] {
        assert!(value(name, &[]).is_some(), "{name}");
    }
    assert!(
        // (A route with `{id}` in it is a valid label value that this parser does not read.)
        value("bakch_http_requests_total", &[("route", "/api/stats"), ("method", "GET"), ("status", "200")]).unwrap()
            >= 1.0
    );
    assert!(scrape.samples.iter().any(|s| s.metric == "bakch_upload_duration_seconds"), "the histogram");
    assert!(scrape.docs.contains_key("bakch_target_health"), "help text");

    let (status, body) = s.get("/healthz");
    assert_eq!((status, body["success"].clone()), (200, json!(true)));
    let open = client.get(format!("{}/healthz", s.url)).send().unwrap();
    assert_eq!(open.status().as_u16(), 200, "no key needed");
}

#[test]
fn notify_test_reaches_every_destination() {
    let (s, hooks, pushes, mails) = server_with_destinations();
    let out = std::process::Command::new(common::BIN)
        .args(["notify-test", "--data-dir"])
        .arg(s.data_path())
        .output()
        .expect("run notify-test");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(said.lines().collect::<Vec<_>>(), ["hook: sent", "phone: sent", "mail: sent"]);
    // "sent" is said once the destination answered; its receiver thread records it just after.
    wait_count("the webhook", &hooks, 1);
    assert_eq!(hook_events(&hooks)[0]["event"], "test");
    assert_eq!(wait_count("the ntfy push", &pushes, 1)[0].header("tags"), Some("test"));
    assert!(wait_count("the mail", &mails, 1)[0].contains("Subject: bakch: test notification"));
}

#[test]
fn a_target_nearly_at_its_quota_shows_on_the_dashboard_and_is_told_once() {
    let (s, hooks, _, _) = server_with_destinations();
    web::set_password(&s, "dashboard pw");
    let browser = web::Web::new(&s);
    browser.login("dashboard pw");
    let id = s.create_target(json!({"name": "photos", "quota_bytes": 10_000, "quota_warning_percent": 50}));
    let banner = |html: &str| html.contains("class=\"quota-warning\"");

    // 40 %: the dashboard says how much is used; no warning anywhere.
    s.upload_ok(&id, &[("a.bin", &[b'a'; 4000])]);
    let list = browser.get("/targets").body;
    assert!(list.contains("3.9 KiB of 9.8 KiB quota (40 %)"), "{list}");
    assert!(!banner(&list), "{list}");
    let (status, health) = s.get("/api/health");
    assert_eq!((status, health["quota_warnings"].clone()), (200, json!([])), "{health}");

    // 60 %: past the warning level. Told once; a warning, not a failure.
    s.upload_ok(&id, &[("b.bin", &[b'b'; 2000])]);
    let told = wait_count("the quota warning", &hooks, 1);
    let event = &hook_events(&hooks)[0];
    assert_eq!(event["event"], "quota_warning", "{told:?}");
    assert!(event["reason"].as_str().unwrap().contains("60 %"), "{event}");
    let (status, health) = s.get("/api/health");
    assert_eq!(status, 200, "a quota warning does not make the server unhealthy: {health}");
    let q = &health["quota_warnings"][0];
    assert_eq!(
        (q["target_id"].as_str(), q["percent"].as_i64(), q["warning"].as_bool()),
        (Some(id.as_str()), Some(60), Some(true)),
        "{health}"
    );
    assert_eq!((q["used_bytes"].as_i64(), q["quota_bytes"].as_i64()), (Some(6000), Some(10_000)));
    let list = browser.get("/targets").body;
    assert!(
        banner(&list) && list.contains("photos</a> is nearly at its quota: 5.9 KiB of 9.8 KiB quota (60 %)."),
        "{list}"
    );
    assert!(list.contains("class=\"quota near\""), "the row is marked too: {list}");
    let page = browser.get(&format!("/targets/{id}")).body;
    assert!(page.contains("id=\"target-quota\"") && page.contains("Nearly full"), "{page}");
    assert!(page.contains("warns at 50 %"), "{page}");

    // A raised quota: recovered, told once, and the dashboard is calm again.
    assert_eq!(s.patch(&format!("/api/target/{id}"), json!({"quota_bytes": 100_000})).0, 200);
    wait_count("the recovered event", &hooks, 2);
    assert_eq!(hook_events(&hooks)[1]["event"], "recovered");
    let list = browser.get("/targets").body;
    assert!(!banner(&list) && list.contains("(6 %)"), "{list}");
    assert_eq!(s.get("/api/health").1["quota_warnings"], json!([]));
    assert_eq!(hook_events(&hooks).len(), 2, "each change told once");
}
