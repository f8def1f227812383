//! Answers to the read-heavy questions (a page of targets, a target with its backups, a
//! target's usage, the totals of `/api/stats`), kept until a commit changes what they show.
//!
//! Computing them sorts targets, aggregates backup files and stats folders, which listing
//! pages and dashboards would otherwise pay on every request. An answer is tagged with
//! [`db::commits`] read *before* it was computed and with what it shows (its targets, or
//! anything), and served only while no commit since has changed that (`db::changes`), so it is
//! never older than the newest commit a reader could see. A time limit also refreshes what the
//! database does not know about (whether a folder still shares the store's filesystem).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::stats::Stats;
use super::targets::Usage;
use crate::db;
use crate::db::changes::Depends;
use crate::error::Result;
use crate::model::backup::Backup;
use crate::model::target::Target;

/// How long an answer is kept even when nothing commits (a folder may be mounted elsewhere
/// meanwhile).
const MAX_AGE: Duration = Duration::from_secs(60);

/// At most this many answers of one kind are kept (page numbers and ids are the client's to
/// choose); past it the stale ones are dropped, and if none is, the answer is not kept.
const MAX_KEPT: usize = 4096;

#[derive(Default)]
pub struct ReadCache {
    entries: Mutex<Entries>,
    /// Held while the stats are computed, so that a burst of requests after a commit runs the
    /// aggregate once while the rest wait for it. Only there: one lock for every answer would
    /// make all reads wait behind one slow folder (a hung network mount, say).
    computing_stats: Mutex<()>,
}

/// An answer with the commit count read before computing it, and what it shows.
#[derive(Clone)]
struct Kept<T> {
    mark: u64,
    born: Instant,
    depends: Depends,
    value: T,
}

impl<T> Kept<T> {
    fn fresh(&self) -> bool {
        self.born.elapsed() <= MAX_AGE && !db::changes::changed_since(self.mark, &self.depends)
    }
}

#[derive(Default)]
struct Entries {
    /// By target id and location.
    usage: HashMap<String, Kept<Usage>>,
    /// Pages of the target list, by page number; shared, not copied, with each request, as a
    /// page is the most asked-for answer.
    pages: HashMap<usize, Kept<Arc<Vec<Target>>>>,
    /// Targets with their backups, by the id or alias they were asked by.
    targets: HashMap<String, Kept<(Target, Vec<Backup>)>>,
    stats: Option<Kept<Stats>>,
}

/// Keeps `value` under `key` in `map`, dropping stale answers when it is full.
fn keep<K: std::hash::Hash + Eq, T>(map: &mut HashMap<K, Kept<T>>, key: K, value: Kept<T>) {
    if map.len() >= MAX_KEPT && !map.contains_key(&key) {
        map.retain(|_, k| k.fresh());
        if map.len() >= MAX_KEPT {
            return;
        }
    }
    map.insert(key, value);
}

impl ReadCache {
    /// A target's usage, computed by `compute` unless known. Keyed by the location too: it
    /// depends on the folder, and the caller's copy of the target may be older than an edit.
    pub fn usage(&self, target_id: &str, location: &str, compute: impl FnOnce() -> Result<Usage>) -> Result<Usage> {
        let key = format!("{target_id}\0{location}");
        self.get(
            None,
            |e| e.usage.get(&key).cloned(),
            || Ok((compute()?, Depends::Targets(vec![target_id.to_string()]))),
            |e, u| keep(&mut e.usage, key.clone(), u),
        )
    }

    /// A page of the target list, read by `compute` unless known.
    pub fn target_page(&self, page: usize, compute: impl FnOnce() -> Result<Vec<Target>>) -> Result<Arc<Vec<Target>>> {
        self.get(
            None,
            |e| e.pages.get(&page).cloned(),
            // Only the targets' own rows: which are on a page changes with a target's row (`*`).
            || Ok((Arc::new(compute()?), Depends::Targets(Vec::new()))),
            |e, p| {
                // Pages past the end are not kept: their numbers are the client's to choose.
                if !p.value.is_empty() {
                    keep(&mut e.pages, page, p);
                }
            },
        )
    }

    /// A target and its backups, read by `compute` unless known.
    pub fn target(
        &self,
        id_or_alias: &str,
        compute: impl FnOnce() -> Result<(Target, Vec<Backup>)>,
    ) -> Result<(Target, Vec<Backup>)> {
        self.get(
            None,
            |e| e.targets.get(id_or_alias).cloned(),
            || {
                let found = compute()?;
                let depends = Depends::Targets(vec![found.0.id.clone()]);
                Ok((found, depends))
            },
            |e, t| keep(&mut e.targets, id_or_alias.to_string(), t),
        )
    }

    /// The `/api/stats` totals, computed by `compute` unless known.
    pub fn stats(&self, compute: impl FnOnce() -> Result<Stats>) -> Result<Stats> {
        // One computes while a burst waits: the aggregate is the costliest answer.
        self.get(
            Some(&self.computing_stats),
            |e| e.stats.clone(),
            || Ok((compute()?, Depends::Anything)),
            |e, s| e.stats = Some(s),
        )
    }

    /// The answer `find` knows while fresh, else `compute`'s, kept by `keep`. With
    /// `single_flight`, one request computes while others asking the same wait for its answer.
    fn get<T: Clone>(
        &self,
        single_flight: Option<&Mutex<()>>,
        find: impl Fn(&Entries) -> Option<Kept<T>>,
        compute: impl FnOnce() -> Result<(T, Depends)>,
        keep: impl FnOnce(&mut Entries, Kept<T>),
    ) -> Result<T> {
        if let Some(found) = self.find(&find) {
            return Ok(found);
        }
        let _computing = single_flight.map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
        // Another request may have computed it while this one waited.
        if single_flight.is_some()
            && let Some(found) = self.find(&find)
        {
            return Ok(found);
        }
        let mark = db::commits();
        // Computed outside the entries' lock: readers of other answers go on meanwhile.
        let (value, depends) = compute()?;
        let kept = Kept { mark, born: Instant::now(), depends, value: value.clone() };
        // Kept only if nothing it shows changed while it was computed.
        if kept.fresh() {
            keep(&mut self.lock(), kept);
        }
        Ok(value)
    }

    fn find<T>(&self, find: &impl Fn(&Entries) -> Option<Kept<T>>) -> Option<T> {
        find(&self.lock()).filter(|k| k.fresh()).map(|k| k.value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Entries are plain data, valid even if a holder panicked.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
