//! `bakch held list|restore|purge`: the local side of the hold on deletions. Listing reads the
//! database read-only. Restoring and purging work through the server when one runs (a queued
//! job it picks up, so its locks order the work; this command waits for the outcome), or
//! directly, under the data folder's lock, when none does. Being a local command is the point:
//! only someone with a shell on the server can end a hold early.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::db;
use crate::model::audit::{Action, Entry, Who};
use crate::model::held::{Held, Purge};
use crate::model::job::{HeldRestoreJob, JobStatus, QueuedJob};
use crate::service::Service;

/// How long to wait for a running server to finish a queued restore or purge.
const WAIT: Duration = Duration::from_secs(3600);

pub fn list(config: &Config) -> Result<Vec<Held>, String> {
    if !config.db_path().exists() {
        return Ok(Vec::new());
    }
    let c = db::open_read_only(&config.db_path()).map_err(|e| e.to_string())?;
    let all = db::held::all(&c).map_err(|e| e.to_string())?;
    Ok(all.iter().map(|m| m.summary()).collect())
}

/// Restores one held backup; returns what to print.
pub fn restore(config: &Config, id: &str) -> Result<String, String> {
    let held = list(config)?;
    let entry = held.iter().find(|h| h.id == id).ok_or_else(|| format!("there is no held backup '{id}'"))?;
    let job = QueuedJob::HeldRestore(HeldRestoreJob { id: id.to_string(), target_id: entry.target_id.clone() });
    run(config, job, |svc| svc.restore_held(id).map(|_| ()))?;
    let c = db::open_read_only(&config.db_path()).map_err(|e| e.to_string())?;
    let backup = db::backups::find(&c, id).map_err(|e| e.to_string())?.ok_or("the restored backup is not listed")?;
    let target = db::targets::find(&c, &backup.target_id).map_err(|e| e.to_string())?;
    let outcome =
        format!("restored backup {id} into target '{}' as {}", target.map(|t| t.name).unwrap_or_default(), backup.name);
    let mut audit = Entry::new(Who::cli(), Action::HeldRestored);
    (audit.backup, audit.target) = (Some(id.to_string()), Some(entry.target_id.clone()));
    super::audit(config, &audit);
    Ok(outcome)
}

/// Ends the holds of `ids` (every held backup when empty), those deleted longer than
/// `older_than_secs` ago, after a confirmation unless `yes`, and collects at once.
pub fn purge(config: &Config, ids: &[String], older_than_secs: Option<u64>, yes: bool) -> Result<String, String> {
    let held = list(config)?;
    let now = crate::time::now();
    let chosen: Vec<&Held> = held
        .iter()
        .filter(|h| ids.is_empty() || ids.contains(&h.id))
        .filter(|h| match older_than_secs {
            None => true,
            Some(secs) => crate::time::parse_iso(&h.deleted_at)
                .is_some_and(|at| (now - at).num_seconds() >= i64::try_from(secs).unwrap_or(i64::MAX)),
        })
        .collect();
    for id in ids {
        if !held.iter().any(|h| &h.id == id) {
            return Err(format!("there is no held backup '{id}'"));
        }
    }
    if chosen.is_empty() {
        println!("No held backup matches; collecting unreferenced content now.");
    } else {
        let bytes: i64 = chosen.iter().map(|h| h.size).sum();
        println!(
            "This ends the hold of {} deleted backup(s) ({}) and removes their content for good:",
            chosen.len(),
            crate::model::backup::human_bytes(bytes)
        );
        for h in &chosen {
            println!("  {}  {} of {}, deleted {} by {}", h.id, h.name, h.target_name, h.deleted_at, h.deleted_by.who);
        }
        if !yes && !confirmed()? {
            return Err("nothing was purged".into());
        }
    }
    // The ids chosen now: one deleted after this listing keeps its hold.
    let purge = Purge { ids: chosen.iter().map(|h| h.id.clone()).collect() };
    let job = QueuedJob::HeldPurge(purge.clone());
    let mut outcome =
        format!("ended the hold of {} deleted backup(s) and collected what nothing needs", purge.ids.len());
    run(config, job, |svc| svc.purge_held(&purge).map(|line| outcome = line))?;
    let mut audit = Entry::new(Who::cli(), Action::HeldPurged);
    audit.message = Some(format!("{} held backup(s): {}", purge.ids.len(), purge.ids.join(", ")));
    super::audit(config, &audit);
    Ok(outcome)
}

/// Asks on the terminal; a command that is not run from one must say `--yes`.
fn confirmed() -> Result<bool, String> {
    if !std::io::stdin().is_terminal() {
        return Err("not purging without a terminal to confirm on: pass --yes".into());
    }
    print!("Type 'purge' to go on: ");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim() == "purge")
}

/// Runs `job` on the server when one holds the data folder, else here under its lock.
fn run(
    config: &Config,
    job: QueuedJob,
    direct: impl FnOnce(&Service) -> crate::error::Result<()>,
) -> Result<(), String> {
    match super::lock(&config.data_dir) {
        Ok(_lock) => {
            let service = Service::open(config.clone()).map_err(|e| e.to_string())?;
            service.recover().map_err(|e| format!("start-up recovery failed: {e}"))?;
            direct(&service).map_err(|e| e.to_string())
        }
        Err(_) => through_server(config, &job),
    }
}

/// Queues `job` for the running server and waits until it ends.
fn through_server(config: &Config, job: &QueuedJob) -> Result<(), String> {
    let mut c = rusqlite::Connection::open(config.db_path()).map_err(|e| e.to_string())?;
    c.busy_timeout(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let id = db::with_tx(&mut c, |tx| db::jobs::enqueue(tx, job)).map_err(|e| e.to_string())?;
    eprintln!("bakch is running: queued job {id} ({}); waiting for it", job.kind().as_str());
    let bar = super::progress(0, "waiting for the server");
    let started = Instant::now();
    loop {
        let row = db::jobs::find(&c, id).map_err(|e| e.to_string())?.ok_or("the queued job vanished")?;
        match row.status {
            JobStatus::Finished => {
                bar.finish_and_clear();
                eprintln!("job {id} finished");
                return Ok(());
            }
            JobStatus::Error => {
                bar.finish_and_clear();
                return Err(row.error.unwrap_or_else(|| "the job failed".into()));
            }
            _ if started.elapsed() > WAIT => {
                return Err(format!("the server has not finished job {id} yet; follow it with `GET /api/jobs/{id}`"));
            }
            _ => {
                bar.tick();
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}
