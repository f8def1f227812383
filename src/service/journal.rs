//! Applying the file-operation journal: a change is committed together with the file operations
//! it promises, then the operations run. A crash in between is caught up at start-up, so the
//! files end where the database says they are.
//!
//! A move never replaces what it finds at its destination, and counts as done only when the
//! destination holds what the move itself put there (its recorded identity).

use std::path::{Path, PathBuf};

use super::Service;
use crate::db::{self, journal::FsOp};
use crate::error::{Error, Result};
use crate::store::durable::{self, Existing};
use crate::store::place;

impl Service {
    /// Performs journalled operations in order, marking each done; stops at the first failure.
    /// A move whose destination something not bakch's took meanwhile goes to a free name beside
    /// it instead (its backup's row follows).
    pub(super) fn apply_journal(&self, ops: &[(i64, FsOp)]) -> Result<()> {
        for (id, op) in ops {
            let mut result = self.apply_op(*id, op);
            if let Err(Error::Conflict(why)) = &result {
                tracing::warn!("{why}; the backup goes to a free name beside it");
                result = self.redirect_move(*id, op).and_then(|redirected| self.apply_op(*id, &redirected));
            }
            result?;
            let mut c = self.conn()?;
            db::with_tx(&mut c, |tx| {
                // What a move put in place is the backup's identity from now on.
                if let FsOp::Move { backup_id, .. } = op
                    && let Some(FsOp::Move { dest, .. }) = db::journal::find(tx, *id)?
                    && let Some(ident) = place::identity(Path::new(&dest))
                {
                    db::backups::set_placed_ident(tx, backup_id, &ident)?;
                }
                db::journal::done(tx, *id)
            })?;
        }
        Ok(())
    }

    /// One operation, idempotent: running it twice, or after a crash half-way, ends the same.
    pub(super) fn apply_op(&self, id: i64, op: &FsOp) -> Result<()> {
        match op {
            FsOp::Remove { path, ident } => {
                let path = Path::new(path);
                match (ident, place::identity(path)) {
                    (Some(placed), Some(now)) if *placed != now => {
                        tracing::warn!(
                            "{} was left in place: it is no longer what bakch put there (replaced by hand?)",
                            path.display()
                        );
                        Ok(())
                    }
                    _ => self.store.remove(path),
                }
            }
            FsOp::Manifest { target_id, backup_id } => self.sync_backup_manifest(target_id, backup_id),
            FsOp::TargetFile { target_id } => self.sync_target_manifest(target_id),
            FsOp::Held { backup_id } => self.sync_held_file(backup_id),
            FsOp::Move { path, dest, backup_id, single, ident } => {
                let record = |ident: &str| -> Result<()> {
                    let mut c = self.conn()?;
                    db::with_tx(&mut c, |tx| db::journal::set_ident(tx, id, ident))
                };
                self.move_backup(Path::new(path), Path::new(dest), (backup_id, *single), ident.as_deref(), &record)
            }
        }
    }

    /// Where journalled move `id` has put its backup's files, if it has.
    pub(super) fn moved_to(&self, id: i64) -> Result<Option<PathBuf>> {
        Ok(match db::journal::find(&*self.conn()?, id)? {
            Some(FsOp::Move { dest, ident: Some(ident), .. })
                if place::identity(Path::new(&dest)).as_deref() == Some(ident.as_str()) =>
            {
                Some(PathBuf::from(dest))
            }
            _ => None,
        })
    }

    /// Moves a placed backup from `from` to `to`, which must be free. `ident` is what an earlier
    /// try recorded; `record` keeps what is about to be put at `to` before it is.
    pub(super) fn move_backup(
        &self,
        from: &Path,
        to: &Path,
        (backup_id, single): (&str, bool),
        ident: Option<&str>,
        record: &dyn Fn(&str) -> Result<()>,
    ) -> Result<()> {
        if from == to {
            return Ok(());
        }
        if ident.is_some() && place::identity(to).as_deref() == ident {
            // Done before a crash; a copy left behind by a move across filesystems goes now.
            return self.store.remove(from);
        }
        if std::fs::symlink_metadata(to).is_ok() {
            return Err(Error::conflict(format!(
                "{} already exists and is not bakch's; it was left as it is and nothing was moved",
                to.display()
            )));
        }
        let to_dir = to.parent().unwrap_or(Path::new("/"));
        crate::store::perms::create_dir_all(to_dir, self.store.modes.dir)?;
        if place::same_filesystem(from, to_dir) {
            let ident = place::identity(from).ok_or_else(|| Error::internal(format!("{} vanished", from.display())))?;
            record(&ident)?;
            return durable::publish(from, to, Existing::Keep, durable::Sync::Now);
        }
        // Another filesystem, or the files went missing (deleted by hand): build them from the
        // store under a staging name, then swap.
        let files = db::backups::files(&*self.conn()?, backup_id)?;
        let (staging, _) = place::stage(&self.store, &files, to, backup_id, single)?;
        let published = place::identity(&staging)
            .ok_or_else(|| Error::internal(format!("{} vanished", staging.display())))
            .and_then(|ident| record(&ident))
            .and_then(|()| durable::publish(&staging, to, Existing::Keep, durable::Sync::Now));
        if let Err(e) = published {
            let _ = self.store.remove(&staging);
            return Err(e);
        }
        self.store.remove(from)
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

    /// Gives a move whose destination is taken a free name in the same folder: the backup's row
    /// and the journal entry change together.
    fn redirect_move(&self, id: i64, op: &FsOp) -> Result<FsOp> {
        let FsOp::Move { path, dest, backup_id, single, .. } = op else {
            return Err(Error::internal("only moves have a destination"));
        };
        let mut c = self.conn()?;
        let backup = self.backup(&c, backup_id)?;
        let to = Path::new(dest);
        let dir = to.parent().unwrap_or(Path::new("/"));
        let taken_name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (base, ext) = super::backups::split_suffix(&taken_name, *single);
        let reserved = self.reserved(&c)?;
        let name = self.free_name(
            &c,
            &reserved,
            dir,
            (&base, &ext),
            (&backup.target_id, &backup.id, backup.is_recycled),
            |_| false,
        )?;
        let new_dest = dir.join(&name).to_string_lossy().into_owned();
        db::with_tx(&mut c, |tx| {
            db::backups::set_place(tx, &backup.id, backup.is_recycled, &name)?;
            db::journal::set_dest(tx, id, &new_dest)
        })?;
        Ok(FsOp::Move {
            path: path.clone(),
            dest: new_dest,
            backup_id: backup_id.clone(),
            single: *single,
            ident: None,
        })
    }
}
