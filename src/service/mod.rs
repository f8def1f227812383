//! The one door to the database and the store. Every operation the API and the web UI offer is
//! a synchronous method here, called once per request from a blocking thread, so the ordering
//! that keeps disk and database consistent lives in one place. The rules of what bakch may touch
//! are in [`ownership`], the file-operation journal in [`journal`].

pub mod audit;
pub mod backups;
pub mod files;
pub mod health;
pub mod held;
pub mod jobs;
pub mod journal;
pub mod keys;
pub mod maintenance;
pub mod manifests;
pub mod metrics;
mod ownership;
pub mod push;
pub mod read_cache;
pub mod recovery;
pub mod replica;
pub mod retention;
pub mod seq;
pub mod stats;
pub mod targets;
pub mod uploads;

pub use crate::db::changes::Depends;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Config;
use crate::db::{self, Conn, Pool};
use crate::error::{Error, Result};
use crate::model::backup::Backup;
use crate::model::target::{Target, TargetType};
use crate::store::{Store, perms};

/// Shared by every handler and job worker.
pub struct Service {
    pub config: Config,
    pub pool: Pool,
    pub store: Store,
    /// Wakes job workers when a job is queued.
    pub job_ready: Arc<Notify>,
    /// Held while backups' files are placed, moved or removed (from choosing a new backup's name
    /// to its completion, recycle, restore, delete, edits that move folders), so two such
    /// operations never work on the same names at once.
    pub placement: std::sync::Mutex<()>,
    /// Shared by everything that writes blobs not yet referenced from the database (uploads,
    /// unpacking); taken exclusively by garbage collection, which so never sees a blob in flight.
    pub ingest: std::sync::RwLock<()>,
    /// Usage and totals, kept until the next commit (see [`read_cache`]).
    pub read_cache: read_cache::ReadCache,
    /// When each named key's use was last written to the database (see [`keys`]).
    pub key_use: keys::KeyUse,
    /// Counters kept for `/metrics` while the process runs (see [`metrics`]).
    pub metrics: metrics::Counters,
    /// Woken after each new backup, so replicas sync soon after (debounced).
    pub replica_kick: Arc<Notify>,
}

impl Service {
    pub fn open(config: Config) -> Result<Service> {
        if let Some(old) = perms::own_data_dir(&config.data_dir)? {
            tracing::warn!(
                "data folder {} was open to other accounts (mode {old:04o}); narrowed it to owner-only",
                config.data_dir.display()
            );
        }
        let store = Store::open(&config.data_dir, config.modes)?;
        // An empty database over a store full of backups would let garbage collection take
        // every blob: a missing database is rebuilt from the manifests, never started afresh.
        let described = store.manifest_targets()?;
        if described > 0 && !config.db_path().exists() {
            return Err(Error::internal(format!(
                "the database {} is missing, but the manifests describe {described} target(s): run `bakch rebuild-db` \
                 to rebuild it from them",
                config.db_path().display()
            )));
        }
        let pool = db::open(&config.db_path(), (config.workers as u32 + 8).min(32))?;
        Ok(Service {
            config,
            pool,
            store,
            job_ready: Arc::new(Notify::new()),
            placement: std::sync::Mutex::new(()),
            ingest: std::sync::RwLock::new(()),
            read_cache: read_cache::ReadCache::default(),
            key_use: keys::KeyUse::default(),
            metrics: metrics::Counters::default(),
            replica_kick: Arc::new(Notify::new()),
        })
    }

    /// Takes the placement lock (see [`Service::placement`]).
    pub fn placement_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding it leaves no state behind, so a poisoned lock is still usable.
        self.placement.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the ingest lock shared (see [`Service::ingest`]).
    pub fn ingest_lock(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.ingest.read().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times the database has committed (see `db::commits`): what a kept answer is
    /// tagged with, read before it is computed.
    pub fn commits(&self) -> u64 {
        db::commits()
    }

    /// Whether a commit after `mark` may have changed what an answer that `depends` so shows.
    pub fn changed_since(&self, mark: u64, depends: &Depends) -> bool {
        db::changes::changed_since(mark, depends)
    }

    pub fn conn(&self) -> Result<Conn> {
        Ok(self.pool.get()?)
    }

    /// A target by id or alias, or a 404.
    pub fn target(&self, c: &rusqlite::Connection, id_or_alias: &str) -> Result<Target> {
        db::targets::find(c, id_or_alias)?.ok_or_else(|| Error::not_found(format!("Target '{id_or_alias}' not found")))
    }

    /// A listed backup by id, or a 404.
    pub fn backup(&self, c: &rusqlite::Connection, id: &str) -> Result<Backup> {
        db::backups::find(c, id)?.ok_or_else(|| Error::not_found(format!("Backup '{id}' not found")))
    }

    /// Where a backup's files are: in its target's folder, or in the recycle bin.
    pub fn backup_path(&self, target: &Target, backup: &Backup) -> PathBuf {
        self.place_path(target, backup.is_recycled, &backup.name)
    }

    pub fn place_path(&self, target: &Target, recycled: bool, name: &str) -> PathBuf {
        self.store.place_of(&target.location, recycled, name)
    }
}

/// Whether backups of this target are single files.
pub fn is_single(target: &Target) -> bool {
    target.target_type == TargetType::Single
}
