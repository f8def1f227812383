//! Commands that work on a data folder while bakch is stopped: `rebuild-db` and `check`. A
//! running server holds the data folder's lock, so these refuse to run beside it. `held` works
//! either way (see there).

pub mod check;
pub mod held;
pub mod rebuild;
pub mod replica;

use std::fs::File;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

/// `<data>/bakch.lock`: held (flock) by whoever works on the data folder.
pub struct DataLock {
    _file: File,
}

/// Takes the data folder's lock, or says who holds it.
pub fn lock(data_dir: &Path) -> Result<DataLock, String> {
    use rustix::fs::{FlockOperation, flock};
    let path = data_dir.join("bakch.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        format!("another bakch is working on {} (a server, or a rebuild or check); stop it first", data_dir.display())
    })?;
    Ok(DataLock { _file: file })
}

/// A progress bar with a rate and an estimate of the time left, drawn on a terminal only.
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {what} {{bar:30}} {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Records a local command in the audit trail; the change itself is done, so a failure here
/// is reported and not fatal.
pub fn audit(config: &crate::config::Config, entry: &crate::model::audit::Entry) {
    if let Err(e) = crate::service::audit::record_offline(&config.db_path(), entry) {
        eprintln!("bakch: done, but the audit trail could not record it: {e}");
    }
}
