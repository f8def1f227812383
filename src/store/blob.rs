//! Writing blobs: bytes stream into a temp file while blake3 hashes them, then the file is
//! fsynced and renamed to its hash. An existing blob of that hash is a deduplication hit.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;

use super::durable::{self, Deferred, Existing, fsync_dir};
use super::{Store, fault, perms};
use crate::error::{Error, IoContext, Result};

/// Large writes: fewer syscalls on the hot path.
const WRITE_BUFFER: usize = 1 << 20;

/// Past each this many bytes, a spool's data so far is sent to disk while more arrives.
const WRITEBACK_STEP: u64 = 32 << 20;

/// A file being written in the store's temp folder; removed on drop unless kept.
pub struct Spool {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    hashing: Hashing,
    size: u64,
    /// Started once the spool passes [`WRITEBACK_STEP`].
    writeback: Option<Writeback>,
    next_writeback: u64,
}

/// Hashes what a spool writes: inline, or on a helper thread, so that hashing and writing an
/// upload each get a core (blake3 was a third of the upload path's time, on the writing thread).
enum Hashing {
    Inline(Box<blake3::Hasher>),
    Aside { chunks: std::sync::mpsc::SyncSender<Bytes>, thread: std::thread::JoinHandle<blake3::Hasher> },
}

impl Hashing {
    fn aside() -> io::Result<Hashing> {
        // A few chunks in flight: the writer runs ahead of the hasher by at most that much.
        let (chunks, received) = std::sync::mpsc::sync_channel::<Bytes>(16);
        let thread = std::thread::Builder::new().name("bakch-hash".into()).spawn(move || {
            let mut hasher = blake3::Hasher::new();
            while let Ok(chunk) = received.recv() {
                hasher.update(&chunk);
            }
            hasher
        })?;
        Ok(Hashing::Aside { chunks, thread })
    }

    fn update(&mut self, chunk: Bytes) -> io::Result<()> {
        match self {
            Hashing::Inline(h) => {
                h.update(&chunk);
                Ok(())
            }
            Hashing::Aside { chunks, .. } => {
                chunks.send(chunk).map_err(|_| io::Error::other("the hashing thread stopped"))
            }
        }
    }

    fn finish(self) -> io::Result<String> {
        let hasher = match self {
            Hashing::Inline(h) => *h,
            Hashing::Aside { chunks, thread } => {
                drop(chunks);
                thread.join().map_err(|_| io::Error::other("the hashing thread failed"))?
            }
        };
        Ok(hasher.finalize().to_hex().to_string())
    }
}

/// Syncs a long spool's data on a helper thread while more of it is written, so that the
/// final fsync waits for the last stretch only. Otherwise the page cache would hold a whole
/// gigabyte upload until that fsync, and the disk would idle while the body arrives.
struct Writeback {
    kick: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<io::Result<()>>,
}

impl Writeback {
    fn start(file: &File) -> Option<Writeback> {
        let file = file.try_clone().ok()?;
        let (kick, kicked) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("bakch-writeback".into())
            .spawn(move || {
                // The clone shares the file's error state: an error seen here is not seen again
                // by the closing fsync, so it is kept and reported by `stop`.
                while kicked.recv().is_ok() {
                    file.sync_data()?;
                }
                Ok(())
            })
            .ok()?;
        Some(Writeback { kick, thread })
    }

    fn kick(&self) {
        // Full: a sync is already waiting to run and will cover these bytes too.
        let _ = self.kick.try_send(());
    }

    /// Waits for the last sync; its first error, if any.
    fn stop(self) -> io::Result<()> {
        drop(self.kick);
        self.thread.join().map_err(|_| io::Error::other("the writeback thread failed"))?
    }
}

/// Asks the kernel to start writing a file's pages to disk now, without waiting for it (on
/// Linux `POSIX_FADV_DONTNEED` starts writeback of dirty pages, then drops the clean ones): the
/// disk works while a batch's next contents arrive, so its closing sync finds little left. Only
/// a hint; durability still comes from that sync.
fn start_writeback(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// A finished spool: its bytes are written, and fsynced unless a [`Batch`] syncs them later.
/// Removed on drop unless it became a blob or a kept upload.
#[derive(Debug)]
pub struct Spooled {
    pub path: PathBuf,
    pub hash: String,
    pub size: u64,
}

impl Spool {
    pub fn create(store: &Store) -> Result<Spool> {
        Spool::create_with(&store.tmp, Hashing::Inline(Box::default()))
    }

    /// As [`Spool::create`], hashing on a helper thread; for uploads, written with [`Spool::write_chunk`].
    pub fn create_hashing_aside(store: &Store) -> Result<Spool> {
        Spool::create_with(&store.tmp, Hashing::aside().ctx("start hashing for", &store.tmp)?)
    }

    /// A spool in `dir`, a folder of the store's temp folder.
    fn create_with(dir: &Path, hashing: Hashing) -> Result<Spool> {
        let path = dir.join(uuid::Uuid::new_v4().simple().to_string());
        let file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).ctx("create temp file", &path)?;
        Ok(Spool {
            path,
            out: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            hashing,
            size: 0,
            writeback: None,
            next_writeback: WRITEBACK_STEP,
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
        if let Some(writeback) = self.writeback.take() {
            writeback.stop().ctx("write", &self.path)?;
        }
        if sync {
            file.sync_all().ctx("sync", &self.path)?;
        } else {
            start_writeback(&file);
        }
        let hashing = std::mem::replace(&mut self.hashing, Hashing::Inline(Box::default()));
        let hash = hashing.finish().ctx("hash", &self.path)?;
        let path = std::mem::take(&mut self.path);
        Ok(Spooled { path, hash, size: self.size })
    }

    /// Writes a chunk that can be shared (not copied) with a hashing thread.
    pub fn write_chunk(&mut self, chunk: Bytes) -> io::Result<()> {
        self.reserve(chunk.len())?;
        let out = self.out.as_mut().ok_or_else(|| io::Error::other("spool already finished"))?;
        out.write_all(&chunk)?;
        let n = chunk.len();
        self.hashing.update(chunk)?;
        self.wrote(n);
        Ok(())
    }

    /// Test seam: a simulated disk may be full (see [`fault`]).
    fn reserve(&self, n: usize) -> io::Result<()> {
        fault::reserve(n as u64)
    }

    /// Counts written bytes, and starts sending them to disk once there are many.
    fn wrote(&mut self, n: usize) {
        self.size += n as u64;
        if self.size >= self.next_writeback {
            self.next_writeback = self.size + WRITEBACK_STEP;
            if self.writeback.is_none()
                && let Some(out) = &self.out
            {
                self.writeback = Writeback::start(out.get_ref());
            }
            if let Some(w) = &self.writeback {
                w.kick();
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.reserve(buf.len())?;
        let out = self.out.as_mut().ok_or_else(|| io::Error::other("spool already finished"))?;
        let n = out.write(buf)?;
        match &mut self.hashing {
            Hashing::Inline(h) => {
                h.update(&buf[..n]);
            }
            aside => aside.update(Bytes::copy_from_slice(&buf[..n]))?,
        }
        self.wrote(n);
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
            fault::give_back(self.size);
        }
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
            fault::give_back(self.size);
        }
    }
}

impl Spooled {
    /// Turns the file into the blob named by its hash; if that blob exists, drops this copy.
    pub fn into_blob(self, store: &Store) -> Result<String> {
        self.into_blob_with(store, None)
    }

    /// As [`Spooled::into_blob`]; with `unsynced`, the new name is only recorded there, not yet
    /// durable (a [`Batch`] syncs all its names together). The content must be durable already
    /// either way: a blob's name promises its whole content.
    fn into_blob_with(mut self, store: &Store, unsynced: Option<&mut Deferred>) -> Result<String> {
        let path = std::mem::take(&mut self.path);
        let hash = std::mem::take(&mut self.hash);
        let dest = store.blob_path(&hash);
        let fan = dest.parent().unwrap_or(&store.blobs).to_path_buf();
        if dest.exists() {
            std::fs::remove_file(&path).ctx("remove temp file", &path)?;
            fault::give_back(self.size);
            touch(&dest)?;
            // Another upload may have named that blob without syncing its folder yet.
            return match unsynced {
                Some(later) => {
                    later.folder(&fan);
                    Ok(hash)
                }
                None => fsync_dir(&fan).map(|()| hash),
            };
        }
        let result = (|| {
            let created = !fan.exists() && perms::create_dir(&fan, perms::PRIVATE_DIR)?;
            // The configured read-only mode: the same inode is hard-linked into target folders.
            perms::set_mode(&path, store.modes.file)?;
            match unsynced {
                Some(later) => {
                    durable::publish(&path, &dest, Existing::Replace, durable::Sync::Later)?;
                    later.folder(&fan);
                    if created {
                        later.folder(&store.blobs);
                    }
                    Ok(())
                }
                None => {
                    if created {
                        fsync_dir(&store.blobs)?;
                    }
                    durable::publish(&path, &dest, Existing::Replace, durable::Sync::Now)
                }
            }
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
        if let Err(e) = durable::publish(&path, &dest, Existing::Replace, durable::Sync::Now) {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
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

/// Reads `reader` to its end. With `known`, a content under [`SMALL`] is hashed in memory first
/// and, when `known` says its blob exists (most files of a daily archive), costs no write at
/// all; without, it goes straight to a spool (content announced as new is hashed once).
fn read_content(
    dir: &Path,
    reader: &mut impl io::Read,
    read_error: fn(io::Error) -> Error,
    known: Option<impl Fn(&str) -> Result<bool>>,
) -> Result<Content> {
    let mut spool = match known {
        Some(known) => {
            let mut head = Vec::new();
            reader.by_ref().take(SMALL as u64).read_to_end(&mut head).map_err(read_error)?;
            if head.len() < SMALL {
                let hash = blake3::hash(&head).to_hex().to_string();
                if known(&hash)? {
                    return Ok(Content::Known(hash, head.len() as u64));
                }
            }
            let mut spool = Spool::create_with(dir, Hashing::Inline(Box::default()))?;
            spool.write_all(&head).ctx("write", &spool.path.clone())?;
            spool
        }
        None => Spool::create_with(dir, Hashing::Inline(Box::default()))?,
    };
    let tmp = spool.path.clone();
    let mut buf = [0u8; 64 * 1024];
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
/// an archive of 20,000 new files then costs two filesystem syncs instead of 40,000 fsyncs
/// (a few new blobs are fsynced one by one, see [`Deferred`]).
///
/// The crash order is kept: contents are synced while still temp files, and only then named
/// by their hash, so a blob's name never points at a partial content. Nothing may refer to the
/// blobs before `commit` returns; dropping the batch instead removes its temp files.
pub struct Batch<'s> {
    store: &'s Store,
    /// The batch's own folder in the store's temp folder: two batches at once (a push's two
    /// packs) then never create files in one folder, where each creation waits for the other's
    /// (ext4 holds the folder's lock while it searches for a free inode).
    tmp: PathBuf,
    /// New contents by hash, written to temp files, not yet synced or named.
    pending: HashMap<String, Spooled>,
    /// Store folders of blobs found already there: another batch may have named them and not
    /// synced the names yet.
    found_in: BTreeSet<PathBuf>,
    /// Opened before anything is written, so that its filesystem sync reports every write
    /// error since, and no other sync of the filesystem can take that report first.
    unsynced: Deferred,
}

impl<'s> Batch<'s> {
    pub fn new(store: &'s Store) -> Result<Self> {
        let unsynced = Deferred::open(&store.tmp)?;
        let tmp = store.tmp.join(format!("batch-{}", uuid::Uuid::new_v4().simple()));
        perms::create_dir(&tmp, perms::PRIVATE_DIR)?;
        Ok(Batch { store, tmp, pending: HashMap::new(), found_in: BTreeSet::new(), unsynced })
    }

    /// Streams `reader` into the store as a blob, durable only after [`Batch::commit`]; returns
    /// (hash, size). A failure to read is turned into an error by `read_error` (a damaged
    /// archive is the client's fault, not the disk's).
    pub fn put(&mut self, reader: &mut impl io::Read, read_error: fn(io::Error) -> Error) -> Result<(String, u64)> {
        let (store, pending) = (self.store, &self.pending);
        let known = |h: &str| Ok(pending.contains_key(h) || stored(store, h)?);
        let spool = match read_content(&self.tmp, reader, read_error, Some(known))? {
            Content::Known(hash, size) => {
                self.note_found(&hash);
                return Ok((hash, size));
            }
            Content::New(spool) => spool,
        };
        let done = spool.finish_with(false)?;
        let (hash, size) = (done.hash.clone(), done.size);
        // A second copy (large, so hashed while written) is dropped here, removing its file.
        if self.pending.contains_key(&hash) || stored(self.store, &hash)? {
            self.note_found(&hash);
        } else {
            self.pending.insert(hash.clone(), done);
        }
        Ok((hash, size))
    }

    /// As [`Batch::put`] for content announced by its hash: kept only if its bytes hash to
    /// `expected`; otherwise nothing is kept and a 400 names the blob. Returns its size.
    pub fn put_verified(
        &mut self,
        reader: &mut impl io::Read,
        read_error: fn(io::Error) -> Error,
        expected: &str,
    ) -> Result<u64> {
        let mismatch = || Error::bad(format!("The content sent for blob {expected} does not match its hash; refused"));
        // Content the store lacks (what a client was told to send) is not hashed in memory first.
        let present = self.pending.contains_key(expected) || stored(self.store, expected)?;
        let known = present.then_some(|h: &str| Ok(h == expected));
        let spool = match read_content(&self.tmp, reader, read_error, known)? {
            Content::Known(hash, size) if hash == expected => {
                self.note_found(&hash);
                return Ok(size);
            }
            Content::Known(..) => return Err(mismatch()),
            Content::New(spool) => spool,
        };
        let done = spool.finish_with(false)?;
        if done.hash != expected {
            return Err(mismatch()); // Dropping `done` removes its temp file.
        }
        let size = done.size;
        if self.pending.contains_key(expected) || stored(self.store, expected)? {
            self.note_found(expected);
        } else {
            self.pending.insert(expected.to_string(), done);
        }
        Ok(size)
    }

    fn note_found(&mut self, hash: &str) {
        if !self.pending.contains_key(hash)
            && let Some(fan) = self.store.blob_path(hash).parent()
        {
            self.found_in.insert(fan.to_path_buf());
        }
    }

    /// Syncs the new contents, names them, and syncs the names, and those of the blobs found.
    pub fn commit(mut self) -> Result<()> {
        for spooled in self.pending.values() {
            self.unsynced.file(&spooled.path);
        }
        self.unsynced.sync()?;
        for fan in &self.found_in {
            self.unsynced.folder(fan);
        }
        for (_, spooled) in self.pending.drain() {
            spooled.into_blob_with(self.store, Some(&mut self.unsynced))?;
        }
        self.unsynced.sync()
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        // Its temp files first (each removes its own), then the folder; whatever a crash
        // leaves is cleared at the next start with the rest of the temp folder.
        self.pending.clear();
        let _ = std::fs::remove_dir_all(&self.tmp);
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

impl Store {
    /// Replaces the blob of `hash` with `fresh` (a synced temp file of the store holding that
    /// content, e.g. fetched from a replica); the device and inode of the copy it replaced.
    pub fn replace_blob(&self, hash: &str, fresh: &Path) -> Result<Option<(u64, u64)>> {
        use std::os::unix::fs::MetadataExt;
        let dest = self.blob_path(hash);
        let old = std::fs::metadata(&dest).ok().map(|m| (m.dev(), m.ino()));
        let fan = dest.parent().unwrap_or(&self.blobs);
        if !fan.exists() {
            perms::create_dir(fan, perms::PRIVATE_DIR)?;
            fsync_dir(&self.blobs)?;
        }
        perms::set_mode(fresh, self.modes.file)?;
        durable::publish(fresh, &dest, Existing::Replace, durable::Sync::Now)?;
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), perms::Modes::default()).unwrap();
        (dir, store)
    }

    fn spooled(store: &Store, bytes: &[u8]) -> Spooled {
        let mut spool = Spool::create(store).unwrap();
        spool.write_all(bytes).unwrap();
        spool.finish().unwrap()
    }

    fn temp_files(store: &Store) -> usize {
        std::fs::read_dir(&store.tmp).unwrap().count()
    }

    #[test]
    fn a_second_insert_of_the_same_content_is_a_dedup_hit() {
        let (_dir, store) = store();
        let first = spooled(&store, b"same bytes").into_blob(&store).unwrap();
        assert_eq!(first, blake3::hash(b"same bytes").to_hex().to_string());
        let path = store.blob_path(&first);
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        let second = spooled(&store, b"same bytes").into_blob(&store).unwrap();
        assert_eq!(second, first);
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap()), inode, "not replaced");
        assert_eq!(store.blobs_on_disk().unwrap().len(), 1);
        assert_eq!(temp_files(&store), 0, "the second copy's temp file was removed");
    }

    #[test]
    fn a_batch_names_its_blobs_only_when_it_commits() {
        let (_dir, store) = store();
        let mut batch = Batch::new(&store).unwrap();
        let big = vec![7u8; SMALL + 10];
        let (a, _) = batch.put(&mut &b"small"[..], |e| Error::bad(e.to_string())).unwrap();
        let (b, size) = batch.put(&mut &big[..], |e| Error::bad(e.to_string())).unwrap();
        let (again, _) = batch.put(&mut &b"small"[..], |e| Error::bad(e.to_string())).unwrap();
        assert_eq!((again.as_str(), size), (a.as_str(), big.len() as u64));
        assert!(!store.blob_path(&a).exists() && !store.blob_path(&b).exists(), "named before commit");
        batch.commit().unwrap();
        assert_eq!(std::fs::read(store.blob_path(&a)).unwrap(), b"small");
        assert_eq!(std::fs::read(store.blob_path(&b)).unwrap(), big);
        assert_eq!(temp_files(&store), 0);

        let mut dropped = Batch::new(&store).unwrap();
        dropped.put(&mut &b"never committed"[..], |e| Error::bad(e.to_string())).unwrap();
        drop(dropped);
        assert_eq!(temp_files(&store), 0, "a dropped batch leaves no temp file");
        assert_eq!(store.blobs_on_disk().unwrap().len(), 2);
    }

    #[test]
    fn a_batch_of_many_blobs_is_synced_together() {
        let (_dir, store) = store();
        let mut batch = Batch::new(&store).unwrap();
        let hashes: Vec<String> = (0..20)
            .map(|i| batch.put(&mut format!("blob {i}").as_bytes(), |e| Error::bad(e.to_string())).unwrap().0)
            .collect();
        batch.commit().unwrap();
        for (i, h) in hashes.iter().enumerate() {
            assert_eq!(std::fs::read(store.blob_path(h)).unwrap(), format!("blob {i}").as_bytes());
        }
        assert_eq!(temp_files(&store), 0);
    }

    #[test]
    fn a_dropped_spool_leaves_no_temp_file() {
        let (_dir, store) = store();
        let mut spool = Spool::create(&store).unwrap();
        spool.write_all(b"half an upload").unwrap();
        assert_eq!(temp_files(&store), 1);
        drop(spool);
        assert_eq!(temp_files(&store), 0);
        drop(spooled(&store, b"finished, never stored"));
        assert_eq!(temp_files(&store), 0);
    }
}
