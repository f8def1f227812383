//! upload_archive: a .tar.gz of many files uploaded to a multi-file target until FINISHED, against
//! tar xzf + sync of the same archive.

use std::time::Instant;

use serde_json::json;

use crate::data::archive;
use crate::harness::{interleaved, need, q, remove, time_one_upload, timed_sh};
use crate::{MIB, Opts, Report, Res, median};

pub fn run(o: &Opts) -> Res<Report> {
    need("tar", "tar")?;
    need("gzip", "gzip")?;
    need("curl", "curl")?;
    let count = o.size("BAKCH_BENCH_ARCHIVE_FILES", 20_000.0, 20.0) as usize;
    let total = (o.size("BAKCH_BENCH_ARCHIVE_MIB", 600.0, 1.0) * MIB) as u64;
    let s = o.scratch("upload_archive")?;
    let input = s.path().join("input.tar.gz");
    let t = Instant::now();
    let raw = archive(&input, count, total, 2)?;
    let packed = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
    println!(
        "input: {count} files, {:.0} MiB ({:.0} MiB as .tar.gz), generated in {:.1} s",
        raw as f64 / MIB,
        packed as f64 / MIB,
        t.elapsed().as_secs_f64()
    );
    let (mut bakch, mut reference, mut ratio, mut rss) = (vec![], vec![], vec![], vec![]);
    for rep in 0..o.reps {
        let run_bakch = |rss: &mut Vec<f64>| -> Res<f64> {
            let (took, peak) = time_one_upload(&s, rep, "multi", &input, "input.tar.gz")?;
            rss.push(peak);
            Ok(took)
        };
        let run_ref = || -> Res<f64> {
            let out = s.sub("ref")?;
            let took = timed_sh(&format!("tar xzf {} -C {} && sync -f {}", q(&input), q(&out), q(&out)))?;
            remove(&out);
            Ok(took)
        };
        let (tb, tr) = interleaved(rep, || run_bakch(&mut rss), run_ref)?;
        println!("rep {rep}: bakch {tb:.2} s, tar xzf + sync {tr:.2} s");
        bakch.push(tb);
        reference.push(tr);
        ratio.push(tb / tr);
    }
    let mut r = Report::new("upload_archive");
    let (med, peak) = (median(&ratio), rss.iter().cloned().fold(0.0, f64::max));
    r.row("bakch upload until FINISHED", "s", bakch);
    r.row("tar xzf + sync", "s", reference);
    r.row("ratio bakch / tar", "x", ratio);
    r.row("bakch peak RSS", "MiB", rss);
    r.goal("<= 1.5x tar xzf + sync time", med <= 1.5, format!("{med:.2}x"));
    r.goal("peak RSS <= 128 MiB", peak <= 128.0, format!("{peak:.1} MiB"));
    r.json = json!({"files": count, "raw_bytes": raw, "archive_bytes": packed});
    Ok(r)
}
