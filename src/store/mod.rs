//! The bytes: content-addressed blobs under `<data>/store`, spooled uploads, and every write
//! into target folders and the recycle bin. Knows paths and files, never database rows.

pub mod archive;
pub mod blob;
pub mod durable;
mod fault;
pub mod manifests;
pub mod own;
pub mod perms;
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
    /// `<data>/manifests`: what every target and finished backup is (see [`manifests`]).
    pub manifests: PathBuf,
    /// `<data>/held`: one file per held entry (see [`manifests`]).
    pub held: PathBuf,
    /// This installation's own names in shared folders (staging, trash, probes).
    pub own: own::OwnNames,
    /// Modes of new blobs and of what is created in target folders.
    pub modes: perms::Modes,
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
            manifests: data_dir.join("manifests"),
            held: data_dir.join("held"),
            own: own::OwnNames::load_or_create(data_dir)?,
            modes,
        };
        fault::announce();
        for dir in [&store.blobs, &store.tmp, &store.uploads, &store.recycle_bin, &store.manifests, &store.held] {
            perms::create_dir_all(dir, perms::PRIVATE_DIR)?;
        }
        Ok(store)
    }

    /// Where a backup named `name` is: in the recycle bin when `recycled`, else in `location`
    /// (its target's folder).
    pub fn place_of(&self, location: &str, recycled: bool, name: &str) -> PathBuf {
        if recycled { self.recycle_bin.join(name) } else { Path::new(location).join(name) }
    }

    /// Path of the blob with this blake3 hex hash.
    /// (free bytes for bakch's user, total bytes) of the filesystem holding the data folder.
    pub fn disk_space(&self) -> Result<(u64, u64)> {
        let st = rustix::fs::statvfs(&self.blobs)
            .map_err(|e| crate::error::Error::io("measure the disk of", &self.blobs, std::io::Error::from(e)))?;
        Ok((st.f_bavail.saturating_mul(st.f_frsize), st.f_blocks.saturating_mul(st.f_frsize)))
    }

    pub fn blob_path(&self, hash: &str) -> PathBuf {
        let (fan, rest) = hash.split_at(hash.len().min(2));
        self.blobs.join(fan).join(rest)
    }

    /// Every blob on disk: (hash, path, metadata). The fan-out layout is known here only.
    pub fn blobs_on_disk(&self) -> Result<Vec<(String, PathBuf, std::fs::Metadata)>> {
        let mut out = Vec::new();
        for fan in std::fs::read_dir(&self.blobs).ctx("read folder", &self.blobs)? {
            let fan = fan.ctx("read folder", &self.blobs)?;
            let fan_name = fan.file_name().to_string_lossy().into_owned();
            if fan_name.len() != 2 || !fan.path().is_dir() {
                continue; // `tmp/` and anything that is not a fan-out folder.
            }
            for entry in std::fs::read_dir(fan.path()).ctx("read folder", &fan.path())? {
                let entry = entry.ctx("read folder", &fan.path())?;
                let meta = entry.metadata().ctx("inspect", &entry.path())?;
                out.push((format!("{fan_name}{}", entry.file_name().to_string_lossy()), entry.path(), meta));
            }
        }
        Ok(out)
    }

    /// Removes the blobs at `paths` that `still_unused` (asked right before each goes) allows,
    /// then syncs each folder once; returns how many went. A removal lost to a crash only
    /// brings back a blob that the next sweep takes.
    pub fn sweep_blobs(&self, paths: &[PathBuf], still_unused: impl Fn(&std::fs::Metadata) -> bool) -> Result<usize> {
        let mut folders = std::collections::BTreeSet::new();
        let mut removed = 0;
        for path in paths {
            match std::fs::metadata(path) {
                Ok(meta) if still_unused(&meta) => {
                    std::fs::remove_file(path).ctx("remove blob", path)?;
                    folders.insert(path.parent().unwrap_or(&self.blobs).to_path_buf());
                    removed += 1;
                }
                _ => {}
            }
        }
        for folder in &folders {
            durable::fsync_dir(folder)?;
        }
        Ok(removed)
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
