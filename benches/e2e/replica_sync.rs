//! replica_sync: `replica_job` sending a store to a real single-node Garage on loopback
//! (encrypting with age, keyed names, multipart for large blobs), against a plain upload of the
//! same files to the same Garage by curl (`--aws-sigv4`, the reference S3 client, the same
//! number of uploads at once). Each repetition writes under its own prefix, so both send
//! everything. Garage must be installed (`cargo install --locked garage`; `.ci/run` does it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::data::random_file;
use crate::harness::{BIN, Server, interleaved, need, q, timed_sh};
use crate::{MIB, Opts, Report, Res, median};

const CONCURRENCY: usize = 4;
const PASSPHRASE: &str = "benchmark passphrase";

pub fn run(o: &Opts) -> Res<Report> {
    need("curl", "curl")?;
    let total_mib = o.size("BAKCH_BENCH_REPLICA_MIB", 256.0, 2.0);
    let files = o.size("BAKCH_BENCH_REPLICA_FILES", 64.0, 4.0) as usize;
    let s = o.scratch("replica_sync")?;
    let garage = Garage::start(&s.sub("garage")?)?;
    let input = s.sub("input")?;
    let per_file = (total_mib * MIB / files as f64) as u64;
    let mut paths = Vec::new();
    for i in 0..files {
        let p = input.join(format!("f{i:04}.bin"));
        random_file(&p, per_file, 7000 + i as u64)?;
        paths.push(p);
    }
    let bytes = per_file * files as u64;
    println!("input: {files} files, {:.1} MiB", bytes as f64 / MIB);
    let secret_file = s.path().join("garage.secret");
    std::fs::write(&secret_file, &garage.secret).map_err(|e| e.to_string())?;
    let (mut bakch, mut reference, mut ratio) = (vec![], vec![], vec![]);
    for rep in 0..o.reps {
        let data = s.path().join(format!("data{rep}"));
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let config = format!(
            "[schedules]\nreplica_job = \"0 0 0 1 1 *\"\n\n[[replica]]\nname = \"bench\"\nendpoint = \"{}\"\n\
             bucket = \"{}\"\nprefix = \"rep{rep}/\"\naccess_key_id = \"{}\"\nsecret_key_file = \"{}\"\n\
             concurrency = {CONCURRENCY}\ndebounce_secs = 86400\n",
            garage.endpoint(),
            garage.bucket,
            garage.key_id,
            secret_file.display()
        );
        std::fs::write(data.join("config.toml"), config).map_err(|e| e.to_string())?;
        init(&data)?;
        let server = Server::start(&data)?;
        let target = server.create_target(0, "multi", &s.sub(&format!("targets{rep}"))?)?;
        let mut jobs = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            jobs.push(server.upload_file(&target, p, &format!("f{i:04}.bin"))?);
        }
        server.wait_jobs(&jobs)?;
        let run_bakch = || -> Res<f64> {
            let t = Instant::now();
            let reply = server.get("/api/jobs/force_run/replica_job")?;
            let took = t.elapsed().as_secs_f64();
            let outcome = reply["outcome"].as_str().unwrap_or_default().to_string();
            if !outcome.contains(&format!("uploaded {}", files)) {
                // Each file is its own backup: its blob plus a manifest, and the target's.
                if !outcome.contains("uploaded") {
                    return Err(format!("replica_job: {outcome}"));
                }
            }
            Ok(took)
        };
        let list = s.path().join(format!("list{rep}"));
        let mut l = std::fs::File::create(&list).map_err(|e| e.to_string())?;
        for p in &paths {
            writeln!(l, "{}", p.display()).map_err(|e| e.to_string())?;
        }
        let url = format!("{}/{}/ref{rep}/", garage.endpoint(), garage.bucket);
        let script = format!(
            "xargs -P {CONCURRENCY} -I F curl -sS --fail -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
             --aws-sigv4 aws:amz:garage:s3 --user {}:{} -T F {} < {}",
            garage.key_id,
            garage.secret,
            q(Path::new(&url)),
            q(&list)
        );
        let (tb, tr) = interleaved(rep, run_bakch, || timed_sh(&script))?;
        let mib = bytes as f64 / MIB;
        println!(
            "rep {rep}: replica_job {:.1} MiB/s ({tb:.2} s), curl to S3 {:.1} MiB/s ({tr:.2} s)",
            mib / tb,
            mib / tr
        );
        bakch.push(mib / tb);
        reference.push(mib / tr);
        ratio.push(tr / tb);
    }
    let mut r = Report::new("replica_sync");
    let share = median(&ratio);
    r.row("bakch replica_job (encrypt + upload)", "MiB/s", bakch);
    r.row("curl --aws-sigv4 plain upload", "MiB/s", reference);
    r.row("ratio replica / plain upload", "x", ratio);
    r.goal("the replica sends at half the plain upload's rate or better", share >= 0.5, format!("{share:.2}x"));
    r.json = json!({"bytes": bytes, "files": files, "concurrency": CONCURRENCY});
    Ok(r)
}

/// `bakch replica init bench` with the passphrase on standard input.
fn init(data: &Path) -> Res<()> {
    let mut child = Command::new(BIN)
        .args(["replica", "init", "bench", "--data-dir"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("bakch replica init: {e}"))?;
    child.stdin.take().ok_or("no stdin")?.write_all(format!("{PASSPHRASE}\n").as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("bakch replica init: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// A single-node Garage on loopback with one bucket and key (as `tests/common/garage.rs`).
struct Garage {
    child: Child,
    config: PathBuf,
    s3_port: u16,
    bucket: String,
    key_id: String,
    secret: String,
}

fn port() -> Res<u16> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

fn garage_bin() -> PathBuf {
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/garage"));
    match home {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("garage"),
    }
}

impl Garage {
    fn start(dir: &Path) -> Res<Garage> {
        let (s3_port, rpc, admin) = (port()?, port()?, port()?);
        let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        let config = dir.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"lmdb\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\nroot_domain = \".s3.local\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                d = dir.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(&config)
            .arg("server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start garage (cargo install --locked garage): {e}"))?;
        let mut g =
            Garage { child, config, s3_port, bucket: "bench".into(), key_id: String::new(), secret: String::new() };
        // `node id` reads the key from disk and answers before the server listens: wait for both
        // ports, then retry the assignment (CI once saw "connection refused" on the RPC port).
        for p in [rpc, s3_port] {
            g.retry_until(&format!("garage port {p}"), || std::net::TcpStream::connect(("127.0.0.1", p)).is_ok())?;
        }
        let node = g.retry(&["node", "id", "-q"])?;
        let node = node.trim().split('@').next().unwrap_or_default().to_string();
        g.retry(&["layout", "assign", "-z", "dc1", "-c", "10G", &node])?;
        g.cli(&["layout", "apply", "--version", "1"])?;
        g.retry(&["bucket", "create", "bench"])?;
        let key = g.cli(&["key", "create", "bench-key"])?;
        let field = |name: &str| {
            key.lines()
                .find(|l| l.to_lowercase().contains(name))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
                .ok_or_else(|| format!("no {name} in: {key}"))
        };
        g.key_id = field("key id")?;
        g.secret = field("secret key")?;
        g.cli(&["bucket", "allow", "--read", "--write", "--owner", "bench", "--key", "bench-key"])?;
        Ok(g)
    }

    fn cli(&self, args: &[&str]) -> Res<String> {
        let out = Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .map_err(|e| format!("garage: {e}"))?;
        if !out.status.success() {
            return Err(format!("garage {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn retry_until(&self, what: &str, ready: impl Fn() -> bool) -> Res<()> {
        let started = Instant::now();
        while !ready() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("{what}: not ready after 60 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn retry(&self, args: &[&str]) -> Res<String> {
        let started = Instant::now();
        loop {
            match self.cli(args) {
                Ok(out) => return Ok(out),
                Err(e) if started.elapsed() > Duration::from_secs(60) => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
