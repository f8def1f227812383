//! `bakch push` (issue 18): the client run as a separate process against the server under test,
//! with its wall time, its own summary (bytes read, sent, received by the server) and its peak
//! resident memory; and the push_many scenario: a large tree pushed again unchanged, and a tree
//! of very many small files for the client's memory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::{BIN, RssSampler, Server};
use crate::{MIB, Opts, Report, Res};

/// One client run: (seconds, its JSON summary, its peak RSS in MiB).
pub fn client(server: &Server, work: &Path, target: &str, tree: &Path) -> Res<(f64, Value, f64)> {
    // The bench server runs without a key file (an open API): any key will do.
    let key = work.join("push-key");
    if !key.exists() {
        std::fs::write(&key, "open").map_err(|e| format!("write {}: {e}", key.display()))?;
    }
    let start = Instant::now();
    let child = Command::new(BIN)
        .args(["push", "--quiet", "--json", "--rehash-percent", "0", "--server", &server.url, "--target", target])
        .arg("--key-file")
        .arg(&key)
        .arg("--cache-dir")
        .arg(work.join("push-cache"))
        .arg(tree)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start bakch push: {e}"))?;
    let rss = RssSampler::start(child.id());
    let out = child.wait_with_output().map_err(|e| format!("bakch push: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let peak = rss.peak_mib();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("bakch push failed: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let summary = stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok()).unwrap_or(Value::Null);
    Ok((secs, summary, peak))
}

/// `count` files of `size` bytes each in a few hundred folders, distinct contents.
fn small_tree(root: &Path, count: usize, size: usize) -> Res<()> {
    let mut buf = vec![0u8; size];
    for i in 0..count {
        let dir = root.join(format!("{:03}", i % 500)).join(format!("{:02}", (i / 500) % 40));
        if i < 20_000 {
            std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        let seed = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for (j, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((j % 8) * 8)) as u8 ^ j as u8;
        }
        buf[..8.min(size)].copy_from_slice(&(i as u64).to_le_bytes()[..8.min(size)]);
        std::fs::write(dir.join(format!("f{i}")), &buf).map_err(|e| format!("write: {e}"))?;
    }
    Ok(())
}

pub fn run(o: &Opts) -> Res<Report> {
    let s = o.scratch("push_many")?;
    let server = Server::start(&s.sub("data")?)?;
    let targets = s.sub("targets")?;

    // A large tree pushed again, unchanged.
    let files = o.size("BAKCH_BENCH_PUSH_FILES", 10_000.0, 50.0) as usize;
    let total = o.size("BAKCH_BENCH_PUSH_MIB", 1024.0, 2.0) * MIB;
    let big = s.sub("big")?;
    let t = Instant::now();
    small_tree(&big, files, (total / files as f64) as usize)?;
    println!("input: {files} files, {:.0} MiB, generated in {:.1} s", total / MIB, t.elapsed().as_secs_f64());
    let target = server.create_target(0, "multi", &targets)?;
    let (first, first_sum, _) = client(&server, s.path(), &target, &big)?;
    let (mut again, mut reads, mut server_ms) = (vec![], vec![], vec![]);
    for _ in 0..o.reps.max(1) {
        let (secs, sum, _) = client(&server, s.path(), &target, &big)?;
        again.push(secs);
        reads.push(sum["read_bytes"].as_f64().unwrap_or(f64::NAN));
        server_ms.push(sum["server_seconds"].as_f64().unwrap_or(f64::NAN) * 1000.0);
    }

    // Very many small files: the client's memory.
    let many = o.size("BAKCH_BENCH_PUSH_SMALL_FILES", 1_000_000.0, 2000.0) as usize;
    let small = s.sub("small")?;
    let t = Instant::now();
    small_tree(&small, many, 64)?;
    println!("input: {many} small files generated in {:.1} s", t.elapsed().as_secs_f64());
    let target2 = server.create_target(1, "multi", &targets)?;
    let (many_secs, _, many_rss) = client(&server, &s.sub("many-client")?, &target2, &small)?;
    let (many_again, _, many_again_rss) = client(&server, &s.sub("many-client")?, &target2, &small)?;

    let mut r = Report::new("push_many");
    r.row(format!("first push of {files} files"), "s", vec![first]);
    r.row("push again, unchanged (client wall time)", "s", again.clone());
    r.row("push again: server time (its requests and the job)", "ms", server_ms.clone());
    r.row("push again: file content read by the client", "bytes", reads.clone());
    r.row(format!("first push of {many} small files"), "s", vec![many_secs]);
    r.row(format!("push again of {many} small files"), "s", vec![many_again]);
    r.row("client peak RSS, many small files (first, again)", "MiB", vec![many_rss, many_again_rss]);
    let median_server = crate::median(&server_ms) / 1000.0;
    r.goal("unchanged re-push: under 1 s of server time", median_server < 1.0, format!("{median_server:.3} s"));
    r.goal("unchanged re-push reads no content", reads.iter().all(|b| *b == 0.0), format!("{:?}", reads));
    let peak = many_rss.max(many_again_rss);
    r.goal("client peak RSS below 64 MiB on many small files", peak < 64.0, format!("{peak:.1} MiB"));
    r.json = json!({"files": files, "bytes": total as u64, "first_bytes_received": first_sum["bytes_received"],
        "small_files": many, "client_peak_rss_mib": peak});
    Ok(r)
}
