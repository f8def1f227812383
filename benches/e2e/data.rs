//! The generated inputs: every byte comes from a fixed seed, so each run measures the same data.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::Res;

const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
    "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
    "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no",
    "backup", "server", "file", "folder", "target", "photo", "invoice", "meeting", "tomorrow", "project", "report",
    "config", "value", "error", "return", "function", "string", "number", "table", "select", "where", "from", "insert",
    "update", "delete", "kernel", "module", "driver", "package", "version", "release", "build", "test", "garden",
    "recipe", "holiday", "mountain", "river", "letter", "account", "balance", "monday", "friday",
];

/// Bytes of `size` from `seed`: words and lines when `text`, random bytes otherwise. A longer
/// size extends a shorter one (the same seed gives the same prefix), as a growing mailbox does.
pub fn content(seed: u64, size: usize, text: bool) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    if !text {
        let mut v = vec![0u8; size];
        rng.fill_bytes(&mut v);
        return v;
    }
    let mut v = Vec::with_capacity(size + 16);
    let mut col = 0;
    while v.len() < size {
        let r = rng.next_u32();
        let w = WORDS[(r as usize) % WORDS.len()];
        v.extend_from_slice(w.as_bytes());
        col += w.len() + 1;
        if col > 72 || r >> 28 == 0 {
            v.push(b'\n');
            col = 0;
        } else {
            v.push(b' ');
        }
        if r >> 24 == 1 {
            let _ = write!(v, "{} ", r & 0xffff);
        }
    }
    v.truncate(size);
    v
}

/// A random file of `bytes`, written in 1 MiB blocks.
pub fn random_file(path: &Path, bytes: u64, seed: u64) -> Res<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let f = std::fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        w.write_all(&buf[..n]).map_err(|e| format!("write {}: {e}", path.display()))?;
        left -= n as u64;
    }
    w.flush().map_err(|e| format!("write {}: {e}", path.display()))
}

/// File sizes summing to `total`: mostly small files, a few large ones (like a real tree).
fn sizes(rng: &mut StdRng, count: usize, total: u64) -> Vec<u64> {
    let weights: Vec<f64> = (0..count)
        .map(|_| {
            let (lo, hi): (f64, f64) = if rng.random_bool(0.03) { (256e3, 16e6) } else { (100.0, 64e3) };
            (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| ((w / sum) * total as f64).max(1.0) as u64).collect()
}

/// A path in a tree of about 20 files per folder, up to three levels deep.
fn tree_path(rng: &mut StdRng, i: usize, count: usize) -> String {
    let folders = (count / 20).max(1);
    let f = rng.random_range(0..folders);
    let (a, b, c) = (f % 10, (f / 10) % 10, f / 100);
    let ext = ["txt", "md", "rs", "json", "jpg", "bin", "pdf", "csv"][i % 8];
    match f % 3 {
        0 => format!("dir{a}/file{i}.{ext}"),
        1 => format!("dir{a}/sub{b}/file{i}.{ext}"),
        _ => format!("dir{a}/sub{b}/deep{c}/file{i}.{ext}"),
    }
}

// ---------------------------------------------------------------------------------------------
// upload_archive

/// Writes a .tar.gz of `count` files totalling `total` bytes (60 % text, 40 % binary).
pub fn archive(path: &Path, count: usize, total: u64, seed: u64) -> Res<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let sizes = sizes(&mut rng, count, total);
    let f = std::fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::with_capacity(1 << 20, f), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut written = 0;
    for (i, size) in sizes.iter().enumerate() {
        let name = tree_path(&mut rng, i, count);
        let bytes = content(seed ^ (i as u64 + 1) << 8, *size as usize, rng.random_bool(0.6));
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, &name, bytes.as_slice()).map_err(|e| format!("tar: {e}"))?;
        written += bytes.len() as u64;
    }
    let gz = tar.into_inner().map_err(|e| format!("tar: {e}"))?;
    let mut w = gz.finish().map_err(|e| format!("gzip: {e}"))?;
    w.flush().map_err(|e| format!("write: {e}"))?;
    Ok(written)
}

// ---------------------------------------------------------------------------------------------
// dedup_series: a home folder that changes a little every day

/// One file of the simulated home folder; its content is a function of (seed, size, text).
#[derive(Clone)]
struct HomeFile {
    seed: u64,
    size: usize,
    text: bool,
}

pub struct Home {
    root: PathBuf,
    files: BTreeMap<String, HomeFile>,
    rng: StdRng,
    next_seed: u64,
    /// Every distinct content seen in any state: blake3 -> size.
    distinct: HashMap<[u8; 32], u64>,
}

const MAILBOX: &str = "Mail/inbox.mbox";

impl Home {
    fn write(&mut self, path: &str) -> Res<()> {
        let f = &self.files[path];
        let bytes = content(f.seed, f.size, f.text);
        self.distinct.insert(*blake3::hash(&bytes).as_bytes(), bytes.len() as u64);
        let full = self.root.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        std::fs::write(&full, bytes).map_err(|e| format!("write {}: {e}", full.display()))
    }

    fn seed(&mut self) -> u64 {
        self.next_seed += 1;
        self.next_seed
    }

    pub fn create(root: PathBuf, total: u64, files: usize) -> Res<Home> {
        let mut home = Home {
            root,
            files: BTreeMap::new(),
            rng: StdRng::seed_from_u64(4),
            next_seed: 1000,
            distinct: HashMap::new(),
        };
        let mailbox = total / 20;
        let sizes = sizes(&mut home.rng, files, total - mailbox);
        for (i, size) in sizes.into_iter().enumerate() {
            let path = tree_path(&mut home.rng, i, files);
            let f = HomeFile { seed: home.seed(), size: size as usize, text: home.rng.random_bool(0.6) };
            home.files.insert(path, f);
        }
        let seed = home.seed();
        home.files.insert(MAILBOX.into(), HomeFile { seed, size: mailbox as usize, text: true });
        let paths: Vec<String> = home.files.keys().cloned().collect();
        for p in paths {
            home.write(&p)?;
        }
        Ok(home)
    }

    /// One day: about 2 % of the files edited, added, deleted or renamed, and mail arrives.
    pub fn day(&mut self, total: u64) -> Res<()> {
        let changes = (self.files.len() / 50).max(4);
        for c in 0..changes {
            let keys: Vec<&String> = self.files.keys().filter(|k| k.as_str() != MAILBOX).collect();
            let pick = keys[self.rng.random_range(0..keys.len())].clone();
            match c % 5 {
                0 | 1 => {
                    // An edit: new content, roughly the same size.
                    let seed = self.seed();
                    let f = self.files.get_mut(&pick).expect("file");
                    f.seed = seed;
                    f.size = (f.size as f64 * (0.9 + 0.2 * self.rng.random::<f64>())) as usize + 1;
                    self.write(&pick)?;
                }
                2 => {
                    let size = (self.files[&pick].size / 2).max(100);
                    let path = format!("{}.new{}", pick, self.next_seed);
                    let f = HomeFile { seed: self.seed(), size, text: self.rng.random_bool(0.6) };
                    self.files.insert(path.clone(), f);
                    self.write(&path)?;
                }
                3 => {
                    self.files.remove(&pick);
                    std::fs::remove_file(self.root.join(&pick)).map_err(|e| format!("remove {pick}: {e}"))?;
                }
                _ => {
                    let to = format!("{pick}.renamed{}", self.next_seed);
                    self.next_seed += 1;
                    let f = self.files.remove(&pick).expect("file");
                    self.files.insert(to.clone(), f);
                    std::fs::rename(self.root.join(&pick), self.root.join(&to))
                        .map_err(|e| format!("rename {pick}: {e}"))?;
                }
            }
        }
        let grow = (total / 400).max(1) as usize;
        self.files.get_mut(MAILBOX).expect("mailbox").size += grow;
        self.write(MAILBOX)
    }

    /// The current state as an uncompressed tar, in path order.
    pub fn tar(&self, out: &Path) -> Res<()> {
        let f = std::fs::File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
        let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
        for path in self.files.keys() {
            tar.append_path_with_name(self.root.join(path), path).map_err(|e| format!("tar {path}: {e}"))?;
        }
        tar.into_inner().and_then(|mut w| w.flush()).map_err(|e| format!("tar: {e}"))
    }

    pub fn ideal(&self) -> u64 {
        self.distinct.values().sum()
    }
}
