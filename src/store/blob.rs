//! Writing blobs: bytes stream into a temp file while blake3 hashes them, then the file is
//! fsynced and renamed to its hash. An existing blob of that hash is a deduplication hit.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::Store;
use super::atomic::{fsync_dir, sync_filesystem};
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
    pub fn finish(self) -> Result<Spooled> {
        self.finish_with(true)
    }

    /// Flushes without an fsync: for a [`Batch`], which makes all its files durable at once.
    fn finish_with(mut self, sync: bool) -> Result<Spooled> {
        let out = self.out.take().expect("spool finished twice");
        let file = out.into_inner().map_err(|e| e.into_error()).ctx("write", &self.path)?;
        if sync {
            file.sync_all().ctx("sync", &self.path)?;
        }
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
    pub fn into_blob(self, store: &Store) -> Result<String> {
        self.into_blob_with(store, true)
    }

    /// As [`Spooled::into_blob`]; without `sync` the new name is not yet durable (a [`Batch`]
    /// syncs the whole store once). The content must be durable already either way: a blob's
    /// name promises its whole content.
    fn into_blob_with(mut self, store: &Store, sync: bool) -> Result<String> {
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
                if sync {
                    fsync_dir(&store.blobs)?;
                }
            }
            // Read-only: the same inode is hard-linked into target folders.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).ctx("set mode of", &path)?;
            std::fs::rename(&path, &dest).ctx("move blob into", &dest)?;
            if sync { fsync_dir(fan) } else { Ok(()) }
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

/// What reading a content found: a blob already stored, or new bytes in a spool.
enum Content {
    Known(String, u64),
    New(Box<Spool>),
}

/// Reads `reader` to its end. A content under [`SMALL`] is hashed in memory first and, when
/// `known` says its blob exists (most files of a daily archive), costs no write at all.
fn read_content(
    store: &Store,
    reader: &mut impl io::Read,
    read_error: fn(io::Error) -> Error,
    known: impl Fn(&str) -> Result<bool>,
) -> Result<Content> {
    let mut head = Vec::new();
    reader.by_ref().take(SMALL as u64).read_to_end(&mut head).map_err(read_error)?;
    if head.len() < SMALL {
        let hash = blake3::hash(&head).to_hex().to_string();
        if known(&hash)? {
            return Ok(Content::Known(hash, head.len() as u64));
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
    Ok(Content::New(Box::new(spool)))
}

/// Whether the blob exists; if so it is touched (see [`touch`]).
fn stored(store: &Store, hash: &str) -> Result<bool> {
    let dest = store.blob_path(hash);
    if !dest.exists() {
        return Ok(false);
    }
    touch(&dest)?;
    Ok(true)
}

/// Many blobs written without an fsync each and made durable together by [`Batch::commit`]:
/// an archive of 20,000 files then costs two filesystem syncs instead of 40,000 fsyncs.
///
/// The crash order is kept: contents are synced while still temp files, and only then named
/// by their hash, so a blob's name never points at a partial content. Nothing may refer to the
/// blobs before `commit` returns; dropping the batch instead removes its temp files.
pub struct Batch<'s> {
    store: &'s Store,
    /// New contents by hash, written to temp files, not yet synced or named.
    pending: HashMap<String, Spooled>,
}

impl<'s> Batch<'s> {
    pub fn new(store: &'s Store) -> Self {
        Batch { store, pending: HashMap::new() }
    }

    /// Streams `reader` into the store as a blob, durable only after [`Batch::commit`]; returns
    /// (hash, size). A failure to read is turned into an error by `read_error` (a damaged
    /// archive is the client's fault, not the disk's).
    pub fn put(&mut self, reader: &mut impl io::Read, read_error: fn(io::Error) -> Error) -> Result<(String, u64)> {
        let known = |h: &str| Ok(self.pending.contains_key(h) || stored(self.store, h)?);
        let spool = match read_content(self.store, reader, read_error, known)? {
            Content::Known(hash, size) => return Ok((hash, size)),
            Content::New(spool) => spool,
        };
        let done = spool.finish_with(false)?;
        let (hash, size) = (done.hash.clone(), done.size);
        // A second copy (large, so hashed while written) is dropped here, removing its file.
        if !self.pending.contains_key(&hash) && !stored(self.store, &hash)? {
            self.pending.insert(hash.clone(), done);
        }
        Ok((hash, size))
    }

    /// Syncs the new contents, names them, and syncs the names.
    pub fn commit(mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        sync_filesystem(&self.store.tmp)?;
        for (_, spooled) in self.pending.drain() {
            spooled.into_blob_with(self.store, false)?;
        }
        sync_filesystem(&self.store.blobs)
    }
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
