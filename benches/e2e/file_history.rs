//! file_history: file search and a path's history over a target of many backups of many files
//! (issue 17: 10,000 backups × 1,000 files), against reading every manifest for the same
//! answer (`grep` over them), which is what finding a file costs without an index.
//!
//! The backups are written as a server leaves them (blobs, manifests, hard-linked placements;
//! one file of each backup has content of its own, so every path has versions) and the database
//! is made by `bakch rebuild-db`, as in rebuild_db: uploading ten million files through the API
//! would measure uploads, not the search.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Server, q, timed_sh};
use crate::rebuild_db::{rebuild, write_backups};
use crate::{Opts, Report, Res, median};

pub fn run(o: &Opts) -> Res<Report> {
    let backups = o.size("BAKCH_BENCH_HISTORY_BACKUPS", 10_000.0, 20.0) as usize;
    let files = o.size("BAKCH_BENCH_HISTORY_FILES", 1_000.0, 50.0) as usize;
    // Requests per kind, spread over different files (the first of each is the cold one).
    let requests = if o.mode == "smoke" { 5 } else { 50 };
    let s = o.scratch("file_history")?;
    let data = s.sub("data")?;
    let target = {
        let server = Server::start(&data)?;
        server.create_target(0, "multi", s.path())?
    };
    let t = Instant::now();
    write_backups(&data, &s.path().join("t0"), &target, backups, files, true)?;
    println!("state: {backups} backups of {files} files written in {:.1} s", t.elapsed().as_secs_f64());
    println!("state: database rebuilt in {:.1} s", rebuild(&data, backups)?);

    let server = Server::start(&data)?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let timed_get = |path: &str| -> Res<(f64, Value)> {
        let t = Instant::now();
        let resp = client.get(format!("{}{path}", server.url)).send().map_err(|e| format!("GET {path}: {e}"))?;
        let status = resp.status();
        let body: Value = resp.json().map_err(|e| format!("GET {path}: {e}"))?;
        let took = t.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {body}"));
        }
        Ok((took, body))
    };
    // Files spread over the tree: every 37th, so no two requests ask for the same one.
    let pick = |k: usize| (k * 37 + 11) % files;
    let path_of = |j: usize| format!("d{}/f{j}.txt", j % 10);

    let (mut by_name, mut by_folder, mut history, mut grep) = (vec![], vec![], vec![], vec![]);
    for k in 0..requests {
        let j = pick(k);
        let (took, found) = timed_get(&format!("/api/target/{target}/files?q=/f{j}.txt"))?;
        let paths: Vec<&str> =
            found["paths"].as_array().into_iter().flatten().filter_map(|p| p["path"].as_str()).collect();
        if paths != [path_of(j).as_str()] {
            return Err(format!("search for f{j}.txt found {paths:?}"));
        }
        by_name.push(took);

        let (took, found) = timed_get(&format!("/api/target/{target}/files?q=d{}/&page_size=50", j % 10))?;
        let in_folder = (0..files).filter(|x| x % 10 == j % 10).count();
        if found["paths"].as_array().map_or(0, Vec::len) != 50.min(in_folder) {
            return Err(format!("search for a folder found {found}"));
        }
        by_folder.push(took);

        let (took, versions) = timed_get(&format!("/api/target/{target}/history?path={}", path_of(j)))?;
        let versions = versions["versions"].as_array().cloned().unwrap_or_default();
        // Backups i ≡ j (mod files) have their own version, and the one after each goes back.
        let own = (0..backups).filter(|i| i % files == j).count();
        let changed = versions.iter().filter(|v| v["changed"] == true).count();
        let expected_changed = 1 + own * 2 - usize::from((backups - 1) % files == j) - usize::from(j == 0);
        if versions.len() != backups || changed != expected_changed {
            return Err(format!(
                "history of {}: {} versions ({changed} changed), expected {backups} ({expected_changed} changed)",
                path_of(j),
                versions.len()
            ));
        }
        history.push(took);

        let manifests = data.join("manifests").join(&target);
        grep.push(
            timed_sh(&format!(
                "grep -rlF -- {} {} | wc -l > /dev/null",
                q(std::path::Path::new(&path_of(j))),
                q(&manifests)
            ))? * 1000.0,
        );
    }
    // The retention preview the edit form asks for while a policy is typed (a new policy each
    // time, so no kept reply answers it).
    let mut preview = vec![];
    for k in 0..requests.min(10) {
        let (took, p) = timed_get(&format!("/api/target/{target}/retention?keep_daily={}&keep_monthly=12", k + 1))?;
        if p["backups"].as_array().map_or(0, Vec::len) != backups || p["current"] != false {
            return Err(format!("the retention preview listed {} backups", p["backups"]));
        }
        preview.push(took);
    }
    // The target with its backups: the first reply after start builds it (each backup's
    // exclusive_bytes from the store's references), the next is the kept one.
    let (target_cold, listed) = timed_get(&format!("/api/target/{target}"))?;
    let (target_warm, _) = timed_get(&format!("/api/target/{target}"))?;
    if listed["backups"].as_array().map_or(0, Vec::len) != backups {
        return Err(format!("GET /api/target/{target} listed {} backups", listed["backups"]));
    }
    println!("GET /api/target/<id>: first {target_cold:.0} ms, kept {target_warm:.1} ms");
    let stats = |v: &[f64]| (median(v), percentile(v, 0.99), v.iter().cloned().fold(0.0, f64::max));
    for (what, v) in [
        ("search by file name", &by_name),
        ("search by folder (first page)", &by_folder),
        ("history of one path", &history),
        ("grep of every manifest for one path", &grep),
        ("retention preview of a proposed policy", &preview),
    ] {
        let (p50, p99, max) = stats(v);
        println!("{what}: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (first {:.1} ms)", v[0]);
    }
    let mut r = Report::new("file_history");
    let (name_p50, name_p99, _) = stats(&by_name);
    let (history_p50, history_p99, _) = stats(&history);
    let grep_p50 = median(&grep);
    r.row("search by file name", "ms", by_name.clone());
    r.row("search by folder (first page of 50)", "ms", by_folder.clone());
    r.row(format!("history of one path ({backups} versions)"), "ms", history.clone());
    r.row("grep of every manifest for one path", "ms", grep.clone());
    r.row(format!("retention preview ({backups} backups)"), "ms", preview.clone());
    r.row("GET /api/target/<id>, first after start", "ms", vec![target_cold]);
    r.row("GET /api/target/<id>, kept reply", "ms", vec![target_warm]);
    r.goal("search by name: p99 under 100 ms", name_p99 < 100.0, format!("p99 {name_p99:.1} ms"));
    r.goal(
        "history of a path in every backup: p99 under 1 s",
        history_p99 < 1000.0,
        format!("p99 {history_p99:.0} ms"),
    );
    r.goal(
        "search faster than reading the manifests",
        name_p50 < grep_p50,
        format!("{:.0}× faster", grep_p50 / name_p50.max(0.001)),
    );
    r.notes.push(format!("server peak RSS {:.0} MiB", server.peak_rss_mib()));
    r.json = json!({
        "backups": backups, "files_per_backup": files, "requests": requests,
        "search_p50_ms": name_p50, "search_p99_ms": name_p99,
        "history_p50_ms": history_p50, "history_p99_ms": history_p99, "grep_p50_ms": grep_p50,
        "target_first_ms": target_cold, "target_kept_ms": target_warm, "preview_p50_ms": median(&preview),
    });
    Ok(r)
}

/// The `p` quantile (0–1) of `v`, nearest rank.
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len().max(1));
    s.get(rank - 1).copied().unwrap_or(f64::NAN)
}
