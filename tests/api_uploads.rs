//! Uploads over HTTP: single and multi-file targets, archives, deduplication, download,
//! and hostile or malformed input.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{TestServer, names, raw_tar, tar_gz, tree};
use reqwest::blocking::multipart;
use serde_json::json;

#[test]
fn single_file_keeps_its_extension_and_identical_content_is_one_inode() {
    let s = TestServer::start();
    let id = s.create_target(json!({"backup_type": "single", "name_template": "db-$M-$I"}));
    let (t, _) = s.target(&id);
    let loc = Path::new(t["location"].as_str().unwrap()).to_path_buf();
    s.upload_ok(&id, &[("dump.sql.gz", b"same bytes")]);
    s.upload_ok(&id, &[("dump.sql.gz", b"same bytes")]);
    let (_, backups) = s.target(&id);
    assert_eq!(backups.len(), 2);
    for b in &backups {
        let path = loc.join(format!("db-manual-{}.gz", b["id"].as_str().unwrap()));
        assert_eq!(std::fs::read(&path).unwrap(), b"same bytes", "{}", path.display());
        assert_eq!(b["filesize"], 10);
        assert_eq!(b["manual"], true);
        assert_eq!(b["is_recycled"], false);
        assert!(b["created_at"].as_str().unwrap().ends_with("+00:00"));
        assert_eq!(b["hash"].as_str().unwrap().len(), 64);
    }
    assert_eq!(backups[0]["hash"], backups[1]["hash"]);
    let inodes: Vec<u64> = names(&loc).iter().map(|n| std::fs::metadata(loc.join(n)).unwrap().ino()).collect();
    assert_eq!(inodes.len(), 2);
    assert_eq!(inodes[0], inodes[1], "identical content must share one inode");
    let (_, stats) = s.get("/api/stats");
    assert_eq!((stats["total_backups"].clone(), stats["total_target_size"].clone()), (json!(2), json!(20)));
    assert_eq!((stats["disk_used"].clone(), stats["dedup_saved"].clone()), (json!(10), json!(10)));
    // manual=0 gives "auto".
    let (_, reply) = s.upload(&id, &[("x.bin", b"other")], "False");
    s.wait_job(reply["job_id"].as_i64().unwrap());
    assert!(names(&loc).iter().any(|n| n.starts_with("db-auto-") && n.ends_with(".bin")));
}

#[test]
fn multi_file_target_takes_plain_files_and_archives() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name_template": "m-$I"}));
    let (t, _) = s.target(&id);
    let loc = Path::new(t["location"].as_str().unwrap()).to_path_buf();

    s.upload_ok(&id, &[("a.txt", b"A"), ("b.txt", b"B")]);
    let archive = tar_gz(&[("site/index.html", b"<h1>hi</h1>"), ("site/img/logo.png", b"PNG"), ("README", b"read me")]);
    s.upload_ok(&id, &[("site.tar.gz", &archive)]);
    let mut zip_bytes = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut zip_bytes);
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("docs/note.txt", opts).unwrap();
        std::io::Write::write_all(&mut z, b"zipped").unwrap();
        z.finish().unwrap();
    }
    s.upload_ok(&id, &[("docs.zip", zip_bytes.get_ref())]);

    let (_, backups) = s.target(&id);
    assert_eq!(backups.len(), 3);
    let mut trees: Vec<Vec<(String, Vec<u8>)>> =
        backups.iter().map(|b| tree(&loc.join(format!("m-{}", b["id"].as_str().unwrap())))).collect();
    trees.sort();
    let expect = |v: &[(&str, &[u8])]| v.iter().map(|(p, b)| (p.to_string(), b.to_vec())).collect::<Vec<_>>();
    assert!(trees.contains(&expect(&[("a.txt", b"A"), ("b.txt", b"B")])), "{trees:?}");
    assert!(trees.contains(&expect(&[
        ("README", b"read me"),
        ("site/img/logo.png", b"PNG"),
        ("site/index.html", b"<h1>hi</h1>")
    ])));
    assert!(trees.contains(&expect(&[("docs/note.txt", b"zipped")])));
    // No staging or temp names are left in the target folder.
    assert!(names(&loc).iter().all(|n| n.starts_with("m-")), "{:?}", names(&loc));
}

/// The tar of (path, bytes) entries, uncompressed.
fn plain_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, *bytes).expect("tar entry");
    }
    builder.into_inner().expect("tar")
}

#[test]
fn every_tar_compression_python_reads_is_unpacked() {
    use std::io::Write;
    let s = TestServer::start();
    let id = s.create_target(json!({"name_template": "z-$I"}));
    let (t, _) = s.target(&id);
    let loc = Path::new(t["location"].as_str().unwrap()).to_path_buf();
    let tar = plain_tar(&[("dir/a.txt", b"alpha"), ("b.txt", b"beta")]);
    let bz2 = {
        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        enc.write_all(&tar).unwrap();
        enc.finish().unwrap()
    };
    let lzma = {
        let stream = xz2::stream::Stream::new_lzma_encoder(&xz2::stream::LzmaOptions::new_preset(1).unwrap()).unwrap();
        let mut enc = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
        enc.write_all(&tar).unwrap();
        enc.finish().unwrap()
    };
    let xz = {
        let mut enc = xz2::write::XzEncoder::new(Vec::new(), 1);
        enc.write_all(&tar).unwrap();
        enc.finish().unwrap()
    };
    let expect: Vec<(String, Vec<u8>)> =
        vec![("b.txt".into(), b"beta".to_vec()), ("dir/a.txt".into(), b"alpha".to_vec())];
    for (name, bytes) in [
        ("a.tar.bz2", &bz2),
        ("b.TBZ2", &bz2),
        ("c.tbz", &bz2),
        ("d.tar.lzma", &lzma),
        ("e.tlz", &lzma),
        ("f.txz", &xz),
    ] {
        let job = s.upload_ok(&id, &[(name, bytes)]);
        let backup = job["backup_id"].as_str().expect("backup_id");
        assert_eq!(tree(&loc.join(format!("z-{backup}"))), expect, "{name} was not unpacked");
    }
    // A single-file target keeps such a name's whole compound extension.
    let single = s.create_target(json!({"backup_type": "single", "name_template": "s-$I"}));
    let job = s.upload_ok(&single, &[("site.tar.bz2", &bz2)]);
    let (t, _) = s.target(&single);
    let kept =
        Path::new(t["location"].as_str().unwrap()).join(format!("s-{}.tar.bz2", job["backup_id"].as_str().unwrap()));
    assert_eq!(std::fs::read(&kept).expect("single-file backup"), bz2);
}

#[test]
fn download_streams_the_file_or_a_tar_of_the_tree() {
    let s = TestServer::start();
    let single = s.create_target(json!({"backup_type": "single", "name_template": "one-$I"}));
    s.upload_ok(&single, &[("photo.jpg", b"jpeg bytes")]);
    let (_, backups) = s.target(&single);
    let bid = backups[0]["id"].as_str().unwrap();
    let resp = s.get_raw(&format!("/api/backup/{bid}/download"));
    assert_eq!(resp.status().as_u16(), 200);
    let cd = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert_eq!(cd, format!("attachment; filename=\"one-{bid}.jpg\""));
    assert_eq!(resp.bytes().unwrap().as_ref(), b"jpeg bytes");

    let multi = s.create_target(json!({"name_template": "tree-$I"}));
    s.upload_ok(&multi, &[("dir.tar.gz", &tar_gz(&[("d/x", b"xx"), ("d/sub/y", b"yyy")]))]);
    let (_, backups) = s.target(&multi);
    let bid = backups[0]["id"].as_str().unwrap();
    let resp = s.get_raw(&format!("/api/backup/{bid}/download"));
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-disposition"].to_str().unwrap().ends_with(&format!("filename=\"tree-{bid}.tar\"")));
    let bytes = resp.bytes().unwrap();
    let got = common::tar_entries(&bytes);
    assert_eq!(got, vec![("d/sub/y".to_string(), b"yyy".to_vec()), ("d/x".to_string(), b"xx".to_vec())]);
}

#[test]
fn bad_uploads_get_clear_errors_and_change_nothing() {
    let s = TestServer::start();
    let single = s.create_target(json!({"backup_type": "single"}));
    let (status, reply) = s.upload(&single, &[("a", b"1"), ("b", b"2")], "1");
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = s.upload("no-such-target", &[("a", b"1")], "1");
    assert_eq!(status, 404, "{reply}");
    let (status, reply) = s.upload(&single, &[], "1");
    assert_eq!((status, reply["message"].clone()), (400, json!("Parameter 'backup_file' required")));
    let form = multipart::Form::new().part("backup_file", multipart::Part::bytes(b"x".to_vec()).file_name("x"));
    let (status, reply) = s.multipart(&format!("/api/target/{single}/upload"), form);
    assert_eq!((status, reply["message"].clone()), (400, json!("Parameter 'manual' required")));
    let (status, _) = s.upload(&single, &[("a", b"1")], "perhaps");
    assert_eq!(status, 400);
    let (status, reply) = s.raw("POST", &format!("/api/target/{single}/upload"), "application/json", b"{}");
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = s.raw(
        "POST",
        &format!("/api/target/{single}/upload"),
        "multipart/form-data; boundary=xyz",
        b"--xyz\r\ngarbage",
    );
    assert_eq!(status, 400, "{reply}");
    let (_, jobs) = s.get("/api/jobs");
    assert!(jobs["delayed"].as_array().unwrap().is_empty(), "a refused upload queued a job: {jobs}");
    assert!(names(&s.data_path().join("store/tmp")).is_empty(), "temp files were left behind");
}

#[test]
fn hostile_archives_end_in_error_and_write_nothing_outside() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name_template": "h-$I"}));
    let (t, _) = s.target(&id);
    let loc = Path::new(t["location"].as_str().unwrap()).to_path_buf();
    let outside = s.root.path().join("escaped");
    let escape = format!("../../{}", outside.file_name().unwrap().to_string_lossy());
    let regular = tar::EntryType::Regular;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot.tar", raw_tar(&[("ok.txt", b"fine", regular, ""), (&escape, b"evil", regular, "")])),
        ("absolute.tar", raw_tar(&[(&outside.to_string_lossy(), b"evil", regular, "")])),
        ("symlink-out.tar", raw_tar(&[("link", b"", tar::EntryType::Symlink, "/etc")])),
        ("symlink-up.tar", raw_tar(&[("a/link", b"", tar::EntryType::Symlink, "../../x")])),
        ("hardlink-out.tar", raw_tar(&[("h", b"", tar::EntryType::Link, "/etc/passwd")])),
        ("not-an-archive.tar.gz", b"this is plain text".to_vec()),
        ("file-and-folder.tar", raw_tar(&[("a", b"file", regular, ""), ("a/b", b"inside", regular, "")])),
        ("not-an-archive.tar.bz2", b"this is plain text".to_vec()),
        ("truncated.tar.gz", tar_gz(&[("f", &[7u8; 5000])])[..60].to_vec()),
    ];
    for (name, bytes) in &cases {
        let (status, reply) = s.upload(&id, &[(name, bytes)], "1");
        assert_eq!(status, 200, "{name}: {reply}");
        let job = s.wait_job(reply["job_id"].as_i64().unwrap());
        assert_eq!(job["status"], "ERROR", "{name} should fail: {job}");
        assert!(job["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}: no reason given");
        if name.starts_with("file-and-folder") {
            let error = job["error"].as_str().unwrap_or_default();
            assert!(error.contains("'a' both as a file and as a folder"), "{name}: {error}");
        }
    }
    assert!(!outside.exists(), "an archive wrote outside the backup");
    assert!(names(&loc).is_empty(), "a failed job left files: {:?}", names(&loc));
    assert!(s.target(&id).1.is_empty(), "a failed upload is listed");
    assert!(names(&s.data_path().join("uploads")).is_empty(), "failed uploads were kept");
}

#[test]
fn upload_survives_a_kill_right_after_the_reply() {
    let mut s = TestServer::start();
    let id = s.create_target(json!({"name_template": "k-$I"}));
    let big = vec![42u8; 4 << 20];
    let archive = tar_gz(&[("big.bin", &big), ("small.txt", b"s")]);
    let (status, reply) = s.upload(&id, &[("data.tar.gz", &archive)], "1");
    assert_eq!(status, 200);
    s.kill();
    s.restart();
    let job = s.wait_job(reply["job_id"].as_i64().unwrap());
    assert_eq!(job["status"], "FINISHED", "{job}");
    let (t, backups) = s.target(&id);
    assert_eq!(backups.len(), 1);
    let dir = Path::new(t["location"].as_str().unwrap()).join(format!("k-{}", backups[0]["id"].as_str().unwrap()));
    assert_eq!(std::fs::read(dir.join("big.bin")).unwrap(), big);
}

/// Sends `body` to the upload endpoint a few bytes per write, so the server sees boundaries and
/// headers split across reads; returns the reply's status line and body.
fn upload_in_pieces(s: &TestServer, target: &str, boundary: &str, body: &[u8]) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_nodelay(true).unwrap();
    let head = format!(
        "POST /api/target/{target}/upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=\"{boundary}\"\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    for piece in body.chunks(5) {
        conn.write_all(piece).unwrap();
    }
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json = text.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or_default();
    (status, json)
}

#[test]
fn multipart_bodies_of_any_shape_are_read_byte_exact() {
    let s = TestServer::start();
    let id = s.create_target(json!({"backup_type": "single", "name_template": "mp-$I"}));
    // Content made of near-boundaries: CRs, CRLFs, dashes and a prefix of the boundary itself.
    let content: &[u8] = b"\r\r\n-\r\n--\r\n--BOUNDAR\r\n--BOUNDARX--\r\nend\r";
    let mut body = Vec::new();
    body.extend_from_slice(b"a preamble, ignored\r\n--BOUNDARY  \r\n"); // transport padding too
    body.extend_from_slice(b"Content-Disposition: form-data; name=\"other\"\r\n\r\nskipped\r\n--BOUNDARY\r\n");
    body.extend_from_slice(b"content-disposition: form-data; name=manual\r\n\r\n1\r\n--BOUNDARY\r\n");
    body.extend_from_slice(
        b"Content-Disposition: form-data; name=\"backup_file\"; filename=\"C:\\up; %22x%22\\a.txt\"\r\n",
    );
    body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(content);
    body.extend_from_slice(b"\r\n--BOUNDARY--\r\nan epilogue, ignored too");
    let (status, reply) = upload_in_pieces(&s, &id, "BOUNDARY", &body);
    assert_eq!(status, 200, "{reply}");
    let job = s.wait_job(reply["job_id"].as_i64().unwrap());
    assert_eq!(job["status"], "FINISHED", "{job}");
    let (t, backups) = s.target(&id);
    let bid = backups[0]["id"].as_str().unwrap();
    let placed = Path::new(t["location"].as_str().unwrap()).join(format!("mp-{bid}.txt"));
    assert!(placed.exists(), "the quoted Windows file name's extension is kept: {}", placed.display());
    assert_eq!(s.get_raw(&format!("/api/backup/{bid}/download")).bytes().unwrap().as_ref(), content);

    // A few MiB of binary from a real client arrive unchanged.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..3 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    s.upload_ok(&id, &[("big.bin", &big)]);
    let (_, backups) = s.target(&id);
    let newest = backups.iter().find(|b| b["id"] != bid).unwrap();
    let got = s.get_raw(&format!("/api/backup/{}/download", newest["id"].as_str().unwrap())).bytes().unwrap();
    assert!(got.as_ref() == big.as_slice(), "3 MiB of binary came back different");

    // Broken bodies: each a 400 with a message, and nothing kept.
    let part = b"Content-Disposition: form-data; name=\"manual\"\r\n\r\n1";
    let long = "x".repeat(71);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("B", [b"--B\n".as_slice(), part, b"\n--B--"].concat()),
        ("B", [b"--B\r\n".as_slice(), part].concat()),
        ("B", b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--".to_vec()),
        ("B", [b"--B\r\n".as_slice(), part, b"\r\n--B\r\n", part, b"\r\n--B--"].concat()[..90].to_vec()),
        ("B", b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n--B\r\nContent-Disposition: form-data; name=\"manual\"\r\n\r\n1\r\n--B--".to_vec()),
        ("B", b"no boundary anywhere".to_vec()),
        ("B", [b"--B\r\n".as_slice(), &vec![b'h'; 20_000]].concat()),
        (&long, b"--x".to_vec()),
    ];
    for (boundary, body) in cases {
        let (status, reply) = upload_in_pieces(&s, &id, boundary, &body);
        assert_eq!(status, 400, "{}: {reply}", String::from_utf8_lossy(&body[..body.len().min(40)]));
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()), "{reply}");
    }
    let (status, reply) = s.raw("POST", &format!("/api/target/{id}/upload"), "multipart/form-data", b"x");
    assert_eq!(status, 400, "no boundary in the Content-Type: {reply}");
    let (_, backups) = s.target(&id);
    assert_eq!(backups.len(), 2, "a broken body made a backup");
    assert!(names(&s.data_path().join("store/tmp")).is_empty(), "temp files were left behind");
}
