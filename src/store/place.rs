//! Placing backups as plain files: hard links from blobs into a target folder or the recycle
//! bin, built in a hidden staging name beside the destination and renamed in at once.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use super::atomic::fsync_dir;
use super::{Store, perms};
use crate::error::{Error, IoContext, Result};
use crate::model::backup::BackupFile;

/// Prefix of every name bakch itself writes into target folders (never a backup's name: name
/// templates may not start with '.').
pub const OWN_PREFIX: &str = ".bakch-";
/// Prefix of bakch's own in-progress names inside target folders.
pub const STAGING_PREFIX: &str = ".bakch-staging-";
/// Prefix of names being removed (renamed first so they vanish at once).
pub const TRASH_PREFIX: &str = ".bakch-trash-";
/// Prefix of the empty file written to check that a target folder is writable.
pub const PROBE_PREFIX: &str = ".bakch-probe-";

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

/// The staging name for building `backup_id` inside `dir`; fixed, so a crash can be cleaned up.
pub fn staging_path(dir: &Path, backup_id: &str) -> PathBuf {
    dir.join(format!("{STAGING_PREFIX}{backup_id}"))
}

/// Builds a backup at `dest` from its blobs: a single file when `single`, otherwise a tree.
/// `dest` must not exist; the staging path is removed on failure.
pub fn materialize(store: &Store, files: &[BackupFile], dest: &Path, staging: &Path, single: bool) -> Result<LinkMode> {
    let parent = dest.parent().ok_or_else(|| Error::internal(format!("{} has no parent folder", dest.display())))?;
    perms::create_dir_all(parent, store.modes.dir)?;
    if staging.exists() {
        remove_path(staging)?;
    }
    let result = (|| {
        let mode = if single {
            let file = files.first().ok_or_else(|| Error::internal("a single-file backup has no file"))?;
            link_or_copy(&store.blob_path(&file.blob), staging, store.modes.file)?
        } else {
            build_tree(store, files, staging)?
        };
        if dest.exists() {
            return Err(Error::internal(format!("{} already exists", dest.display())));
        }
        std::fs::rename(staging, dest).ctx("move backup into", dest)?;
        fsync_dir(parent)?;
        Ok(mode)
    })();
    if result.is_err() {
        let _ = remove_path(staging);
    }
    result
}

fn build_tree(store: &Store, files: &[BackupFile], root: &Path) -> Result<LinkMode> {
    std::fs::create_dir(root).ctx("create folder", root)?;
    perms::set_mode(root, store.modes.dir)?;
    let mut mode = LinkMode::HardLink;
    // Every folder of the tree: each holds new names that must reach the disk.
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::from([root.to_path_buf()]);
    for f in files {
        let dest = root.join(safe_relative(&f.path)?);
        let parent = dest.parent().unwrap_or(root);
        if !dirs.contains(parent) {
            perms::create_dir_all(parent, store.modes.dir)?;
            dirs.extend(parent.ancestors().take_while(|a| a.starts_with(root)).map(Path::to_path_buf));
        }
        if f.size == 0 {
            // An empty file needs no blob link: no link-count limit, nothing to fsync but its folder.
            perms::create_empty_file(&dest, store.modes.file)?;
        } else if link_or_copy(&store.blob_path(&f.blob), &dest, store.modes.file)? == LinkMode::Copy {
            mode = LinkMode::Copy;
        }
    }
    // Every created folder and new name must reach the disk before the rename publishes them.
    // After the first, these fsyncs find the journal already committed and cost little; a
    // filesystem sync would also wait for other writers' data. Deepest first, so a folder's
    // own name is synced after its contents.
    for d in dirs.iter().rev() {
        fsync_dir(d)?;
    }
    Ok(mode)
}

/// Hard-links `blob` to `dest`; another filesystem or too many links falls back to a copy
/// with mode `file_mode`.
fn link_or_copy(blob: &Path, dest: &Path, file_mode: u32) -> Result<LinkMode> {
    match std::fs::hard_link(blob, dest) {
        Ok(()) => Ok(LinkMode::HardLink),
        Err(e) if e.kind() == ErrorKind::NotFound && !blob.exists() => {
            Err(Error::internal(format!("blob {} is missing from the store", blob.display())))
        }
        Err(e) if matches!(e.raw_os_error(), Some(EXDEV | EMLINK | EPERM)) => {
            std::fs::copy(blob, dest).ctx("copy blob to", dest)?;
            perms::set_mode(dest, file_mode)?;
            std::fs::File::open(dest).and_then(|f| f.sync_all()).ctx("sync", dest)?;
            Ok(LinkMode::Copy)
        }
        Err(e) => Err(Error::io("link blob to", dest, e)),
    }
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

/// Removes a file or folder: renamed to a hidden trash name first, so it vanishes at once.
pub fn remove_path(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("inspect", path, e)),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path).ctx("remove", path);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let trash = parent.join(format!("{TRASH_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    std::fs::rename(path, &trash).ctx("remove", path)?;
    std::fs::remove_dir_all(&trash).ctx("remove", &trash)
}

/// Moves a placed backup from `from` to `to`: a rename, or a rebuild from blobs across filesystems.
pub fn relocate(
    store: &Store,
    files: &[BackupFile],
    from: &Path,
    to: &Path,
    staging: &Path,
    single: bool,
) -> Result<()> {
    if let Some(parent) = to.parent() {
        perms::create_dir_all(parent, store.modes.dir)?;
    }
    if to.exists() {
        return Err(Error::internal(format!("{} already exists", to.display())));
    }
    if !from.exists() {
        // Files went missing (deleted by hand): rebuild them from the store.
        materialize(store, files, to, staging, single)?;
        return Ok(());
    }
    match std::fs::rename(from, to) {
        Ok(()) => {
            fsync_dir(to.parent().unwrap_or(Path::new("/")))?;
            fsync_dir(from.parent().unwrap_or(Path::new("/")))
        }
        Err(e) if e.raw_os_error() == Some(EXDEV) => {
            materialize(store, files, to, staging, single)?;
            remove_path(from)
        }
        Err(e) => Err(Error::io("move", from, e)),
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
