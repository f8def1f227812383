//! Answers to the read-heavy questions (a page of targets, a target with its backups, a
//! target's usage, the totals of `/api/stats`), kept until the database next commits.
//!
//! Computing them sorts targets, aggregates backup files and stats folders, which listing
//! pages and dashboards would otherwise pay on every request. An answer is tagged with
//! [`db::commits`] read *before* it was computed, and served only while that count is unchanged,
//! so it is never older than the newest commit a reader could see. A time limit also refreshes
//! what the database does not know about (whether a folder still shares the store's filesystem).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::stats::Stats;
use super::targets::Usage;
use crate::db;
use crate::error::Result;
use crate::model::backup::Backup;
use crate::model::target::Target;

/// How long an answer is kept even when nothing commits (a folder may be mounted elsewhere
/// meanwhile). Long enough that recomputing every answer at once stays rare.
const MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct ReadCache {
    entries: Mutex<Entries>,
    /// Held while the stats are computed, so that a burst of requests after a commit runs the
    /// aggregate once while the rest wait for it. Only there: one lock for every answer would
    /// make all reads wait behind one slow folder (a hung network mount, say).
    computing_stats: Mutex<()>,
}

#[derive(Default)]
struct Entries {
    /// The commit count every entry below was computed at.
    commits: u64,
    born: Option<Instant>,
    /// By target id and location.
    usage: HashMap<String, Usage>,
    /// Pages of the target list, by page number; shared, not copied, with each request, as a
    /// page is the most asked-for answer.
    pages: HashMap<usize, Arc<Vec<Target>>>,
    /// Targets with their backups, by the id or alias they were asked by.
    targets: HashMap<String, (Target, Vec<Backup>)>,
    stats: Option<Stats>,
}

impl Entries {
    /// Forgets everything computed before `commits`, or too long ago.
    fn renew(&mut self, commits: u64) {
        let expired = self.born.is_none_or(|b| b.elapsed() > MAX_AGE);
        if self.commits != commits || expired {
            *self = Entries { commits, born: Some(Instant::now()), ..Entries::default() };
        }
    }
}

impl ReadCache {
    /// A target's usage, computed by `compute` unless known. Keyed by the location too: it
    /// depends on the folder, and the caller's copy of the target may be older than an edit.
    pub fn usage(&self, target_id: &str, location: &str, compute: impl FnOnce() -> Result<Usage>) -> Result<Usage> {
        let key = format!("{target_id}\0{location}");
        self.get(
            None,
            |e| e.usage.get(&key).cloned(),
            compute,
            |e, u| {
                e.usage.insert(key.clone(), u);
            },
        )
    }

    /// A page of the target list, read by `compute` unless known.
    pub fn target_page(&self, page: usize, compute: impl FnOnce() -> Result<Vec<Target>>) -> Result<Arc<Vec<Target>>> {
        self.get(
            None,
            |e| e.pages.get(&page).cloned(),
            || compute().map(Arc::new),
            |e, p| {
                // Pages past the end are not kept: their numbers are the client's to choose.
                if !p.is_empty() {
                    e.pages.insert(page, p);
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
            compute,
            |e, t| {
                e.targets.insert(id_or_alias.to_string(), t);
            },
        )
    }

    /// The `/api/stats` totals, computed by `compute` unless known.
    pub fn stats(&self, compute: impl FnOnce() -> Result<Stats>) -> Result<Stats> {
        // One computes while a burst waits: the aggregate is the costliest answer.
        self.get(Some(&self.computing_stats), |e| e.stats.clone(), compute, |e, s| e.stats = Some(s))
    }

    /// The answer `find` knows, else `compute`'s, kept by `keep`. With `single_flight`, one
    /// request computes while others asking the same wait for its answer.
    fn get<T: Clone>(
        &self,
        single_flight: Option<&Mutex<()>>,
        find: impl Fn(&Entries) -> Option<T>,
        compute: impl FnOnce() -> Result<T>,
        keep: impl FnOnce(&mut Entries, T),
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
        let commits = db::commits();
        // Computed outside the entries' lock: readers of other answers go on meanwhile.
        let value = compute()?;
        let mut e = self.lock();
        // Kept only if no commit came between reading the count and now.
        if e.commits == commits && db::commits() == commits {
            keep(&mut e, value.clone());
        }
        Ok(value)
    }

    fn find<T>(&self, find: &impl Fn(&Entries) -> Option<T>) -> Option<T> {
        let mut e = self.lock();
        e.renew(db::commits());
        find(&e)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Entries are plain data, valid even if a holder panicked.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
