//! Which targets each commit changed, so that an answer kept about one target (its reply, its
//! usage) outlives commits about others: an upload to one target no longer drops every kept
//! answer of the server, and a commit that only moves a job of no target, an audit line or a
//! key's last use drops none.
//!
//! Every server connection has TEMP triggers (in no file, so the schema and other programs
//! never see them) that name, per changed row, the target it belongs to, or `*` for "anything
//! may have changed". What a statement names is gathered per connection, handed over when the
//! transaction commits (SQLite's commit hook) and published with the commit's number once the
//! commit is visible (the WAL hook, on the same thread and in the same call). A table this file
//! does not know gets `*` triggers: a table added later is never silently left out.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;

/// What a kept answer was read from, to tell whether a commit since has changed it.
#[derive(Clone, Debug)]
pub enum Depends {
    /// Any tracked change (the totals of every target).
    Anything,
    /// Only these targets' rows, and changes of the targets list itself.
    Targets(Vec<String>),
}

/// The changes of one transaction, or of the commits not yet published on a thread.
#[derive(Default)]
struct Touched {
    /// Set by a watched connection's commit hook: a commit without it came from a connection
    /// that reports nothing, and may have changed anything.
    reported: bool,
    everything: bool,
    targets: HashSet<String>,
}

impl Touched {
    fn add(&mut self, other: Touched) {
        self.reported = true;
        self.everything |= other.everything;
        self.targets.extend(other.targets);
    }
}

/// The commit number at which each kind of change last happened.
#[derive(Default)]
struct Published {
    /// Commits so far; a mark is this number read before reading the database.
    commits: u64,
    /// The last commit that changed any tracked row.
    anything: u64,
    /// The last commit that may have changed everything (a `*`).
    everything: u64,
    targets: HashMap<String, u64>,
}

static PUBLISHED: LazyLock<Mutex<Published>> = LazyLock::new(Mutex::default);

thread_local! {
    /// What the commit running on this thread touched, from its commit hook to its WAL hook.
    static COMMITTING: RefCell<Touched> = RefCell::new(Touched::default());
}

fn published() -> std::sync::MutexGuard<'static, Published> {
    // Plain numbers, valid even if a holder panicked.
    PUBLISHED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The number of commits so far: read before reading the database, it marks what an answer saw.
pub fn mark() -> u64 {
    published().commits
}

/// Whether a commit after `mark` may have changed what `depends` names.
pub fn changed_since(mark: u64, depends: &Depends) -> bool {
    let p = published();
    match depends {
        Depends::Anything => p.anything > mark,
        Depends::Targets(ids) => {
            p.everything > mark || ids.iter().any(|id| p.targets.get(id).is_some_and(|at| *at > mark))
        }
    }
}

/// Called by the WAL hook after each commit, once its data is visible to every connection.
pub(super) fn publish() -> u64 {
    let mut touched = COMMITTING.with(|c| std::mem::take(&mut *c.borrow_mut()));
    touched.everything |= !touched.reported;
    let mut p = published();
    p.commits += 1;
    let n = p.commits;
    if touched.everything || !touched.targets.is_empty() {
        p.anything = n;
    }
    if touched.everything {
        p.everything = n;
    }
    for id in touched.targets {
        p.targets.insert(id, n);
    }
    n
}

/// Tables no kept answer reads: their commits change nothing a reader was given.
const UNSEEN: &[&str] = &[
    "audit",
    "key_use",
    "keys",
    "scheduled_runs",
    "seq_uploads",
    "seq_files",
    "push_sessions",
    "push_files",
    "push_blobs",
    "replica_states",
    "replica_unneeded",
    "fs_journal",
];

/// The SQL naming the target(s) a row of `table` belongs to, with `row` being `NEW` or `OLD`;
/// `None` for a table no answer reads; `'*'` for any table not known here.
fn names(table: &str, op: &str, row: &str) -> Option<String> {
    Some(match table {
        // The list's order and membership, and every target's fields: rare, so all at once.
        "targets" => "'*'".to_string(),
        // A target gaining or losing a content changes the exclusive bytes of every target
        // holding it (no other holds it, or now one does); empty content weighs nothing.
        "target_blobs" if op != "UPDATE" => {
            return Some(format!(
                "SELECT bakch_changed({row}.target_id); \
                 SELECT bakch_changed(target_id) FROM main.target_blobs WHERE blob = {row}.blob AND {row}.size > 0;"
            ));
        }
        "backups" | "file_paths" | "jobs" | "target_blobs" => format!("{row}.target_id"),
        "backup_files" => format!("(SELECT target_id FROM main.backups WHERE id = {row}.backup_id)"),
        "health_states" => format!("{row}.subject"),
        t if UNSEEN.contains(&t) => return None,
        _ => "'*'".to_string(),
    })
    .map(|expr| format!("SELECT bakch_changed({expr});"))
}

/// Makes `c` report what its commits change. Run on every server connection, after migrations.
pub(super) fn watch(c: &Connection) -> rusqlite::Result<()> {
    let pending: Arc<Mutex<Touched>> = Arc::default();
    let seen = pending.clone();
    c.create_scalar_function("bakch_changed", 1, FunctionFlags::SQLITE_UTF8, move |ctx| {
        let mut t = seen.lock().unwrap_or_else(|e| e.into_inner());
        // Never an error: that would fail the write it watches. A value that is not a target
        // id (none today) is taken as "anything".
        match ctx.get_raw(0) {
            ValueRef::Null => {}
            ValueRef::Text(b"*") => t.everything = true,
            ValueRef::Text(id) => match std::str::from_utf8(id) {
                Ok(id) if !t.targets.contains(id) => {
                    t.targets.insert(id.to_string());
                }
                Ok(_) => {}
                Err(_) => t.everything = true,
            },
            _ => t.everything = true,
        }
        Ok(rusqlite::types::Null)
    })?;
    let handed = pending.clone();
    c.commit_hook(Some(move || {
        let t = std::mem::take(&mut *handed.lock().unwrap_or_else(|e| e.into_inner()));
        COMMITTING.with(|c| c.borrow_mut().add(t));
        false
    }));
    // A rolled back transaction changed nothing.
    c.rollback_hook(Some(move || {
        *pending.lock().unwrap_or_else(|e| e.into_inner()) = Touched::default();
    }));
    let tables: Vec<String> = c
        .prepare("SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut sql = String::new();
    for table in &tables {
        for (op, rows) in [("INSERT", &["NEW"][..]), ("DELETE", &["OLD"]), ("UPDATE", &["OLD", "NEW"])] {
            let body: Option<Vec<String>> = rows.iter().map(|row| names(table, op, row)).collect();
            if let Some(body) = body {
                sql.push_str(&format!(
                    "CREATE TEMP TRIGGER IF NOT EXISTS \"bakch_watch_{table}_{op}\" AFTER {op} ON main.\"{table}\" \
                     BEGIN {} END;\n",
                    body.join(" ")
                ));
            }
        }
    }
    c.execute_batch(&sql)
}
