//! The web UI over HTTP: login and sessions, redirects without a session, CSRF on every form,
//! form errors that keep the input, security headers, `bakch passwd`.

mod common;
#[path = "common/web.rs"]
mod web;

use std::os::unix::fs::PermissionsExt;

use common::TestServer;
use reqwest::blocking::multipart;
use serde_json::{Value, json};
use web::{Web, csrf_in, set_password};

const PASSWORD: &str = "correct horse battery";

/// A server with a password, a target with one backup, and a finished job.
fn server_with_data() -> (TestServer, String, String, i64) {
    let s = TestServer::start();
    let out = set_password(&s, PASSWORD);
    assert!(out.status.success(), "passwd failed: {}", String::from_utf8_lossy(&out.stderr));
    let target = s.create_target(json!({"name": "Photos", "tags": ["photos", "nightly"]}));
    let job = s.upload_ok(&target, &[("a.txt", b"hello")]);
    let (_, backups) = s.target(&target);
    let backup = backups[0]["id"].as_str().unwrap().to_string();
    (s, target, backup, job["id"].as_i64().unwrap())
}

#[test]
fn passwd_writes_a_private_hash_and_refuses_short_passwords() {
    let s = TestServer::start();
    let short = set_password(&s, "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    let path = s.data_path().join("webpassword.json");
    assert!(!path.exists());
    let ok = set_password(&s, PASSWORD);
    assert!(ok.status.success());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("$argon2id$"), "{text}");
    assert!(!text.contains(PASSWORD));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let key = s.data_path().join("session.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn every_page_redirects_to_login_without_a_session() {
    let (s, target, backup, job) = server_with_data();
    let w = Web::new(&s);
    let pages = [
        "/".to_string(),
        "/targets".into(),
        "/targets?name=x".into(),
        "/targets/new".into(),
        format!("/targets/{target}"),
        format!("/targets/{target}/edit"),
        format!("/targets/{target}/upload"),
        format!("/targets/{target}/delete?what=all"),
        format!("/backups/{backup}"),
        format!("/backups/{backup}/delete"),
        format!("/backups/{backup}/download"),
        format!("/backups/{backup}/file?path=a.txt"),
        format!("/targets/{target}/files?q=a"),
        format!("/targets/{target}/history?path=a.txt"),
        format!("/targets/{target}/compare?from={backup}&to={backup}"),
        format!("/backups/{backup}/select?path=a.txt"),
        format!("/targets/{target}/retention-preview?keep_daily=1"),
        "/recycle-bin".into(),
        "/recycle-bin/empty".into(),
        "/held".into(),
        "/jobs".into(),
        format!("/jobs/{job}"),
        "/stats".into(),
        "/log".into(),
        "/no/such/page".into(),
    ];
    for page in &pages {
        let p = w.get(page);
        assert_eq!(p.status, 303, "{page} without a session");
        assert!(p.location.starts_with("/login?next="), "{page} went to {}", p.location);
    }
    let csrf = w.csrf();
    let posts = [
        "/targets/new".to_string(),
        format!("/targets/{target}/edit"),
        format!("/targets/{target}/bulk"),
        format!("/targets/{target}/delete"),
        format!("/targets/{target}/keys"),
        format!("/backups/{backup}/recycle"),
        format!("/backups/{backup}/delete"),
        format!("/backups/{backup}/pin"),
        format!("/backups/{backup}/unpin"),
        format!("/backups/{backup}/select"),
        "/recycle-bin/empty".into(),
        format!("/held/{backup}/restore"),
        "/notify/test".into(),
        "/jobs/run/recycle_job".into(),
    ];
    for path in &posts {
        let p = w.post(path, &[("csrf", &csrf), ("confirm", "1"), ("what", "target"), ("backup", &backup)]);
        assert_eq!(p.status, 303, "POST {path} without a session");
        assert!(p.location.starts_with("/login"), "POST {path} went to {}", p.location);
    }
    // Nothing happened.
    let (_, backups) = s.target(&target);
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0]["is_recycled"], false);
    assert_eq!(backups[0]["pinned"], false);
    // The login page itself and the assets are reachable.
    assert_eq!(w.get("/login").status, 200);
    assert_eq!(w.get("/static/app.css").status, 200);
    // After login, `next` leads back.
    let login = w.post("/login", &[("csrf", &csrf), ("password", PASSWORD), ("next", "/stats")]);
    assert_eq!((login.status, login.location.as_str()), (303, "/stats"));
    assert_eq!(w.get("/stats").status, 200);
}

#[test]
fn every_form_rejects_a_missing_or_wrong_csrf_token() {
    let (s, target, backup, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/targets/new".into(), vec![("name", "x"), ("backup_type", "multi"), ("recycle_criteria", "none")]),
        (format!("/targets/{target}/edit"), vec![("name", "renamed"), ("recycle_criteria", "none")]),
        (format!("/targets/{target}/edit"), vec![("preview", "1"), ("recycle_criteria", "count")]),
        (format!("/targets/{target}/bulk"), vec![("action", "recycle"), ("backup", &backup), ("confirm", "1")]),
        (format!("/targets/{target}/delete"), vec![("what", "target"), ("confirm", "1")]),
        (format!("/targets/{target}/keys"), vec![("name", "laptop")]),
        (format!("/backups/{backup}/recycle"), vec![]),
        (format!("/backups/{backup}/restore"), vec![]),
        (format!("/backups/{backup}/delete"), vec![("confirm", "1")]),
        (format!("/backups/{backup}/pin"), vec![]),
        (format!("/backups/{backup}/unpin"), vec![]),
        (format!("/backups/{backup}/select"), vec![("path", "a.txt")]),
        ("/recycle-bin/empty".into(), vec![("confirm", "1")]),
        (format!("/held/{backup}/restore"), vec![]),
        ("/notify/test".into(), vec![]),
        ("/jobs/run/recycle_job".into(), vec![]),
        (format!("/uploads/{target}/cancel"), vec![]),
        ("/logout".into(), vec![]),
        ("/login".into(), vec![("password", PASSWORD)]),
    ];
    for (path, fields) in &forms {
        let missing = w.post(path, fields);
        assert_eq!(missing.status, 403, "POST {path} without a token: {}", missing.body);
        assert!(missing.body.contains("did not come from this bakch"), "{path}");
        let mut wrong = fields.clone();
        wrong.push(("csrf", "0123456789abcdef0123456789abcdef0123456789abcdef"));
        assert_eq!(w.post(path, &wrong).status, 403, "POST {path} with a wrong token");
    }
    // The upload form too (multipart).
    let form = multipart::Form::new().part("backup_file", multipart::Part::bytes(b"x".to_vec()).file_name("x.txt"));
    assert_eq!(w.post_multipart(&format!("/targets/{target}/upload"), form).status, 403);
    let form = multipart::Form::new()
        .text("csrf", "nope")
        .part("backup_file", multipart::Part::bytes(b"x".to_vec()).file_name("x.txt"));
    assert_eq!(w.post_multipart(&format!("/targets/{target}/upload"), form).status, 403);
    // Nothing changed, and the session still works.
    let (t, backups) = s.target(&target);
    assert_eq!(t["name"], "Photos");
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0]["is_recycled"], false);
    assert_eq!(backups[0]["pinned"], false);
    let (_, body) = s.get("/api/target");
    assert_eq!(body["targets"].as_array().unwrap().len(), 1);
    assert!(!s.data_path().join("keys.json").exists(), "a key was made without a token");
    assert_eq!(w.get("/targets").status, 200);
}

/// The target page lists the keys that may upload to it and makes a new upload key in one
/// click, shown once with the client configuration; the key uploads there and nowhere else.
#[test]
fn target_page_makes_an_upload_key_for_the_target() {
    let (mut s, target, _, _) = server_with_data();
    let other = s.create_target(json!({"name": "Other"}));
    s.new_api_key();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let page = w.get(&format!("/targets/{target}"));
    assert!(page.body.contains("apikey.json") && page.body.contains("New upload key for this target"));
    let csrf = csrf_in(&page.body).unwrap();
    let made = w.post(&format!("/targets/{target}/keys"), &[("csrf", &csrf), ("name", "laptop")]);
    assert_eq!(made.status, 200, "{}", made.body);
    let at = made.body.find("-a bakch-").expect("the client configuration");
    let key = made.body[at + 3..at + 73].to_string();
    assert!(made.body.contains(&format!("backupchan config new -H 127.0.0.1 -p {} -a {key}", s.port)));
    let page = w.get(&format!("/targets/{target}"));
    assert!(page.body.contains("laptop") && !page.body.contains(&key), "listed, never shown again");
    assert!(!w.get(&format!("/targets/{other}")).body.contains("laptop"), "listed on another target");
    let api = |path: &str| {
        let res = reqwest::blocking::Client::new().get(format!("{}{path}", s.url)).bearer_auth(&key).send().unwrap();
        res.status().as_u16()
    };
    assert_eq!(api(&format!("/api/target/{target}")), 200);
    assert_eq!(api(&format!("/api/target/{other}")), 403);
    assert_eq!(api("/api/stats"), 403);
}

#[test]
fn form_errors_keep_what_the_user_typed() {
    let (s, target, _, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let csrf = w.csrf();
    let location = s.location("kept").to_string_lossy().into_owned();
    let page = w.post(
        "/targets/new",
        &[
            ("csrf", &csrf),
            ("name", "My <new> target"),
            ("backup_type", "single"),
            ("recycle_criteria", "count"),
            ("recycle_value", "7"),
            ("recycle_action", "delete"),
            ("location", &location),
            ("name_template", "no-placeholder"),
            ("alias", "my-alias"),
            ("tags", "one two"),
        ],
    );
    assert_eq!(page.status, 400);
    assert!(page.body.contains("Name template must contain $I"), "{}", page.body);
    assert!(page.body.contains("id=\"e-template\""), "the error sits by its field");
    assert!(
        page.body.contains("value=\"My &#60;new&#62; target\"")
            || page.body.contains("value=\"My &lt;new&gt; target\"")
    );
    assert!(page.body.contains(&format!("value=\"{location}\"")));
    assert!(page.body.contains("value=\"no-placeholder\""));
    assert!(page.body.contains("value=\"my-alias\""));
    assert!(page.body.contains("value=\"one two\""));
    assert!(page.body.contains("value=\"7\""));
    assert!(page.body.contains("value=\"single\" selected"));
    assert!(page.body.contains("value=\"count\" selected"));
    assert!(page.body.contains("value=\"delete\" selected"));
    // A wrong number is named by its field; a taken template is a conflict.
    let page = w.post(
        "/targets/new",
        &[
            ("csrf", &csrf),
            ("name", "n"),
            ("backup_type", "multi"),
            ("recycle_criteria", "age"),
            ("recycle_value", "ten"),
            ("recycle_action", "recycle"),
            ("location", &location),
            ("name_template", "x-$I"),
        ],
    );
    assert_eq!(page.status, 400);
    assert!(page.body.contains("id=\"e-value\""), "{}", page.body);
    let (t, _) = s.target(&target);
    let taken = t["name_template"].as_str().unwrap();
    let page = w.post(
        &format!("/targets/{target}/edit"),
        &[
            ("csrf", &csrf),
            ("name", "Still typed"),
            ("recycle_criteria", "none"),
            ("location", t["location"].as_str().unwrap()),
            ("name_template", taken),
        ],
    );
    assert_eq!(page.status, 303, "saving the same template is fine: {}", page.body);
    // A cleared name is an error on its field, not "keep the old one".
    let page = w.post(
        &format!("/targets/{target}/edit"),
        &[
            ("csrf", &csrf),
            ("name", ""),
            ("recycle_criteria", "none"),
            ("location", t["location"].as_str().unwrap()),
            ("name_template", taken),
        ],
    );
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("aria-invalid=\"true\"") && page.body.contains("name"), "{}", page.body);
    assert_eq!(s.target(&target).0["name"], "Still typed", "nothing changed");
    let other = s.create_target(json!({}));
    let page = w.post(
        &format!("/targets/{other}/edit"),
        &[
            ("csrf", &csrf),
            ("name", "Still typed"),
            ("recycle_criteria", "none"),
            ("location", &location),
            ("name_template", taken),
        ],
    );
    assert_eq!(page.status, 409);
    assert!(page.body.contains("already used"), "{}", page.body);
    assert!(page.body.contains("id=\"e-template\""), "a taken template is shown by its field");
    assert!(page.body.contains("value=\"Still typed\""));
    // And a valid form creates the target, with the same rules as the API.
    let page = w.post(
        "/targets/new",
        &[
            ("csrf", &csrf),
            ("name", "Made here"),
            ("backup_type", "multi"),
            ("recycle_criteria", "none"),
            ("recycle_value", "junk ignored"),
            ("location", &location),
            ("name_template", "made-$D"),
            ("tags", "a, b"),
        ],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(page.location.starts_with("/targets/") && page.location.ends_with("?done=created"));
    let (_, body) = s.get("/api/target/search?name=Made");
    let made = &body["targets"][0];
    assert_eq!(made["tags"], json!(["a", "b"]));
    assert_eq!(made["recycle_criteria"], "none");
}

#[test]
fn login_refuses_a_wrong_password_slows_down_and_logs() {
    let (s, _, _, _) = server_with_data();
    let w = Web::new(&s);
    let csrf = w.csrf();
    let wrong = w.post("/login", &[("csrf", &csrf), ("password", "wrong password"), ("next", "/targets")]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong password"));
    assert_eq!(w.get("/targets").status, 303, "still not logged in");
    for _ in 0..2 {
        w.post("/login", &[("csrf", &csrf), ("password", "wrong again")]);
    }
    let locked = w.post("/login", &[("csrf", &csrf), ("password", PASSWORD)]);
    assert_eq!(locked.status, 429, "the third wrong password locks for a second");
    assert!(locked.body.contains("Too many wrong passwords"));
    common::poll("the lock to end", std::time::Duration::from_secs(10), || {
        let p = w.post("/login", &[("csrf", &csrf), ("password", PASSWORD), ("next", "/targets")]);
        (p.status == 303).then_some(())
    });
    assert_eq!(w.get("/targets").status, 200);
    // Log out ends the session; the old cookie no longer opens pages.
    let csrf = csrf_in(&w.get("/targets").body).unwrap();
    assert_eq!(w.post("/logout", &[("csrf", &csrf)]).status, 303);
    assert_eq!(w.get("/targets").status, 303);
    common::poll("log lines", std::time::Duration::from_secs(10), || {
        let (_, body) = s.get("/api/log?tail=200");
        let log = body["log"].as_str().unwrap_or_default().to_string();
        // All three: the file writer runs on its own thread, so a read can land between lines.
        (log.contains("web login from 127.0.0.1 succeeded")
            && log.contains("web login from 127.0.0.1 failed")
            && log.contains("web logout"))
        .then_some(())
    });
}

#[test]
fn a_new_password_ends_old_sessions() {
    let (s, _, _, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    assert_eq!(w.get("/targets").status, 200);
    assert!(set_password(&s, "another long password").status.success());
    assert_eq!(w.get("/targets").status, 303);
    w.login("another long password");
    assert_eq!(w.get("/targets").status, 200);
}

#[test]
fn without_a_password_loopback_pages_are_open_with_a_banner() {
    let s = TestServer::start();
    let w = Web::new(&s);
    let page = w.get("/targets");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Neither a web password nor an API key"), "{}", page.body);
    // The session cookie is private to pages.
    let cookie = page.headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let mut s = s;
    s.new_api_key();
    let page = w.get("/targets");
    assert!(page.body.contains("No web password is set"));
    assert!(!page.body.contains("Neither a web password"));
    // With a password, the banner goes.
    assert!(set_password(&s, PASSWORD).status.success());
    w.login(PASSWORD);
    assert!(!w.get("/targets").body.contains("No web password"));
}

#[test]
fn pages_carry_security_headers_and_the_api_keeps_its_own_auth() {
    let (mut s, _, _, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let page = w.get("/targets");
    let h = |n: &str| page.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(h("content-security-policy").contains("script-src 'self'"));
    assert!(!h("content-security-policy").contains("unsafe-inline"));
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert!(!h("referrer-policy").is_empty());
    assert!(!page.body.contains("<script>"), "no inline script");
    // The web session is no API key.
    s.new_api_key();
    let api = w.client.get(format!("{}/api/stats", s.url)).send().unwrap();
    assert_eq!(api.status().as_u16(), 401);
}

#[test]
fn targets_list_searches_sorts_and_totals() {
    let (s, target, _, _) = server_with_data();
    s.create_target(json!({"name": "Zeta documents", "tags": ["docs"], "backup_type": "single"}));
    let w = Web::new(&s);
    w.login(PASSWORD);
    let page = w.get("/targets");
    assert!(page.body.contains("Photos") && page.body.contains("Zeta documents"));
    assert!(page.body.contains("2 targets"));
    assert!(page.body.contains("just now"), "relative time of the last backup");
    assert!(page.body.find("Photos").unwrap() < page.body.find("Zeta documents").unwrap());
    let page = w.get("/targets?sort=name&dir=desc");
    assert!(page.body.find("Photos").unwrap() > page.body.find("Zeta documents").unwrap());
    let page = w.get("/targets?tags=photos+nightly");
    assert!(page.body.contains("Photos") && !page.body.contains("Zeta documents"));
    let page = w.get("/targets?type=single");
    assert!(!page.body.contains(&format!("/targets/{target}\"")) && page.body.contains("Zeta documents"));
    let page = w.get("/targets?deduplicate=on");
    assert!(page.body.contains("No target matches"));
    // The target page shows the backup with its hash and size.
    let page = w.get(&format!("/targets/{target}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("5 B"), "{}", page.body);
    let (_, backups) = s.target(&target);
    let hash = backups[0]["hash"].as_str().unwrap();
    assert!(page.body.contains(hash));
}

#[test]
fn recycle_restore_and_delete_from_pages() {
    let (s, target, backup, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let csrf = w.csrf();
    let p = w.post(&format!("/backups/{backup}/recycle"), &[("csrf", &csrf)]);
    assert_eq!(p.status, 303);
    assert_eq!(s.target(&target).1[0]["is_recycled"], true);
    assert!(w.get("/recycle-bin").body.contains(&backup));
    let p = w.post(&format!("/backups/{backup}/restore"), &[("csrf", &csrf), ("back", "/recycle-bin")]);
    assert_eq!((p.status, p.location.as_str()), (303, "/recycle-bin?done=restored"));
    assert_eq!(s.target(&target).1[0]["is_recycled"], false);
    // Bulk delete asks first.
    let ask = w.post(&format!("/targets/{target}/bulk"), &[("csrf", &csrf), ("action", "delete"), ("backup", &backup)]);
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("Delete 1 backup"));
    assert_eq!(s.target(&target).1.len(), 1, "nothing deleted before the confirmation");
    let done = w.post(
        &format!("/targets/{target}/bulk"),
        &[("csrf", &csrf), ("action", "delete"), ("backup", &backup), ("confirm", "1"), ("delete_files", "1")],
    );
    assert_eq!(done.status, 303);
    assert!(s.target(&target).1.is_empty());
    // The deletion is held: the held page says who deleted it, and brings it back.
    let held = w.get("/held");
    assert_eq!(held.status, 200);
    assert!(held.body.contains(&backup) && held.body.contains("web (session "), "{}", held.body);
    let p = w.post(&format!("/held/{backup}/restore"), &[("csrf", &csrf)]);
    assert_eq!((p.status, p.location), (303, format!("/backups/{backup}?done=restored")));
    assert_eq!(s.target(&target).1[0]["id"], backup.as_str());
    assert!(!w.get("/held").body.contains(&backup));
    assert!(w.get("/stats").body.contains("held-tile"));
    // Deleting the target, files kept.
    let p = w.post(&format!("/targets/{target}/delete"), &[("csrf", &csrf), ("what", "target"), ("confirm", "1")]);
    assert_eq!((p.status, p.location.as_str()), (303, "/targets?done=target-deleted"));
    let (status, _) = s.get(&format!("/api/target/{target}"));
    assert_eq!(status, 404);
}

/// Values of `next` and `back` that must not be followed: other hosts as browsers read them
/// (`//`, `/\`, a tab or line break browsers drop), control characters that would break the
/// `Location` header, and things that are no path at all.
const HOSTILE_TARGETS: &[&str] = &[
    "//evil.example/",
    "/\\evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "/\r\nSet-Cookie: x=1",
    "/\0",
    "/a b",
    "/\u{85}x",
    "/caf\u{e9}",
    "\\\\evil.example",
    "https://evil.example/",
    "evil.example",
];

/// Percent-encodes every byte, so any value travels in a query string.
fn query_value(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// `next` (login) and `back` (backup forms) lead only to paths on this site made of safe
/// characters; anything else falls back, and no value makes a page fail or act half-way.
#[test]
fn redirect_targets_are_same_origin_safe_paths() {
    // No password on loopback: the login page sends the visitor straight to `next`.
    let open = TestServer::start();
    let w = Web::new(&open);
    assert_eq!(w.get("/login?next=%2Fstats%3Fa%3D1").location, "/stats?a=1");
    for hostile in HOSTILE_TARGETS {
        let p = w.get(&format!("/login?next={}", query_value(hostile)));
        assert_eq!((p.status, p.location.as_str()), (303, "/"), "GET /login?next={hostile:?}");
    }

    let (s, target, backup, _) = server_with_data();
    for hostile in HOSTILE_TARGETS {
        // A new visitor: the login form carries only a safe `next`, and the login lands there;
        // once logged in, the login page itself redirects the same way.
        let v = Web::new(&s);
        let next = format!("/login?next={}", query_value(hostile));
        let form = v.get(&next);
        assert_eq!(form.status, 200, "{hostile:?}");
        assert!(form.body.contains("name=\"next\" value=\"/\""), "{hostile:?}: {}", form.body);
        let csrf = csrf_in(&form.body).unwrap();
        let login = v.post("/login", &[("csrf", &csrf), ("password", PASSWORD), ("next", hostile)]);
        assert_eq!((login.status, login.location.as_str()), (303, "/"), "POST /login next={hostile:?}");
        let again = v.get(&next);
        assert_eq!((again.status, again.location.as_str()), (303, "/"), "logged in, GET {next}");
    }
    let w = Web::new(&s);
    w.login(PASSWORD);
    let csrf = w.csrf();
    let home = format!("/targets/{target}");
    for hostile in HOSTILE_TARGETS {
        for (action, recycled) in [("recycle", true), ("restore", false)] {
            let p = w.post(&format!("/backups/{backup}/{action}"), &[("csrf", &csrf), ("back", hostile)]);
            let done = if recycled { "recycled" } else { "restored" };
            assert_eq!(p.status, 303, "{action} back={hostile:?}: {}", p.body);
            assert_eq!(p.location, format!("{home}?done={done}"), "{action} back={hostile:?}");
            assert_eq!(s.target(&target).1[0]["is_recycled"], recycled, "{action} back={hostile:?}");
        }
        let ask = w.get(&format!("/backups/{backup}/delete?back={}", query_value(hostile)));
        assert_eq!(ask.status, 200, "{hostile:?}");
        assert!(ask.body.contains(&format!("name=\"back\" value=\"{home}\"")), "{hostile:?}: {}", ask.body);
    }
    let p = w.post(
        &format!("/backups/{backup}/delete"),
        &[("csrf", &csrf), ("confirm", "1"), ("back", "/\n/evil.example/")],
    );
    assert_eq!((p.status, p.location.as_str()), (303, format!("{home}?done=deleted").as_str()));
    assert!(s.target(&target).1.is_empty());
}

/// Uploads through the web form (multipart, token first); returns the job page path.
fn web_upload(w: &Web, target: &str, files: &[(&str, Vec<u8>)]) -> String {
    let mut form = multipart::Form::new().text("csrf", w.csrf()).text("manual", "1");
    for (name, bytes) in files {
        form = form.part("backup_file", multipart::Part::bytes(bytes.clone()).file_name(name.to_string()));
    }
    let p = w.post_multipart(&format!("/targets/{target}/upload"), form);
    assert_eq!(p.status, 303, "upload refused: {}", p.body);
    assert!(p.location.starts_with("/jobs/"), "{}", p.location);
    p.location
}

/// Polls a job page until the job ended; returns the page.
fn wait_job_page(w: &Web, path: &str) -> String {
    common::poll("the job to end", std::time::Duration::from_secs(60), || {
        let body = w.get(path).body;
        (body.contains(">FINISHED<") || body.contains(">ERROR<")).then_some(body)
    })
}

#[test]
fn uploads_from_the_form_keep_folders_and_failures_say_why() {
    let (s, _, _, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let target = s.create_target(json!({"name": "Tree"}));
    // A folder: relative paths are kept.
    let job = web_upload(
        &w,
        &target,
        &[("dir/a.txt", b"a".to_vec()), ("dir/sub/b.txt", b"bb".to_vec()), ("c.txt", b"c".to_vec())],
    );
    let page = wait_job_page(&w, &job);
    assert!(page.contains("FINISHED"), "{page}");
    assert!(!page.contains("http-equiv=\"refresh\""), "a finished job's page stops refreshing");
    let (_, backups) = s.target(&target);
    let backup = backups[0]["id"].as_str().unwrap();
    let tree = w.get(&format!("/backups/{backup}"));
    assert!(tree.body.contains(" dir/</summary>") && tree.body.contains(" sub/</summary>"), "{}", tree.body);
    let file = w.get(&format!("/backups/{backup}/file?path=dir%2Fsub%2Fb.txt"));
    assert_eq!(file.status, 200);
    assert_eq!(file.body, "bb");
    assert_eq!(w.get(&format!("/backups/{backup}/file?path=nope")).status, 404);
    // A hostile archive: the job ends in ERROR and its page says why.
    let evil = common::raw_tar(&[("../escape.txt", b"x", tar::EntryType::Regular, "")]);
    let job = web_upload(&w, &target, &[("evil.tar", evil)]);
    let page = wait_job_page(&w, &job);
    assert!(page.contains("The job failed:"), "{page}");
    assert!(page.contains("ERROR"));
    // A single-file target refuses several files, with the service's message.
    let single = s.create_target(json!({"name": "One", "backup_type": "single"}));
    let form = multipart::Form::new()
        .text("csrf", w.csrf())
        .part("backup_file", multipart::Part::bytes(b"1".to_vec()).file_name("1.txt"))
        .part("backup_file", multipart::Part::bytes(b"2".to_vec()).file_name("2.txt"));
    let p = w.post_multipart(&format!("/targets/{single}/upload"), form);
    assert_eq!(p.status, 400);
    assert!(p.body.contains("takes single files"), "{}", p.body);
}

#[test]
fn jobs_stats_log_and_recycle_bin_pages() {
    let (s, target, backup, job) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let jobs = w.get("/jobs");
    assert!(jobs.body.contains("recycle_job") && jobs.body.contains(&format!("/jobs/{job}")));
    let ran = w.post("/jobs/run/recycle_job", &[("csrf", &w.csrf())]);
    assert_eq!((ran.status, ran.location.as_str()), (303, "/jobs?done=ran&job=recycle_job"));
    assert!(w.get(&ran.location).body.contains("recycle_job ran"));
    assert_eq!(w.post("/jobs/run/no_such_job", &[("csrf", &w.csrf())]).status, 404);
    let stats = w.get("/stats");
    assert!(stats.body.contains("<svg") && stats.body.contains("Photos"), "{}", stats.body);
    assert!(stats.body.contains("saved by deduplication"));
    let log = w.get("/log?level=WARN&lines=100");
    assert_eq!(log.status, 200);
    assert!(!log.body.contains("lvl-info"), "only warnings and errors");
    assert!(w.get("/log").body.contains("lvl-info"));
    // Recycle bin: list, empty behind a confirmation.
    s.patch(&format!("/api/backup/{backup}"), json!({"is_recycled": true}));
    assert!(w.get("/recycle-bin").body.contains(&backup));
    let ask = w.get("/recycle-bin/empty");
    assert!(ask.body.contains("Empty the recycle bin?"));
    let done = w.post("/recycle-bin/empty", &[("csrf", &w.csrf()), ("confirm", "1"), ("delete_files", "1")]);
    assert_eq!((done.status, done.location.as_str()), (303, "/recycle-bin?done=emptied&n=1"));
    assert!(s.target(&target).1.is_empty());
    assert!(w.get("/recycle-bin").body.contains("The recycle bin is empty."));
}

#[test]
fn loopback_bypass_lets_local_clients_in_without_the_password() {
    let s = TestServer::start_with_env(&[("BAKCH_WEB_LOOPBACK_BYPASS", "true")]);
    assert!(set_password(&s, PASSWORD).status.success());
    let w = Web::new(&s);
    let page = w.get("/targets");
    assert_eq!(page.status, 200, "a loopback client gets in");
    assert!(!page.body.contains("No web password"));
    // CSRF still applies.
    assert_eq!(w.post("/targets/new", &[("name", "x")]).status, 403);
}

#[test]
fn without_a_password_beyond_loopback_pages_explain_how_to_set_one() {
    use std::process::{Command, Stdio};
    let data = tempfile::tempdir().unwrap();
    let key = Command::new(common::BIN).args(["newapikey", "--data-dir"]).arg(data.path()).output().unwrap();
    assert!(key.status.success());
    let port = common::free_port();
    let mut child = Command::new(common::BIN)
        .args(["serve", "--bind", &format!("0.0.0.0:{port}"), "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let page = common::poll("bakch to listen", std::time::Duration::from_secs(30), || {
        client.get(format!("{url}/targets")).send().ok()
    });
    let status = page.status().as_u16();
    let body = page.text().unwrap();
    let login = client.get(format!("{url}/login")).send().unwrap().status().as_u16();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 403);
    assert!(body.contains("bakch passwd"), "{body}");
    assert_eq!(login, 403, "no login form without a password");
}

/// The number of times `needle` occurs in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// A refused form says what is wrong once, beside the field, in the form's own words, and the
/// retention fields come back with values even when the browser did not send them.
#[test]
fn form_errors_speak_the_forms_words_once_and_keep_the_retention_values() {
    let (s, _, _, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let csrf = w.csrf();
    let location = s.location("words").to_string_lossy().into_owned();
    let page = w.post(
        "/targets/new",
        &[
            ("csrf", &csrf),
            ("name", "Words"),
            ("backup_type", "multi"),
            ("recycle_criteria", "count"),
            ("recycle_value", "ten"),
            ("recycle_action", "recycle"),
            ("min_backups", "2"),
            ("location", &location),
            ("name_template", "w-$I"),
        ],
    );
    assert_eq!(page.status, 400);
    assert_eq!(count(&page.body, "N must be a whole number ≥ 0."), 1, "once: {}", page.body);
    assert!(!page.body.contains("Parameter '"), "no API wording: {}", page.body);
    assert!(!page.body.contains("id=\"form-error\""), "not repeated above the form");
    assert!(page.body.contains("class=\"field invalid\"") && page.body.contains("aria-invalid=\"true\""));
    assert!(page.body.contains("value=\"ten\"") && page.body.contains("value=\"2\""));
    // A missing name, by the name field.
    let page = w.post(
        "/targets/new",
        &[
            ("csrf", &csrf),
            ("backup_type", "multi"),
            ("recycle_criteria", "none"),
            ("location", &location),
            ("name_template", "w-$I"),
        ],
    );
    assert_eq!(page.status, 400);
    assert!(page.body.contains("id=\"e-name\"") && page.body.contains("cannot be blank"), "{}", page.body);
    // Retention fields the browser left out (criteria none) come back with the defaults, not blank.
    assert!(page.body.contains("id=\"f-value\" name=\"recycle_value\" value=\"10\""), "{}", page.body);
    assert!(page.body.contains("id=\"f-min\" name=\"min_backups\" value=\"0\""));
    // On an edit, with the target's own values.
    let t = s.create_target(json!({"name": "Kept", "recycle_criteria": "count", "recycle_value": 7, "min_backups": 3}));
    let page = w.post(
        &format!("/targets/{t}/edit"),
        &[("csrf", &csrf), ("name", "Kept"), ("recycle_criteria", "none"), ("name_template", "no-placeholder")],
    );
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("id=\"f-value\" name=\"recycle_value\" value=\"7\""), "{}", page.body);
    assert!(page.body.contains("id=\"f-min\" name=\"min_backups\" value=\"3\""));
    assert_eq!(s.target(&t).0["recycle_value"], 7, "nothing changed");
    // An operating-system error code never reaches the page.
    let blocker = s.location("blocker");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"a file").unwrap();
    let under_file = blocker.join("sub").to_string_lossy().into_owned();
    let page = w.post(
        "/targets/new",
        &[
            ("csrf", &csrf),
            ("name", "Under a file"),
            ("backup_type", "multi"),
            ("recycle_criteria", "none"),
            ("location", &under_file),
            ("name_template", "u-$I"),
        ],
    );
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("id=\"e-location\""), "{}", page.body);
    assert!(!page.body.contains("os error"), "{}", page.body);
    // The login throttle says "1 second", not "1 seconds".
    let v = Web::new(&s);
    let vcsrf = v.csrf();
    for _ in 0..3 {
        v.post("/login", &[("csrf", &vcsrf), ("password", "wrong password")]);
    }
    let locked = v.post("/login", &[("csrf", &vcsrf), ("password", "wrong password")]);
    assert_eq!(locked.status, 429);
    assert!(locked.body.contains("Wait ") && !locked.body.contains(" 1 seconds"), "{}", locked.body);
}

/// Creating a second target of a name asks first (nothing is created until confirmed), and
/// the list then tells the two apart by alias or id.
#[test]
fn a_second_target_of_a_name_is_asked_for_and_told_apart() {
    let (s, target, _, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let csrf = w.csrf();
    let location = s.location("second").to_string_lossy().into_owned();
    let fields = |ok: bool| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("name", " photos ".to_string()),
            ("backup_type", "multi".into()),
            ("recycle_criteria", "none".into()),
            ("location", location.clone()),
            ("name_template", "second-$I".into()),
            ("alias", "phone-photos".into()),
        ];
        if ok {
            f.push(("same_name_ok", "1".into()));
        }
        f
    };
    let as_refs = |f: &[(&'static str, String)]| f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let first = as_refs(&fields(false));
    let first: Vec<(&str, &str)> = first.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ask = w.post("/targets/new", &first);
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("already carry this name") && ask.body.contains(&target[..8]), "{}", ask.body);
    assert!(ask.body.contains("value=\"phone-photos\""), "what was typed is kept");
    let (_, all) = s.get("/api/target");
    assert_eq!(all["targets"].as_array().unwrap().len(), 1, "nothing created before the confirmation");
    let second = as_refs(&fields(true));
    let second: Vec<(&str, &str)> = second.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = w.post("/targets/new", &second);
    assert_eq!(made.status, 303, "{}", made.body);
    let list = w.get("/targets");
    assert!(list.body.contains("phone-photos"), "the alias tells the new one apart");
    assert!(list.body.contains(&format!("id {}", &target[..8])), "the id tells the first apart: {}", list.body);
}

/// The target page shows its id and alias, with `backupchan` commands ready to copy.
#[test]
fn target_page_gives_id_alias_and_cli_commands() {
    let (s, target, _, _) = server_with_data();
    let single = s.create_target(json!({"name": "Dump", "backup_type": "single", "alias": "dump"}));
    let w = Web::new(&s);
    w.login(PASSWORD);
    let page = w.get(&format!("/targets/{target}"));
    assert!(page.body.contains(&format!("id=\"target-id\">{target}<")), "{}", page.body);
    assert!(page.body.contains(&format!("backupchan backup upload {target} /path/to/folder")));
    assert!(page.body.contains(&format!("backupchan backup upload -s {target} /path/to/folder")));
    assert!(page.body.contains(&format!("backupchan target view {target}")));
    let page = w.get(&format!("/targets/{single}"));
    assert!(page.body.contains("id=\"target-alias\">dump<"), "{}", page.body);
    assert!(page.body.contains(&format!("backupchan backup upload {single} /path/to/file")));
    assert!(!page.body.contains("upload -s"), "no sequential upload for a single-file target");
    // On a phone the table header (with its sort links) is hidden: a sort form stands in.
    assert!(page.body.contains("id=\"backups-sort\""));
    assert!(w.get("/targets").body.contains("id=\"targets-sort\""));
    assert!(w.get("/targets?sort=size&dir=desc").body.contains("<option value=\"size\" selected>"));
}

/// Upload jobs say target, files, size and how long they took; a failed one whose data is kept
/// has a Retry button that queues it again (audited), and it then finishes.
#[test]
fn upload_jobs_say_what_they_are_and_a_failed_one_retries_from_the_page() {
    let (s, target, _, job) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let jobs = w.get("/jobs");
    let row_at = jobs.body.find(&format!("id=\"upload-job-{job}\"")).expect("the job's row");
    let row = &jobs.body[row_at..row_at + jobs.body[row_at..].find("</tr>").unwrap()];
    assert!(row.contains("Photos") && row.contains("a.txt") && row.contains("5 B"), "{row}");
    assert!(row.contains(" s<") || row.contains(" s\n") || row.contains(" s</td>"), "a duration: {row}");
    let page = w.get(&format!("/jobs/{job}"));
    assert!(page.body.contains("id=\"job-files\">a.txt<") && !page.body.contains("id=\"retry-job\""));

    // A file where the folder should be fails the job, keeping the data.
    let (t, _) = s.target(&target);
    let loc = std::path::PathBuf::from(t["location"].as_str().unwrap());
    let moved = loc.with_extension("aside");
    std::fs::rename(&loc, &moved).unwrap();
    std::fs::write(&loc, b"in the way").unwrap();
    let (status, reply) = s.upload(&target, &[("b.txt", b"second")], "1");
    assert_eq!(status, 200, "{reply}");
    let failed = reply["job_id"].as_i64().unwrap();
    assert_eq!(s.wait_job(failed)["status"], "ERROR");
    let page = w.get(&format!("/jobs/{failed}"));
    assert!(page.body.contains("id=\"retry-job\""), "{}", page.body);
    assert!(!page.body.contains("POST /api/jobs"), "the page offers its button, not the API: {}", page.body);
    assert!(w.get("/jobs").body.contains(&format!("action=\"/jobs/{failed}/retry\"")));
    // Without a token nothing happens; with one, fixed, it finishes.
    assert_eq!(w.post(&format!("/jobs/{failed}/retry"), &[]).status, 403);
    std::fs::remove_file(&loc).unwrap();
    std::fs::rename(&moved, &loc).unwrap();
    let p = w.post(&format!("/jobs/{failed}/retry"), &[("csrf", &w.csrf())]);
    assert_eq!((p.status, p.location.as_str()), (303, format!("/jobs/{failed}?done=retried").as_str()));
    assert_eq!(s.wait_job(failed)["status"], "FINISHED");
    assert_eq!(s.target(&target).1.len(), 2);
    assert_eq!(w.post(&format!("/jobs/{failed}/retry"), &[("csrf", &w.csrf())]).status, 409, "only a failed job");
    let audit = w.get("/audit?action=job_retried");
    assert!(audit.body.contains("job_retried"), "{}", audit.body);
}

/// A finished upload's job keeps its first three files and the list's totals, not the whole
/// list (the backup holds it): the jobs page still says how many files and bytes. Migration
/// 0018 shortens the jobs an older bakch left whole.
#[test]
fn a_finished_upload_job_keeps_three_names_and_its_totals() {
    let (mut s, target, _, _) = server_with_data();
    let files: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("f{i}.txt"), vec![b'x'; 100 + i])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let job = s.upload_ok(&target, &refs)["id"].as_i64().unwrap();
    let db_path = s.data_path().join("bakch.sqlite3");
    let payload = |id: i64| -> Value {
        let db = rusqlite::Connection::open(&db_path).unwrap();
        let text: String = db.query_row("SELECT payload FROM jobs WHERE id = ?1", [id], |r| r.get(0)).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let kept = payload(job);
    assert_eq!(kept["source"]["files"].as_array().unwrap().len(), 3, "{kept}");
    assert_eq!(kept["source"]["totals"], json!({"count": 5, "bytes": 510}), "{kept}");
    let w = Web::new(&s);
    w.login(PASSWORD);
    let jobs = w.get("/jobs");
    let row_at = jobs.body.find(&format!("id=\"upload-job-{job}\"")).expect("the job's row");
    let row = &jobs.body[row_at..row_at + jobs.body[row_at..].find("</tr>").unwrap()];
    assert!(row.contains("f0.txt, f1.txt, f2.txt and 2 more") && row.contains("510 B"), "{row}");
    // The backup itself has all five.
    assert_eq!(s.target(&target).1[0]["filesize"], 510);

    // As an older bakch left it: the whole list, no totals, schema 14 (0018 is the 15th
    // migration). Restarted, it is shortened.
    s.kill();
    let whole = json!({"target_id": target, "backup_id": kept["backup_id"], "created_at": kept["created_at"],
        "manual": true, "source": {"kind": "files", "files": (0..5).map(|i| json!({"path": format!("f{i}.txt"),
        "blob": "00".repeat(32), "size": 100 + i, "mode": 420})).collect::<Vec<_>>()}});
    let db = rusqlite::Connection::open(&db_path).unwrap();
    db.execute("UPDATE jobs SET payload = ?2 WHERE id = ?1", rusqlite::params![job, whole.to_string()]).unwrap();
    db.pragma_update(None, "user_version", 14).unwrap();
    drop(db);
    s.restart();
    let migrated = payload(job);
    assert_eq!(migrated["source"]["files"], json!(whole["source"]["files"].as_array().unwrap()[..3]), "{migrated}");
    assert_eq!(migrated["source"]["totals"], json!({"count": 5, "bytes": 510}), "{migrated}");
}

/// The integrity check's finding names the backup and the damaged file, in red, on the jobs
/// page and the backup's page.
#[test]
fn integrity_findings_name_the_backup_and_file() {
    let (s, target, backup, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let (t, _) = s.target(&target);
    // Remove the file from the backup's folder (bakch's own file; the check must notice).
    let dir = std::path::PathBuf::from(t["location"].as_str().unwrap());
    let placed: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(placed.len(), 1, "{placed:?}");
    let file = placed[0].join("a.txt");
    std::fs::rename(&file, dir.join("a.txt.aside")).unwrap();
    let ran = w.post("/jobs/run/integrity_check_job", &[("csrf", &w.csrf())]);
    assert_eq!(ran.status, 303);
    let jobs = w.get("/jobs");
    let at = jobs.body.find("id=\"integrity-findings\"").expect("a findings section");
    let section = &jobs.body[at..at + jobs.body[at..].find("</section>").unwrap()];
    assert!(section.contains(&format!("/backups/{backup}")) && section.contains("a.txt"), "{section}");
    assert!(jobs.body.contains("outcome failed"), "the check's outcome in red");
    let page = w.get(&format!("/backups/{backup}"));
    assert!(
        page.body.contains("id=\"integrity-findings\"") && page.body.contains("&#39;a.txt&#39;")
            || page.body.contains("'a.txt'"),
        "{}",
        page.body
    );
    // Healed: the findings go.
    std::fs::rename(dir.join("a.txt.aside"), &file).unwrap();
    w.post("/jobs/run/integrity_check_job", &[("csrf", &w.csrf())]);
    assert!(!w.get("/jobs").body.contains("id=\"integrity-findings\""));
    assert!(!w.get(&format!("/backups/{backup}")).body.contains("id=\"integrity-findings\""));
}

/// The recycle bin says when each backup was recycled and that retention never purges it; the
/// time survives `bakch rebuild-db` through the manifest. The log page shows the newest first.
#[test]
fn recycle_bin_says_when_and_the_log_is_newest_first() {
    let (mut s, target, backup, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let p = w.post(&format!("/backups/{backup}/recycle"), &[("csrf", &w.csrf())]);
    assert_eq!(p.status, 303);
    let bin = w.get("/recycle-bin");
    let row_at = bin.body.find("class=\"recycled-at\"").expect("a recycled column");
    assert!(bin.body[row_at..].starts_with("class=\"recycled-at\"><span title=\""), "{}", &bin.body[row_at..]);
    assert!(bin.body.contains("just now") && bin.body.contains("never by retention"), "{}", bin.body);
    let manifest = s.data_path().join("manifests").join(&target).join(format!("{backup}.json"));
    let text = common::poll("the manifest to say when", std::time::Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&manifest).ok()?;
        text.contains("\"recycled_at\"").then_some(text)
    });
    assert!(text.contains("\"recycled\": true"), "{text}");
    // Rebuilt from manifests, the time is still there.
    s.kill();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(s.data_path().join(format!("bakch.sqlite3{suffix}")));
    }
    let out =
        std::process::Command::new(common::BIN).args(["rebuild-db", "--data-dir"]).arg(s.data_path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.restart();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let page = w.get(&format!("/backups/{backup}"));
    assert!(
        page.body.contains("retention never empties the recycle bin") && page.body.contains("just now"),
        "{}",
        page.body
    );
    // Restored: no recycling time left behind.
    w.post(&format!("/backups/{backup}/restore"), &[("csrf", &w.csrf())]);
    assert!(!w.get(&format!("/backups/{backup}")).body.contains("Recycled</dt>"));
    // The log: newest line first.
    let log = w.get("/log");
    let first = log.body.find("web login from 127.0.0.1 succeeded").expect("the newest login");
    let older = log.body.find("database migrated").unwrap_or(usize::MAX);
    assert!(older == usize::MAX || first < older, "newest first");
}

/// The landing page answers "are my backups OK?" first: a banner, a state badge and a history
/// strip per target, the failed uploads counted in the menu, a failing notification destination
/// named; the form sets the expected interval; the jobs page sends a test notification.
#[test]
fn the_dashboard_says_whether_backups_are_healthy() {
    // A destination nobody listens on: its deliveries fail, and the pages must say so.
    let port = common::free_port();
    let config = format!("[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n");
    let s = TestServer::start_with_config(&config);
    assert!(set_password(&s, PASSWORD).status.success());
    let w = Web::new(&s);
    w.login(PASSWORD);
    let csrf = w.csrf();
    let t = s.create_target(json!({"name": "Laptop"}));
    s.upload_ok(&t, &[("a.txt", b"one")]);
    let page = w.get("/targets");
    assert!(page.body.contains("No target is monitored yet"), "{}", page.body);
    assert!(page.body.contains("state-unmonitored") && page.body.contains("class=\"strip\""), "{}", page.body);

    // Expect a backup every hour, from the form: monitored and healthy.
    let edit = w.get(&format!("/targets/{t}/edit"));
    assert!(edit.body.contains("name=\"expected_interval\"") && edit.body.contains("every hour"));
    let saved = w.post(
        &format!("/targets/{t}/edit"),
        &[("csrf", &csrf), ("name", "Laptop"), ("recycle_criteria", "none"), ("expected_interval", "3600")],
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(s.target(&t).0["expected_interval"], 3600);
    let page = w.get("/targets");
    assert!(page.body.contains("The monitored target is healthy."), "{}", page.body);
    assert!(page.body.contains("state-ok"));

    // A failed upload: the target is `failed`, the banner names it, the menu counts it.
    let (t2, _) = (s.create_target(json!({"name": "Server"})), ());
    let loc = std::path::PathBuf::from(s.target(&t2).0["location"].as_str().unwrap());
    std::fs::remove_dir(&loc).unwrap();
    std::fs::write(&loc, b"in the way").unwrap();
    let (_, reply) = s.upload(&t2, &[("b.txt", b"two")], "1");
    assert_eq!(s.wait_job(reply["job_id"].as_i64().unwrap())["status"], "ERROR");
    let page = w.get("/targets");
    assert!(page.body.contains("1 target needs attention."), "{}", page.body);
    assert!(page.body.contains("state-failed") && page.body.contains("id=\"failed-count\""), "{}", page.body);
    let target_page = w.get(&format!("/targets/{t2}"));
    assert!(target_page.body.contains("id=\"target-health\"") && target_page.body.contains("state-failed"));

    // The test button queues one delivery per destination; this one fails, and both the jobs
    // page and the banner say so.
    let sent = w.post("/notify/test", &[("csrf", &csrf)]);
    assert_eq!((sent.status, sent.location.as_str()), (303, "/jobs?done=notify-test&n=1#notifications"));
    common::poll("the failing destination to show", std::time::Duration::from_secs(30), || {
        w.get("/jobs").body.contains("last delivery failed").then_some(())
    });
    assert!(w.get("/targets").body.contains("Notifications to <strong>hook</strong> are failing"));
}

fn pinned_of(s: &TestServer, target: &str, backup: &str) -> bool {
    let (_, backups) = s.target(target);
    backups.iter().find(|b| b["id"] == backup).map(|b| b["pinned"] == true).unwrap_or(false)
}

#[test]
fn pinning_from_pages_guards_deletes_and_shows_what_each_backup_frees() {
    let (s, target, backup, _) = server_with_data();
    // A second backup sharing a.txt and holding a bigger file of its own: it frees more.
    s.upload_ok(&target, &[("a.txt", b"hello"), ("big.bin", &[7u8; 5000])]);
    let (_, backups) = s.target(&target);
    let other = backups.iter().map(|b| b["id"].as_str().unwrap().to_string()).find(|id| *id != backup).unwrap();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let csrf = w.csrf();
    let page = w.get(&format!("/targets/{target}?sort=frees&dir=desc"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-label=\"Frees\""), "{}", page.body);
    let first_other = page.body.find(&format!("sel-{other}")).unwrap();
    let first_backup = page.body.find(&format!("sel-{backup}")).unwrap();
    assert!(first_other < first_backup, "the backup that frees more comes first");
    let asc = w.get(&format!("/targets/{target}?sort=frees&dir=asc")).body;
    assert!(asc.find(&format!("sel-{backup}")).unwrap() < asc.find(&format!("sel-{other}")).unwrap());
    assert!(page.body.contains(&format!("formaction=\"/backups/{backup}/pin\"")));

    // Pin from the target page: back on it, sorted as it was, with a badge.
    let back = format!("/targets/{target}?sort=frees&dir=desc");
    let p = w.post(&format!("/backups/{backup}/pin"), &[("csrf", &csrf), ("back", &back), ("backup", &other)]);
    assert_eq!((p.status, p.location.clone()), (303, format!("{back}&done=pinned")));
    assert!(pinned_of(&s, &target, &backup));
    let page = w.get(&p.location).body;
    assert!(page.contains(&format!("id=\"pinned-{backup}\"")) && page.contains("Backup pinned"));
    assert!(page.contains(&format!("formaction=\"/backups/{backup}/unpin\"")));
    let own = w.get(&format!("/backups/{other}")).body;
    assert!(own.contains("deleting it alone frees 4.9 KiB"), "{own}");
    assert!(w.get(&format!("/backups/{backup}")).body.contains("id=\"unpin-backup\""));

    // Deleting it asks to unpin first, by hand and in bulk; nothing is deleted.
    let ask = w.get(&format!("/backups/{backup}/delete"));
    assert_eq!(ask.status, 409);
    assert!(ask.body.contains("is pinned") && ask.body.contains(&format!("/backups/{backup}/unpin")));
    let refused = w.post(&format!("/backups/{backup}/delete"), &[("csrf", &csrf), ("confirm", "1")]);
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("unpin it first"), "{}", refused.body);
    let bulk = w.post(
        &format!("/targets/{target}/bulk"),
        &[("csrf", &csrf), ("action", "delete"), ("backup", &other), ("backup", &backup), ("confirm", "1")],
    );
    assert_eq!(bulk.status, 409);
    assert!(bulk.body.contains("unpin them first"), "{}", bulk.body);
    assert_eq!(s.target(&target).1.len(), 2, "nothing deleted");

    // Unpin from the confirmation: it comes back to the delete confirmation, which now asks.
    let p =
        w.post(&format!("/backups/{backup}/unpin"), &[("csrf", &csrf), ("back", &format!("/backups/{backup}/delete"))]);
    assert_eq!(p.status, 303);
    assert!(!pinned_of(&s, &target, &backup));
    let ask = w.get(&p.location);
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("Delete the backup"));

    // Both are in the audit trail.
    let (_, audit) = s.get("/api/audit?limit=50");
    let actions: Vec<String> = audit["entries"]
        .as_array()
        .or(audit.as_array())
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        actions.contains(&"backup_pinned".to_string()) && actions.contains(&"backup_unpinned".to_string()),
        "{audit}"
    );
    // An unknown backup is a clear error.
    assert_eq!(w.post("/backups/nope/pin", &[("csrf", &csrf)]).status, 404);
}

#[test]
fn file_search_pages_and_the_version_timeline_download_each_version() {
    let (s, target, first, _) = server_with_data();
    // Three more backups: a.txt changes once, stays, then changes again; plus 60 log files.
    s.upload_ok(&target, &[("a.txt", b"hello, world")]);
    s.upload_ok(&target, &[("a.txt", b"hello, world")]);
    let logs: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("logs/day-{i:02}.log"), vec![b'x'; i + 1])).collect();
    let mut files: Vec<(&str, &[u8])> = logs.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    files.push(("a.txt", b"bye"));
    s.upload_ok(&target, &files);
    let w = Web::new(&s);
    w.login(PASSWORD);
    let page = w.get(&format!("/targets/{target}"));
    assert!(page.body.contains(&format!("action=\"/targets/{target}/files\"")));

    // Search: one path in four backups, linked to its timeline.
    let found = w.get(&format!("/targets/{target}/files?q=a.txt"));
    assert_eq!(found.status, 200);
    assert!(found.body.contains(&format!("href=\"/targets/{target}/history?path=a.txt\"")), "{}", found.body);
    assert!(found.body.contains("<td data-label=\"Backups\" class=\"num\">4</td>"), "{}", found.body);
    // Paged: 60 logs, 50 a page.
    let p1 = w.get(&format!("/targets/{target}/files?q=day-"));
    assert_eq!(count(&p1.body, "class=\"found-path\""), 50);
    assert!(p1.body.contains("id=\"next-page\""));
    let p2 = w.get(&format!("/targets/{target}/files?q=day-&page=2"));
    assert_eq!(count(&p2.body, "class=\"found-path\""), 10);
    assert!(!p2.body.contains("id=\"next-page\"") && p2.body.contains("rel=\"prev\""));
    // Nothing found, or nothing asked: said, not an error.
    let none = w.get(&format!("/targets/{target}/files?q=no-such-file"));
    assert_eq!(none.status, 200);
    assert!(none.body.contains("id=\"no-files\""));
    let blank = w.get(&format!("/targets/{target}/files?q=+"));
    assert_eq!(blank.status, 200);
    assert!(!blank.body.contains("id=\"no-files\""));
    assert_eq!(w.get("/targets/nope/files?q=a").status, 404);

    // The timeline: four versions, newest first, three of them changed, each downloadable.
    let t = w.get(&format!("/targets/{target}/history?path=a.txt"));
    assert_eq!(t.status, 200);
    assert_eq!(count(&t.body, "class=\"version-download\""), 4, "{}", t.body);
    assert_eq!(count(&t.body, "<tr class=\"changed\">"), 3);
    assert_eq!(count(&t.body, "<tr class=\"same\">"), 1);
    assert!(t.body.contains("3 distinct versions"));
    let oldest = format!("/backups/{first}/file?path=a.txt");
    assert!(t.body.contains(&oldest));
    let got = w.get(&oldest);
    assert_eq!((got.status, got.body.as_str()), (200, "hello"));
    let newest_at = t.body.find("class=\"version-download\"").unwrap();
    let href_start = t.body[..newest_at].rfind("href=\"").unwrap() + 6;
    let href = &t.body[href_start..t.body[href_start..].find('"').unwrap() + href_start];
    assert_eq!(w.get(&href.replace("&amp;", "&")).body, "bye");
    // A path no backup holds, or none at all.
    let unknown = w.get(&format!("/targets/{target}/history?path=nope.txt"));
    assert_eq!(unknown.status, 200);
    assert!(unknown.body.contains("No backup of"));
    assert_eq!(w.get(&format!("/targets/{target}/history")).status, 400);

    // Four more backups with the same a.txt: the newest shows, the three between fold into one
    // line, and every version is one click away.
    for _ in 0..4 {
        s.upload_ok(&target, &[("a.txt", b"bye")]);
    }
    let t = w.get(&format!("/targets/{target}/history?path=a.txt"));
    assert!(t.body.contains("In 8 backups, 3 distinct versions"), "{}", t.body);
    assert_eq!(count(&t.body, "class=\"version-download\""), 5, "{}", t.body);
    assert_eq!(count(&t.body, "<tr class=\"folded\">"), 1);
    assert!(t.body.contains("The same content in 3 more backups"), "{}", t.body);
    assert!(t.body.contains("id=\"show-all-versions\""));
    let every = w.get(&format!("/targets/{target}/history?path=a.txt&all=1"));
    assert_eq!(count(&every.body, "class=\"version-download\""), 8, "{}", every.body);
    assert!(!every.body.contains("<tr class=\"folded\">") && every.body.contains("id=\"show-changes\""));
}

#[test]
fn compare_two_backups_from_the_target_page() {
    let (s, target, first, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    // One backup: nothing to compare, so no form.
    assert!(!w.get(&format!("/targets/{target}")).body.contains("id=\"compare-form\""));
    s.upload_ok(&target, &[("a.txt", b"hello, world"), ("docs/new.md", b"# new")]);
    let (_, backups) = s.target(&target);
    let second = backups.iter().map(|b| b["id"].as_str().unwrap().to_string()).find(|id| *id != first).unwrap();
    // The target page proposes the two newest, older first.
    let page = w.get(&format!("/targets/{target}")).body;
    assert!(page.contains(&format!("action=\"/targets/{target}/compare\"")));
    let from_select = &page[page.find("id=\"compare-from\"").unwrap()..];
    assert!(from_select[..from_select.find("</select>").unwrap()].contains(&format!("value=\"{first}\" selected")));
    let cmp = w.get(&format!("/targets/{target}/compare?from={first}&to={second}"));
    assert_eq!(cmp.status, 200);
    assert!(cmp.body.contains("1 added, 0 removed, 1 changed, 0 unchanged"), "{}", cmp.body);
    let added = &cmp.body[cmp.body.find("id=\"added-files\"").unwrap()..];
    assert!(added[..added.find("</table>").unwrap()].contains("new.md"), "{added}");
    let changed = &cmp.body[cmp.body.find("id=\"changed-files\"").unwrap()..];
    let changed = &changed[..changed.find("</table>").unwrap()];
    assert!(changed.contains("a.txt") && changed.contains("5 B") && changed.contains("12 B"), "{changed}");
    // The other way round, the new file is removed.
    let back = w.get(&format!("/targets/{target}/compare?from={second}&to={first}")).body;
    assert!(back.contains("0 added, 1 removed, 1 changed"));
    // A backup of another target, or none, is a clear error page.
    let other = s.create_target(json!({"name": "Other"}));
    s.upload_ok(&other, &[("x", b"x")]);
    let foreign = s.target(&other).1[0]["id"].as_str().unwrap().to_string();
    let bad = w.get(&format!("/targets/{target}/compare?from={first}&to={foreign}"));
    assert_eq!(bad.status, 404);
    assert!(bad.body.contains("is not a backup of this target"), "{}", bad.body);
    // Without a choice: only the form.
    let form = w.get(&format!("/targets/{target}/compare"));
    assert_eq!(form.status, 200);
    assert!(form.body.contains("id=\"compare-form\"") && !form.body.contains("id=\"compare-summary\""));
}

/// The (path, content) pairs of a tar or zip archive, sorted.
fn archive_entries(bytes: &[u8], zip: bool) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut out: Vec<(String, Vec<u8>)> = if zip {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                (f.name().to_string(), data)
            })
            .collect()
    } else {
        common::tar_entries(bytes)
    };
    out.sort();
    out
}

#[test]
fn ticked_files_and_folders_download_as_one_tar_or_zip() {
    let (s, target, first, _) = server_with_data();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let files = [
        ("dir/a.txt", b"a".to_vec()),
        ("dir/sub/b.txt", b"bb".to_vec()),
        ("c.txt", b"c".to_vec()),
        ("d.txt", b"d".to_vec()),
    ];
    let job = web_upload(&w, &target, &files);
    assert!(wait_job_page(&w, &job).contains("FINISHED"));
    let (_, backups) = s.target(&target);
    let backup = backups.iter().map(|b| b["id"].as_str().unwrap().to_string()).find(|id| *id != first).unwrap();
    let page = w.get(&format!("/backups/{backup}")).body;
    assert!(page.contains("id=\"select-form\"") && page.contains("action=\"/backups/"), "{page}");
    assert!(page.contains("value=\"dir&#x2f;sub\"") || page.contains("value=\"dir/sub\""), "{page}");
    assert_eq!(count(&page, "form=\"select-form\""), 6, "4 files and 2 folders");
    // A folder and a file, as the form sends them, as tar then zip.
    let want = vec![("c.txt".to_string(), b"c".to_vec()), ("dir/sub/b.txt".to_string(), b"bb".to_vec())];
    for (format, zip) in [("tar", false), ("zip", true)] {
        let res = w
            .client
            .get(format!("{}/backups/{backup}/select?format={format}&path=dir%2Fsub&path=c.txt", w.base))
            .send()
            .unwrap();
        assert_eq!(res.status(), 200, "{format}");
        let disposition = res.headers()["content-disposition"].to_str().unwrap().to_string();
        assert!(disposition.contains(&format!("-selection.{format}")), "{disposition}");
        assert_eq!(archive_entries(&res.bytes().unwrap(), zip), want, "{format}");
    }
    // Nothing ticked: back to the page, which says so; a bad format or path: a clear error.
    let none = w.get(&format!("/backups/{backup}/select?format=zip"));
    assert_eq!((none.status, none.location.clone()), (303, format!("/backups/{backup}?done=none-ticked")));
    assert!(w.get(&none.location).body.contains("Tick at least one file"));
    let bad = w.get(&format!("/backups/{backup}/select?format=rar&path=c.txt"));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Choose .tar or .zip"));
    let missing = w.get(&format!("/backups/{backup}/select?path=nope"));
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("none of the chosen paths"));
}

#[test]
fn the_edit_form_previews_retention_before_saving() {
    let (s, target, _, _) = server_with_data();
    s.upload_ok(&target, &[("b.txt", b"two")]);
    s.upload_ok(&target, &[("c.txt", b"three")]);
    let w = Web::new(&s);
    w.login(PASSWORD);
    let csrf = w.csrf();
    // The form shows the saved policy's preview (none: everything stays) and where to ask for more.
    let form = w.get(&format!("/targets/{target}/edit"));
    assert_eq!(form.status, 200);
    assert!(form.body.contains(&format!("data-url=\"/targets/{target}/retention-preview\"")), "{}", form.body);
    assert!(form.body.contains("The saved policy keeps <strong>3</strong> of 3"), "{}", form.body);
    assert!(form.body.contains("id=\"preview-button\""));

    // The fragment app.js fetches: keep the newest one.
    let frag = w.get(&format!(
        "/targets/{target}/retention-preview?recycle_criteria=count&recycle_value=1&recycle_action=delete"
    ));
    assert_eq!(frag.status, 200);
    assert!(!frag.body.contains("<html"), "a fragment, not a page");
    assert!(
        frag.body.contains("keeps <strong>1</strong> of 3")
            && frag.body.contains("<strong>2</strong> would be deleted"),
        "{}",
        frag.body
    );
    assert_eq!(count(&frag.body, "<tr class=\"delete\""), 2);
    let gfs = w.get(&format!("/targets/{target}/retention-preview?recycle_criteria=none&keep_last=2")).body;
    assert_eq!(count(&gfs, "<tr class=\"keep\""), 2, "{gfs}");
    assert!(gfs.contains("last"));
    // A policy that cannot be read says why, in the form's words.
    let bad = w.get(&format!("/targets/{target}/retention-preview?recycle_criteria=none&keep_daily=lots"));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Daily must be a whole number"), "{}", bad.body);
    assert_eq!(w.get("/targets/nope/retention-preview").status, 404);

    // Without script: the Preview button shows it on the form, as typed, and saves nothing.
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "Renamed"),
        ("recycle_criteria", "count"),
        ("recycle_value", "2"),
        ("recycle_action", "recycle"),
        ("min_backups", "0"),
        ("preview", "1"),
    ];
    let shown = w.post(&format!("/targets/{target}/edit"), &fields);
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        shown.body.contains("This policy keeps <strong>2</strong> of 3") && shown.body.contains("would be recycled")
    );
    assert!(shown.body.contains("value=\"Renamed\""), "the form comes back as typed");
    let (t, backups) = s.target(&target);
    assert_eq!((t["name"].as_str(), t["recycle_criteria"].as_str()), (Some("Photos"), Some("none")));
    assert!(backups.iter().all(|b| b["is_recycled"] == false));
    let mut wrong = fields.to_vec();
    wrong.push(("keep_weekly", "-1"));
    let refused = w.post(&format!("/targets/{target}/edit"), &wrong);
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("id=\"preview-error\""), "{}", refused.body);
    assert_eq!(s.target(&target).0["name"], "Photos");
}

/// "Download selected" posts the ticked paths, so a selection of thousands (past any URL limit)
/// comes back as one archive of exactly the chosen files; a folder brings everything under it.
#[test]
fn download_selected_takes_thousands_of_ticked_paths() {
    let (s, _, _, _) = server_with_data();
    let target = s.create_target(json!({"name": "Tree"}));
    let archive =
        common::tar_gz(&[("docs/a.txt", b"a"), ("docs/deep/b.txt", b"b"), ("top.txt", b"top"), ("x.txt", b"x")]);
    s.upload_ok(&target, &[("t.tar.gz", &archive)]);
    let backup = s.target(&target).1[0]["id"].as_str().unwrap().to_string();
    let w = Web::new(&s);
    w.login(PASSWORD);
    let csrf = w.csrf();
    let page = w.get(&format!("/backups/{backup}"));
    assert!(page.body.contains("<form method=\"post\" action=\"/backups/"), "the tree's form posts");
    // 5,000 ticked paths that are not in the backup, one folder and one file that are.
    let mut fields: Vec<(String, String)> =
        (0..5000).map(|i| ("path".into(), format!("gone/file-{i:05}.txt"))).collect();
    fields.extend([("path".into(), "docs".into()), ("path".into(), "top.txt".into())]);
    fields.extend([("format".into(), "tar".into()), ("csrf".into(), csrf)]);
    let reply = w.client.post(format!("{}/backups/{backup}/select", s.url)).form(&fields).send().unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let entries = common::tar_entries(&reply.bytes().unwrap());
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["docs/a.txt", "docs/deep/b.txt", "top.txt"]);
    // A form past the pages' 4 MiB limit is refused with a page that says so.
    let huge = format!("csrf={}&path={}", w.csrf(), "a".repeat(5 << 20));
    let reply = w
        .client
        .post(format!("{}/backups/{backup}/select", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 413);
    // None ticked: back to the page with a note, no archive.
    let none = w.post(&format!("/backups/{backup}/select"), &[("csrf", &w.csrf()), ("format", "zip")]);
    assert_eq!((none.status, none.location.contains("done=none-ticked")), (303, true));
}
