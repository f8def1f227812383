//! Placing backups as plain files: hard links from blobs into a target folder or the recycle
//! bin, built in a hidden staging name beside the destination and renamed in at once.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use super::durable::{self, Deferred, Existing};
use super::{Store, perms};
use crate::error::{Error, IoContext, Result};
use crate::model::backup::BackupFile;

// Linux errno values that make a hard link impossible: another filesystem, the link limit,
// a filesystem that refuses links. Each falls back to a copy.
const EPERM: i32 = 1;
const EXDEV: i32 = 18;
const EMLINK: i32 = 31;

/// How files reached their place: hard links to the store, or copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    HardLink,
    Copy,
}

/// Builds a backup at `dest` from its blobs: a single file when `single`, otherwise a tree.
/// `dest` must not exist (a conflict otherwise); nothing is left behind on failure.
pub fn materialize(
    store: &Store,
    files: &[BackupFile],
    dest: &Path,
    backup_id: &str,
    single: bool,
) -> Result<LinkMode> {
    let (staging, mode) = stage(store, files, dest, backup_id, single)?;
    durable::publish(&staging, dest, Existing::Keep, durable::Sync::Now).inspect_err(|_| {
        let _ = store.remove(&staging);
    })?;
    Ok(mode)
}

/// Builds a backup from its blobs under its staging name beside `dest` (see
/// [`super::own::OwnNames::staging`]), durable but not yet visible; returns that name.
pub fn stage(
    store: &Store,
    files: &[BackupFile],
    dest: &Path,
    backup_id: &str,
    single: bool,
) -> Result<(PathBuf, LinkMode)> {
    stage_with(store, files, dest, backup_id, single, |_| Ok(())).map(|(staging, mode, ())| (staging, mode))
}

/// As [`stage`], running `meanwhile` on another thread while the tree is built, as soon as the
/// staging name exists (recording a backup of thousands of files in the database takes as
/// long as linking them). Its result is returned with the staging name; if either fails,
/// nothing is left behind on disk.
pub fn stage_with<R: Send>(
    store: &Store,
    files: &[BackupFile],
    dest: &Path,
    backup_id: &str,
    single: bool,
    meanwhile: impl FnOnce(&Path) -> Result<R> + Send,
) -> Result<(PathBuf, LinkMode, R)> {
    let parent = dest.parent().ok_or_else(|| Error::internal(format!("{} has no parent folder", dest.display())))?;
    perms::create_dir_all(parent, store.modes.dir)?;
    let staging = store.own.staging(dest, backup_id);
    store.remove(&staging)?;
    // Opened before anything is staged, so that its filesystem sync covers all of it.
    let mut unsynced = Deferred::open(parent)?;
    let built = if single {
        files
            .first()
            .ok_or_else(|| Error::internal("a single-file backup has no file"))
            .and_then(|file| {
                link_or_copy_noted(&store.blob_path(&file.blob), &staging, store.modes.file, &mut unsynced)
            })
            // A copy's content must be durable before its name is published; a link's name is
            // synced by the publishing rename.
            .and_then(|mode| unsynced.sync().map(|()| mode))
            .and_then(|mode| Ok((mode, meanwhile(&staging)?)))
    } else {
        std::fs::create_dir(&staging)
            .ctx("create folder", &staging)
            .and_then(|()| perms::set_mode(&staging, store.modes.dir))
            .and_then(|()| {
                std::thread::scope(|s| {
                    let side = s.spawn(|| meanwhile(&staging));
                    let tree = build_tree(store, files, &staging, unsynced);
                    let side =
                        side.join().unwrap_or_else(|_| Err(Error::internal("staging a backup: a thread panicked")));
                    Ok((tree?, side?))
                })
            })
    };
    match built {
        Ok((mode, r)) => Ok((staging, mode, r)),
        Err(e) => {
            let _ = store.remove(&staging);
            Err(e)
        }
    }
}

/// Whether `from` and `dest` are on one filesystem (so a rename can move `from` there).
pub fn same_filesystem(from: &Path, dest_dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(from), std::fs::metadata(dest_dir)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

/// What a name points at, to tell later whether it is still what bakch put there: device,
/// inode and, where the filesystem keeps it, birth time. A rename keeps all three; a file made by
/// someone else differs, even one that got a freed inode number again.
pub fn identity(path: &Path) -> Option<String> {
    use rustix::fs::{AtFlags, CWD, StatxFlags, statx};
    match statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::INO | StatxFlags::BTIME) {
        Ok(st) => {
            let dev = (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor);
            let born = StatxFlags::from_bits_truncate(st.stx_mask).contains(StatxFlags::BTIME);
            Some(if born {
                format!("{dev}:{}:{}.{}", st.stx_ino, st.stx_btime.tv_sec, st.stx_btime.tv_nsec)
            } else {
                format!("{dev}:{}", st.stx_ino)
            })
        }
        Err(rustix::io::Errno::NOENT) => None,
        // No statx (an old kernel): device and inode alone.
        Err(_) => {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(path).ok().map(|m| format!("{}:{}", m.dev(), m.ino()))
        }
    }
}

/// Fills the tree at `root` (an empty folder, created after `unsynced` was opened): first its
/// folders, a level at a time, then its files. Each step is shared among a few threads: making
/// ten thousand folders and links is kernel work that runs side by side in separate folders.
fn build_tree(store: &Store, files: &[BackupFile], root: &Path, mut unsynced: Deferred) -> Result<LinkMode> {
    // Every folder of the tree, by depth (parents before children). Every folder of the staging
    // tree is made here, so what is missing is known without looking at the disk.
    let mut dirs: HashSet<PathBuf> = HashSet::from([root.to_path_buf()]);
    let mut levels: Vec<Vec<PathBuf>> = Vec::new();
    for f in files {
        let dest = root.join(safe_relative(&f.path)?);
        let parent = dest.parent().unwrap_or(root);
        if !dirs.contains(parent) {
            let missing: Vec<&Path> = parent.ancestors().take_while(|a| !dirs.contains(*a)).collect();
            for dir in missing.into_iter().rev() {
                let depth = dir.strip_prefix(root).map_or(1, |r| r.components().count()).max(1);
                if levels.len() < depth {
                    levels.resize_with(depth, Vec::new);
                }
                levels[depth - 1].push(dir.to_path_buf());
                dirs.insert(dir.to_path_buf());
            }
        }
    }
    for level in &levels {
        in_parallel(level, |dir| perms::create_dir(dir, store.modes.dir).map(|_| None))?;
    }
    // Each file's place is worked out again by its thread: kept for a million files, the
    // places would cost as much memory as the list itself.
    let copies = in_parallel(files, |f| {
        let dest = root.join(safe_relative(&f.path)?);
        if f.size == 0 {
            // An empty file needs no blob link: no link-count limit, nothing to sync but its folder.
            perms::create_empty_file(&dest, store.modes.file)?;
            return Ok(None);
        }
        let mode = link_or_copy(&store.blob_path(&f.blob), &dest, store.modes.file)?;
        Ok((mode == LinkMode::Copy).then_some(dest))
    })?;
    // Every created folder, new name and copy must reach the disk before the rename publishes
    // them: one filesystem sync for a tree of many folders, not a journal commit per folder.
    for copy in &copies {
        unsynced.file(copy);
    }
    for d in &dirs {
        unsynced.folder(d);
    }
    unsynced.sync()?;
    Ok(if copies.is_empty() { LinkMode::HardLink } else { LinkMode::Copy })
}

/// Fewer items than this are done on the calling thread (a thread costs more than they do).
const ITEMS_PER_THREAD: usize = 256;

/// Runs `each` over `items` on up to four threads (as many as there are cores), in contiguous
/// shares so that each thread mostly works in its own folders; returns the paths `each` named,
/// or the first error.
fn in_parallel<T: Sync>(items: &[T], each: impl Fn(&T) -> Result<Option<PathBuf>> + Sync) -> Result<Vec<PathBuf>> {
    let run = |share: &[T]| -> Result<Vec<PathBuf>> {
        let mut named = Vec::new();
        for item in share {
            named.extend(each(item)?);
        }
        Ok(named)
    };
    // Most levels of a tree are small: they never ask how many cores there are (on Linux that
    // reads the cgroup's files each time).
    if items.len() < 2 * ITEMS_PER_THREAD {
        return run(items);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    let threads = cores.min(items.len() / ITEMS_PER_THREAD).max(1);
    if threads == 1 {
        return run(items);
    }
    let shares: Vec<&[T]> = items.chunks(items.len().div_ceil(threads)).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = shares.into_iter().map(|share| s.spawn(|| run(share))).collect();
        let mut named = Vec::new();
        for h in handles {
            named.extend(h.join().unwrap_or_else(|_| Err(Error::internal("building a tree: a thread panicked")))?);
        }
        Ok(named)
    })
}

/// Hard-links `blob` to `dest`; another filesystem or too many links falls back to a copy
/// with mode `file_mode` (which the caller must sync).
fn link_or_copy(blob: &Path, dest: &Path, file_mode: u32) -> Result<LinkMode> {
    match std::fs::hard_link(blob, dest) {
        Ok(()) => Ok(LinkMode::HardLink),
        Err(e) if e.kind() == ErrorKind::NotFound && !blob.exists() => {
            Err(Error::internal(format!("blob {} is missing from the store", blob.display())))
        }
        Err(e) if matches!(e.raw_os_error(), Some(EXDEV | EMLINK | EPERM)) => {
            std::fs::copy(blob, dest).ctx("copy blob to", dest)?;
            perms::set_mode(dest, file_mode)?;
            Ok(LinkMode::Copy)
        }
        Err(e) => Err(Error::io("link blob to", dest, e)),
    }
}

/// [`link_or_copy`], noting a copy in `unsynced` to be synced.
fn link_or_copy_noted(blob: &Path, dest: &Path, file_mode: u32, unsynced: &mut Deferred) -> Result<LinkMode> {
    let mode = link_or_copy(blob, dest, file_mode)?;
    if mode == LinkMode::Copy {
        unsynced.file(dest);
    }
    Ok(mode)
}

/// A backup-relative path that stays inside the backup: no root, no `..`, no empty parts.
pub fn safe_relative(path: &str) -> Result<PathBuf> {
    let bad = || Error::bad(format!("Path '{path}' is not allowed: it must stay inside the backup"));
    if path.contains('\0') || path.contains('\\') {
        return Err(bad());
    }
    let mut out = PathBuf::new();
    for comp in Path::new(path.trim_start_matches('/')).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return Err(bad()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(bad());
    }
    Ok(out)
}

impl Store {
    /// Removes a file or folder durably; a folder goes through one of bakch's own trash names.
    pub fn remove(&self, path: &Path) -> Result<()> {
        durable::remove(path, &self.own.trash(path))
    }
}

/// Chooses `base` or `base-2`, `base-3`, ... (before `ext`) so that `taken` says no.
pub fn free_name(base: &str, ext: &str, mut taken: impl FnMut(&str) -> Result<bool>) -> Result<String> {
    for n in 1..10_000 {
        let name = if n == 1 { format!("{base}{ext}") } else { format!("{base}-{n}{ext}") };
        if !taken(&name)? {
            return Ok(name);
        }
    }
    Err(Error::internal(format!("no free name for {base}{ext}")))
}

/// blake3 of a file, or None when it does not exist.
pub fn hash_file(path: &Path) -> Result<Option<String>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::io::BufReader::with_capacity(1 << 20, file)).ctx("read", path)?;
    Ok(Some(hasher.finalize().to_hex().to_string()))
}

/// Relative paths of every file (not folder) under `root`; empty when it does not exist.
pub fn files_under(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("read folder", &dir, e)),
        };
        for entry in entries {
            let entry = entry.ctx("read folder", &dir)?;
            let path = entry.path();
            if entry.file_type().ctx("inspect", &path)?.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    Ok(out)
}

/// Puts the blob of `hash` back in place of `placed`, a file bakch placed from the damaged copy
/// of that blob (the same inode): a new link beside it under bakch's own staging name, renamed
/// over it, so the name is never missing.
pub fn relink(store: &Store, hash: &str, placed: &Path, backup_id: &str) -> Result<()> {
    let staging = store.own.staging(placed, backup_id);
    store.remove(&staging)?;
    let mut unsynced = Deferred::open(placed.parent().unwrap_or(Path::new("/")))?;
    link_or_copy_noted(&store.blob_path(hash), &staging, store.modes.file, &mut unsynced)?;
    unsynced.sync()?;
    durable::publish(&staging, placed, Existing::Replace, durable::Sync::Now).inspect_err(|_| {
        let _ = store.remove(&staging);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(safe_relative("/dir/f").unwrap(), PathBuf::from("dir/f"));
        assert_eq!(safe_relative("./a/./b").unwrap(), PathBuf::from("a/b"));
        for bad in ["", "/", "..", "a/../../b", "a\\b", "a\0b"] {
            assert!(safe_relative(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
