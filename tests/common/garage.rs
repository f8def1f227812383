//! A real single-node Garage on loopback for the replica tests: a temp folder with its config
//! (an RPC secret, metadata and data folders, `replication_factor = 1`), the layout assigned and
//! applied, and a bucket and key made with the `garage` CLI. Garage must be installed
//! (`cargo install --locked garage`; `.ci/run` does it when it is missing).
//!
//! Without Garage: with `BAKCH_REQUIRE_GARAGE=1` (`.ci/run` sets it) the tests fail, loudly.
//! Without that variable they say on stderr that they did not run and return: `cargo test` must
//! pass on a fresh machine with only the Rust toolchain (DESIGN.md, promise 8), and Garage
//! takes the better part of an hour to build on a small machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tempfile::TempDir;

use super::{free_port, poll};

pub struct Garage {
    pub dir: TempDir,
    pub s3_port: u16,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
    child: Option<Child>,
}

/// The `garage` binary: `GARAGE_BIN`, else `garage` on the PATH, else `~/.cargo/bin/garage`.
fn find_garage() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GARAGE_BIN") {
        return Some(PathBuf::from(p));
    }
    let on_path = Command::new("garage").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if on_path.is_ok_and(|s| s.success()) {
        return Some(PathBuf::from("garage"));
    }
    let cargo = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/garage"));
    cargo.filter(|p| p.exists())
}

fn garage_bin() -> PathBuf {
    find_garage().unwrap_or_else(|| {
        panic!(
            "Garage is not installed: the replica tests need a real Garage. Install it with \
             `cargo install --locked garage` (.ci/run does this when `command -v garage` fails)"
        )
    })
}

impl Garage {
    /// Starts Garage; `None` (said on stderr) when it is not installed and not required.
    pub fn start_or_skip(test: &str) -> Option<Garage> {
        let required = std::env::var("BAKCH_REQUIRE_GARAGE").is_ok_and(|v| !v.is_empty() && v != "0");
        if find_garage().is_none() && !required {
            eprintln!(
                "NOT RUN: {test} needs Garage (`cargo install --locked garage`); set BAKCH_REQUIRE_GARAGE=1 to make \
                 its absence a failure, as .ci/run does"
            );
            return None;
        }
        Some(Garage::start())
    }

    /// Starts Garage and makes a bucket and a key that can read and write it.
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().expect("temp dir for garage");
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        let config = format!(
            "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"lmdb\"\nreplication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\nrpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
             rpc_secret = \"{secret}\"\n\n[s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\n\
             root_domain = \".s3.garage.localhost\"\n\n[admin]\napi_bind_addr = \"127.0.0.1:{admin_port}\"\n",
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
        );
        std::fs::write(dir.path().join("garage.toml"), config).expect("write garage.toml");
        let mut g = Garage {
            dir,
            s3_port,
            bucket: "bakch-replica".into(),
            key_id: String::new(),
            secret: String::new(),
            child: None,
        };
        g.spawn();
        let status = poll("garage to answer", Duration::from_secs(60), || {
            let out = g.cli(&["node", "id", "-q"]);
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        });
        let node = status.split('@').next().unwrap_or_default().to_string();
        // The RPC port may open after the S3 one: retry until the assignment is accepted.
        poll("garage to accept the layout", Duration::from_secs(60), || {
            g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]).status.success().then_some(())
        });
        g.ok(&["layout", "apply", "--version", "1"]);
        // The layout takes a moment to be in force: creating the bucket fails until it is.
        poll("garage to accept a bucket", Duration::from_secs(60), || {
            g.cli(&["bucket", "create", &g.bucket]).status.success().then_some(())
        });
        let key = g.ok(&["key", "create", "bakch-test-key"]);
        let field = |name: &str| {
            key.lines()
                .find(|l| l.to_lowercase().contains(name))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no '{name}' in the output of garage key create:\n{key}"))
        };
        g.key_id = field("key id");
        g.secret = field("secret key");
        g.ok(&["bucket", "allow", "--read", "--write", "--owner", &g.bucket, "--key", "bakch-test-key"]);
        g
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("garage.log")).expect("garage log");
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(self.config_path())
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start garage");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.s3_port);
        poll("garage's S3 port", Duration::from_secs(60), || std::net::TcpStream::connect(&addr).ok().map(|_| ()));
    }

    /// Stops Garage at once (SIGKILL: a cut, not a clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same folders and ports.
    pub fn resume(&mut self) {
        self.stop();
        self.spawn();
        poll("garage to serve the bucket again", Duration::from_secs(60), || self.try_list().ok().map(|_| ()));
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(garage_bin()).arg("-c").arg(self.config_path()).args(args).output().expect("run garage")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// A `[[replica]]` entry for this bucket; `extra` adds lines. Writes the secret key file
    /// into `dir`.
    pub fn replica_toml(&self, name: &str, dir: &Path, extra: &str) -> String {
        let secret_file = dir.join(format!("{name}.secret"));
        std::fs::write(&secret_file, &self.secret).expect("write secret file");
        format!(
            "[[replica]]\nname = \"{name}\"\nendpoint = \"{}\"\nregion = \"garage\"\nbucket = \"{}\"\n\
             access_key_id = \"{}\"\nsecret_key_file = \"{}\"\n{extra}\n",
            self.endpoint(),
            self.bucket,
            self.key_id,
            secret_file.display()
        )
    }

    fn s3(&self) -> (Bucket, Credentials) {
        let bucket = Bucket::new(self.endpoint().parse().expect("url"), UrlStyle::Path, self.bucket.clone(), "garage")
            .expect("bucket");
        (bucket, Credentials::new(self.key_id.clone(), self.secret.clone()))
    }

    fn try_list(&self) -> Result<Vec<(String, u64)>, String> {
        let (bucket, creds) = self.s3();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = bucket.list_objects_v2(Some(&creds));
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(Duration::from_secs(600));
            let mut resp = ureq::get(url.as_str()).call().map_err(|e| e.to_string())?;
            let text = resp.body_mut().read_to_string().map_err(|e| e.to_string())?;
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| e.to_string())?;
            out.extend(page.contents.into_iter().map(|c| (c.key, c.size.unwrap_or(0))));
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every object in the bucket: (name, size), sorted.
    pub fn list(&self) -> Vec<(String, u64)> {
        self.try_list().expect("list the bucket")
    }

    /// One object's bytes.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let (bucket, creds) = self.s3();
        let url = bucket.get_object(Some(&creds), key).sign(Duration::from_secs(600));
        let mut resp = ureq::get(url.as_str()).call().expect("get object");
        resp.body_mut().with_config().limit(u64::MAX).read_to_vec().expect("read object")
    }

    /// Replaces one object's bytes (to damage it).
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let (bucket, creds) = self.s3();
        let url = bucket.put_object(Some(&creds), key).sign(Duration::from_secs(600));
        ureq::put(url.as_str()).send(bytes).expect("put object");
    }

    /// Removes one object.
    pub fn delete(&self, key: &str) {
        let (bucket, creds) = self.s3();
        let url = bucket.delete_object(Some(&creds), key).sign(Duration::from_secs(600));
        ureq::delete(url.as_str()).call().expect("delete object");
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
