//! rebuild_db: `bakch rebuild-db` over many backups of many files each, against reading every
//! manifest once (`cat`), the floor of any rebuild from them.
//!
//! A real server makes the data folder and one target; the backups are then written as a server
//! would leave them (blobs in the store, manifests, hard-linked placements), because uploading
//! a million files through the API would measure uploads, not the rebuild.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;

use crate::harness::{BIN, RssSampler, Server, interleaved, q, timed_sh};
use crate::{Opts, Report, Res, median};

pub fn run(o: &Opts) -> Res<Report> {
    let backups = o.size("BAKCH_BENCH_REBUILD_BACKUPS", 10_000.0, 20.0) as usize;
    let files = o.size("BAKCH_BENCH_REBUILD_FILES", 100.0, 10.0) as usize;
    let s = o.scratch("rebuild_db")?;
    let data = s.sub("data")?;
    let target = {
        let server = Server::start(&data)?;
        server.create_target(0, "multi", s.path())?
    };
    let location = s.path().join("t0");
    let t = Instant::now();
    write_backups(&data, &location, &target, backups, files, false)?;
    println!("state: {backups} backups of {files} files written in {:.1} s", t.elapsed().as_secs_f64());
    let manifests = data.join("manifests");
    let (mut bakch, mut cat, mut ratio, mut peaks) = (vec![], vec![], vec![], vec![]);
    for rep in 0..o.reps {
        let run_bakch = || {
            let (took, peak) = rebuild_measured(&data, backups)?;
            peaks.push(peak);
            Ok(took)
        };
        let reference =
            || timed_sh(&format!("find {} -name '*.json' -print0 | xargs -0 cat > /dev/null", q(&manifests)));
        let (tb, tc) = interleaved(rep, run_bakch, reference)?;
        bakch.push(tb);
        cat.push(tc);
        ratio.push(tb / tc);
        println!("rep {rep}: rebuild-db {tb:.2} s, cat of every manifest {tc:.2} s");
    }
    // The rebuilt database serves what was described.
    let server = Server::start(&data)?;
    let stats = server.get("/api/stats")?;
    if stats["total_backups"] != backups {
        return Err(format!("after the rebuild the server lists {} backups, not {backups}", stats["total_backups"]));
    }
    let mut r = Report::new("rebuild_db");
    let took = median(&bakch);
    r.row("bakch rebuild-db", "s", bakch);
    r.row("cat of every manifest", "s", cat);
    r.row("ratio rebuild / cat", "x", ratio);
    r.row("bakch rebuild-db peak RSS", "MiB", peaks);
    r.goal("10,000 backups of 100 files in minutes (<= 300 s at full size)", took <= 300.0, format!("{took:.1} s"));
    r.json = json!({"backups": backups, "files_per_backup": files});
    Ok(r)
}

/// Runs `bakch rebuild-db` on `data`; its seconds, once it says it rebuilt `backups` backups.
pub(crate) fn rebuild(data: &Path, backups: usize) -> Res<f64> {
    rebuild_measured(data, backups).map(|(took, _)| took)
}

/// [`rebuild`], with the command's peak resident memory in MiB.
pub(crate) fn rebuild_measured(data: &Path, backups: usize) -> Res<(f64, f64)> {
    let t = Instant::now();
    let child = Command::new(BIN)
        .args(["rebuild-db", "--data-dir"])
        .arg(data)
        .env("BAKCH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("rebuild-db: {e}"))?;
    let rss = RssSampler::start(child.id());
    let out = child.wait_with_output().map_err(|e| format!("rebuild-db: {e}"))?;
    let took = t.elapsed().as_secs_f64();
    let peak = rss.peak_mib();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains(&format!("{backups} backup(s)")) {
        return Err(format!("rebuild-db: {}{}", text, String::from_utf8_lossy(&out.stderr)));
    }
    Ok((took, peak))
}

/// Writes `backups` finished backups of `files` files each, as bakch would: one blob per distinct
/// content, a manifest each, and the placed tree of hard links. With `churn`, file `i % files` of
/// backup `i` has content of its own (so each path has versions); without, every backup is the same.
pub(crate) fn write_backups(
    data: &Path,
    location: &Path,
    target: &str,
    backups: usize,
    files: usize,
    churn: bool,
) -> Res<()> {
    let io = |e: std::io::Error| e.to_string();
    let blob = |bytes: &[u8]| -> Res<(String, std::path::PathBuf)> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        let path = data.join("store").join(&hash[..2]).join(&hash[2..]);
        if !path.exists() {
            std::fs::create_dir_all(path.parent().unwrap_or(data)).map_err(io)?;
            std::fs::write(&path, bytes).map_err(io)?;
        }
        Ok((hash, path))
    };
    let mut entries = Vec::with_capacity(files);
    for j in 0..files {
        let bytes = format!("content of file {j}\n").repeat(j % 7 + 1);
        let (hash, path) = blob(bytes.as_bytes())?;
        entries.push((format!("d{}/f{j}.txt", j % 10), hash, bytes.len(), path));
    }
    let dir = data.join("manifests").join(target);
    for i in 0..backups {
        let id = format!("00000000-0000-4000-8000-{i:012x}");
        let name = format!("b0-{id}");
        let placed = location.join(&name);
        let mut these = entries.clone();
        if churn {
            let j = i % files;
            let bytes = format!("file {j} as backup {i} has it\n");
            let (hash, path) = blob(bytes.as_bytes())?;
            these[j] = (these[j].0.clone(), hash, bytes.len(), path);
        }
        for (path, _, _, blob) in &these {
            let dest = placed.join(path);
            std::fs::create_dir_all(dest.parent().unwrap_or(&placed)).map_err(io)?;
            std::fs::hard_link(blob, &dest).map_err(io)?;
        }
        let list: Vec<_> = these
            .iter()
            .map(|(path, hash, size, _)| json!({"path": path, "blob": hash, "size": size, "mode": 420}))
            .collect();
        // One backup a minute from 2026-01-01, so their order is their number.
        let created = minute(i);
        let manifest = json!({
            "format": "bakch-backup", "version": 1, "target_id": target, "backup_id": id, "name": name,
            "created_at": created, "manual": false,
            "recycled": false, "type": "multi", "hash": format!("{i:064x}"),
            "size": these.iter().map(|e| e.2).sum::<usize>(), "files": list,
        });
        std::fs::write(dir.join(format!("{id}.json")), manifest.to_string()).map_err(io)?;
    }
    Ok(())
}

/// `2026-01-01T00:00:00+00:00` plus `i` minutes, as ISO 8601.
fn minute(i: usize) -> String {
    use chrono::TimeZone;
    let start = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default();
    (start + chrono::Duration::minutes(i as i64)).to_rfc3339()
}
