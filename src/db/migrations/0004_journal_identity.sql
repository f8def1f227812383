-- What a journalled move put (or is about to put) at its destination, as "device:inode". A
-- destination that exists with another identity is not bakch's: the move never counts as done
-- there, and nothing there is removed.
ALTER TABLE fs_journal ADD COLUMN ident TEXT;

-- The same for a pending backup: what its job is about to rename into place. Re-running the job
-- after a crash completes the backup only if its name holds exactly that, and a rollback
-- removes only that.
ALTER TABLE backups ADD COLUMN placed_ident TEXT;
