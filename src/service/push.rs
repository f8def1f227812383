//! Pushes (`bakch push`): a client lists a snapshot's files with their blake3 hashes, page by
//! page; each page's reply names the hashes the client must send; the blobs arrive in packs,
//! each verified against its hash and stored through the store's batch (one durability rule);
//! a finish queues the same upload job every multi-file backup goes through.
//!
//! No existence oracle: a key scoped to targets is told a blob is present only when a backup of
//! one of its targets uses it, or a push into one of them received it; anything else is
//! "missing", and a copy sent of content stored elsewhere is deduplicated silently. A finish
//! is held to the same rule, so a hash alone never buys content the key could not see.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, BufRead, Read};
use std::path::PathBuf;

use super::{Service, is_single};
use crate::db::{self, push::PushSession};
use crate::error::{Error, Result};
use crate::model::backup::PushFile;
use crate::model::backup::{BackupFile, file_folder_clash};
use crate::model::job::{QueuedJob, Source, UploadJob};
use crate::store::blob::Batch;
use crate::store::place::safe_relative;
use crate::time;

/// Most files one push may list (as for a sequential upload).
const MAX_FILES: usize = 1_000_000;

/// Most entries of one page of the list.
pub const MAX_PAGE: usize = 20_000;

/// How long a blob received by a push still counts as the target's without a backup using it.
const RECEIVED_KEEP_SECS: i64 = 24 * 3600;

/// Whose content a caller may learn about: `None` for everything (admin), else these targets.
pub type Reach = Option<Vec<String>>;

/// What a finish queued, and what the push cost on the wire.
#[derive(Debug, Clone)]
pub struct Finished {
    pub job_id: i64,
    pub files: usize,
    pub blobs_received: i64,
    pub bytes_received: i64,
}

/// What one pack stored.
#[derive(Debug, Clone, Default)]
pub struct PackStored {
    pub blobs: usize,
    pub bytes: u64,
}

impl Service {
    /// Opens a push into a multi-file target; returns its id.
    pub fn push_begin(&self, target_id: &str, manual: bool) -> Result<String> {
        let mut c = self.conn()?;
        let target = self.target(&c, target_id)?;
        if is_single(&target) {
            return Err(Error::bad(format!(
                "Target '{}' takes single files; push needs a multi-file target",
                target.name
            )));
        }
        let id = uuid::Uuid::new_v4().to_string();
        db::with_tx(&mut c, |tx| db::push::insert(tx, &id, &target.id, manual))?;
        tracing::info!("push {id} opened for target '{}'", target.name);
        Ok(id)
    }

    /// Adds a page of the list (and takes out `removed` paths); returns the hashes of the page
    /// the client must send, each once.
    pub fn push_files(
        &self,
        target_id: &str,
        push_id: &str,
        listed: Vec<PushFile>,
        removed: Vec<String>,
        reach: &Reach,
    ) -> Result<Vec<String>> {
        if listed.len() + removed.len() > MAX_PAGE {
            return Err(Error::bad(format!("A page may hold at most {MAX_PAGE} entries")));
        }
        let mut files = Vec::with_capacity(listed.len());
        let mut seen = HashSet::with_capacity(listed.len());
        for l in listed {
            let path = clean_path(&l.path)?;
            if !seen.insert(path.clone()) {
                return Err(Error::invalid("files", crate::error::Code::Invalid, format!("'{path}' is listed twice")));
            }
            check_hash(&l.blob)?;
            if l.size < 0 {
                return Err(Error::invalid(
                    "files",
                    crate::error::Code::Invalid,
                    format!("'{path}' has a negative size"),
                ));
            }
            files.push(PushFile { path, blob: l.blob, size: l.size, mode: l.mode & 0o7777, mtime: l.mtime });
        }
        let removed = removed.iter().map(|p| clean_path(p)).collect::<Result<Vec<_>>>()?;
        let mut c = self.conn()?;
        let target = self.target(&c, target_id)?;
        db::with_tx(&mut c, |tx| {
            let session = open_push(tx, &target.id, push_id)?;
            db::push::remove_files(tx, &session.id, &removed)?;
            db::push::put_files(tx, &session.id, &files)
        })?;
        let mut missing = Vec::new();
        let mut asked = HashSet::new();
        for f in &files {
            if asked.insert(f.blob.as_str()) && !self.push_may_use(&c, reach, &f.blob, true)? {
                missing.push(f.blob.clone());
            }
        }
        Ok(missing)
    }

    /// Whether the caller may build on `blob` without sending it: known to its reach, and on
    /// disk. When `touch`, the blob's time is renewed, so garbage collection's grace starts
    /// again: a collection that marked before the list's page was recorded may not take it.
    fn push_may_use(&self, c: &rusqlite::Connection, reach: &Reach, blob: &str, touch: bool) -> Result<bool> {
        if let Some(targets) = reach
            && !db::push::known_in(c, targets, blob)?
        {
            return Ok(false);
        }
        let path = self.store.blob_path(blob);
        let found = if touch {
            std::fs::File::open(&path).map(|f| {
                let _ = f.set_modified(std::time::SystemTime::now());
            })
        } else {
            std::fs::symlink_metadata(&path).map(|_| ())
        };
        match found {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("open blob", &path, e)),
        }
    }

    /// Reads a pack of blobs (`<hash> <size>\n` then that many bytes, repeated) from `body`:
    /// each must be listed by the push with that size and hash to what it claims. Whatever
    /// arrived whole and verified is stored and recorded even when the rest fails (a cut-off
    /// connection, a wrong hash), so a client resends only what did not make it.
    pub fn push_receive(&self, target_id: &str, push_id: &str, body: &mut dyn BufRead) -> Result<PackStored> {
        let session = {
            let c = self.conn()?;
            let target = self.target(&c, target_id)?;
            open_push(&c, &target.id, push_id)?
        };
        let mut batch = Batch::new(&self.store)?;
        let mut stored: Vec<(String, u64)> = Vec::new();
        let outcome = self.read_pack(&session, body, &mut batch, &mut stored);
        if !stored.is_empty() {
            let _ingest = self.ingest_lock();
            batch.commit()?;
            let mut c = self.conn()?;
            db::with_tx(&mut c, |tx| db::push::received(tx, &session, &stored))?;
        }
        outcome?;
        Ok(PackStored { blobs: stored.len(), bytes: stored.iter().map(|s| s.1).sum() })
    }

    fn read_pack(
        &self,
        session: &PushSession,
        body: &mut dyn BufRead,
        batch: &mut Batch<'_>,
        stored: &mut Vec<(String, u64)>,
    ) -> Result<()> {
        let c = self.conn()?;
        let mut line = Vec::new();
        loop {
            line.clear();
            (&mut *body).take(200).read_until(b'\n', &mut line).map_err(cut)?;
            if line.is_empty() {
                return Ok(());
            }
            let text = std::str::from_utf8(&line).ok().and_then(|l| l.strip_suffix('\n'));
            let (hash, size) = text
                .and_then(|l| l.split_once(' '))
                .and_then(|(h, s)| Some((h.to_string(), s.parse::<u64>().ok()?)))
                .ok_or_else(|| Error::bad("A pack record must begin with a line '<blake3 hex> <size>'"))?;
            check_hash(&hash)?;
            match db::push::listed_size(&c, &session.id, &hash)? {
                Some(listed) if listed as u64 == size => {}
                Some(listed) => {
                    return Err(Error::bad(format!("Blob {hash} is listed with {listed} bytes, not {size}")));
                }
                None => return Err(Error::bad(format!("Blob {hash} is not in this push's file list"))),
            }
            let mut part = (&mut *body).take(size);
            let got = batch.put_verified(&mut part, cut, &hash)?;
            if got != size {
                return Err(cut(io::Error::from(io::ErrorKind::UnexpectedEof)));
            }
            stored.push((hash, size));
        }
    }

    /// Queues the backup of a complete push; every listed blob must be usable by the caller.
    pub fn push_finish(&self, target_id: &str, push_id: &str, reach: &Reach) -> Result<Finished> {
        let mut c = self.conn()?;
        let target = self.target(&c, target_id)?;
        let session = open_push(&c, &target.id, push_id)?;
        let files = db::push::files(&c, &session.id)?;
        if files.is_empty() {
            return Err(Error::bad("The push lists no files; nothing to back up"));
        }
        if files.len() > MAX_FILES {
            return Err(Error::bad(format!("A push may list at most {MAX_FILES} files")));
        }
        let paths: BTreeSet<PathBuf> = files.iter().map(|f| PathBuf::from(&f.path)).collect();
        if let Some((file, inside)) = file_folder_clash(&paths) {
            return Err(Error::bad(format!(
                "'{}' is listed as a file and as a folder holding '{}'",
                file.display(),
                inside.display()
            )));
        }
        let mut missing = Vec::new();
        let mut checked = HashSet::new();
        // Every listed blob is marked by garbage collection since its page was recorded (it
        // reads the push's list), so being there is enough: no second touch.
        for f in &files {
            if checked.insert(f.blob.as_str()) && !self.push_may_use(&c, reach, &f.blob, false)? {
                missing.push(f.blob.clone());
            }
        }
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
            return Err(Error::conflict(format!(
                "{} blob(s) of the list have not been sent: {}{}",
                missing.len(),
                shown.join(", "),
                if missing.len() > shown.len() { ", ..." } else { "" }
            )));
        }
        let count = files.len();
        let backup_files: Vec<BackupFile> =
            files.into_iter().map(|f| BackupFile { path: f.path, blob: f.blob, size: f.size, mode: f.mode }).collect();
        // Closing the push and queueing its job are one transaction: two finishes queue one job.
        let job_id = db::with_tx(&mut c, |tx| {
            if !db::push::delete(tx, &session.id)? {
                return Err(Error::not_found(format!("No push '{push_id}' is open for this target")));
            }
            let job = UploadJob {
                target_id: target.id.clone(),
                backup_id: uuid::Uuid::new_v4().to_string(),
                created_at: time::iso(time::now()),
                manual: session.manual,
                source: Source::Files { files: backup_files, totals: None },
            };
            db::jobs::enqueue(tx, &QueuedJob::Upload(job))
        })?;
        self.job_ready.notify_one();
        tracing::info!(
            "push {} for target '{}' finished as job {job_id}: {count} file(s), {} blob(s) and {} bytes received",
            session.id,
            target.name,
            session.blobs_received,
            session.bytes_received
        );
        Ok(Finished {
            job_id,
            files: count,
            blobs_received: session.blobs_received,
            bytes_received: session.bytes_received,
        })
    }

    /// Abandons a push (what it received stays the target's for a while, for a retry).
    pub fn push_abort(&self, target_id: &str, push_id: &str) -> Result<()> {
        let mut c = self.conn()?;
        let target = self.target(&c, target_id)?;
        db::with_tx(&mut c, |tx| {
            open_push(tx, &target.id, push_id)?;
            db::push::delete(tx, push_id)
        })?;
        Ok(())
    }

    /// Closes idle pushes and forgets old received blobs; part of `stale_seq_upload_job`.
    pub fn purge_stale_pushes(&self) -> Result<usize> {
        let mut c = self.conn()?;
        let now = time::now();
        let idle = now - chrono::Duration::seconds(self.config.seq_upload_timeout_secs as i64);
        let keep = RECEIVED_KEEP_SECS.max(self.config.seq_upload_timeout_secs as i64);
        let received = now - chrono::Duration::seconds(keep);
        db::with_tx(&mut c, |tx| db::push::purge(tx, &time::iso(idle), &time::iso(received)))
    }
}

/// The push `push_id`, if it is open for `target_id` (another target's push is as unknown as
/// one that never was).
fn open_push(c: &rusqlite::Connection, target_id: &str, push_id: &str) -> Result<PushSession> {
    db::push::find(c, push_id)?
        .filter(|s| s.target_id == target_id)
        .ok_or_else(|| Error::not_found(format!("No push '{push_id}' is open for this target")))
}

/// A client path as kept in a backup: relative, '/'-separated, inside the backup.
fn clean_path(path: &str) -> Result<String> {
    let rel = safe_relative(path).map_err(|_| {
        Error::invalid("files", crate::error::Code::Invalid, format!("Path '{path}' leaves the backup"))
    })?;
    Ok(rel.to_string_lossy().into_owned())
}

fn check_hash(hash: &str) -> Result<()> {
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(Error::invalid(
            "files",
            crate::error::Code::Invalid,
            format!("'{hash}' is not a blake3 hash (64 lowercase hex)"),
        ))
    }
}

/// A body that stopped short.
fn cut(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut => Error::Timeout(format!("The pack stopped arriving: {e}")),
        _ => Error::bad(format!("The pack was cut off: {e}")),
    }
}
