-- File operations promised by a committed change but maybe not yet done on disk. A row is
-- written in the same transaction as the change and removed once the files match; start-up
-- replays what a crash left, so the disk always catches up with the database.
CREATE TABLE fs_journal (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    op        TEXT NOT NULL CHECK (op IN ('move', 'remove')),
    path      TEXT NOT NULL,
    dest      TEXT,
    backup_id TEXT,
    single    INTEGER NOT NULL DEFAULT 0
);
