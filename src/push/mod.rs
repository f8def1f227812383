//! `bakch push`: an incremental client. It walks the folders given, hashes only files whose
//! metadata changed since the last run (see [`cache`]), lists the snapshot to the server page
//! by page, sends only the content the server says it lacks, and finishes into a backup.
//!
//! It talks to the server only through `/api/push` (see [`wire`]) and shares nothing with the
//! server's internals but this binary.
//!
//! What is stored: regular files, with their relative path, size, mode and modification time.
//! Symlinks are never followed and not stored (as in an uploaded archive); sockets, FIFOs and
//! devices are skipped with a note; empty folders are not kept (a backup is its files).

mod cache;
mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use crate::cli::PushArgs;
use wire::{Failure, PackItem, Server, enc};

/// A pack holds up to this many bytes (a larger file goes alone). Large packs let the server
/// make many small blobs durable with one filesystem sync instead of an fsync each; a cut
/// costs no more, since what arrived whole is kept.
const PACK_BYTES: u64 = 64 << 20;
/// A pack holds up to this many blobs.
const PACK_BLOBS: usize = 5000;
/// Packs sent at once: the server reads one (its CPU) while it makes the other durable (its disk).
const PACKS_IN_FLIGHT: usize = 2;
/// A page of the list is sent once this many bytes of its files were read to hash, so that the
/// first of a full push's content is on its way while the rest is still being hashed.
const PAGE_READ_BYTES: u64 = 16 << 20;
/// A sending thread waits for a full pack of missing content (or the end of the walk) before
/// it sends one, as packs of a few blobs each would cost the server a sync each; but the run's
/// first pack goes with this much, so the server starts storing early.
const PACK_START_BYTES: u64 = 16 << 20;
/// Most entries waiting to be sent; the walk waits beyond (the client's memory stays flat).
const QUEUED_MAX: usize = 2 * PACK_BLOBS;
/// Tries to read a file that changes while read, or to send one that changed since hashed.
const TRIES: usize = 3;

/// Opens a file for reading without following a symlink put in its place meanwhile.
pub(crate) fn open_nofollow(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32).open(path)
}

/// The counts of a run, for the summary.
#[derive(Debug, Default)]
struct Tally {
    files: u64,
    bytes: u64,
    new: u64,
    changed: u64,
    unchanged: u64,
    removed: u64,
    skipped: u64,
    symlinks: u64,
    /// Content read to hash (the safety re-hash included).
    read: u64,
    rehashed: u64,
    blobs_missing: u64,
    bytes_missing: u64,
}

/// One listed file of the page being built.
struct Entry {
    rel: String,
    abs: PathBuf,
    size: u64,
    mode: u32,
    mtime: i64,
    hash: String,
}

pub fn run(args: &PushArgs) -> Result<(), String> {
    let started = Instant::now();
    let key = read_key(&args.key_file)?;
    let server = Server::new(&args.server, &key);
    let roots = roots(&args.paths)?;
    let excludes = excludes(args)?;
    let cache_dir = args.cache_dir.clone().or_else(cache::default_dir).ok_or("no cache folder: set --cache-dir")?;
    let identity = format!(
        "{}\n{}\n{}",
        args.server.trim_end_matches('/'),
        args.target,
        roots.iter().map(|(p, r)| format!("{}={r}", p.display())).collect::<Vec<_>>().join("\n")
    );
    let mut cache = cache::Cache::open(&cache_dir, &identity)?;
    cache.read_only = args.dry_run;
    // A run cut off earlier left its push open: close it (what it sent stays the target's).
    if let Some(old) = cache.meta("open_push") {
        let _ = server.post_json(&format!("/api/push/{}/{}/abort", enc(&args.target), enc(&old)), &json!({}));
        cache.set_meta("open_push", None);
    }
    let (push_id, max_json, max_entries) = server.begin(&args.target, args.manual).map_err(|e| e.to_string())?;
    cache.set_meta("open_push", Some(&push_id));
    let base = format!("/api/push/{}/{}", enc(&args.target), enc(&push_id));
    let progress = Progress::new(args.quiet);
    let sent = Arc::new(AtomicU64::new(0));
    let outbox = Outbox::default();
    let mut run = Run {
        args,
        server: &server,
        base: &base,
        cache: &cache,
        tally: Tally::default(),
        page: Vec::new(),
        page_bytes: 0,
        page_read: 0,
        max_json: max_json.saturating_sub(4096).max(4096) * 3 / 4,
        max_entries: max_entries.min(5000),
        sent: sent.clone(),
        outbox: &outbox,
        queued: HashSet::new(),
        progress,
        rng: 0x9e37_79b9_7f4a_7c15 ^ started.elapsed().as_nanos() as u64 ^ std::process::id() as u64,
    };
    // The walk hashes and lists while other threads send what the replies call missing.
    let walked = outbox
        .sending(&server, &format!("{base}/blobs"), &sent, || {
            for (root, prefix) in &roots {
                walk(root, prefix, args.one_file_system, &excludes[..], &mut |item| run.visit(item))?;
            }
            run.flush()
        })
        .and_then(|refused| run.retry(refused));
    if let Err(e) = walked {
        run.progress.done();
        if args.dry_run {
            let _ = server.post_json(&format!("{base}/abort"), &json!({}));
            cache.set_meta("open_push", None);
        }
        return Err(e);
    }
    run.progress.done();
    if args.dry_run {
        let _ = server.post_json(&format!("{base}/abort"), &json!({}));
        cache.set_meta("open_push", None);
        let t = &run.tally;
        println!("dry run: {}", summary(t, ""));
        println!("dry run: would send {} blob(s), {}", t.blobs_missing, human(t.bytes_missing));
        return Ok(());
    }
    let removed = cache.forget_unseen() as u64;
    run.tally.removed = removed;
    let done = match server.post_json(&format!("{base}/finish"), &json!({})) {
        Ok(v) => v,
        Err(e) => return Err(format!("finishing the push failed: {e}")),
    };
    cache.set_meta("open_push", None);
    let job = done["job_id"].as_i64().unwrap_or(0);
    let job_started = Instant::now();
    let outcome = wait_job(&server, job)?;
    // The job's polls are not the server's time; the wait for the job is (to the nearest poll).
    let job_secs = job_started.elapsed().as_secs_f64();
    let t = &run.tally;
    let line = summary(
        t,
        &format!(
            "; sent {} blob(s), {} (the server received {})",
            done["blobs_received"].as_i64().unwrap_or(0),
            human(run.sent.load(Ordering::Relaxed)),
            human(done["bytes_received"].as_i64().unwrap_or(0) as u64)
        ),
    );
    let seconds = started.elapsed().as_secs_f64();
    if let Some(err) = outcome {
        return Err(format!("{line}; but the server's job {job} failed: {err}"));
    }
    println!("push: {line}; backup built by job {job}; {seconds:.1} s");
    if args.json {
        println!(
            "{}",
            json!({"files": t.files, "bytes": t.bytes, "new": t.new, "changed": t.changed, "unchanged": t.unchanged,
                "removed": t.removed, "skipped": t.skipped, "symlinks": t.symlinks, "read_bytes": t.read,
                "rehashed": t.rehashed, "sent_bytes": run.sent.load(Ordering::Relaxed),
                "blobs_received": done["blobs_received"], "bytes_received": done["bytes_received"],
                "job_id": job, "seconds": seconds,
                "server_seconds": server.waited.load(Ordering::Relaxed) as f64 / 1e9 + job_secs})
        );
    }
    Ok(())
}

fn summary(t: &Tally, extra: &str) -> String {
    format!(
        "{} files ({}): {} new, {} changed, {} unchanged, {} removed{}{}; read {} to hash{}",
        t.files,
        human(t.bytes),
        t.new,
        t.changed,
        t.unchanged,
        t.removed,
        if t.skipped > 0 { format!(", {} skipped", t.skipped) } else { String::new() },
        if t.symlinks > 0 { format!(", {} symlinks not stored", t.symlinks) } else { String::new() },
        human(t.read),
        extra
    )
}

/// A key file: `{"key": "..."}` (as `bakch newapikey` writes) or the key alone.
fn read_key(path: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    let key = match serde_json::from_str::<Value>(&text) {
        Ok(v) => v.get("key").and_then(Value::as_str).map(str::to_string).unwrap_or_default(),
        Err(_) => text.trim().to_string(),
    };
    if key.is_empty() {
        return Err(format!("the key file {} holds no key", path.display()));
    }
    Ok(key)
}

/// Each folder to push with the path its files get inside the backup: one folder's contents sit
/// at the top; several folders (or files) each keep their own name.
fn roots(paths: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, String> {
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    for p in paths {
        let abs = std::fs::canonicalize(p).map_err(|e| format!("cannot push {}: {e}", p.display()))?;
        let meta = std::fs::metadata(&abs).map_err(|e| format!("cannot push {}: {e}", p.display()))?;
        let name = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let prefix = if paths.len() == 1 && meta.is_dir() { String::new() } else { name };
        if !meta.is_dir() && prefix.is_empty() {
            return Err(format!("cannot push {}: not a folder or a file", p.display()));
        }
        if out.iter().any(|(_, q)| *q == prefix) {
            return Err(format!("two of the paths given are both named '{prefix}'"));
        }
        out.push((abs, prefix));
    }
    Ok(out)
}

/// The exclude patterns (gitignore syntax), from `--exclude` and `--exclude-from` files.
fn excludes(args: &PushArgs) -> Result<Vec<String>, String> {
    let mut out = args.exclude.clone();
    for f in &args.exclude_from {
        let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        out.extend(text.lines().map(str::to_string));
    }
    Ok(out)
}

/// What the walk found.
enum Item<'a> {
    File { rel: String, abs: &'a Path, meta: std::fs::Metadata },
    Symlink,
    Skipped { rel: String, why: String },
}

/// Walks `root` in a stable order, without following symlinks, leaving out what `excludes`
/// match (relative to `root`), optionally staying on its filesystem (another one mounted inside
/// is left out with a note).
fn walk(
    root: &Path,
    prefix: &str,
    one_fs: bool,
    excludes: &[String],
    visit: &mut dyn FnMut(Item<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let walk_root = if root.is_dir() { root.to_path_buf() } else { root.parent().unwrap_or(root).to_path_buf() };
    let mut rules = ignore::gitignore::GitignoreBuilder::new(&walk_root);
    for line in excludes {
        rules.add_line(None, line).map_err(|e| format!("bad exclude pattern '{line}': {e}"))?;
    }
    let rules = rules.build().map_err(|e| format!("bad exclude patterns: {e}"))?;
    let root_dev = std::fs::metadata(&walk_root).map(|m| m.dev()).ok();
    // Mount points left out by the filter, for a note each.
    let mounts = Arc::new(std::sync::Mutex::new(Vec::<PathBuf>::new()));
    let mut builder = ignore::WalkBuilder::new(root);
    builder.standard_filters(false).follow_links(false).sort_by_file_name(|a, b| a.cmp(b));
    let (filter_root, left_out) = (walk_root.clone(), mounts.clone());
    builder.filter_entry(move |e| {
        let is_dir = e.file_type().is_some_and(|t| t.is_dir());
        if e.path() == filter_root {
            return true;
        }
        if rules.matched_path_or_any_parents(e.path(), is_dir).is_ignore() {
            return false;
        }
        let dev = if is_dir { e.metadata().ok().map(|m| m.dev()) } else { None };
        if is_dir && !enters(one_fs, root_dev, dev) {
            left_out.lock().unwrap_or_else(|p| p.into_inner()).push(e.path().to_path_buf());
            return false;
        }
        true
    });
    let rel_of = |path: &Path| {
        let inner = path.strip_prefix(&walk_root).unwrap_or(path);
        if root.is_dir() {
            let inner = inner.to_string_lossy();
            if prefix.is_empty() { inner.into_owned() } else { format!("{prefix}/{inner}") }
        } else {
            prefix.to_string()
        }
    };
    let note_mounts = |visit: &mut dyn FnMut(Item<'_>) -> Result<(), String>| {
        let left_out = std::mem::take(&mut *mounts.lock().unwrap_or_else(|p| p.into_inner()));
        for m in left_out {
            visit(Item::Skipped { rel: rel_of(&m), why: "another filesystem (--one-file-system)".into() })?;
        }
        Ok::<(), String>(())
    };
    for entry in builder.build() {
        note_mounts(visit)?;
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                visit(Item::Skipped { rel: String::new(), why: e.to_string() })?;
                continue;
            }
        };
        let Some(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            continue;
        }
        let rel = rel_of(entry.path());
        if kind.is_symlink() {
            visit(Item::Symlink)?;
        } else if !kind.is_file() {
            visit(Item::Skipped { rel, why: "not a regular file (socket, FIFO or device)".into() })?;
        } else {
            match entry.path().symlink_metadata() {
                Ok(meta) => visit(Item::File { rel, abs: entry.path(), meta })?,
                Err(e) => visit(Item::Skipped { rel, why: e.to_string() })?,
            }
        }
    }
    note_mounts(visit)
}

/// Whether the walk enters a folder on device `dir_dev`: always, unless it stays on the
/// device of the root (`--one-file-system`) and the folder is known to be elsewhere.
fn enters(one_fs: bool, root_dev: Option<u64>, dir_dev: Option<u64>) -> bool {
    match (one_fs, root_dev, dir_dev) {
        (true, Some(root), Some(dir)) => root == dir,
        _ => true,
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec())
}

/// Hashes a file, reading it again if it changed while read; `None` if it kept changing or
/// vanished. Returns the hash, the metadata it belongs to and the bytes read.
fn hash_stable(path: &Path) -> (Option<(String, std::fs::Metadata)>, u64) {
    let mut read = 0;
    let mut buf = vec![0u8; 256 * 1024];
    for _ in 0..TRIES {
        let Ok(mut file) = open_nofollow(path) else { return (None, read) };
        let Ok(before) = file.metadata() else { return (None, read) };
        if !before.is_file() {
            return (None, read);
        }
        let mut hasher = blake3::Hasher::new();
        let mut n_total = 0u64;
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    n_total += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return (None, read),
            }
        }
        read += n_total;
        let Ok(after) = file.metadata() else { return (None, read) };
        if n_total == after.len() && after.len() == before.len() && mtime_ns(&after) == mtime_ns(&before) {
            return (Some((hasher.finalize().to_hex().to_string(), after)), read);
        }
    }
    (None, read)
}

struct Run<'a> {
    args: &'a PushArgs,
    server: &'a Server,
    base: &'a str,
    cache: &'a cache::Cache,
    tally: Tally,
    page: Vec<Entry>,
    page_bytes: usize,
    /// Bytes read to hash the page's files.
    page_read: u64,
    max_json: usize,
    max_entries: usize,
    sent: Arc<AtomicU64>,
    outbox: &'a Outbox,
    /// The first 64 bits of each hash handed to the outbox: content listed again in a later
    /// page (a copy) is sent once. A false match costs a 409 at the finish, never a wrong backup.
    queued: HashSet<u64>,
    progress: Progress,
    rng: u64,
}

impl Run<'_> {
    fn visit(&mut self, item: Item<'_>) -> Result<(), String> {
        let (rel, abs, meta) = match item {
            Item::Symlink => {
                self.tally.symlinks += 1;
                return Ok(());
            }
            Item::Skipped { rel, why } => {
                self.tally.skipped += 1;
                self.progress.note(&format!("skipped {rel}: {why}"));
                return Ok(());
            }
            Item::File { rel, abs, meta } => (rel, abs, meta),
        };
        let cached = self.cache.get(&rel);
        let fresh = cached
            .as_ref()
            .filter(|c| c.size == meta.len() && c.mtime_ns == mtime_ns(&meta) && c.inode == meta.ino())
            .map(|c| c.hash.clone());
        let sample = self.args.rehash_percent > 0.0 && self.next_random() < self.args.rehash_percent / 100.0;
        let (hash, meta) = match fresh {
            Some(hash) if !sample => {
                self.cache.seen(&rel);
                (hash, meta)
            }
            known => {
                let (hashed, read) = hash_stable(abs);
                self.tally.read += read;
                self.page_read += read;
                let Some((hash, meta)) = hashed else {
                    self.tally.skipped += 1;
                    self.progress.note(&format!("skipped {rel}: it vanished or kept changing while read"));
                    return Ok(());
                };
                if let Some(expected) = known {
                    self.tally.rehashed += 1;
                    if expected != hash {
                        self.progress.note(&format!(
                            "warning: {rel} changed without a change of size, time or inode; the cache was wrong"
                        ));
                    }
                }
                self.cache.put(&rel, meta.len(), mtime_ns(&meta), meta.ino(), &hash);
                (hash, meta)
            }
        };
        match &cached {
            None => self.tally.new += 1,
            Some(c) if c.hash != hash => self.tally.changed += 1,
            Some(_) => self.tally.unchanged += 1,
        }
        self.tally.files += 1;
        self.tally.bytes += meta.len();
        self.progress.file(meta.len(), self.sent.load(Ordering::Relaxed));
        let entry = Entry {
            rel,
            abs: abs.to_path_buf(),
            size: meta.len(),
            mode: meta.mode() & 0o7777,
            mtime: meta.mtime(),
            hash,
        };
        self.page_bytes += entry.rel.len() + 160;
        self.page.push(entry);
        if self.page.len() >= self.max_entries || self.page_bytes >= self.max_json || self.page_read >= PAGE_READ_BYTES
        {
            self.flush()?;
        }
        Ok(())
    }

    fn next_random(&mut self) -> f64 {
        // xorshift: a sample, not a secret.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Lists the page, and hands the outbox the content its reply calls missing.
    fn flush(&mut self) -> Result<(), String> {
        if self.page.is_empty() {
            return Ok(());
        }
        let page = std::mem::take(&mut self.page);
        self.page_bytes = 0;
        self.page_read = 0;
        let missing = self.list(&page, &[])?;
        let by_hash: HashMap<&str, &Entry> = page.iter().map(|e| (e.hash.as_str(), e)).collect();
        let mut pending = Vec::new();
        for e in missing.iter().filter_map(|h| by_hash.get(h.as_str())) {
            if !self.queued.insert(hash_key(&e.hash)) {
                continue;
            }
            self.tally.blobs_missing += 1;
            self.tally.bytes_missing += e.size;
            if !self.args.dry_run {
                pending.push(clone_entry(e));
            }
        }
        self.outbox.add(pending)?;
        self.cache.checkpoint();
        Ok(())
    }

    /// Sends again what the server refused because its content changed since it was hashed:
    /// each such file is hashed again, listed again, and its new content sent; one that keeps
    /// changing is left out.
    fn retry(&mut self, refused: Vec<Entry>) -> Result<(), String> {
        let mut failed = refused;
        let mut attempt = 1;
        while !failed.is_empty() {
            let mut fresh = Vec::new();
            let mut gone = Vec::new();
            for e in &failed {
                let (hashed, read) = if attempt < TRIES { hash_stable(&e.abs) } else { (None, 0) };
                self.tally.read += read;
                match hashed {
                    Some((hash, meta)) => {
                        self.cache.put(&e.rel, meta.len(), mtime_ns(&meta), meta.ino(), &hash);
                        fresh.push(Entry { hash, size: meta.len(), mtime: meta.mtime(), ..clone_entry(e) });
                    }
                    None => {
                        self.tally.skipped += 1;
                        self.progress.note(&format!("skipped {}: it kept changing while sent", e.rel));
                        gone.push(e.rel.clone());
                    }
                }
            }
            let again = self.list(&fresh, &gone)?;
            let pending: Vec<Entry> = fresh.into_iter().filter(|e| again.contains(&e.hash)).collect();
            attempt += 1;
            let outbox = Outbox::default();
            failed =
                outbox.sending(self.server, &format!("{}/blobs", self.base), &self.sent, || outbox.add(pending))?;
            self.progress.file(0, self.sent.load(Ordering::Relaxed));
        }
        self.cache.checkpoint();
        Ok(())
    }

    /// Lists entries (and removals); the hashes the server lacks.
    fn list(&self, entries: &[Entry], removed: &[String]) -> Result<Vec<String>, String> {
        if entries.is_empty() && removed.is_empty() {
            return Ok(Vec::new());
        }
        let files: Vec<Value> = entries
            .iter()
            .map(|e| json!({"path": e.rel, "size": e.size, "mode": e.mode, "mtime": e.mtime, "hash": e.hash}))
            .collect();
        let reply = self
            .server
            .post_json(&format!("{}/files", self.base), &json!({"files": files, "removed": removed}))
            .map_err(|e| format!("listing files failed: {e}"))?;
        Ok(reply["missing"].as_array().into_iter().flatten().filter_map(|h| h.as_str().map(str::to_string)).collect())
    }
}

/// What the walk found missing, waiting for the sending threads, and what came of it.
#[derive(Default)]
struct Outbox {
    state: Mutex<OutboxState>,
    changed: Condvar,
}

#[derive(Default)]
struct OutboxState {
    queue: VecDeque<Entry>,
    /// Bytes of content in `queue`.
    bytes: u64,
    /// No more will be added: what is queued goes, then the threads stop.
    closed: bool,
    /// Whether a pack was sent.
    started: bool,
    /// Entries of packs whose content the server refused (changed since hashed).
    refused: Vec<Entry>,
    /// The first failure that ends the run; the threads stop at once.
    error: Option<String>,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues content to send; waits while [`QUEUED_MAX`] entries wait already. Fails once a
    /// sending thread failed.
    fn add(&self, entries: Vec<Entry>) -> Result<(), String> {
        let mut state = self.lock();
        for e in entries {
            while state.queue.len() >= QUEUED_MAX && state.error.is_none() {
                self.changed.notify_all();
                state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if let Some(err) = &state.error {
                return Err(err.clone());
            }
            state.bytes += e.size;
            state.queue.push_back(e);
        }
        self.changed.notify_all();
        match &state.error {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Ends the queue: what waits is still sent, unless `abandon`.
    fn close(&self, abandon: bool) {
        let mut state = self.lock();
        state.closed = true;
        if abandon {
            state.queue.clear();
            state.bytes = 0;
        }
        self.changed.notify_all();
    }

    /// The next pack: up to [`PACK_BYTES`] and [`PACK_BLOBS`] (a larger file alone), once a
    /// full pack waits ([`PACK_START_BYTES`] for the first), or the queue is closed.
    /// `None`: stop.
    fn next_pack(&self) -> Option<Vec<Entry>> {
        let mut state = self.lock();
        loop {
            if state.error.is_some() || (state.closed && state.queue.is_empty()) {
                return None;
            }
            let enough = if state.started { PACK_BYTES } else { PACK_START_BYTES };
            if state.closed || state.bytes >= enough || state.queue.len() >= PACK_BLOBS {
                break;
            }
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        let (mut pack, mut bytes) = (Vec::new(), 0u64);
        while let Some(next) = state.queue.front() {
            if !pack.is_empty() && (bytes + next.size > PACK_BYTES || pack.len() >= PACK_BLOBS) {
                break;
            }
            bytes += next.size;
            pack.extend(state.queue.pop_front());
        }
        state.bytes -= bytes;
        state.started = true;
        // Room for the walk.
        self.changed.notify_all();
        Some(pack)
    }

    /// Runs `fill` (which adds to this outbox) while [`PACKS_IN_FLIGHT`] threads send what it
    /// adds, then sends what is left; returns the content the server refused (changed since
    /// hashed). `fill`'s failure comes first, then a sending thread's.
    fn sending(
        &self,
        server: &Server,
        url: &str,
        sent: &Arc<AtomicU64>,
        fill: impl FnOnce() -> Result<(), String>,
    ) -> Result<Vec<Entry>, String> {
        std::thread::scope(|s| {
            for _ in 0..PACKS_IN_FLIGHT {
                s.spawn(|| self.send_packs(server, url, sent));
            }
            let filled = fill();
            self.close(filled.is_err());
            filled
        })?;
        let (refused, error) = self.outcome();
        error.map_or(Ok(refused), Err)
    }

    /// A sending thread: packs until the queue is closed and empty, or a failure.
    fn send_packs(&self, server: &Server, url: &str, sent: &Arc<AtomicU64>) {
        while let Some(pack) = self.next_pack() {
            let items =
                pack.iter().map(|e| PackItem { hash: e.hash.clone(), size: e.size, file: e.abs.clone() }).collect();
            match server.post_pack(url, items, sent.clone()) {
                Ok(_) => {}
                Err(Failure { status: 400, .. }) => self.lock().refused.extend(pack),
                Err(e) => {
                    let mut state = self.lock();
                    state.error.get_or_insert(format!("sending content failed: {e}"));
                    self.changed.notify_all();
                    return;
                }
            }
        }
    }

    /// What the sending threads left: content refused, and the failure that stopped them.
    fn outcome(&self) -> (Vec<Entry>, Option<String>) {
        let mut state = self.lock();
        (std::mem::take(&mut state.refused), state.error.take())
    }
}

/// The first 64 bits of a blake3 hex hash (this client's own, so always 64 hex digits).
fn hash_key(hash: &str) -> u64 {
    hash.get(..16).and_then(|h| u64::from_str_radix(h, 16).ok()).unwrap_or(0)
}

fn clone_entry(e: &Entry) -> Entry {
    Entry { rel: e.rel.clone(), abs: e.abs.clone(), size: e.size, mode: e.mode, mtime: e.mtime, hash: e.hash.clone() }
}

/// Waits for the backup's job; `Some(error)` if it failed. Polls at a tenth of the time waited
/// so far (5 ms to 500 ms): the end of the job is seen at most about 10 % late, in few requests.
fn wait_job(server: &Server, job: i64) -> Result<Option<String>, String> {
    let started = Instant::now();
    let before = server.waited.load(Ordering::Relaxed);
    loop {
        let v = server.get(&format!("/api/jobs/{job}")).map_err(|e| format!("following job {job} failed: {e}"))?;
        match v["job"]["status"].as_str() {
            Some("FINISHED") => {
                server.waited.store(before, Ordering::Relaxed);
                return Ok(None);
            }
            Some("ERROR") => return Ok(Some(v["job"]["error"].as_str().unwrap_or("see the server's log").to_string())),
            _ => {}
        }
        std::thread::sleep((started.elapsed() / 10).clamp(Duration::from_millis(5), Duration::from_millis(500)));
    }
}

/// A progress bar on a terminal; plain lines every ten seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    started: Instant,
    last_line: Instant,
    files: u64,
    bytes: u64,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress { bar, quiet, started: now, last_line: now, files: 0, bytes: 0 }
    }

    fn file(&mut self, size: u64, sent: u64) {
        if size > 0 || self.files == 0 {
            self.files += 1;
            self.bytes += size;
        }
        let rate = sent as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let msg = format!(
            "{} files, {} scanned, {} sent ({}/s)",
            self.files,
            human(self.bytes),
            human(sent),
            human(rate as u64)
        );
        if let Some(bar) = &self.bar {
            bar.set_message(msg);
        } else if !self.quiet && self.last_line.elapsed() >= Duration::from_secs(10) {
            self.last_line = Instant::now();
            eprintln!("push: {msg}");
        }
    }

    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("push: {line}")),
            None => eprintln!("push: {line}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn human(bytes: u64) -> String {
    crate::model::backup::human_bytes(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_system_leaves_out_only_folders_known_to_be_elsewhere() {
        assert!(enters(true, Some(1), Some(1)));
        assert!(!enters(true, Some(1), Some(2)), "a mount point is left out");
        assert!(enters(false, Some(1), Some(2)), "without the option every folder is entered");
        assert!(enters(true, None, Some(2)) && enters(true, Some(1), None), "unknown devices: entered");
    }
}
