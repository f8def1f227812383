//! The web UI in a real headless Chromium (Debian's `chromium` + `chromium-driver`), driven
//! through WebDriver against the real binary: log in, create a target (form errors in red, once,
//! in the form's words; a second target of a name asked for and told apart), its id and CLI
//! commands, upload with the progress bar (a disabled button that looks it, leaving guarded),
//! follow the job, recycle and restore (the recycle bin says when), bulk delete, browse a
//! multi-file backup and download one file, the phone layout, run a job now, read the log
//! (newest first), and a wrong password refused. A second walk covers issue 17's pages: pinning
//! (and a pinned backup's delete asking to unpin), the live retention preview of the edit form,
//! file search, a file's version timeline, and ticking files for one zip download.
//!
//! With `BAKCH_SCREENSHOTS=<folder>`, it also saves the screenshots the README shows
//! (`BAKCH_SCREENSHOTS=docs/screenshots cargo test --test browser`).

mod common;
#[path = "common/web.rs"]
mod web;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestServer, free_port, poll, tar_gz};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const PASSWORD: &str = "browser test password";
const WAIT: Duration = Duration::from_secs(30);

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|n| std::env::split_paths(&path).map(|d| d.join(n)).find(|p| p.is_file()))
}

fn start_driver() -> Driver {
    let (Some(driver), Some(_)) = (find_program(&["chromedriver"]), find_program(&["chromium", "chromium-browser"]))
    else {
        panic!(
            "the browser tests need Chromium and its WebDriver: apt-get install -y chromium chromium-driver \
             (.ci/run installs them)"
        );
    };
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let mut d = Driver { child, port };
    poll("chromedriver to listen", WAIT, || {
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!("chromedriver exited early with {status}");
        }
        TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
    });
    d
}

/// A blocking face over fantoccini, so the test reads top to bottom and can use the blocking
/// HTTP helpers between steps.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    base: String,
    _profile: tempfile::TempDir,
    _driver: Driver,
}

impl Browser {
    fn start(base: &str) -> Browser {
        let driver = start_driver();
        let profile = tempfile::tempdir().expect("profile dir");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--window-size=1280,900".into(),
        ];
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut options = json!({ "args": args });
        if let Some(bin) = find_program(&["chromium", "chromium-browser"]) {
            options["binary"] = json!(bin.to_string_lossy());
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{}", driver.port);
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url),
            )
            .expect("a Chromium session through chromedriver");
        Browser { rt, client: Some(client), base: base.to_string(), _profile: profile, _driver: driver }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("client")
    }

    fn goto(&self, path: &str) {
        self.rt.block_on(self.c().goto(&format!("{}{path}", self.base))).expect("navigate");
    }

    fn url(&self) -> String {
        self.rt.block_on(self.c().current_url()).expect("url").to_string()
    }

    fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.rt
            .block_on(self.c().wait().at_most(WAIT).for_element(Locator::Css(css)))
            .unwrap_or_else(|e| panic!("no element {css} on {}: {e}", self.url()))
    }

    fn click(&self, css: &str) {
        let el = self.find(css);
        self.rt.block_on(el.click()).unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    fn fill(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.rt.block_on(el.clear()).expect("clear");
        self.rt.block_on(el.send_keys(text)).unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    fn select(&self, css: &str, value: &str) {
        let el = self.find(css);
        self.rt.block_on(el.select_by_value(value)).unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    fn text(&self, css: &str) -> String {
        let el = self.find(css);
        self.rt.block_on(el.text()).unwrap_or_default()
    }

    fn value(&self, css: &str) -> String {
        let el = self.find(css);
        self.rt.block_on(el.prop("value")).ok().flatten().unwrap_or_default()
    }

    fn body(&self) -> String {
        self.text("body")
    }

    /// Polls until the element's text contains `needle` (pages may refresh meanwhile).
    fn wait_text(&self, css: &str, needle: &str) -> String {
        poll(&format!("'{needle}' in {css}"), WAIT, || {
            let found = self.rt.block_on(self.c().find(Locator::Css(css))).ok()?;
            let text = self.rt.block_on(found.text()).ok()?;
            text.contains(needle).then_some(text)
        })
    }

    fn script(&self, js: &str) -> serde_json::Value {
        self.rt.block_on(self.c().execute(js, vec![])).expect("script")
    }

    /// A number a script computes (a size or position in CSS pixels).
    fn number(&self, js: &str) -> f64 {
        self.script(js).as_f64().unwrap_or_else(|| panic!("no number from {js} on {}", self.url()))
    }

    fn phone(&self) {
        self.rt.block_on(self.c().set_window_size(390, 844)).expect("phone size");
    }

    fn desktop(&self) {
        self.rt.block_on(self.c().set_window_size(1280, 900)).expect("desktop size");
    }

    fn cookie_header(&self) -> String {
        let cookies = self.rt.block_on(self.c().get_all_cookies()).expect("cookies");
        cookies.iter().map(|c| format!("{}={}", c.name(), c.value())).collect::<Vec<_>>().join("; ")
    }

    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("BAKCH_SCREENSHOTS") else { return };
        let png = self.rt.block_on(self.c().screenshot()).expect("screenshot");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(Path::new(&dir).join(name), png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
    }
}

#[test]
#[ignore = "needs Debian's chromium and chromium-driver, which `cargo test` on a fresh machine lacks; \
            .ci/run installs them and runs this with --ignored"]
fn the_web_ui_in_chromium() {
    let s = TestServer::start();
    assert!(web::set_password(&s, PASSWORD).status.success());
    let b = Browser::start(&s.url);

    // Log in: a wrong password is refused, the right one lands on the page asked for.
    b.goto("/targets");
    assert!(b.url().contains("/login"), "sent to the login page, got {}", b.url());
    b.fill("#password", "not the password");
    b.click("button[type=submit]");
    assert!(b.wait_text("#login-error", "Wrong password").contains("Wrong password"));
    b.fill("#password", PASSWORD);
    b.click("button[type=submit]");
    b.wait_text("h1", "Targets");

    // Create a target: an error first (kept input, message by the field), then a good one.
    let location = s.location("photos");
    b.click("#new-target");
    b.fill("#f-name", "Holiday photos");
    b.select("#f-type", "multi");
    b.fill("#f-location", &location.to_string_lossy());
    b.fill("#f-template", "photos");
    b.select("#f-criteria", "count");
    b.fill("#f-value", "5");
    b.fill("#f-tags", "photos family");
    b.click("#save-target");
    assert!(b.wait_text("#e-template", "must contain").contains("$I"));
    assert_eq!(b.value("#f-name"), "Holiday photos", "the form keeps what was typed");
    assert_eq!(b.value("#f-value"), "5");
    assert_eq!(
        b.script("return getComputedStyle(document.getElementById('f-template')).borderTopColor"),
        b.script("return getComputedStyle(document.getElementById('e-template')).color"),
        "the field at fault is framed in the error colour"
    );
    assert_eq!(b.number("return document.querySelectorAll('#form-error, .field-error').length"), 1.0, "said once");
    // A wrong number, in the form's words; the retention values survive the round trip.
    b.fill("#f-template", "photos-$I");
    b.fill("#f-value", "five");
    b.fill("#f-min", "2");
    b.click("#save-target");
    assert!(b.wait_text("#e-value", "whole number").contains("N must be a whole number ≥ 0"));
    assert_eq!((b.value("#f-value"), b.value("#f-min")), ("five".to_string(), "2".to_string()));
    b.fill("#f-value", "5");
    b.fill("#f-min", "0");
    b.click("#save-target");
    b.wait_text("main", "Target created.");
    let target = b.url().rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    // The target page says its id and how to upload from the command line.
    assert_eq!(b.text("#target-id"), target);
    // Open while the target has no backups yet (the commands are how most get their first).
    assert_eq!(b.script("return document.getElementById('cli').open"), true);
    assert!(b.text(".cli-command").starts_with(&format!("backupchan backup upload {target} ")));

    // A second target of the same name: asked first, then told apart in the list.
    b.goto("/targets/new");
    b.fill("#f-name", "Holiday photos");
    b.fill("#f-location", &s.location("photos2").to_string_lossy());
    b.fill("#f-template", "photos2-$I");
    b.fill("#f-alias", "phone");
    b.click("#save-target");
    assert!(b.wait_text("#w-name", "already carry this name").contains(&target[..8]));
    b.click("#same-name-ok");
    b.click("#save-target");
    b.wait_text("main", "Target created.");
    let twin = b.url().rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    b.goto("/targets");
    let list = b.wait_text("main", "phone");
    assert!(list.contains(&format!("id {}", &target[..8])), "{list}");
    b.find(&format!("a[href='/targets/{twin}']"));

    // Upload two files with the progress bar, then follow the job until it finishes.
    let files = tempfile::tempdir().unwrap();
    let big = files.path().join("big.bin");
    let small = files.path().join("notes.txt");
    let big_bytes: Vec<u8> = (0..48u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&big, &big_bytes).unwrap();
    std::fs::write(&small, b"holiday notes").unwrap();
    b.goto(&format!("/targets/{target}"));
    b.click("#upload-link");
    // A disabled button looks disabled: greyed and with a "not allowed" pointer.
    let look = b.script(
        "const u = document.getElementById('upload-button'); u.disabled = true; \
         const s = getComputedStyle(u); const r = [s.cursor, s.backgroundColor]; u.disabled = false; \
         return r.concat([getComputedStyle(u).backgroundColor]);",
    );
    assert_eq!(look[0], "not-allowed", "{look}");
    assert_ne!(look[1], look[2], "a disabled button is coloured otherwise: {look}");
    // Note (in the tab's session storage, which survives the page change) what the page asks
    // the browser to guard while the upload runs.
    b.script(
        "const add = window.addEventListener; window.addEventListener = function (type, ...rest) { \
           sessionStorage.setItem('bakch-test-listeners', (sessionStorage.getItem('bakch-test-listeners') || '') + type + ' '); \
           return add.call(this, type, ...rest); };",
    );
    let input = b.find("#files");
    b.rt.block_on(input.send_keys(&format!("{}\n{}", big.display(), small.display()))).expect("choose files");
    b.click("#upload-button");
    b.wait_text("#job-status", "FINISHED");
    let progress: serde_json::Value =
        serde_json::from_str(b.script("return sessionStorage.getItem('bakch-upload') || '{}'").as_str().unwrap())
            .unwrap();
    assert!(progress["events"].as_u64().unwrap_or(0) >= 1, "the progress bar moved: {progress}");
    assert!(progress["text"].as_str().unwrap_or_default().contains("/s"), "speed shown: {progress}");
    assert!(b.text("#upload-summary").contains("Uploaded"), "the job page recalls the upload");
    let guarded = b.script("return sessionStorage.getItem('bakch-test-listeners') || ''");
    assert!(guarded.as_str().unwrap_or_default().contains("beforeunload"), "leaving asks first: {guarded}");
    assert!(b.text("#job-files").contains("big.bin"), "the job says what it is");
    b.click("#job-target");
    b.wait_text("main", "Backups (1)");
    let (_, backups) = s.target(&target);
    let backup = backups[0]["id"].as_str().unwrap().to_string();
    assert_eq!(backups[0]["filesize"], big_bytes.len() as u64 + 13);

    // Recycle and restore it from its page.
    b.click(".backup-link");
    b.click("#recycle-backup");
    b.wait_text("main", "Backup moved to the recycle bin.");
    assert!(b.text("#recycled-h").contains("Recycled (1)"));
    assert_eq!(s.target(&target).1[0]["is_recycled"], true);
    b.goto("/recycle-bin");
    assert_eq!(b.text(".recycled-at"), "just now");
    assert_eq!(b.text(".purge"), "never by retention");
    b.goto(&format!("/backups/{backup}"));
    b.click("#restore-backup");
    b.wait_text("main", "Backup restored.");
    assert_eq!(s.target(&target).1[0]["is_recycled"], false);

    // A multi-file backup from an archive: browse its tree, download one file.
    let archive =
        tar_gz(&[("docs/report.txt", b"quarterly report"), ("docs/img/a.png", b"png bytes"), ("top.txt", b"top")]);
    s.upload_ok(&target, &[("tree.tar.gz", &archive)]);
    let tree_backup =
        s.target(&target).1.iter().find(|x| x["id"] != backup.as_str()).unwrap()["id"].as_str().unwrap().to_string();
    b.goto(&format!("/backups/{tree_backup}"));
    b.wait_text(".tree", "docs/");
    assert!(b.text(".tree").contains("img/") && b.text(".tree").contains("report.txt"));
    let link = b.find("a[href*='report.txt']");
    let href = b.rt.block_on(link.attr("href")).unwrap().unwrap();
    let file = reqwest::blocking::Client::new()
        .get(format!("{}{href}", s.url))
        .header("cookie", b.cookie_header())
        .send()
        .unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert!(file.headers()["content-disposition"].to_str().unwrap().contains("report.txt"));
    assert_eq!(file.bytes().unwrap().as_ref(), b"quarterly report");
    b.screenshot("backup.png");

    // Screenshots for the README, with a few more targets on the list.
    for (name, tags) in [("Laptop home", vec!["laptop"]), ("Database dumps", vec!["db", "nightly"])] {
        let id = s.create_target(json!({"name": name, "tags": tags, "backup_type": "single"}));
        s.upload_ok(&id, &[("dump.sql", name.as_bytes())]);
    }
    b.goto("/targets");
    b.wait_text("main", "4 targets");
    b.screenshot("targets.png");
    b.goto(&format!("/targets/{target}"));
    b.wait_text("main", "Backups (2)");
    b.screenshot("target.png");
    b.goto("/stats");
    b.wait_text("main", "saved by deduplication");
    b.screenshot("stats.png");
    b.goto("/jobs");
    b.wait_text("main", "Upload jobs");
    b.screenshot("jobs.png");

    // On a phone: values sit beside their labels, totals are labelled, sorting is a form,
    // buttons keep off the card below, and the chart fits the screen.
    b.phone();
    b.goto("/targets");
    b.wait_text("main", "4 targets");
    let beside = b.number(
        "const td = document.querySelector('tbody td[data-label=Name]'); \
         return td.querySelector('a').getBoundingClientRect().left - td.getBoundingClientRect().left;",
    );
    assert!(beside > 90.0, "the value starts right of its label, not under it: {beside}");
    assert_eq!(
        b.script("return getComputedStyle(document.querySelector('tfoot td[data-label=Backups]'), '::before').content"),
        "\"Backups\""
    );
    b.select("#sort-by", "size");
    b.click("#targets-sort button");
    poll("sorted by size", WAIT, || b.url().contains("sort=size").then_some(()));
    b.screenshot("targets-phone.png");
    b.goto(&format!("/targets/{target}"));
    b.wait_text("main", "Backups (2)");
    let gap = b.number(
        "const btn = document.getElementById('bulk-recycle').getBoundingClientRect(); \
         const row = document.querySelector('section[aria-labelledby=active-h] tbody tr').getBoundingClientRect(); \
         return row.top - btn.bottom;",
    );
    assert!(gap >= 8.0, "the buttons keep off the card below: {gap}");
    assert!(
        b.script("return getComputedStyle(document.getElementById('backups-sort')).display").as_str() != Some("none")
    );
    b.screenshot("target-phone.png");
    b.goto("/stats");
    b.wait_text("main", "saved by deduplication");
    let overflow = b.number(
        "return Math.max(document.querySelector('svg.chart').getBoundingClientRect().right, \
                         document.documentElement.scrollWidth) - window.innerWidth;",
    );
    assert!(overflow <= 0.5, "the chart fits the phone's width: {overflow}");
    b.screenshot("stats-phone.png");
    b.desktop();

    // The dashboard in both states, on a desktop and on a phone. A target given an expected
    // interval in its form is monitored and healthy once it has a backup...
    let laptop = s.create_target(json!({"name": "Laptop nightly", "backup_type": "single"}));
    s.upload_ok(&laptop, &[("home.tar", b"home")]);
    b.goto(&format!("/targets/{laptop}/edit"));
    b.select("#f-interval", "86400");
    b.click("#save-target");
    b.wait_text("main", "Next backup due");
    b.goto("/targets");
    assert!(b.wait_text("#health-banner", "healthy").contains("The monitored target is healthy."));
    assert_eq!(b.script("return document.getElementById('health-banner').className"), "health-banner healthy");
    b.screenshot("dashboard-healthy.png");
    // ...and one expected but never received turns the banner, naming it and why.
    s.create_target(json!({"name": "Forgotten phone", "expected_interval": 3600}));
    b.goto("/targets");
    let banner = b.wait_text("#health-banner", "needs attention");
    assert!(banner.contains("Forgotten phone") && banner.contains("no backup yet"), "{banner}");
    assert_eq!(b.script("return document.getElementById('health-banner').className"), "health-banner unhealthy");
    b.screenshot("dashboard-attention.png");
    b.phone();
    b.goto("/targets");
    b.wait_text("#health-banner", "needs attention");
    let overflow = b.number("return document.documentElement.scrollWidth - window.innerWidth;");
    assert!(overflow <= 0.5, "the dashboard fits the phone's width: {overflow}");
    let strip = b.number("return document.querySelector('svg.strip').getBoundingClientRect().width;");
    assert!(strip > 0.0, "the history strip shows on a phone");
    b.screenshot("dashboard-phone.png");
    b.desktop();
    b.goto(&format!("/targets/{target}"));

    // Bulk delete: select all, confirm, gone.
    b.click("section[aria-labelledby=active-h] input.select-all");
    b.click("#bulk-delete");
    b.wait_text("h1", "Delete 2 backups");
    b.click("#confirm-button");
    b.wait_text("main", "2 backups deleted.");
    assert!(s.target(&target).1.is_empty());

    // Run a job now and see its outcome.
    b.goto("/jobs");
    b.click("#job-recycle_job button");
    b.wait_text("main", "recycle_job ran");
    assert!(!b.text("#job-recycle_job .outcome").is_empty());

    // Read the log, filtered by level.
    b.goto("/log");
    assert!(b.wait_text("#log", "web login").contains("succeeded"));
    let order = b.script(
        "const l = [...document.querySelectorAll('#log > span[class^=lvl]')]; \
         return [l[0].textContent.split(' ')[0], l[l.length - 1].textContent.split(' ')[0]];",
    );
    assert!(order[0].as_str() >= order[1].as_str(), "newest first: {order}");
    b.select("#level", "WARN");
    b.click("form.search button");
    // The page before the click holds "failed" too: wait for the filtered page to load first.
    poll("the filtered log page", WAIT, || b.url().contains("level=WARN").then_some(()));
    let warn = b.wait_text("#log", "failed");
    assert!(!warn.contains(" INFO "), "only warnings and errors: {warn}");
    assert!(b.body().contains("Log"));
    b.screenshot("log.png");
}

/// The (path, content) pairs of a zip archive, sorted.
fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip");
    let mut out: Vec<(String, Vec<u8>)> = (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).expect("entry");
            let mut data = Vec::new();
            f.read_to_end(&mut data).expect("read entry");
            (f.name().to_string(), data)
        })
        .collect();
    out.sort();
    out
}

#[test]
#[ignore = "needs Debian's chromium and chromium-driver, which `cargo test` on a fresh machine lacks; \
            .ci/run installs them and runs this with --ignored"]
fn retention_preview_pinning_file_history_and_selection_in_chromium() {
    let s = TestServer::start();
    assert!(web::set_password(&s, PASSWORD).status.success());
    let target = s.create_target(json!({"name": "Documents"}));
    // Three backups: notes.txt changes in the second and stays in the third, which is a tree.
    let ids_now =
        || -> Vec<String> { s.target(&target).1.iter().map(|x| x["id"].as_str().unwrap().to_string()).collect() };
    s.upload_ok(&target, &[("notes.txt", b"first draft")]);
    let oldest = ids_now()[0].clone();
    s.upload_ok(&target, &[("notes.txt", b"second draft")]);
    let before = ids_now();
    let tree = tar_gz(&[
        ("notes.txt", b"second draft"),
        ("docs/plan.md", b"plan"),
        ("docs/img/a.png", b"png"),
        ("top.txt", b"top"),
    ]);
    s.upload_ok(&target, &[("tree.tar.gz", &tree)]);
    let newest = ids_now().into_iter().find(|id| !before.contains(id)).unwrap();
    let b = Browser::start(&s.url);
    b.goto("/login");
    b.fill("#password", PASSWORD);
    b.click("button[type=submit]");
    b.wait_text("h1", "Targets");

    // Pinning: pin the oldest from the target page; deleting it then asks to unpin first.
    b.goto(&format!("/targets/{target}"));
    b.click(&format!("#pin-{oldest}"));
    b.wait_text("main", "Backup pinned");
    b.find(&format!("#pinned-{oldest}"));
    b.find(&format!("#unpin-{oldest}"));
    assert!(s.target(&target).1.iter().any(|x| x["id"] == oldest.as_str() && x["pinned"] == true));
    assert!(!b.text("tbody td[data-label=Frees]").is_empty(), "what each backup frees is shown");
    b.goto(&format!("/backups/{oldest}/delete"));
    b.wait_text("h1", "is pinned");
    b.click("#confirm-button");
    b.wait_text("h1", "Delete the backup");
    assert!(s.target(&target).1.iter().all(|x| x["pinned"] == false), "unpinned, nothing deleted");
    assert_eq!(s.target(&target).1.len(), 3);
    // Pin it again, for the preview below.
    b.goto(&format!("/backups/{oldest}"));
    b.click("#pin-backup");
    b.wait_text("main", "Backup pinned");

    // The retention preview follows the policy as it is typed; nothing is saved.
    b.goto(&format!("/targets/{target}/edit"));
    b.wait_text("#preview-summary", "keeps 3 of 3");
    b.select("#f-criteria", "count");
    b.fill("#f-value", "1");
    b.fill("#f-min", "0");
    let live = b.wait_text("#retention-preview", "keeps 2 of 3");
    assert!(live.contains("would be recycled"), "{live}");
    assert!(live.contains("pinned"), "the pinned backup stays, and says why: {live}");
    b.script("document.getElementById('preview-h').scrollIntoView(); return 0;");
    b.screenshot("retention-preview.png");
    b.fill("#f-keep_daily", "lots");
    b.wait_text("#preview-error", "Daily must be a whole number");
    b.fill("#f-keep_daily", "");
    b.wait_text("#preview-summary", "keeps 2 of 3");
    assert_eq!(s.target(&target).0["recycle_criteria"], "none", "a preview saves nothing");
    // Without the script's help the button shows the same.
    b.click("#preview-button");
    b.wait_text("#preview-summary", "This policy keeps 2 of 3");
    assert_eq!(b.value("#f-value"), "1", "the form comes back as typed");
    assert_eq!(s.target(&target).0["recycle_criteria"], "none");

    // Search, then the timeline of one file, and its oldest version downloaded.
    b.goto(&format!("/targets/{target}"));
    b.fill("#file-q", "notes");
    b.click("#file-search button");
    b.wait_text("#file-results", "notes.txt");
    b.click(".found-path");
    b.wait_text("h1", "notes.txt");
    assert_eq!(b.number("return document.querySelectorAll('#timeline .version-download').length"), 3.0);
    assert_eq!(b.number("return document.querySelectorAll('#timeline tr.changed').length"), 2.0);
    let last = b.script(
        "const l = document.querySelectorAll('#timeline .version-download'); return l[l.length - 1].getAttribute('href');",
    );
    let http = reqwest::blocking::Client::new();
    let old =
        http.get(format!("{}{}", s.url, last.as_str().unwrap())).header("cookie", b.cookie_header()).send().unwrap();
    assert_eq!(old.status().as_u16(), 200);
    assert_eq!(old.bytes().unwrap().as_ref(), b"first draft");
    b.phone();
    b.goto(&format!("/targets/{target}/history?path=notes.txt"));
    b.wait_text("h1", "notes.txt");
    let overflow = b.number("return document.documentElement.scrollWidth - window.innerWidth;");
    assert!(overflow <= 0.5, "the timeline fits a phone: {overflow}");
    b.goto(&format!("/targets/{target}"));
    b.wait_text("main", "Backups (3)");
    let overflow = b.number("return document.documentElement.scrollWidth - window.innerWidth;");
    assert!(overflow <= 0.5, "the target page with its pin buttons fits a phone: {overflow}");
    b.script("document.getElementById('active-h').scrollIntoView(); return 0;");
    b.screenshot("target-pinned-phone.png");
    b.desktop();

    // Compare the oldest with the newest, chosen on the target page.
    b.goto(&format!("/targets/{target}"));
    b.click("#compare summary");
    b.select("#compare-from", &oldest);
    b.select("#compare-to", &newest);
    b.click("#compare-button");
    let summary = b.wait_text("#compare-summary", "unchanged");
    assert!(summary.contains("3 added, 0 removed, 1 changed"), "{summary}");
    assert!(b.text("#changed-files").contains("notes.txt"));

    // Tick a folder and a file in the tree, choose zip: the form asks for exactly those.
    b.goto(&format!("/backups/{newest}"));
    b.wait_text(".tree", "docs/");
    b.click("input[form=select-form][value='docs/img']");
    b.click("input[form=select-form][value='top.txt']");
    b.select("#select-format", "zip");
    let (method, action, fields) = (
        b.script("return document.getElementById('select-form').method;"),
        b.script("return document.getElementById('select-form').getAttribute('action');"),
        b.script("return new URLSearchParams(new FormData(document.getElementById('select-form'))).toString();"),
    );
    assert_eq!(method, "post", "the ticked paths go in the body, not the URL");
    let fields = fields.as_str().unwrap().to_string();
    assert!(fields.contains("format=zip") && fields.contains("csrf="), "{fields}");
    let sel = http
        .post(format!("{}{}", s.url, action.as_str().unwrap()))
        .header("cookie", b.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(fields)
        .send()
        .unwrap();
    assert_eq!(sel.status().as_u16(), 200);
    assert_eq!(sel.headers()["content-type"], "application/zip");
    assert_eq!(
        zip_entries(&sel.bytes().unwrap()),
        [("docs/img/a.png".to_string(), b"png".to_vec()), ("top.txt".to_string(), b"top".to_vec())]
    );
    // The button submits the same form (the browser takes the answer as a download).
    b.click("#download-selected");
    b.screenshot("select.png");
}
