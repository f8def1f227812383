//! bakch touches only what it made (issue 11): start-up recovery removes only names carrying
//! this installation's token; target folders never overlap a backup or the data folder; moves
//! never adopt or replace a file that is not bakch's; a target deleted under queued uploads
//! leaves nothing behind.

mod common;

use std::path::{Path, PathBuf};

use common::{TestServer, names, tar_gz, tree};
use serde_json::json;

/// Writes `bytes` at `path`, creating its folders.
fn plant(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create folders");
    std::fs::write(path, bytes).expect("plant a file");
}

fn token(s: &TestServer) -> String {
    std::fs::read_to_string(s.data_path().join("install_token")).expect("install_token").trim().to_string()
}

fn location_of(s: &TestServer, target: &str) -> PathBuf {
    PathBuf::from(s.target(target).0["location"].as_str().expect("location"))
}

/// The one backup of `target`: (its JSON, the path of its files).
fn only_backup(s: &TestServer, target: &str) -> (serde_json::Value, PathBuf) {
    let (t, backups) = s.target(target);
    assert_eq!(backups.len(), 1, "{backups:?}");
    let b = backups[0].clone();
    let dir = if b["is_recycled"] == true {
        s.data_path().join("recycle_bin")
    } else {
        PathBuf::from(t["location"].as_str().expect("location"))
    };
    let id = b["id"].as_str().expect("id");
    let name = names(&dir).into_iter().find(|n| n.contains(id)).expect("backup files");
    (b, dir.join(name))
}

fn download(s: &TestServer, backup_id: &str) -> Vec<u8> {
    let resp = s.get_raw(&format!("/api/backup/{backup_id}/download"));
    assert_eq!(resp.status().as_u16(), 200, "download of {backup_id}");
    resp.bytes().expect("body").to_vec()
}

#[test]
fn recovery_removes_only_names_with_this_installations_token() {
    let mut s = TestServer::start();
    let target = s.create_target(json!({}));
    s.upload_ok(&target, &[("a.txt", b"alpha"), ("b.txt", b"beta")]);
    let folder = location_of(&s, &target);
    let tok = token(&s);
    let uuid = "6f1c1d2e-5b2a-4e1f-9a0b-0c1d2e3f4a5b";
    // The user's files, some of them named like bakch's own or another installation's.
    let foreign = [
        ".bakch-notes.txt".to_string(),
        ".bakch-archive/inner.txt".to_string(),
        ".bakch-data/bakch.sqlite3".to_string(),
        format!(".bakch-staging-{uuid}/f"),
        ".bakch-trash-0123456789abcdef0123456789abcdef/f".to_string(),
        format!(".bakch-fedcba9876543210-staging-{uuid}/f"),
        format!(".bakch-{tok}-notes.txt"),
        format!(".bakch-{tok}-staging-not-a-uuid/f"),
        "notes.txt".to_string(),
    ];
    for (i, rel) in foreign.iter().enumerate() {
        plant(&folder.join(rel), format!("user file {i}").as_bytes());
    }
    plant(&s.data_path().join("recycle_bin").join(".bakch-mine.txt"), b"not bakch's");
    // What a crash can leave of bakch's own: a staging name no job builds, trash and a probe.
    let own = [
        format!(".bakch-{tok}-staging-{uuid}/half.txt"),
        format!(".bakch-{tok}-trash-0123456789abcdef0123456789abcdef/x"),
        format!(".bakch-{tok}-probe-fedcba9876543210fedcba9876543210"),
    ];
    for rel in &own {
        plant(&folder.join(rel), b"left by a crash");
    }
    let before = tree(&folder);

    s.restart();

    let after = tree(&folder);
    for (i, rel) in foreign.iter().enumerate() {
        let kept = after.iter().find(|(p, _)| p == rel);
        assert_eq!(kept.map(|(_, b)| b.clone()), Some(format!("user file {i}").into_bytes()), "{rel} was touched");
    }
    assert!(s.data_path().join("recycle_bin").join(".bakch-mine.txt").exists());
    for rel in &own {
        let top = rel.split('/').next().expect("name");
        assert!(!folder.join(top).exists(), "bakch's own leftover {top} survived the restart");
    }
    let expected: Vec<_> = before.into_iter().filter(|(p, _)| !own.contains(p)).collect();
    assert_eq!(after, expected, "recovery changed something that is not its own");
    let (_, log) = s.get("/api/log?tail=0");
    let log = log["log"].as_str().unwrap_or_default();
    assert!(
        log.contains("a writability probe (bakch's own name, with this installation's token)"),
        "recovery says why a removed name was its own: {log}"
    );
    let (status, _) = s.upload(&target, &[("c.txt", b"gamma")], "1");
    assert_eq!(status, 200);
}

#[test]
fn target_folders_never_overlap_a_backup_or_the_data_folder() {
    let s = TestServer::start();
    let a = s.create_target(json!({"location": s.location("a").to_string_lossy()}));
    s.upload_ok(&a, &[("t.tar.gz", &tar_gz(&[("d/f.txt", b"files of a")]))]);
    let (backup, backup_dir) = only_backup(&s, &a);
    let backup_id = backup["id"].as_str().expect("id").to_string();
    std::os::unix::fs::symlink(&backup_dir, s.location("link")).expect("symlink");
    let data_parent = s.data_path().parent().expect("parent").to_path_buf();

    let refused = |loc: PathBuf, why: &str| {
        let (status, body) = s.post("/api/target", common::target_body(&s, json!({"location": loc.to_string_lossy()})));
        assert_eq!(status, 400, "{why}: {} was accepted: {body}", loc.display());
        assert!(
            !loc.exists() || loc == data_parent || loc == backup_dir,
            "{why}: a refused create made {}",
            loc.display()
        );
    };
    refused(backup_dir.clone(), "a backup's own folder");
    refused(backup_dir.join("inside"), "inside another target's backup");
    refused(s.location("link").join("inside"), "inside a backup through a symlink");
    refused(s.data_path().join("recycle_bin").join("x"), "inside the recycle bin");
    refused(data_parent.clone(), "around the data folder");
    std::os::unix::fs::symlink(s.data_path(), s.location("datalink")).expect("symlink");
    refused(s.location("datalink").join("x"), "inside the data folder through a symlink");

    // Moving a target into its own backup, or another into it, is refused and changes nothing.
    let b = s.create_target(json!({"location": s.location("b").to_string_lossy()}));
    let inside = backup_dir.join("d").join("new");
    for (target, why) in [(&a, "its own backup"), (&b, "another target's backup")] {
        let (status, body) = s.patch(&format!("/api/target/{target}"), json!({"location": inside.to_string_lossy()}));
        assert_eq!(status, 400, "moving a target into {why} was accepted: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(&backup_id), "{body}");
    }
    assert!(!inside.exists(), "a refused edit left a folder behind");
    assert_eq!(tree(&backup_dir), vec![("d/f.txt".to_string(), b"files of a".to_vec())]);
    assert_eq!(location_of(&s, &a), s.location("a"));

    // A backup's name never becomes another target's location, even when that folder went
    // missing: the backup gets the next free name instead. `$D` names are predictable, so a
    // target waits at each name the next seconds would give, and then its folder is removed.
    let d = s.create_target(json!({"location": s.location("d").to_string_lossy(), "name_template": "d-$D"}));
    let now = chrono::Utc::now();
    let squatted: Vec<String> =
        (-1..20).map(|k| format!("d-{}", (now + chrono::Duration::seconds(k)).format("%Y-%m-%d_%H-%M-%S"))).collect();
    for name in &squatted {
        s.create_target(json!({"location": s.location("d").join(name).to_string_lossy()}));
        std::fs::remove_dir(s.location("d").join(name)).expect("remove by hand");
    }
    s.upload_ok(&d, &[("f.bin", b"dated")]);
    let placed = names(&s.location("d"));
    assert_eq!(placed.len(), 1, "{placed:?}");
    let placed = &placed[0];
    assert!(placed.ends_with("-2"), "the backup took another target's location as its name: {placed}");
    assert!(squatted.iter().any(|n| placed.starts_with(n.as_str())), "the test's clock window missed: {placed}");
}

#[test]
fn moves_never_adopt_or_replace_files_that_are_not_bakchs() {
    let s = TestServer::start();
    let t = s.create_target(json!({"backup_type": "single", "location": s.location("s1").to_string_lossy()}));
    s.upload_ok(&t, &[("db.sql", b"the backup")]);
    let (backup, path) = only_backup(&s, &t);
    let id = backup["id"].as_str().expect("id").to_string();
    let name = path.file_name().expect("name").to_string_lossy().into_owned();
    // The user already keeps a file of that very name in the folder the target moves to.
    let squatted = s.location("s2").join(&name);
    plant(&squatted, b"the user's own file");

    let (status, body) = s.patch(&format!("/api/target/{t}"), json!({"location": s.location("s2").to_string_lossy()}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(std::fs::read(&squatted).expect("foreign file"), b"the user's own file");
    let (_, moved) = only_backup(&s, &t);
    assert_ne!(moved, squatted, "the backup adopted the user's file");
    assert_eq!(std::fs::read(&moved).expect("moved backup"), b"the backup");
    assert!(!path.exists(), "the old copy stayed behind");
    assert_eq!(download(&s, &id), b"the backup");

    // Recycle, let the user take the name, restore: a free name again, the user's file kept.
    let (status, _) = s.patch(&format!("/api/backup/{id}"), json!({"is_recycled": true}));
    assert_eq!(status, 200);
    let restored_name = moved.file_name().expect("name").to_string_lossy().into_owned();
    plant(&s.location("s2").join(&restored_name), b"another user file");
    let (status, body) = s.patch(&format!("/api/backup/{id}"), json!({"is_recycled": false}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(std::fs::read(s.location("s2").join(&restored_name)).expect("kept"), b"another user file");
    assert_eq!(download(&s, &id), b"the backup");

    // Deleting the backup with its files removes its own name only.
    let (status, _) = s.delete(&format!("/api/backup/{id}"), json!({"delete_files": true}));
    assert_eq!(status, 200);
    let mut left = names(&s.location("s2"));
    left.sort();
    let mut expected = vec![name.clone(), restored_name.clone()];
    expected.sort();
    assert_eq!(left, expected, "only the user's files remain");
}

#[test]
fn a_target_deleted_under_queued_uploads_leaves_no_files_and_no_false_finished_jobs() {
    let s = TestServer::start_with_config("workers = 2\n");
    let t = s.create_target(json!({"backup_type": "single", "location": s.location("t").to_string_lossy()}));
    let jobs: Vec<i64> = (0..40)
        .map(|i| {
            let (status, body) = s.upload(&t, &[("f.bin", format!("upload {i}").as_bytes())], "1");
            assert_eq!(status, 200, "{body}");
            body["job_id"].as_i64().expect("job id")
        })
        .collect();
    let (status, body) = s.delete(&format!("/api/target/{t}"), json!({"delete_files": true}));
    assert_eq!(status, 200, "{body}");
    let mut failed = 0;
    for id in jobs {
        let job = s.wait_job(id);
        if job["status"] == "ERROR" {
            failed += 1;
            let error = job["error"].as_str().unwrap_or_default();
            assert!(error.contains("target was deleted"), "job {id} failed for another reason: {job}");
        }
    }
    assert_eq!(names(&s.location("t")), Vec::<String>::new(), "files of a deleted target's backups remain");
    eprintln!("{failed} of 40 upload jobs found their target deleted");
}

#[test]
fn deleting_a_backup_removes_only_what_bakch_placed_there() {
    let s = TestServer::start();
    let t = s.create_target(json!({"backup_type": "single", "location": s.location("r").to_string_lossy()}));
    let multi = s.create_target(json!({"location": s.location("m").to_string_lossy()}));
    s.upload_ok(&t, &[("a.txt", b"bakch's copy")]);
    s.upload_ok(&multi, &[("x.txt", b"x"), ("y.txt", b"y")]);
    let (single, single_path) = only_backup(&s, &t);
    let (tree, tree_path) = only_backup(&s, &multi);
    // The user replaces both backups by hand with files of their own under the same names.
    std::fs::remove_file(&single_path).expect("remove by hand");
    std::fs::write(&single_path, b"the user's own file").expect("replace by hand");
    std::fs::remove_dir_all(&tree_path).expect("remove by hand");
    plant(&tree_path.join("mine.txt"), b"the user's own folder");
    for (id, path) in [(&single, &single_path), (&tree, &tree_path)] {
        let id = id["id"].as_str().expect("id");
        let (status, body) = s.delete(&format!("/api/backup/{id}"), json!({"delete_files": true}));
        assert_eq!(status, 200, "{body}");
        assert!(path.exists(), "deleting backup {id} removed {} that the user put there", path.display());
    }
    assert_eq!(std::fs::read(&single_path).expect("kept"), b"the user's own file");
    assert_eq!(std::fs::read(tree_path.join("mine.txt")).expect("kept"), b"the user's own folder");
    // A backup still in place, and one moved by an edit, go as before.
    s.upload_ok(&t, &[("b.txt", b"second")]);
    let (status, _) = s.patch(&format!("/api/target/{t}"), json!({"location": s.location("r2").to_string_lossy()}));
    assert_eq!(status, 200);
    let (moved, moved_path) = only_backup(&s, &t);
    let (status, _) =
        s.delete(&format!("/api/backup/{}", moved["id"].as_str().expect("id")), json!({"delete_files": true}));
    assert_eq!(status, 200);
    assert!(!moved_path.exists(), "a moved backup's own files stayed after its delete");
}
