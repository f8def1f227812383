//! upload_single: one large random file uploaded with curl until its job is FINISHED, against
//! cp + sync and b3sum of the same file.

use std::time::Instant;

use serde_json::json;

use crate::data::random_file;
use crate::harness::{interleaved, need, q, remove, time_one_upload, timed_sh};
use crate::{MIB, Opts, Report, Res, median};

pub fn run(o: &Opts) -> Res<Report> {
    need("b3sum", "b3sum")?;
    need("curl", "curl")?;
    let bytes = (o.size("BAKCH_BENCH_SINGLE_MIB", 1024.0, 1.0) * MIB) as u64;
    let s = o.scratch("upload_single")?;
    let input = s.path().join("input.bin");
    let t = Instant::now();
    random_file(&input, bytes, 1)?;
    println!("input: {:.0} MiB random, generated in {:.1} s", bytes as f64 / MIB, t.elapsed().as_secs_f64());
    let mib = bytes as f64 / MIB;
    let (mut bakch, mut cp, mut b3, mut r_cp, mut r_b3, mut rss) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for rep in 0..o.reps {
        let refdir = s.sub("ref")?;
        let copy = refdir.join("copy.bin");
        let run_bakch = || -> Res<f64> {
            let (took, peak) = time_one_upload(&s, rep, "single", &input, "input.bin")?;
            rss.push(peak);
            Ok(took)
        };
        let reference = |cp: &mut Vec<f64>, b3: &mut Vec<f64>| -> Res<(f64, f64)> {
            let c = timed_sh(&format!("cp {} {} && sync {} {}", q(&input), q(&copy), q(&copy), q(&refdir)))?;
            remove(&copy);
            let h = timed_sh(&format!("b3sum {}", q(&input)))?;
            cp.push(mib / c);
            b3.push(mib / h);
            Ok((c, h))
        };
        let (tb, (tc, th)) = interleaved(rep, run_bakch, || reference(&mut cp, &mut b3))?;
        bakch.push(mib / tb);
        r_cp.push(tc / tb);
        r_b3.push(th / tb);
        println!("rep {rep}: bakch {:.0} MiB/s, cp+sync {:.0} MiB/s, b3sum {:.0} MiB/s", mib / tb, mib / tc, mib / th);
    }
    let mut r = Report::new("upload_single");
    let (ratio, peak) = (median(&r_cp), rss.iter().cloned().fold(0.0, f64::max));
    r.row("bakch upload until FINISHED", "MiB/s", bakch);
    r.row("cp + sync", "MiB/s", cp);
    r.row("b3sum", "MiB/s", b3);
    r.row("ratio bakch / cp+sync", "x", r_cp);
    r.row("ratio bakch / b3sum", "x", r_b3);
    r.row("bakch peak RSS", "MiB", rss);
    r.goal(">= 0.9x cp+sync MiB/s", ratio >= 0.9, format!("{ratio:.2}x"));
    r.goal("peak RSS <= 64 MiB", peak <= 64.0, format!("{peak:.1} MiB"));
    r.json = json!({"input_bytes": bytes});
    Ok(r)
}
