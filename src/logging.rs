//! Logs go to stdout and to a daily file in `<data>/logs`, which `/api/log` reads back.
//!
//! Every field of every event passes through [`EscapedFields`], so text a client chose (a target
//! or file name) can never start a line of its own: one event is always one line. Colour only
//! when stdout is a terminal; the file never has any.

use std::fmt::{self, Write as _};
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
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
        .with(tracing_subscriber::fmt::layer().with_ansi(colour_on_stdout()).fmt_fields(EscapedFields))
        .with(tracing_subscriber::fmt::layer().with_ansi(false).fmt_fields(EscapedFields).with_writer(file_writer))
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(guard)
}

/// Colour codes only help a person at a terminal; a pipe, a file or the journal would show
/// them raw. `NO_COLOR` (any non-empty value) turns them off there too.
fn colour_on_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Formats an event's fields like the default formatter (the message, then `name=value`), with
/// every control character escaped (`\n`, `\u{1b}`), so no value can break or colour a line.
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor { out: Escaper(writer), first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'w> {
    out: Escaper<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for EscapingVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `log.*` fields carry the metadata of records from the `log` crate, already shown.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let space = if self.first { "" } else { " " };
        self.first = false;
        self.result = match field.name() {
            "message" => write!(self.out, "{space}{value:?}"),
            name => write!(self.out, "{space}{}={value:?}", name.trim_start_matches("r#")),
        };
    }
}

/// Writes through to the log line, escaping control characters on the way.
struct Escaper<'w>(Writer<'w>);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for part in s.split_inclusive(char::is_control) {
            match part.chars().last() {
                Some(c) if c.is_control() => {
                    self.0.write_str(&part[..part.len() - c.len_utf8()])?;
                    write!(self.0, "{}", c.escape_default())?;
                }
                _ => self.0.write_str(part)?,
            }
        }
        Ok(())
    }
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

    #[test]
    fn control_characters_in_fields_are_escaped() {
        let mut line = String::new();
        let mut out = Escaper(Writer::new(&mut line));
        write!(out, "a\nb\r\tc\u{1b}[31m\u{85}é").unwrap();
        assert_eq!(line, "a\\nb\\r\\tc\\u{1b}[31m\\u{85}é");
    }
}
