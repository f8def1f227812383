//! Applying the file-operation journal: a change is committed together with the file operations
//! it promises, then the operations run. A crash in between is caught up at start-up, so the
//! files end where the database says they are.

use std::path::Path;

use super::Service;
use crate::db::{self, journal::FsOp};
use crate::error::Result;
use crate::store::place;

impl Service {
    /// Performs journalled operations in order, marking each done; stops at the first failure.
    pub(super) fn apply_journal(&self, ops: &[(i64, FsOp)]) -> Result<()> {
        for (id, op) in ops {
            self.apply_op(op)?;
            let mut c = self.conn()?;
            db::with_tx(&mut c, |tx| db::journal::done(tx, *id))?;
        }
        Ok(())
    }

    /// One operation, idempotent: running it twice, or after a crash half-way, ends the same.
    pub(super) fn apply_op(&self, op: &FsOp) -> Result<()> {
        match op {
            FsOp::Remove { path } => place::remove_path(Path::new(path)),
            FsOp::Move { path, dest, backup_id, single } => {
                let (from, to) = (Path::new(path), Path::new(dest));
                if from == to {
                    return Ok(());
                }
                if to.exists() {
                    // Moves are atomic renames or staged rebuilds: a destination that exists is whole.
                    return place::remove_path(from);
                }
                let files = db::backups::files(&*self.conn()?, backup_id)?;
                let staging = place::staging_path(super::backups::parent_of(to), backup_id);
                place::relocate(&self.store, &files, from, to, &staging, *single)
            }
        }
    }

    /// Records `ops` in the journal inside `tx`; returns them with their ids.
    pub(super) fn journal(tx: &rusqlite::Connection, ops: Vec<FsOp>) -> Result<Vec<(i64, FsOp)>> {
        ops.into_iter().map(|op| Ok((db::journal::add(tx, &op)?, op))).collect()
    }

    /// Start-up: finishes what a crash left in the journal.
    pub(super) fn replay_journal(&self) -> Result<()> {
        let pending = db::journal::pending(&*self.conn()?)?;
        for (id, op) in pending {
            match self.apply_journal(&[(id, op.clone())]) {
                Ok(()) => tracing::warn!("recovery: finished interrupted file operation {op:?}"),
                Err(e) => tracing::error!("recovery: file operation {op:?} still fails: {e}; will retry at next start"),
            }
        }
        Ok(())
    }
}
