//! The durability rule, and the only code that spells it out: content is written to a temp name
//! and synced, then renamed to its name, then the folder holding the name is synced (at once, or
//! by the caller's filesystem sync for a batch). Removals sync their folder too. Readers see the
//! old name or the new one, never a part. Every name bakch publishes or removes goes through
//! [`publish`] and [`remove`]; what is built under a staging or temp name first (hard links,
//! copies, folders) is synced by its builder before it is published, through [`Deferred`] when
//! there is much of it.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// When a published name must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// Before [`publish`] returns.
    Now,
    /// At the caller's next [`Deferred::sync`], which must have the folder (a batch of names).
    Later,
}

/// Whether [`publish`] may replace what already has the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it atomically (a file bakch owns whole: a key, a blob of the same content).
    Replace,
    /// Refuse with a conflict and leave it as it is (a name in a folder bakch shares with a user).
    Keep,
}

/// Renames `from` (a synced temp file or a staged tree) to `to`, then makes the name durable as
/// `sync` says. A move into a shared folder ([`Existing::Keep`]) also syncs the folder it left:
/// a backup's old name reappearing after a crash would be a second copy, while a temp name
/// reappearing is only swept at the next start.
pub fn publish(from: &Path, to: &Path, existing: Existing, sync: Sync) -> Result<()> {
    match existing {
        Existing::Replace => std::fs::rename(from, to).ctx("move into", to)?,
        Existing::Keep => rename_no_replace(from, to)?,
    }
    if sync == Sync::Later {
        return Ok(());
    }
    let (to_dir, from_dir) = (parent(to), parent(from));
    fsync_dir(to_dir)?;
    if existing == Existing::Keep && from_dir != to_dir { fsync_dir(from_dir) } else { Ok(()) }
}

fn rename_no_replace(from: &Path, to: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => Err(taken(to)),
        // A filesystem without RENAME_NOREPLACE (some network shares): check, then rename. Every
        // placement holds the placement lock, so only a hand-made file can slip in between.
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(taken(to));
            }
            std::fs::rename(from, to).ctx("move into", to)
        }
        Err(e) => Err(Error::io("move into", to, e.into())),
    }
}

fn taken(to: &Path) -> Error {
    Error::conflict(format!("{} already exists and is not bakch's; it was left as it is", to.display()))
}

/// Removes a file, or a folder with everything in it, and makes the removal durable. A folder is
/// first renamed to `trash` (a name of bakch's own beside it), so it leaves its place at once even
/// if the removal is cut short. Nothing there is fine.
pub fn remove(path: &Path, trash: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("inspect", path, e)),
    };
    if !meta.is_dir() {
        std::fs::remove_file(path).ctx("remove", path)?;
        return fsync_dir(parent(path));
    }
    std::fs::rename(path, trash).ctx("remove", path)?;
    fsync_dir(parent(path))?;
    std::fs::remove_dir_all(trash).ctx("remove", trash)
}

/// Makes a folder's entries (new names, renames, removals) durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).ctx("sync folder", dir)
}

/// Makes everything written to a filesystem durable with `syncfs`: far cheaper than an fsync
/// per file when thousands were written (each fsync commits the filesystem's journal on its
/// own), at the price of also flushing other writers' data.
///
/// `syncfs` reports a write error once per open handle, for errors since that handle was
/// opened: so open it before writing what it must cover, and keep it to oneself.
pub struct FilesystemSync {
    handle: File,
    dir: PathBuf,
}

impl FilesystemSync {
    /// A handle on the filesystem holding `dir`.
    pub fn open(dir: &Path) -> Result<FilesystemSync> {
        Ok(FilesystemSync { handle: File::open(dir).ctx("open folder", dir)?, dir: dir.to_path_buf() })
    }

    pub fn sync(&self) -> Result<()> {
        rustix::fs::syncfs(&self.handle).map_err(std::io::Error::from).ctx("sync the filesystem of", &self.dir)
    }
}

/// Up to this many fsyncs cost less than one filesystem sync. On ext4 each fsync of a folder is
/// a journal commit and a disk cache flush (about 3 ms on a virtual disk: 150 folders took
/// 0.4 s), while a filesystem sync is one commit but also waits for other writers' data.
const FEW_FSYNCS: usize = 4;

/// Files and folders written without a sync each, made durable together by [`Deferred::sync`]:
/// an fsync each when they are few, else one sync of their filesystem. Everything recorded must
/// be on the filesystem of the folder it was opened on, and be written after it was opened.
pub struct Deferred {
    fs: FilesystemSync,
    // Hashed, not ordered: a tree of ten thousand folders compared path by path cost more than
    // making them; the few-fsyncs case sorts its handful.
    files: HashSet<PathBuf>,
    folders: HashSet<PathBuf>,
}

impl Deferred {
    /// Opened before anything it will cover is written (see [`FilesystemSync`]).
    pub fn open(dir: &Path) -> Result<Deferred> {
        Ok(Deferred { fs: FilesystemSync::open(dir)?, files: HashSet::new(), folders: HashSet::new() })
    }

    /// A file whose content must reach the disk.
    pub fn file(&mut self, path: &Path) {
        self.files.insert(path.to_path_buf());
    }

    /// A folder whose entries (new names, renames, removals) must reach the disk.
    pub fn folder(&mut self, dir: &Path) {
        if !self.folders.contains(dir) {
            self.folders.insert(dir.to_path_buf());
        }
    }

    /// Makes everything recorded so far durable, then forgets it (a second phase may follow).
    pub fn sync(&mut self) -> Result<()> {
        let (files, folders) = (std::mem::take(&mut self.files), std::mem::take(&mut self.folders));
        if files.len() + folders.len() > FEW_FSYNCS {
            return self.fs.sync();
        }
        for f in &files {
            File::open(f).and_then(|f| f.sync_all()).ctx("sync", f)?;
        }
        // Deepest first: a folder's own name is synced after its contents.
        let mut folders: Vec<PathBuf> = folders.into_iter().collect();
        folders.sort();
        for d in folders.iter().rev() {
            fsync_dir(d)?;
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically with the given mode.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = parent(path);
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).ctx("create", &tmp)?;
        f.write_all(bytes).ctx("write", &tmp)?;
        f.sync_all().ctx("sync", &tmp)?;
        publish(&tmp, path, Existing::Replace, Sync::Now)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_keeps_what_it_must_not_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"new").unwrap();
        std::fs::write(&b, b"the user's").unwrap();
        let err = publish(&a, &b, Existing::Keep, Sync::Now).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        assert_eq!(std::fs::read(&b).unwrap(), b"the user's");
        publish(&a, &b, Existing::Replace, Sync::Now).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"new");
        assert!(!a.exists());
    }

    #[test]
    fn remove_takes_a_tree_and_tolerates_nothing_there() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("t");
        std::fs::create_dir_all(tree.join("x/y")).unwrap();
        std::fs::write(tree.join("x/y/f"), b"f").unwrap();
        remove(&tree, &dir.path().join("trash")).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        remove(&tree, &dir.path().join("trash")).unwrap();
        write_file(&dir.path().join("k"), b"key", 0o600).unwrap();
        assert_eq!(std::fs::read(dir.path().join("k")).unwrap(), b"key");
    }
}
