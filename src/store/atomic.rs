//! The durability rule, in one place: write to a temp file beside the target, fsync it, rename
//! it into place, fsync the folder. Readers see the old file or the new one, never a part.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{IoContext, Result};

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
    dir: std::path::PathBuf,
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

/// Writes `bytes` to `path` atomically with the given mode.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp-{}", file_name(path), uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).ctx("create", &tmp)?;
        f.write_all(bytes).ctx("write", &tmp)?;
        f.sync_all().ctx("sync", &tmp)?;
        std::fs::rename(&tmp, path).ctx("rename into place", path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}
