//! A value read from a small file and read again only when the file changes (inode, time or
//! length), so that a new API key or password takes effect without a restart.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What identifies one version of the file; `None` when it does not exist.
type Stamp = Option<(u64, i64, i64, u64)>;

pub struct WatchedFile<T> {
    path: PathBuf,
    cached: Mutex<Option<(Stamp, Option<T>)>>,
}

impl<T: Clone> WatchedFile<T> {
    pub fn new(path: PathBuf) -> Self {
        WatchedFile { path, cached: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value, `None` when the file does not exist; `read` parses it after each change.
    pub fn get(&self, read: impl FnOnce(&Path) -> Result<T, String>) -> Result<Option<T>, String> {
        let stamp: Stamp = match std::fs::metadata(&self.path) {
            Ok(m) => Some((m.ino(), m.mtime(), m.mtime_nsec(), m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let mut cached = self.cached.lock().map_err(|_| format!("cache of {} poisoned", self.path.display()))?;
        if let Some((s, value)) = cached.as_ref()
            && *s == stamp
        {
            return Ok(value.clone());
        }
        let value = match stamp {
            None => None,
            Some(_) => Some(read(&self.path)?),
        };
        *cached = Some((stamp, value.clone()));
        Ok(value)
    }
}
