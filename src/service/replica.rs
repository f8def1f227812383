//! Replicas: the scheduled sync (`replica_job`, also run a little after new backups), the
//! rotating verification (`replica_verify_job`), healing a damaged blob from a replica, and
//! what the page, the CLI and `/metrics` show.
//!
//! The bucket is the truth of what a replica holds: a sync lists it, uploads what is missing,
//! and so resumes by itself after a crash or a network cut without sending anything twice.
//! Objects nothing here needs any more are noted with the time that was first seen and removed
//! only `delete_delay_days` later (a local setting: no request to bakch can shorten it).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::Service;
use crate::config::Replica;
use crate::db;
use crate::error::{Error, Result};
use crate::model::notify::{Event, EventKind};
use crate::model::replica::ReplicaState;
use crate::replica::crypt::{BLOB_PREFIX, Keys, MANIFEST_PREFIX};
use crate::replica::s3::Client;
use crate::replica::{self, Item, Wanted};
use crate::time;

impl Service {
    /// The replica's client and key, or why it cannot be used yet.
    fn replica_parts(&self, r: &Replica) -> Result<(Client, Keys)> {
        let keys = replica::load_keys(&self.config.data_dir, &r.name)?.ok_or_else(|| {
            Error::conflict(format!(
                "replica '{}' has no key on this server yet: run `bakch replica init {}` first",
                r.name, r.name
            ))
        })?;
        Ok((Client::new(&r.endpoint)?, keys))
    }

    /// `replica_job`: syncs every configured replica; an error names each one that failed.
    pub fn sync_replicas(&self) -> Result<String> {
        let mut lines = Vec::new();
        let mut failed = Vec::new();
        for r in &self.config.replicas {
            match self.sync_replica(r) {
                Ok(line) => lines.push(format!("{}: {line}", r.name)),
                Err(e) => failed.push(format!("{}: {e}", r.name)),
            }
        }
        if !failed.is_empty() {
            return Err(Error::internal(failed.join("; ")));
        }
        Ok(if lines.is_empty() { "no replicas configured".into() } else { lines.join("; ") })
    }

    fn sync_replica(&self, r: &Replica) -> Result<String> {
        let result = self.sync_replica_inner(r);
        if let Err(e) = &result {
            self.replica_failed(r, &format!("sync: {e}"))?;
        }
        result
    }

    fn sync_replica_inner(&self, r: &Replica) -> Result<String> {
        let (client, keys) = self.replica_parts(r)?;
        let wanted = replica::wanted(&self.store, &keys)?;
        let remote = remote_objects(&client)?;
        let todo: Vec<&Wanted> = wanted.iter().filter(|w| !remote.contains_key(&w.object)).collect();
        let pending_bytes: u64 = todo.iter().map(|w| w.size()).sum();
        db::replica::record_attempt(
            &*self.conn()?,
            &r.name,
            &time::iso(time::now()),
            todo.len() as i64,
            pending_bytes as i64,
        )?;
        let already = wanted.len() - todo.len();
        let sent = self.upload_all(r, &client, &keys, &todo)?;

        // Deletions, delayed: only what stays unneeded for the whole delay goes.
        let needed: HashSet<&str> = wanted.iter().map(|w| w.object.as_str()).collect();
        let known = db::replica::unneeded(&*self.conn()?, &r.name)?;
        let now = time::now();
        let mut unneeded: HashMap<String, String> = HashMap::new();
        let mut due = Vec::new();
        for name in remote.keys().filter(|n| !needed.contains(n.as_str())) {
            let since = known.get(name).cloned().unwrap_or_else(|| time::iso(now));
            let ripe = time::parse_iso(&since)
                .is_some_and(|s| now.signed_duration_since(s).to_std().is_ok_and(|age| age >= r.delete_delay));
            if ripe {
                due.push(name.clone());
            } else {
                unneeded.insert(name.clone(), since);
            }
        }
        let mut removed = 0;
        let mut removed_bytes = 0;
        for name in &due {
            match client.delete(name) {
                Ok(()) => {
                    removed += 1;
                    removed_bytes += remote.get(name).copied().unwrap_or(0);
                }
                Err(e) => {
                    tracing::warn!("replica '{}': {e}; tried again next time", r.name);
                    unneeded.insert(name.clone(), known.get(name).cloned().unwrap_or_else(|| time::iso(now)));
                }
            }
        }
        let objects = remote.len() + sent.objects - removed;
        let bytes = remote.values().sum::<u64>() + sent.bytes - removed_bytes;
        let outcome = format!(
            "uploaded {} object(s), {} encrypted byte(s); {already} already there; {} unneeded kept for the delete \
             delay; {removed} removed after it",
            sent.objects,
            sent.bytes,
            unneeded.len()
        );
        let mut c = self.conn()?;
        let was_failing = db::with_tx(&mut c, |tx| {
            db::replica::set_unneeded(tx, &r.name, &unneeded)?;
            db::replica::record_success(
                tx,
                &r.name,
                &db::replica::Synced {
                    at: &time::iso(time::now()),
                    outcome: &outcome,
                    objects: objects as i64,
                    bytes: bytes as i64,
                    doomed: unneeded.len() as i64,
                },
            )
        })?;
        if was_failing {
            tracing::info!("replica '{}' works again", r.name);
        }
        tracing::info!("replica '{}': {outcome}", r.name);
        Ok(outcome)
    }

    /// Uploads `todo` with the replica's concurrency; stops taking new work at the first
    /// failure (a dead endpoint fails fast) and reports it after the others end.
    fn upload_all(&self, r: &Replica, client: &Client, keys: &Keys, todo: &[&Wanted]) -> Result<Sent> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let objects = AtomicUsize::new(0);
        let bytes = AtomicU64::new(0);
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..r.concurrency.min(todo.len().max(1)) {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(w) = todo.get(i) else { break };
                        if let Item::Blob { hash, .. } = &w.item
                            && !self.store.blob_path(hash).exists()
                        {
                            // Collected since it was listed: nothing needs it now.
                            continue;
                        }
                        match replica::upload(client, keys, &self.store, w, r.part_size) {
                            Ok(n) => {
                                objects.fetch_add(1, Ordering::Relaxed);
                                bytes.fetch_add(n, Ordering::Relaxed);
                            }
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                let mut first = first_error.lock().unwrap_or_else(|e| e.into_inner());
                                first.get_or_insert(e);
                            }
                        }
                    }
                });
            }
        });
        let sent = Sent { objects: objects.into_inner(), bytes: bytes.into_inner() };
        match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(Error::internal(format!(
                "{e} ({} object(s), {} byte(s) were sent before; they are not sent again)",
                sent.objects, sent.bytes
            ))),
            None => Ok(sent),
        }
    }

    /// Records a failure and, the first time in a row, tells the owner.
    fn replica_failed(&self, r: &Replica, error: &str) -> Result<()> {
        tracing::error!("replica '{}': {error}", r.name);
        let mut c = self.conn()?;
        db::with_tx(&mut c, |tx| {
            if db::replica::record_failure(tx, &r.name, error)? {
                return Ok(());
            }
            let event = Event {
                event: EventKind::ReplicaFailed,
                target_id: None,
                target_name: None,
                state: format!("replica '{}'", r.name),
                reason: error.to_string(),
                time: crate::model::health::iso_utc(time::now()),
                backup_id: None,
                reminder: false,
            };
            for job in self.deliveries(&event) {
                db::jobs::enqueue(tx, &job)?;
            }
            Ok(())
        })?;
        self.job_ready.notify_one();
        Ok(())
    }

    /// `replica_verify_job`: re-reads a rotating share of every replica (all of it once per
    /// `verify_period_days`) and sends again what is missing or wrong.
    pub fn verify_replicas(&self) -> Result<String> {
        let mut lines = Vec::new();
        let mut failed = Vec::new();
        for r in &self.config.replicas {
            match self.verify_replica(r) {
                Ok(line) => lines.push(format!("{}: {line}", r.name)),
                Err(e) => {
                    self.replica_failed(r, &format!("verification: {e}"))?;
                    failed.push(format!("{}: {e}", r.name));
                }
            }
        }
        if !failed.is_empty() {
            return Err(Error::internal(failed.join("; ")));
        }
        Ok(if lines.is_empty() { "no replicas configured".into() } else { lines.join("; ") })
    }

    fn verify_replica(&self, r: &Replica) -> Result<String> {
        let (client, keys) = self.replica_parts(r)?;
        let mut wanted = replica::wanted(&self.store, &keys)?;
        wanted.sort_by(|a, b| a.object.cmp(&b.object));
        let remote = remote_objects(&client)?;
        let state = db::replica::state(&*self.conn()?, &r.name)?;
        // The share of the period since the last verification (a day's worth the first time).
        let elapsed = state
            .last_verify
            .as_deref()
            .and_then(time::parse_iso)
            .and_then(|t| time::now().signed_duration_since(t).to_std().ok())
            .unwrap_or(std::time::Duration::from_secs(86400));
        let share = (elapsed.as_secs_f64() / r.verify_period.as_secs_f64()).min(1.0);
        let count = ((wanted.len() as f64 * share).ceil() as usize).clamp(wanted.len().min(1), wanted.len());
        let start = wanted.partition_point(|w| w.object.as_str() <= state.verify_cursor.as_str());
        let (mut checked, mut repaired, mut cursor) = (0, 0, state.verify_cursor.clone());
        for k in 0..count {
            let w = &wanted[(start + k) % wanted.len()];
            let good = remote.contains_key(&w.object) && self.object_is_right(&client, &keys, w)?;
            if !good {
                tracing::warn!("replica '{}': object {} was missing or wrong; sending it again", r.name, w.object);
                replica::upload(&client, &keys, &self.store, w, r.part_size)?;
                repaired += 1;
            }
            checked += 1;
            cursor = w.object.clone();
        }
        let outcome =
            format!("verified {checked} of {} object(s); {repaired} missing or wrong, sent again", wanted.len());
        db::replica::record_verify(&*self.conn()?, &r.name, &time::iso(time::now()), &outcome, &cursor)?;
        tracing::info!("replica '{}': {outcome}", r.name);
        Ok(outcome)
    }

    /// Whether the replica's copy of `w` decrypts to what it should.
    fn object_is_right(&self, client: &Client, keys: &Keys, w: &Wanted) -> Result<bool> {
        match &w.item {
            Item::Blob { hash, .. } => match replica::fetch_blob(client, keys, &self.store, hash) {
                Ok(Some(tmp)) => {
                    let _ = std::fs::remove_file(tmp);
                    Ok(true)
                }
                Ok(None) => Ok(false),
                Err(e) => {
                    tracing::warn!("{e}");
                    Ok(false)
                }
            },
            Item::File { path, content, .. } => match replica::fetch_envelope(client, keys, &w.object) {
                Ok(Some(env)) => Ok(&env.path == path && &env.content == content),
                Ok(None) => Ok(false),
                Err(e) => {
                    tracing::warn!("{e}");
                    Ok(false)
                }
            },
        }
    }

    /// Fetches an intact copy of a blob from the first replica that has one and puts it in
    /// place of the local copy; the replica's name and the device and inode of the replaced
    /// copy (files placed from it are that inode, and need the new one).
    pub fn heal_blob(&self, hash: &str) -> Result<Option<Healed>> {
        for r in &self.config.replicas {
            let Ok((client, keys)) = self.replica_parts(r) else { continue };
            match replica::fetch_blob(&client, &keys, &self.store, hash) {
                Ok(Some(tmp)) => {
                    let old = self.store.replace_blob(hash, &tmp).inspect_err(|_| {
                        let _ = std::fs::remove_file(&tmp);
                    })?;
                    tracing::warn!("integrity: blob {hash} was damaged or missing; repaired from replica '{}'", r.name);
                    return Ok(Some((r.name.clone(), old)));
                }
                Ok(None) => tracing::warn!("integrity: replica '{}' does not hold blob {hash}", r.name),
                Err(e) => tracing::warn!("integrity: replica '{}': {e}", r.name),
            }
        }
        Ok(None)
    }

    /// Every configured replica's summary.
    pub fn replica_states(&self) -> Result<Vec<ReplicaState>> {
        let c = self.conn()?;
        let mut out = Vec::new();
        for r in &self.config.replicas {
            let mut s = db::replica::state(&c, &r.name)?;
            s.initialised = replica::key_path(&self.config.data_dir, &r.name).exists();
            out.push(s);
        }
        Ok(out)
    }
}

/// A blob repaired from a replica: the replica's name, and the device and inode of the copy it
/// replaced (when there was one).
pub type Healed = (String, Option<(u64, u64)>);

struct Sent {
    objects: usize,
    bytes: u64,
}

/// Every blob and manifest object in the bucket, with its size (the key object is not listed:
/// nothing removes it).
fn remote_objects(client: &Client) -> Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for prefix in [BLOB_PREFIX, MANIFEST_PREFIX] {
        for o in client.list(prefix)? {
            out.insert(o.name, o.size);
        }
    }
    Ok(out)
}

/// For `bakch replica status`: the summaries from the database opened read-only (a server may
/// be running).
pub fn states_offline(config: &crate::config::Config) -> Result<Vec<ReplicaState>> {
    let db_path = config.db_path();
    let c = if db_path.exists() { Some(db::open_read_only(&db_path)?) } else { None };
    let mut out = Vec::new();
    for r in &config.replicas {
        let mut s = match &c {
            // A database older than the replica tables has nothing to say yet.
            Some(c) => db::replica::state(c, &r.name)
                .unwrap_or_else(|_| ReplicaState { name: r.name.clone(), ..ReplicaState::default() }),
            None => ReplicaState { name: r.name.clone(), ..ReplicaState::default() },
        };
        s.initialised = replica::key_path(&config.data_dir, &r.name).exists();
        out.push(s);
    }
    Ok(out)
}
