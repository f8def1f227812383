//! The encrypted replica against a real single-node Garage on loopback (see
//! `common/garage.rs`): ciphertext only under opaque names, incremental, deletions delayed,
//! verification and self-healing both ways, a sync cut by stopping Garage resumed without
//! sending anything twice, and a restore on an empty data folder that brings back every target
//! and backup byte-identical.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::garage::Garage;
use common::{BIN, TestServer, poll, tree};
use serde_json::{Value, json};

const PASSPHRASE: &str = "correct horse battery staple";

/// Runs `bakch replica ARGS` on the server's data folder with `stdin` as its input.
fn replica_cmd(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("replica")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bakch replica");
    // A command that stops before reading its input closes the pipe: its own output says why.
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("wait for bakch replica")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "bakch replica failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Forces a scheduled job; (HTTP status, outcome or error message).
fn force(s: &TestServer, job: &str) -> (u16, String) {
    let (status, reply) = s.get(&format!("/api/jobs/force_run/{job}"));
    let text = reply["outcome"].as_str().or(reply["message"].as_str()).unwrap_or_default().to_string();
    (status, text)
}

fn force_ok(s: &TestServer, job: &str) -> String {
    let (status, outcome) = force(s, job);
    assert_eq!(status, 200, "{job}: {outcome}");
    outcome
}

/// The number before `what` in an outcome line (`uploaded 3 object(s)` → 3 for "uploaded").
fn figure(outcome: &str, what: &str) -> u64 {
    let words: Vec<&str> = outcome.split_whitespace().collect();
    let at = words.iter().position(|w| w.trim_matches(|c: char| !c.is_alphanumeric()) == what);
    let n = match at {
        Some(i) if what == "uploaded" => words.get(i + 1),
        Some(i) if i > 0 => words.get(i - 1),
        _ => None,
    };
    n.and_then(|w| w.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or_else(|| panic!("no figure for '{what}' in '{outcome}'"))
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// The config: the replica, no surprise scheduled runs, a hold of a week, gc without grace.
fn config(garage: &Garage, secrets: &Path, extra: &str) -> String {
    config_with(garage, secrets, extra, "")
}

/// As [`config`], with `tables` (more TOML tables) at the end.
fn config_with(garage: &Garage, secrets: &Path, extra: &str, tables: &str) -> String {
    let debounce = if extra.contains("debounce_secs") { "" } else { "debounce_secs = 3600\n" };
    format!(
        "gc_grace_secs = 0\n{}\n[schedules]\nreplica_job = \"0 0 0 1 1 *\"\nreplica_verify_job = \"0 0 0 1 1 *\"\n\
         [protection]\nhold_days = 7\n{tables}",
        garage.replica_toml(
            "offsite",
            secrets,
            &format!("concurrency = 2\nattempts = 2\nbackoff_ms = 100\npart_size_mib = 5\n{debounce}{extra}")
        )
    )
}

fn download(s: &TestServer, backup: &str) -> Vec<u8> {
    let res = s.get_raw(&format!("/api/backup/{backup}/download"));
    assert_eq!(res.status().as_u16(), 200);
    res.bytes().expect("body").to_vec()
}

/// A backup as compared: id, recycled, downloaded bytes.
type BackupSeen = (String, bool, Vec<u8>);
/// A folder's files: relative path and bytes.
type Tree = Vec<(String, Vec<u8>)>;

/// Every target with its backups (id, name, recycled) and each backup's downloaded bytes.
fn everything(s: &TestServer) -> Vec<(String, Value, Vec<BackupSeen>)> {
    let (status, reply) = s.get("/api/target?page=1");
    assert_eq!(status, 200, "{reply}");
    let mut out = Vec::new();
    for t in reply["targets"].as_array().expect("targets") {
        let id = t["id"].as_str().expect("id").to_string();
        let (target, backups) = s.target(&id);
        let mut bs: Vec<BackupSeen> = backups
            .iter()
            .map(|b| {
                let bid = b["id"].as_str().expect("backup id").to_string();
                let bytes = download(s, &bid);
                (bid, b["is_recycled"].as_bool().unwrap_or(false), bytes)
            })
            .collect();
        bs.sort();
        out.push((id, target, bs));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn an_encrypted_replica_on_garage_syncs_heals_resumes_and_restores_a_bare_machine() {
    let Some(mut garage) = Garage::start_or_skip("the replica scenario") else { return };
    let secrets = tempfile::tempdir().expect("secrets dir");
    let toml = config(&garage, secrets.path(), "bandwidth_limit = 4000000\nverify_period_days = 0.0001\n");
    let mut s = TestServer::start_with_config(&toml);

    // A sync before `replica init` says what to do.
    let (status, msg) = force(&s, "replica_job");
    assert_ne!(status, 200);
    assert!(msg.contains("bakch replica init offsite"), "{msg}");

    // init: the key goes into the bucket, encrypted with the passphrase; shown once.
    let out = ok(&replica_cmd(&s.data_path(), &["init", "offsite"], &format!("{PASSPHRASE}\n")));
    assert!(out.contains("RECOVERY") && out.contains("bakch replica restore"), "{out}");
    assert_eq!(garage.list().iter().map(|o| o.0.as_str()).collect::<Vec<_>>(), ["bakch-replica-key.age"]);
    let again = replica_cmd(&s.data_path(), &["init", "offsite"], &format!("{PASSPHRASE}\n"));
    assert!(!again.status.success(), "a second init must refuse");

    // Varied data: text with a marker, a 7 MiB file (multipart), an empty file, nested folders,
    // and a single-file target.
    let marker = "PLAINTEXT-MARKER-a1b2c3";
    let big = random_bytes(7 << 20);
    let multi = s.create_target(json!({"name": "photos of the garden", "name_template": "garden-$I"}));
    s.upload_ok(
        &multi,
        &[("notes.txt", format!("{marker} secret notes").as_bytes()), ("big.bin", &big), ("empty", b"")],
    );
    s.upload_ok(&multi, &[("notes.txt", format!("{marker} second version").as_bytes()), ("big.bin", &big)]);
    let single = s.create_target(json!({"name": "database dump", "backup_type": "single", "name_template": "db-$I"}));
    s.upload_ok(&single, &[("dump.sql", format!("{marker} INSERT INTO t VALUES (1);").as_bytes())]);

    let first = force_ok(&s, "replica_job");
    assert!(figure(&first, "uploaded") > 0, "{first}");
    let again = force_ok(&s, "replica_job");
    assert_eq!(figure(&again, "uploaded"), 0, "an unchanged store sends nothing: {again}");

    // Only ciphertext under opaque names: no name holds a content hash, a target or file name;
    // every object is an age file without a plaintext byte of ours.
    let objects = garage.list();
    let hashes: Vec<String> = [big.as_slice(), format!("{marker} secret notes").as_bytes()]
        .iter()
        .map(|b| blake3::hash(b).to_hex().to_string())
        .collect();
    for (name, _) in &objects {
        let opaque = name == "bakch-replica-key.age"
            || name
                .strip_prefix("b/")
                .or(name.strip_prefix("m/"))
                .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(opaque, "object name {name} is not opaque");
        assert!(hashes.iter().all(|h| !name.contains(&h[..16])), "{name} reveals a content hash");
        let bytes = garage.get(name);
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "{name} is not an age file");
        for plain in [marker.as_bytes(), b"garden", b"notes.txt", multi.as_bytes(), &big[1000..1064]] {
            assert!(!bytes.windows(plain.len()).any(|w| w == plain), "{name} holds plaintext");
        }
    }

    // Openable without bakch: the passphrase opens the key object (age's scrypt recipient),
    // the key (an age identity file) opens a blob object.
    let key_text = {
        let sealed = garage.get("bakch-replica-key.age");
        let id = age::scrypt::Identity::new(age::secrecy::SecretString::from(PASSPHRASE.to_string()));
        let dec = age::Decryptor::new(&sealed[..]).expect("age header");
        let mut text = String::new();
        dec.decrypt(std::iter::once(&id as &dyn age::Identity)).expect("passphrase").read_to_string(&mut text).unwrap();
        text
    };
    let identities =
        age::IdentityFile::from_buffer(key_text.as_bytes()).expect("identity file").into_identities().unwrap();
    let biggest = objects.iter().filter(|o| o.0.starts_with("b/")).max_by_key(|o| o.1).expect("a blob object");
    let plain = {
        let sealed = garage.get(&biggest.0);
        let dec = age::Decryptor::new(&sealed[..]).expect("age header");
        let mut out = Vec::new();
        dec.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .expect("key")
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    assert!(plain == big, "the largest blob object decrypts to the 7 MiB file");

    // Deletions are delayed: delete and recycle backups, collect, sync: nothing leaves the bucket.
    let (_, backups) = s.target(&multi);
    let oldest = backups.iter().min_by_key(|b| b["created_at"].as_str().map(str::to_string)).expect("backup");
    let oldest_id = oldest["id"].as_str().unwrap().to_string();
    assert_eq!(s.delete(&format!("/api/backup/{oldest_id}"), json!({"delete_files": true})).0, 200);
    let (_, single_backups) = s.target(&single);
    let single_backup = single_backups[0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.patch(&format!("/api/backup/{single_backup}"), json!({"is_recycled": true})).0, 200);
    force_ok(&s, "gc_job");
    let after = force_ok(&s, "replica_job");
    assert!(figure(&after, "unneeded") > 0, "the deleted backup's manifest is unneeded now: {after}");
    assert_eq!(figure(&after, "removed"), 0, "{after}");
    let kept = garage.list();
    for o in &objects {
        assert!(kept.contains(o), "{} left the bucket before the delete delay", o.0);
    }

    // Verification: a damaged and a missing object are found and sent again.
    let blob_objects: Vec<&(String, u64)> = kept.iter().filter(|o| o.0.starts_with("b/")).collect();
    let (damaged, missing) = (&blob_objects[0].0, &blob_objects[1].0);
    let good_damaged = garage.get(damaged);
    garage.put(damaged, b"age-encryption.org/v1\nnot really");
    let good_missing_size = blob_objects[1].1;
    garage.delete(missing);
    let verified = force_ok(&s, "replica_verify_job");
    assert!(verified.contains("2 missing or wrong"), "{verified}");
    let healed = garage.list();
    assert!(
        // Not to the byte: age adds a random-length grease stanza to each header.
        healed.iter().any(|o| &o.0 == missing && o.1.abs_diff(good_missing_size) < 512),
        "the missing object {missing} ({good_missing_size} bytes) is back: {healed:?}"
    );
    assert!(garage.get(damaged).len().abs_diff(good_damaged.len()) < 512, "the damaged object was replaced");
    assert!(force_ok(&s, "replica_verify_job").contains("0 missing or wrong"));

    // Self-healing: a blob damaged on disk (and so the file placed from it) comes back from the
    // replica at the integrity check.
    let (_, backups) = s.target(&multi);
    let newest = backups[0]["id"].as_str().unwrap().to_string();
    let before = download(&s, &newest);
    let blob =
        s.data_path().join("store").join(&blake3::hash(&big).to_hex()[..2]).join(&blake3::hash(&big).to_hex()[2..]);
    let mut perms = std::fs::metadata(&blob).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&blob, perms).unwrap();
    std::fs::OpenOptions::new().write(true).open(&blob).unwrap().write_all(b"ransomware was here").unwrap();
    let check = force_ok(&s, "integrity_check_job");
    assert!(check.contains("all healthy") && check.contains("repaired 1"), "{check}");
    assert_eq!(download(&s, &newest), before, "the backup is whole again");
    assert_eq!(std::fs::read(&blob).unwrap(), big);

    // A sync cut by stopping Garage resumes without sending again what was done.
    let target3 = s.create_target(json!({"name": "many files", "name_template": "many-$I"}));
    let files: Vec<(String, Vec<u8>)> = (0..12).map(|i| (format!("f{i}.bin"), random_bytes(1 << 20))).collect();
    let parts: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    s.upload_ok(&target3, &parts);
    let before_cut = garage.list().len();
    let url = format!("{}/api/jobs/force_run/replica_job", s.url);
    let cut = std::thread::spawn(move || reqwest::blocking::get(url).map(|r| r.status().as_u16()).unwrap_or(0));
    let seen = poll("some of the new objects in the bucket", Duration::from_secs(120), || {
        let n = garage.list().len();
        (n >= before_cut + 3).then_some(n)
    });
    garage.stop();
    assert_ne!(cut.join().unwrap(), 200, "the cut sync fails");
    let (_, reply) = s.get("/api/replicas");
    assert!(reply["replicas"][0]["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{reply}");
    garage.resume();
    let present = garage.list().len();
    assert!(present >= seen, "what was done stays done");
    let resumed = force_ok(&s, "replica_job");
    let sent_again = figure(&resumed, "uploaded");
    let already = figure(&resumed, "already");
    assert!(sent_again <= 14 - (seen - before_cut) as u64, "objects sent again after the cut: {resumed}");
    assert!(already >= (present - 1) as u64 - figure(&resumed, "unneeded"), "{resumed}");

    // Disaster: the server, its data folder and its target folders are gone.
    let originals = everything(&s);
    assert_eq!(originals.len(), 3);
    let folders: Vec<(PathBuf, Tree)> = originals
        .iter()
        .map(|(_, t, _)| {
            let p = PathBuf::from(t["location"].as_str().unwrap());
            let contents = tree(&p);
            (p, contents)
        })
        .collect();
    let recycled = tree(&s.data_path().join("recycle_bin"));
    s.kill();
    let data = s.data_path();
    std::fs::rename(&data, data.with_extension("lost")).unwrap();
    for (p, _) in &folders {
        std::fs::remove_dir_all(p).unwrap();
    }

    // The README's steps: restore into an empty folder with the passphrase, put the config
    // back, take the replica's key again, start.
    let restored = ok(&Command::new(BIN)
        .args(["replica", "restore", "--endpoint", &garage.endpoint(), "--bucket", &garage.bucket])
        .args(["--access-key-id", &garage.key_id, "--secret-key-file"])
        .arg(secrets.path().join("offsite.secret"))
        .arg("--to")
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(format!("{PASSPHRASE}\n").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap());
    assert!(restored.contains("3 target(s), 3 backup(s), 1 held backup(s)"), "{restored}");
    for (p, contents) in &folders {
        assert_eq!(&tree(p), contents, "{} is back byte-identical", p.display());
    }
    assert_eq!(tree(&data.join("recycle_bin")), recycled);
    std::fs::copy(data.with_extension("lost").join("config.toml"), data.join("config.toml")).unwrap();
    let joined = ok(&replica_cmd(&data, &["init", "offsite"], &format!("{PASSPHRASE}\n")));
    assert!(joined.contains("joined"), "{joined}");
    s.restart();
    assert_eq!(everything(&s), originals, "every target and backup is back, byte-identical");
    let (_, held) = s.get("/api/held");
    assert_eq!(held["held"][0]["id"], oldest_id, "the deleted backup is held again: {held}");
    let after_restore = force_ok(&s, "replica_job");
    assert_eq!(figure(&after_restore, "uploaded"), 0, "a restored server sends nothing again: {after_restore}");
}

#[test]
fn unneeded_objects_leave_only_after_the_delete_delay_and_metrics_show_the_replica() {
    let Some(garage) = Garage::start_or_skip("the delete delay test") else { return };
    let secrets = tempfile::tempdir().expect("secrets dir");
    // The delay is a local setting; here a few seconds, so the removal can be seen.
    let toml = config(&garage, secrets.path(), "delete_delay_days = 0.00005\n");
    let s = TestServer::start_with_config(&toml);
    ok(&replica_cmd(&s.data_path(), &["init", "offsite"], &format!("{PASSPHRASE}\n")));
    let t = s.create_target(json!({"name": "short lived"}));
    s.upload_ok(&t, &[("a.txt", b"some content that will be deleted")]);
    force_ok(&s, "replica_job");
    let full = garage.list();
    let (_, backups) = s.target(&t);
    let b = backups[0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.delete(&format!("/api/backup/{b}"), json!({"delete_files": true})).0, 200);
    let first = force_ok(&s, "replica_job");
    assert_eq!(figure(&first, "removed"), 0, "not before the delay: {first}");
    assert!(garage.list().iter().all(|o| full.iter().any(|f| f.0 == o.0) || o.0.starts_with("m/")));
    let removed = poll("the delay to pass", Duration::from_secs(60), || {
        let outcome = force_ok(&s, "replica_job");
        (figure(&outcome, "removed") > 0).then_some(outcome)
    });
    assert!(removed.contains("removed"), "{removed}");
    let (status, page) = s.get("/api/replicas");
    assert_eq!(status, 200);
    assert!(page["replicas"][0]["last_success"].is_string(), "{page}");
    let metrics = s.get_raw("/metrics").text().unwrap();
    assert!(metrics.contains("bakch_replica_last_success_timestamp_seconds{replica=\"offsite\"}"), "{metrics}");
    assert!(metrics.contains("bakch_replica_pending_bytes"), "{metrics}");
}

/// A tiny HTTP receiver that answers 200 to every request and keeps each body.
fn webhook_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let port = listener.local_addr().expect("address").port();
    let bodies: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let Ok(clone) = stream.try_clone() else { continue };
            let mut reader = std::io::BufReader::new(clone);
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim_end() != "" {
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                if let Ok(v) = serde_json::from_slice(&body) {
                    kept.lock().expect("inbox").push(v);
                }
            }
        }
    });
    (port, bodies)
}

#[test]
fn a_new_backup_starts_a_sync_soon_and_a_failing_replica_is_told_once() {
    let Some(mut garage) = Garage::start_or_skip("the debounce and notification test") else { return };
    let secrets = tempfile::tempdir().expect("secrets dir");
    let (port, inbox) = webhook_receiver();
    let notify = format!(
        "[[notify]]\nkind = \"webhook\"\nname = \"hook\"\nurl = \"http://127.0.0.1:{port}/\"\nevents = [\"replica_failed\"]\n"
    );
    let s = TestServer::start_with_config(&config_with(&garage, secrets.path(), "debounce_secs = 1\n", &notify));
    ok(&replica_cmd(&s.data_path(), &["init", "offsite"], &format!("{PASSPHRASE}\n")));
    let t = s.create_target(json!({"name": "soon"}));
    s.upload_ok(&t, &[("a.txt", b"a new backup")]);
    // No forced run: the upload itself starts a sync a second later.
    poll("the debounced sync", Duration::from_secs(60), || {
        let (_, reply) = s.get("/api/replicas");
        reply["replicas"][0]["last_success"].as_str().map(|_| ())
    });
    assert!(garage.list().iter().any(|o| o.0.starts_with("b/")), "the new backup's content is in the bucket");

    garage.stop();
    assert_ne!(force(&s, "replica_job").0, 200);
    assert_ne!(force(&s, "replica_job").0, 200);
    let events = poll("the replica_failed notification", Duration::from_secs(60), || {
        let got = inbox.lock().expect("inbox").clone();
        (!got.is_empty()).then_some(got)
    });
    assert_eq!(events[0]["event"], "replica_failed", "{events:?}");
    assert!(events[0]["reason"].as_str().is_some_and(|r| r.contains("sync")), "{events:?}");
    let (_, jobs) = s.get("/api/jobs");
    let deliveries = jobs["delayed"].as_array().expect("jobs").iter().filter(|j| j["name"] == "notify_job").count();
    assert_eq!(deliveries, 1, "two failures in a row are told once: {jobs}");
    let (_, reply) = s.get("/api/replicas");
    assert_eq!(reply["replicas"][0]["failing"], true, "{reply}");

    garage.resume();
    force_ok(&s, "replica_job");
    let (_, reply) = s.get("/api/replicas");
    assert_eq!(reply["replicas"][0]["failing"], false, "{reply}");
}
