//! concurrent_uploads: many clients uploading a file each at once until all jobs are FINISHED,
//! against cp + sync of the same files.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use crate::data::random_file;
use crate::harness::{Server, curl_upload, interleaved, need, q, remove, timed_sh};
use crate::{MIB, Opts, Report, Res, env_f64, median};

pub fn run(o: &Opts) -> Res<Report> {
    need("curl", "curl")?;
    let clients = env_f64("BAKCH_BENCH_CONC_CLIENTS").map(|c| c.max(1.0) as usize).unwrap_or(32);
    let bytes = (o.size("BAKCH_BENCH_CONC_MIB", 8.0, 0.05) * MIB) as u64;
    let s = o.scratch("concurrent_uploads")?;
    let inputs = s.sub("inputs")?;
    let files: Vec<PathBuf> = (0..clients).map(|i| inputs.join(format!("f{i:02}.bin"))).collect();
    for (i, f) in files.iter().enumerate() {
        random_file(f, bytes, 100 + i as u64)?;
    }
    let mib = (bytes * clients as u64) as f64 / MIB;
    println!("input: {clients} files of {:.1} MiB", bytes as f64 / MIB);
    let (mut bakch, mut reference, mut ratio, mut rss) = (vec![], vec![], vec![], vec![]);
    let mut errors = 0usize;
    for rep in 0..o.reps {
        let mut run_bakch = |rss: &mut Vec<f64>| -> Res<f64> {
            let data = s.path().join(format!("data{rep}"));
            let server = Server::start(&data)?;
            let target = server.create_target(0, "single", &s.sub("targets")?)?;
            let start = Instant::now();
            let results: Vec<Res<i64>> = std::thread::scope(|scope| {
                let handles: Vec<_> = files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let (url, target) = (&server.url, &target);
                        scope.spawn(move || curl_upload(url, target, f, &format!("f{i}.bin")))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("client panicked".into()))).collect()
            });
            let mut jobs = Vec::new();
            for r in results {
                match r {
                    Ok(j) => jobs.push(j),
                    Err(e) => {
                        errors += 1;
                        println!("upload error: {e}");
                    }
                }
            }
            if let Err(e) = server.wait_jobs(&jobs) {
                errors += 1;
                println!("job error: {e}");
            }
            let took = start.elapsed().as_secs_f64();
            rss.push(server.peak_rss_mib());
            drop(server);
            remove(&data);
            remove(&s.path().join("targets"));
            Ok(took)
        };
        let run_ref = || -> Res<f64> {
            let out = s.sub("ref")?;
            let took = timed_sh(&format!("cp {}/* {}/ && sync {}/* {}", q(&inputs), q(&out), q(&out), q(&out)))?;
            remove(&out);
            Ok(took)
        };
        let (tb, tr) = interleaved(rep, || run_bakch(&mut rss), run_ref)?;
        println!("rep {rep}: bakch {:.0} MiB/s, cp + sync {:.0} MiB/s", mib / tb, mib / tr);
        bakch.push(mib / tb);
        reference.push(mib / tr);
        ratio.push(tr / tb);
    }
    let mut r = Report::new("concurrent_uploads");
    let (med, peak) = (median(&ratio), rss.iter().cloned().fold(0.0, f64::max));
    r.row(format!("bakch, {clients} clients at once, until all FINISHED"), "MiB/s", bakch);
    r.row("cp + sync of the same files", "MiB/s", reference);
    r.row("ratio bakch / cp+sync", "x", ratio);
    r.row("bakch peak RSS", "MiB", rss);
    r.goal("0 errors", errors == 0, format!("{errors} errors"));
    r.goal(">= 0.5x cp+sync MiB/s", med >= 0.5, format!("{med:.2}x"));
    r.json = json!({"clients": clients, "file_bytes": bytes, "errors": errors, "peak_rss_mib": peak});
    if errors > 0 {
        // Errors are a result, not a failure to complete; they are in the table and the JSON.
        r.notes.push(format!("{errors} uploads or jobs failed"));
    }
    Ok(r)
}
