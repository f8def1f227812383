//! dedup_series: a home folder changing a little each day, uploaded as one tar a day, against
//! restic backing up the same folder; time and disk used against the ideal whole-file size. The
//! push variant (issue 18) pushes the same days with `bakch push`, and its first, full day is
//! timed in rounds against `cp -r` + sync and two floors (BAKCH_BENCH_REPS rounds).

use std::time::Instant;

use serde_json::json;

use crate::data::Home;
use crate::harness::{Server, allocated_bytes, need, q, timed_sh};
use crate::{MIB, Opts, Report, Res, env_f64};

pub fn run(o: &Opts) -> Res<Report> {
    need("restic", "restic")?;
    need("curl", "curl")?;
    need("b3sum", "b3sum")?;
    let total = (o.size("BAKCH_BENCH_DEDUP_MIB", 200.0, 1.0) * MIB) as u64;
    let days = env_f64("BAKCH_BENCH_DEDUP_DAYS").map(|d| d.max(2.0) as usize).unwrap_or(match o.mode {
        "smoke" => 3,
        "quick" => 5,
        _ => 30,
    });
    // About 15 files per MiB, like a home folder of documents, photos and code.
    let files = ((total as f64 / MIB) * 15.0).max(50.0) as usize;
    let s = o.scratch("dedup_series")?;
    let t = Instant::now();
    let mut home = Home::create(s.sub("home")?, total, files)?;
    println!("input: {} files, {:.0} MiB, generated in {:.1} s", files, total as f64 / MIB, t.elapsed().as_secs_f64());
    let server = Server::start(&s.sub("data")?)?;
    let targets = s.sub("targets")?;
    let target = server.create_target(0, "multi", &targets)?;
    let repo = s.path().join("restic-repo");
    let restic = |args: &str| format!("RESTIC_PASSWORD=bench restic --no-cache -q -r {} {args}", q(&repo));
    timed_sh(&restic("init"))?;
    let tar_path = s.path().join("day.tar");
    let (mut bakch, mut rest, mut ratio, mut tar_secs) = (vec![], vec![], vec![], vec![]);
    // The push variant (issue 18): the same home with `bakch push`, into a server of its own
    // (on the same one, the tars' content would already be there, and nothing would be sent).
    let push_server = Server::start(&s.sub("push-data")?)?;
    let push_target = push_server.create_target(1, "multi", &s.sub("push-targets")?)?;
    let (mut pushed, mut push_ratio, mut sent_ratio, mut sent_mib) = (vec![], vec![], vec![], vec![]);
    let mut ideal_before = 0;
    // The first, full day against `cp -r` + sync of the same tree, in rounds: each a copy, a
    // push into a server of its own, and the floors below, in an order that turns each round,
    // each after a sync, so that the disk's state (writeback, other processes' dirty data)
    // weighs on all alike; their medians are compared. The floor is the least work a client that
    // names content by its hash can do with standard tools: hash every file (b3sum), then
    // stream the tree through a pipe to a hasher and a writer (tar), and sync; and, below any
    // design that moves files between two processes, the tree through a pipe with no hash at
    // all (tar | tar). Copies and servers are kept until the end: thousands of files deleted
    // just before would slow the next file creations (ext4 skips inodes freed in the last minutes).
    let home_dir = s.path().join("home");
    let (mut cps, mut firsts, mut floors, mut pipes, mut first_servers) = (vec![], vec![], vec![], vec![], vec![]);
    for round in 0..o.reps.max(1) {
        let fresh = Server::start(&s.sub(&format!("first-{round}-data"))?)?;
        let fresh_target = fresh.create_target(1, "multi", &s.sub(&format!("first-{round}-targets"))?)?;
        let client_dir = s.sub(&format!("first-{round}-client"))?;
        let (copy, floor) = (s.path().join(format!("cp-copy-{round}")), s.sub(&format!("floor-{round}"))?);
        let piped = s.sub(&format!("piped-{round}"))?;
        for step in 0..4 {
            timed_sh("sync")?;
            match (round + step) % 4 {
                0 => cps.push(timed_sh(&format!("cp -r {} {} && sync", q(&home_dir), q(&copy)))?),
                1 => firsts.push(crate::push::client(&fresh, &client_dir, &fresh_target, &home_dir)?.0),
                2 => pipes.push(timed_sh(&format!("cd {} && tar -cf - . | tar -C {} -xf - && sync", q(&home_dir), q(&piped)))?),
                _ => floors.push(timed_sh(&format!(
                    "cd {home} && find . -type f -exec b3sum {{}} + > /dev/null && mkfifo {fifo} && \
                     {{ b3sum < {fifo} > /dev/null & tar -cf - . | tee {fifo} | tar -C {floor} -xf - && wait $!; }} && sync",
                    home = q(&home_dir),
                    floor = q(&floor),
                    fifo = q(&s.path().join(format!("floor-{round}.fifo"))),
                ))?),
            }
        }
        first_servers.push(fresh);
    }
    for day in 0..days {
        if day > 0 {
            home.day(total)?;
        }
        let changed = home.ideal() - ideal_before;
        ideal_before = home.ideal();
        let t = Instant::now();
        home.tar(&tar_path)?;
        tar_secs.push(t.elapsed().as_secs_f64());
        let run_bakch = || -> Res<f64> {
            let start = Instant::now();
            let job = server.upload_file(&target, &tar_path, &format!("home-day{day}.tar"))?;
            server.wait_jobs(&[job])?;
            Ok(start.elapsed().as_secs_f64())
        };
        let run_restic = || timed_sh(&format!("cd {} && {}", q(s.path()), restic("backup home")));
        let (tb, tr) = if day % 2 == 0 {
            let tb = run_bakch()?;
            (tb, run_restic()?)
        } else {
            let tr = run_restic()?;
            (run_bakch()?, tr)
        };
        bakch.push(tb);
        rest.push(tr);
        ratio.push(tb / tr);
        let (tp, summary, _) = crate::push::client(&push_server, s.path(), &push_target, &s.path().join("home"))?;
        let sent = summary["bytes_received"].as_f64().unwrap_or(f64::NAN);
        pushed.push(tp);
        push_ratio.push(tp / tr);
        sent_mib.push(sent / MIB);
        sent_ratio.push(sent / changed.max(1) as f64);
    }
    drop(first_servers);
    for round in 0..cps.len() {
        crate::harness::remove(&s.path().join(format!("cp-copy-{round}")));
        crate::harness::remove(&s.path().join(format!("floor-{round}")));
        crate::harness::remove(&s.path().join(format!("piped-{round}")));
    }
    let stats = server.get("/api/stats")?;
    let api_used = stats["disk_used"].as_u64().unwrap_or(0);
    let data = s.path().join("data");
    let bakch_alloc = allocated_bytes(&[&data, &targets]);
    let restic_alloc = allocated_bytes(&[&repo]);
    let ideal = home.ideal();
    let (sum_b, sum_r): (f64, f64) = (bakch.iter().sum(), rest.iter().sum());
    println!(
        "{days} days: bakch {sum_b:.1} s, restic {sum_r:.1} s; ideal {:.1} MiB, bakch {:.1} MiB on disk ({:.1} MiB by /api/stats), restic {:.1} MiB",
        ideal as f64 / MIB,
        bakch_alloc as f64 / MIB,
        api_used as f64 / MIB,
        restic_alloc as f64 / MIB
    );
    let mut r = Report::new("dedup_series");
    let peak = server.peak_rss_mib();
    let disk_ratio = bakch_alloc as f64 / ideal as f64;
    r.row("bakch upload until FINISHED, per day", "s", bakch);
    r.row("restic backup, per day", "s", rest.clone());
    r.row("ratio bakch / restic, per day", "x", ratio);
    r.row("making the day's tar (not timed above)", "s", tar_secs);
    r.row("bakch push until FINISHED, per day", "s", pushed.clone());
    r.row("ratio bakch push / restic, per day", "x", push_ratio.clone());
    r.row("push: bytes the server received, per day", "MiB", sent_mib);
    r.row("push: bytes received / new content, per day", "x", sent_ratio.clone());
    r.row("cp -r + sync of day 0's tree (rounds)", "s", cps.clone());
    r.row("push of day 0's tree into a fresh server (rounds, turns with the copy)", "s", firsts.clone());
    r.row("floor: b3sum the tree, then tar | tee to b3sum | tar x, and sync (rounds)", "s", floors.clone());
    r.row("the tree through a pipe, no hash: tar | tar x, and sync (rounds)", "s", pipes.clone());
    r.row("bakch total time", "s", vec![sum_b]);
    r.row("restic total time", "s", vec![sum_r]);
    r.row("ideal whole-file dedup size", "MiB", vec![ideal as f64 / MIB]);
    r.row("bakch disk used (allocated: store, db, target folders)", "MiB", vec![bakch_alloc as f64 / MIB]);
    r.row("bakch disk_used (/api/stats)", "MiB", vec![api_used as f64 / MIB]);
    r.row("restic repository (allocated)", "MiB", vec![restic_alloc as f64 / MIB]);
    r.row("bakch peak RSS", "MiB", vec![peak]);
    r.goal("disk used <= 1.05x ideal whole-file size", disk_ratio <= 1.05, format!("{disk_ratio:.3}x"));
    r.goal("total time <= restic's", sum_b <= sum_r, format!("{:.2}x", sum_b / sum_r));
    let later = |v: &[f64]| crate::median(&v[1.min(v.len() - 1)..]);
    let (push_median, restic_median) = (later(&pushed), later(&rest));
    r.goal(
        "push: median later day faster than restic's",
        push_median < restic_median,
        format!("{push_median:.3} s vs {restic_median:.3} s"),
    );
    let worst = sent_ratio.iter().cloned().fold(0.0, f64::max);
    r.goal("push: bytes sent <= 1.1x the new content, every day", worst <= 1.1, format!("{worst:.3}x"));
    let (first, cp, floor, pipe) =
        (crate::median(&firsts), crate::median(&cps), crate::median(&floors), crate::median(&pipes));
    r.goal(
        "push: first day <= 1.2x cp -r + sync (medians)",
        first <= 1.2 * cp,
        format!(
            "{:.2}x ({first:.3} s vs {cp:.3} s; the floor is {:.2}x the copy, tar | tar {:.2}x, the push {:.2}x the floor)",
            first / cp,
            floor / cp,
            pipe / cp,
            first / floor
        ),
    );
    r.json = json!({
        "days": days, "files": files, "home_bytes": total, "ideal_bytes": ideal,
        "bakch_allocated_bytes": bakch_alloc, "bakch_api_disk_used": api_used, "restic_allocated_bytes": restic_alloc,
    });
    Ok(r)
}
