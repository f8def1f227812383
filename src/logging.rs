//! Logs go to stdout and to a daily file in `<data>/logs`, which `/api/log` reads back.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::error::{Error, IoContext, Result};

const PREFIX: &str = "bakch";
const SUFFIX: &str = "log";
/// The most of a log file `/api/log` reads; older lines are in the file itself.
const MAX_READ: u64 = 8 << 20;

/// Starts logging; keep the guard alive so the file writer flushes.
pub fn init(log_dir: &Path, filter: &str) -> std::result::Result<WorkerGuard, String> {
    crate::store::perms::create_dir_all(log_dir, crate::store::perms::PRIVATE_DIR).map_err(|e| e.to_string())?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(PREFIX)
        .filename_suffix(SUFFIX)
        .max_log_files(30)
        .build(log_dir)
        .map_err(|e| format!("cannot open log file in {}: {e}", log_dir.display()))?;
    let (file_writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_new(filter).map_err(|e| format!("log filter '{filter}' is not valid: {e}"))?;
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer())
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(file_writer))
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(guard)
}

/// The last `tail` lines (all when 0) of the logs, reaching back into older daily files when
/// the newest holds fewer; at most `MAX_READ` bytes are read in all.
pub fn tail(log_dir: &Path, tail: usize) -> Result<String> {
    let mut files = log_files(log_dir)?;
    let mut budget = MAX_READ;
    let mut newest_first: Vec<Vec<String>> = Vec::new();
    let mut count = 0;
    while let Some(path) = files.pop() {
        if budget == 0 || (tail != 0 && count >= tail) {
            break;
        }
        let lines = read_end(&path, &mut budget)?;
        count += lines.len();
        newest_first.push(lines);
    }
    let lines: Vec<String> = newest_first.into_iter().rev().flatten().collect();
    let from = if tail == 0 { 0 } else { lines.len().saturating_sub(tail) };
    Ok(lines[from..].join("\n"))
}

/// The whole lines in the last `budget` bytes of a file; takes what it read from the budget.
fn read_end(path: &Path, budget: &mut u64) -> Result<Vec<String>> {
    let mut file = std::fs::File::open(path).ctx("open", path)?;
    let len = file.metadata().ctx("inspect", path)?.len();
    let start = len.saturating_sub(*budget);
    file.seek(SeekFrom::Start(start)).ctx("read", path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ctx("read", path)?;
    *budget = budget.saturating_sub(bytes.len() as u64);
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // Cut mid-line.
    }
    Ok(lines)
}

/// The log files, oldest first (their names end in the date).
fn log_files(log_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(log_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read folder", log_dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(PREFIX)))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_reaches_into_older_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bakch.2026-11-22.log"), "a\nb\nc\n").unwrap();
        std::fs::write(dir.path().join("bakch.2026-11-23.log"), "d\ne\n").unwrap();
        assert_eq!(tail(dir.path(), 2).unwrap(), "d\ne");
        assert_eq!(tail(dir.path(), 4).unwrap(), "b\nc\nd\ne");
        assert_eq!(tail(dir.path(), 0).unwrap(), "a\nb\nc\nd\ne");
        assert_eq!(tail(&dir.path().join("none"), 3).unwrap(), "");
    }
}
