//! Writing blobs: bytes stream into a temp file while blake3 hashes them, then the file is
//! fsynced and renamed to its hash. An existing blob of that hash is a deduplication hit.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::Store;
use super::atomic::fsync_dir;
use crate::error::{Error, IoContext, Result};

/// Large writes: fewer syscalls on the hot path.
const WRITE_BUFFER: usize = 1 << 20;

/// A file being written in the store's temp folder; removed on drop unless kept.
pub struct Spool {
    path: PathBuf,
    space_left: Option<Arc<AtomicU64>>,
    out: Option<BufWriter<File>>,
    hasher: blake3::Hasher,
    size: u64,
}

/// A finished spool: its bytes are on disk and fsynced. Removed on drop unless it became a
/// blob or a kept upload.
#[derive(Debug)]
pub struct Spooled {
    pub path: PathBuf,
    pub hash: String,
    pub size: u64,
    space_left: Option<Arc<AtomicU64>>,
}

impl Spool {
    pub fn create(store: &Store) -> Result<Spool> {
        let path = store.tmp.join(uuid::Uuid::new_v4().simple().to_string());
        let file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).ctx("create temp file", &path)?;
        Ok(Spool {
            path,
            space_left: store.space_left.clone(),
            out: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            hasher: blake3::Hasher::new(),
            size: 0,
        })
    }

    /// Flushes and fsyncs; the spool is then ready to become a blob or a kept upload.
    pub fn finish(mut self) -> Result<Spooled> {
        let out = self.out.take().expect("spool finished twice");
        let file = out.into_inner().map_err(|e| e.into_error()).ctx("write", &self.path)?;
        file.sync_all().ctx("sync", &self.path)?;
        let path = std::mem::take(&mut self.path);
        let space_left = self.space_left.take();
        Ok(Spooled { path, hash: self.hasher.finalize().to_hex().to_string(), size: self.size, space_left })
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(left) = &self.space_left {
            let wanted = buf.len() as u64;
            if left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(wanted)).is_err() {
                return Err(io::Error::from_raw_os_error(crate::error::ENOSPC));
            }
        }
        let out = self.out.as_mut().ok_or_else(|| io::Error::other("spool already finished"))?;
        let n = out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
            give_back(&self.space_left, self.size);
        }
    }
}

/// Fault injection: a removed temp file frees its space again.
fn give_back(space_left: &Option<Arc<AtomicU64>>, bytes: u64) {
    if let Some(left) = space_left {
        left.fetch_add(bytes, Ordering::SeqCst);
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
            give_back(&self.space_left, self.size);
        }
    }
}

impl Spooled {
    /// Turns the file into the blob named by its hash; if that blob exists, drops this copy.
    pub fn into_blob(mut self, store: &Store) -> Result<String> {
        let path = std::mem::take(&mut self.path);
        let hash = std::mem::take(&mut self.hash);
        let dest = store.blob_path(&hash);
        if dest.exists() {
            std::fs::remove_file(&path).ctx("remove temp file", &path)?;
            give_back(&self.space_left, self.size);
            touch(&dest)?;
            return Ok(hash);
        }
        let result = (|| {
            let fan = dest.parent().unwrap_or(&store.blobs);
            if !fan.exists() {
                std::fs::create_dir_all(fan).ctx("create folder", fan)?;
                fsync_dir(&store.blobs)?;
            }
            // Read-only: the same inode is hard-linked into target folders.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).ctx("set mode of", &path)?;
            std::fs::rename(&path, &dest).ctx("move blob into", &dest)?;
            fsync_dir(fan)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        result.map(|_| hash)
    }

    /// Moves the file into `dir` under `name` (kept for a job, e.g. an archive to extract).
    pub fn keep_in(mut self, dir: &Path, name: &str) -> Result<PathBuf> {
        let path = std::mem::take(&mut self.path);
        let dest = dir.join(name);
        if let Err(e) = std::fs::rename(&path, &dest) {
            let _ = std::fs::remove_file(&path);
            return Err(crate::error::Error::io("move upload into", &dest, e));
        }
        fsync_dir(dir)?;
        Ok(dest)
    }
}

/// Contents up to this size are hashed in memory before anything is written.
const SMALL: usize = 1 << 20;

/// Streams `reader` into the store as a blob; returns (hash, size). A failure to read is
/// turned into an error by `read_error` (a damaged archive is the client's fault, not the disk's).
pub fn put_reader(
    store: &Store,
    reader: &mut impl io::Read,
    read_error: fn(io::Error) -> Error,
) -> Result<(String, u64)> {
    // A small content is hashed first: when its blob exists (most files of a daily archive), it
    // costs no write and no fsync.
    let mut head = Vec::new();
    reader.by_ref().take(SMALL as u64).read_to_end(&mut head).map_err(read_error)?;
    if head.len() < SMALL {
        let hash = blake3::hash(&head).to_hex().to_string();
        let dest = store.blob_path(&hash);
        if dest.exists() {
            touch(&dest)?;
            return Ok((hash, head.len() as u64));
        }
    }
    let mut spool = Spool::create(store)?;
    let tmp = spool.path.clone();
    spool.write_all(&head).ctx("write", &tmp)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        spool.write_all(&buf[..n]).ctx("write", &tmp)?;
    }
    let done = spool.finish()?;
    let size = done.size;
    Ok((done.into_blob(store)?, size))
}

/// A fresh time keeps garbage collection's grace period from taking a blob that a new upload is
/// about to refer to.
fn touch(blob: &Path) -> Result<()> {
    std::fs::File::open(blob).and_then(|f| f.set_modified(SystemTime::now())).ctx("touch blob", blob)
}

/// The blob of the empty file, created once.
pub fn empty_blob(store: &Store) -> Result<String> {
    let hash = blake3::hash(b"").to_hex().to_string();
    if store.blob_path(&hash).exists() {
        return Ok(hash);
    }
    Spool::create(store)?.finish()?.into_blob(store)
}
