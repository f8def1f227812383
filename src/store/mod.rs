//! The bytes: content-addressed blobs under `<data>/store`, spooled uploads, and every write
//! into target folders and the recycle bin. Knows paths and files, never database rows.

pub mod archive;
pub mod atomic;
pub mod blob;
pub mod place;
pub mod tarstream;

use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// Where bakch keeps its own files inside the data folder.
#[derive(Debug, Clone)]
pub struct Store {
    /// `<data>/store`: blobs in `<2 hex>/<rest>` folders.
    pub blobs: PathBuf,
    /// `<data>/store/tmp`: files being written; same filesystem as the blobs, so renames are atomic.
    pub tmp: PathBuf,
    /// `<data>/uploads`: received archives waiting for their job.
    pub uploads: PathBuf,
    /// `<data>/recycle_bin`: recycled backups, shared by all targets.
    pub recycle_bin: PathBuf,
}

impl Store {
    /// Creates the folders if needed.
    pub fn open(data_dir: &Path) -> Result<Store> {
        let blobs = data_dir.join("store");
        let store = Store {
            tmp: blobs.join("tmp"),
            blobs,
            uploads: data_dir.join("uploads"),
            recycle_bin: data_dir.join("recycle_bin"),
        };
        for dir in [&store.blobs, &store.tmp, &store.uploads, &store.recycle_bin] {
            std::fs::create_dir_all(dir).ctx("create folder", dir)?;
        }
        Ok(store)
    }

    /// Path of the blob with this blake3 hex hash.
    pub fn blob_path(&self, hash: &str) -> PathBuf {
        let (fan, rest) = hash.split_at(hash.len().min(2));
        self.blobs.join(fan).join(rest)
    }

    /// Removes every temp file: none can be in use before the server starts serving.
    pub fn clear_tmp(&self) -> Result<usize> {
        let mut n = 0;
        for entry in std::fs::read_dir(&self.tmp).ctx("read folder", &self.tmp)? {
            let path = entry.ctx("read folder", &self.tmp)?.path();
            place::remove_path(&path)?;
            n += 1;
        }
        Ok(n)
    }
}
