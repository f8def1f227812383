//! The bytes: content-addressed blobs under `<data>/store`, spooled uploads, and every write
//! into target folders and the recycle bin. Knows paths and files, never database rows.

pub mod archive;
pub mod atomic;
pub mod blob;
pub mod own;
pub mod perms;
pub mod place;
pub mod tarstream;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

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
    /// This installation's own names in shared folders (staging, trash, probes).
    pub own: own::OwnNames,
    /// Modes of new blobs and of what is created in target folders.
    pub modes: perms::Modes,
    /// Test-only fault injection: bytes left before every store write fails with ENOSPC, set
    /// by `BAKCH_FAULT_DISK_FULL_AFTER` (a disk that fills up, without mounting one).
    pub space_left: Option<Arc<AtomicU64>>,
}

impl Store {
    /// Creates the folders if needed, private to bakch's user.
    pub fn open(data_dir: &Path, modes: perms::Modes) -> Result<Store> {
        let blobs = data_dir.join("store");
        let store = Store {
            tmp: blobs.join("tmp"),
            blobs,
            uploads: data_dir.join("uploads"),
            recycle_bin: data_dir.join("recycle_bin"),
            own: own::OwnNames::load_or_create(data_dir)?,
            modes,
            space_left: std::env::var("BAKCH_FAULT_DISK_FULL_AFTER")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(|n| Arc::new(AtomicU64::new(n))),
        };
        if store.space_left.is_some() {
            tracing::warn!("BAKCH_FAULT_DISK_FULL_AFTER is set: store writes will fail once it is used up");
        }
        for dir in [&store.blobs, &store.tmp, &store.uploads, &store.recycle_bin] {
            perms::create_dir_all(dir, perms::PRIVATE_DIR)?;
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
            self.remove(&path)?;
            n += 1;
        }
        Ok(n)
    }
}
