//! api_read: wrk against the read endpoints of a server seeded with many targets and backups,
//! one of them hot (1,000 backups, so its reply is some 300 KB of JSON). The reference is a
//! ceiling measured in the same run: the same wrk against a trivial actix-web server that
//! answers fixed bytes of the hot reply's size, so the ratio shows what bakch adds. A mixed
//! round reads the hot target while 4 clients upload.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::data::content;
use crate::harness::{Server, need, num_cores};
use crate::{Opts, Report, Res, median};

struct Wrk {
    rps: f64,
    p99_ms: f64,
    errors: u64,
}

fn parse_ms(s: &str) -> Option<f64> {
    let (num, mul) = if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().ok().map(|n| n * mul)
}

fn run_wrk(url: &str, conns: usize, secs: u64, script: &Path) -> Res<Wrk> {
    let threads = conns.min(2);
    let out = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &conns.to_string(), "-d", &format!("{secs}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .map_err(|e| format!("run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {text} {}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut w = Wrk { rps: f64::NAN, p99_ms: f64::NAN, errors: 0 };
    for line in text.lines().map(str::trim) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("Requests/sec:") {
            w.rps = parts.get(1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        } else if line.starts_with("99%") {
            w.p99_ms = parts.get(1).and_then(|v| parse_ms(v)).unwrap_or(f64::NAN);
        } else if line.starts_with("Non-2xx or 3xx responses:") {
            w.errors += parts.last().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        } else if line.starts_with("Socket errors:") {
            // "Socket errors: connect 0, read 0, write 0, timeout 0"
            w.errors += line
                .split(',')
                .filter_map(|p| p.split_whitespace().last().and_then(|v| v.parse::<u64>().ok()))
                .sum::<u64>();
        }
    }
    if !w.rps.is_finite() {
        return Err(format!("could not read wrk's output: {text}"));
    }
    Ok(w)
}

pub fn run(o: &Opts) -> Res<Report> {
    need("wrk", "wrk")?;
    let targets = o.size("BAKCH_BENCH_API_TARGETS", 1000.0, 10.0) as usize;
    let backups = o.size("BAKCH_BENCH_API_BACKUPS", 10_000.0, 20.0) as usize;
    let s = o.scratch("api_read")?;
    let server = Server::start(&s.sub("data")?)?;
    let locations = s.sub("targets")?;
    let t = Instant::now();
    let mut ids = Vec::with_capacity(targets);
    for n in 0..targets {
        ids.push(server.create_target(n, if n % 2 == 0 { "single" } else { "multi" }, &locations)?);
    }
    let created = t.elapsed().as_secs_f64();
    // Small distinct files from 8 client threads; the server's own job workers build them.
    let t = Instant::now();
    let next = AtomicUsize::new(0);
    let failure = std::sync::Mutex::new(None::<String>);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= backups {
                        break;
                    }
                    let target = &ids[i % targets];
                    let part = reqwest::blocking::multipart::Part::bytes(content(i as u64, 200 + i % 800, true))
                        .file_name(format!("file{i}.txt"));
                    let form = reqwest::blocking::multipart::Form::new().text("manual", "0").part("backup_file", part);
                    let res = client.post(format!("{}/api/target/{target}/upload", server.url)).multipart(form).send();
                    match res {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => {
                            *failure.lock().unwrap() = Some(format!("upload {i}: {}", r.status()));
                            break;
                        }
                        Err(e) => {
                            *failure.lock().unwrap() = Some(format!("upload {i}: {e}"));
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    wait_for_backups(&server, backups)?;
    // The hot target: many backups of its own, so its reply is big.
    let hot_backups = o.size("BAKCH_BENCH_API_HOT", 1000.0, 20.0) as usize;
    let hot = server.create_target(targets, "multi", &locations)?;
    let client = reqwest::blocking::Client::new();
    for i in 0..hot_backups {
        let part = reqwest::blocking::multipart::Part::bytes(content(7_000_000 + i as u64, 300, true))
            .file_name(format!("hot{i}.txt"));
        let form = reqwest::blocking::multipart::Form::new().text("manual", "0").part("backup_file", part);
        let r = client
            .post(format!("{}/api/target/{hot}/upload", server.url))
            .multipart(form)
            .send()
            .map_err(|e| format!("hot upload {i}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("hot upload {i}: {}", r.status()));
        }
    }
    let mut backups = backups + hot_backups;
    // An upload is answered once queued: the rounds start when every job is done, or they
    // would measure reads beside the seeding's tail.
    wait_for_backups(&server, backups)?;
    let seeded = t.elapsed().as_secs_f64();
    println!(
        "seeded {targets} targets in {created:.1} s, {backups} backups in {seeded:.1} s ({:.0} backups/s)",
        backups as f64 / seeded
    );

    let page_size = 10;
    let pages = targets.div_ceil(page_size);
    let scripts = s.sub("wrk")?;
    let quoted: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
    let endpoints = [
        (
            "GET /api/target?page=N",
            format!(
                "math.randomseed(1)\nrequest = function() return wrk.format(\"GET\", \"/api/target?page=\" .. math.random(1, {pages})) end\n"
            ),
        ),
        (
            "GET /api/target/<id>",
            format!(
                "math.randomseed(2)\nlocal ids = {{{}}}\nrequest = function() return wrk.format(\"GET\", \"/api/target/\" .. ids[math.random(1, #ids)]) end\n",
                quoted.join(",")
            ),
        ),
        ("GET /api/stats", "request = function() return wrk.format(\"GET\", \"/api/stats\") end\n".to_string()),
        (
            "GET /api/target/<hot id>",
            format!("request = function() return wrk.format(\"GET\", \"/api/target/{hot}\") end\n"),
        ),
        // What the official Python client (requests) asks for: the kept gzip copy.
        (
            "GET /api/target/<hot id>, Accept-Encoding: gzip, deflate",
            format!(
                "request = function() return wrk.format(\"GET\", \"/api/target/{hot}\", {{[\"Accept-Encoding\"] = \"gzip, deflate\"}}) end\n"
            ),
        ),
    ];
    let hot_reply = reqwest::blocking::get(format!("{}/api/target/{hot}", server.url))
        .and_then(|r| r.bytes())
        .map_err(|e| format!("read the hot target: {e}"))?;
    println!("the hot target's reply is {} bytes", hot_reply.len());
    let ceiling = Ceiling::start(hot_reply.to_vec())?;
    // A second ceiling the size of the stats reply: whether p99 <= 10 ms at 64 connections is
    // reachable at all on this machine, with wrk on the same cores.
    let stats_reply = reqwest::blocking::get(format!("{}/api/stats", server.url))
        .and_then(|r| r.bytes())
        .map_err(|e| format!("read the stats: {e}"))?;
    let small_ceiling = Ceiling::start(stats_reply.to_vec())?;
    let ceiling_script = scripts.join("ceiling.lua");
    std::fs::write(&ceiling_script, "request = function() return wrk.format(\"GET\", \"/\") end\n")
        .map_err(|e| format!("write {}: {e}", ceiling_script.display()))?;
    let mut rows: Vec<(String, Vec<f64>, Vec<f64>, u64)> = Vec::new();
    for (name, script) in &endpoints {
        let path = scripts.join(format!("{}.lua", rows.len()));
        std::fs::write(&path, script).map_err(|e| format!("write {}: {e}", path.display()))?;
        for conns in [4, 64] {
            rows.push((format!("{name} c={conns}|{}", path.display()), vec![], vec![], 0));
        }
    }
    let (mut ceiling_rps, mut ceiling_p99, mut mixed_rps, mut mixed_p99) = (vec![], vec![], vec![], vec![]);
    let (mut small_rps, mut small_p99) = (vec![], vec![]);
    let hot_script = rows.iter().find(|r| r.0.starts_with("GET /api/target/<hot id> c=64")).map(|r| r.0.clone());
    let hot_script = hot_script.and_then(|l| l.split_once('|').map(|(_, p)| p.to_string())).unwrap_or_default();
    for rep in 0..o.reps {
        for row in rows.iter_mut() {
            let (label, script) = row.0.split_once('|').expect("label");
            let conns: usize = label.rsplit("c=").next().and_then(|c| c.parse().ok()).unwrap_or(4);
            let w = run_wrk(&server.url, conns, o.api_secs, Path::new(script))?;
            println!("rep {rep}: {label}: {:.0} req/s, p99 {:.2} ms, {} errors", w.rps, w.p99_ms, w.errors);
            row.1.push(w.rps);
            row.2.push(w.p99_ms);
            row.3 += w.errors;
        }
        let w = run_wrk(&ceiling.url, 64, o.api_secs, &ceiling_script)?;
        println!("rep {rep}: ceiling (same size, trivial server) c=64: {:.0} req/s, p99 {:.2} ms", w.rps, w.p99_ms);
        ceiling_rps.push(w.rps);
        ceiling_p99.push(w.p99_ms);
        let w = run_wrk(&small_ceiling.url, 64, o.api_secs, &ceiling_script)?;
        println!("rep {rep}: ceiling (stats size, trivial server) c=64: {:.0} req/s, p99 {:.2} ms", w.rps, w.p99_ms);
        small_rps.push(w.rps);
        small_p99.push(w.p99_ms);
        // Reads while 4 clients upload: every finished upload commits, so kept replies renew.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let uploaded = AtomicUsize::new(0);
        let w = std::thread::scope(|scope| {
            let mut clients = Vec::new();
            for c in 0..4u64 {
                let (stop, url, target) = (&stop, &server.url, &ids[c as usize % targets]);
                clients.push(scope.spawn(move || {
                    let client = reqwest::blocking::Client::new();
                    let mut i = 0u64;
                    let mut done = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let part =
                            reqwest::blocking::multipart::Part::bytes(content(9_000_000 + c * 100_000 + i, 2000, true))
                                .file_name(format!("mixed{i}.txt"));
                        let form =
                            reqwest::blocking::multipart::Form::new().text("manual", "0").part("backup_file", part);
                        let res = client.post(format!("{url}/api/target/{target}/upload")).multipart(form).send();
                        done += res.is_ok_and(|r| r.status().is_success()) as usize;
                        i += 1;
                    }
                    done
                }));
            }
            let w = run_wrk(&server.url, 64, o.api_secs, Path::new(&hot_script));
            stop.store(true, Ordering::Relaxed);
            for c in clients {
                uploaded.fetch_add(c.join().unwrap_or(0), Ordering::Relaxed);
            }
            w
        });
        let w = w?;
        backups += uploaded.into_inner();
        // The next repetition starts with the queue empty, as the first did.
        wait_for_backups(&server, backups)?;
        println!("rep {rep}: hot target c=64 while 4 clients upload: {:.0} req/s, p99 {:.2} ms", w.rps, w.p99_ms);
        mixed_rps.push(w.rps);
        mixed_p99.push(w.p99_ms);
    }
    let mut r = Report::new("api_read");
    let peak = server.peak_rss_mib();
    let mut all_met = (true, true);
    let mut worst = (f64::INFINITY, 0.0f64);
    let mut errors = 0;
    for (label, rps, p99, errs) in rows {
        let label = label.split_once('|').map(|(l, _)| l.to_string()).unwrap_or_default();
        if label.ends_with("c=64") {
            let (m_rps, m_p99) = (median(&rps), median(&p99));
            // The 452 KB hot reply has its own throughput goal (>= 5,000 req/s, below).
            if !label.contains("<hot id>") {
                all_met.0 &= m_rps >= 10_000.0;
                worst.0 = worst.0.min(m_rps);
            }
            all_met.1 &= m_p99 <= 10.0;
            worst.1 = worst.1.max(m_p99);
        }
        errors += errs;
        r.row(format!("{label} throughput"), "req/s", rps);
        r.row(format!("{label} p99"), "ms", p99);
    }
    let hot_median = r.rows_named("GET /api/target/<hot id> c=64 throughput").map(median).unwrap_or(0.0);
    r.row("ceiling: same-size reply, trivial actix server, c=64 throughput", "req/s", ceiling_rps.clone());
    r.row("ceiling: same-size reply, trivial actix server, c=64 p99", "ms", ceiling_p99);
    let small_label = format!("ceiling: stats-size reply ({} bytes), trivial actix server, c=64", stats_reply.len());
    r.row(format!("{small_label} throughput"), "req/s", small_rps);
    r.row(format!("{small_label} p99"), "ms", small_p99);
    r.row("GET /api/target/<hot id> c=64 while 4 clients upload throughput", "req/s", mixed_rps.clone());
    r.row("GET /api/target/<hot id> c=64 while 4 clients upload p99", "ms", mixed_p99.clone());
    r.row("bakch peak RSS", "MiB", vec![peak]);
    let ratio = median(&ceiling_rps) / hot_median.max(1.0);
    r.goal(
        "hot target at 64 connections >= 5,000 req/s and within 1.5x the same-size ceiling",
        hot_median >= 5000.0 && ratio <= 1.5,
        format!("{hot_median:.0} req/s, ceiling {:.0} req/s ({ratio:.2}x)", median(&ceiling_rps)),
    );
    r.goal(
        "p99 <= 10 ms for the hot target while uploads run",
        mixed_p99.iter().all(|p| *p <= 10.0),
        format!("rounds: {}", mixed_p99.iter().map(|p| format!("{p:.1} ms")).collect::<Vec<_>>().join(", ")),
    );
    r.goal(">= 10,000 req/s at 64 connections (each small reply)", all_met.0, format!("slowest {:.0} req/s", worst.0));
    r.goal("p99 <= 10 ms at 64 connections", all_met.1, format!("worst {:.2} ms", worst.1));
    r.goal("no errors", errors == 0, format!("{errors} errors"));
    r.notes.push(format!("wrk runs on the same {} cores as the server", num_cores()));
    // Little's law for a closed loop: 64 connections always waiting means a mean latency of
    // 64 / throughput, so a p99 under 10 ms needs more than 6,400 req/s.
    r.notes.push(format!(
        "at 64 connections the mean latency is 64 / throughput: the hot target's median {hot_median:.0} req/s means \
         {:.1} ms on average; a p99 <= 10 ms needs > 6,400 req/s",
        64_000.0 / hot_median.max(1.0)
    ));
    r.json = json!({"targets": targets, "backups": backups, "seed_seconds": seeded, "errors": errors});
    Ok(r)
}

/// Waits until the server lists `n` backups (every queued upload job done).
fn wait_for_backups(server: &Server, n: usize) -> Res<()> {
    let started = Instant::now();
    loop {
        let stats = server.get("/api/stats")?;
        if stats["total_backups"].as_u64() == Some(n as u64) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(format!("only {} of {n} backups after an hour", stats["total_backups"]));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ceiling: a trivial actix-web server that answers every request with the same bytes.
struct Ceiling {
    url: String,
    handle: actix_web::dev::ServerHandle,
}

impl Ceiling {
    fn start(body: Vec<u8>) -> Res<Ceiling> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("ceiling: {e}"))?;
        let url = format!("http://{}", listener.local_addr().map_err(|e| format!("ceiling: {e}"))?);
        let body = bytes::Bytes::from(body);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let sys = actix_web::rt::System::new();
            sys.block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    let body = body.clone();
                    actix_web::App::new().default_service(actix_web::web::to(move || {
                        let body = body.clone();
                        async move { actix_web::HttpResponse::Ok().content_type("application/json").body(body) }
                    }))
                })
                .workers(2)
                .listen(listener);
                match server {
                    Ok(s) => {
                        let s = s.run();
                        let _ = tx.send(Ok(s.handle()));
                        let _ = s.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("ceiling: {e}")));
                    }
                }
            });
        });
        let handle = rx.recv().map_err(|e| format!("ceiling: {e}"))??;
        Ok(Ceiling { url, handle })
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(false));
    }
}
