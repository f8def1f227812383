-- Deleted backups whose content is kept until `hold_until` (`[protection] hold_days`), so that
-- a stolen key can hide backups but not destroy them. `manifest` is the held entry's manifest
-- (also written to <data>/held/<id>.json, which `rebuild-db` reads back).
CREATE TABLE held (
    id              TEXT PRIMARY KEY,
    target_id       TEXT NOT NULL,
    target_name     TEXT NOT NULL,
    name            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    size            INTEGER NOT NULL,
    deleted_at      TEXT NOT NULL,
    hold_until      TEXT NOT NULL,
    deleted_by      TEXT NOT NULL,
    deleted_session TEXT,
    deleted_from    TEXT NOT NULL,
    manifest        TEXT NOT NULL
);
CREATE INDEX held_until ON held (hold_until);

-- The blobs each held entry keeps, so garbage collection can mark them with one query.
CREATE TABLE held_blobs (
    held_id TEXT NOT NULL REFERENCES held(id) ON DELETE CASCADE,
    blob    TEXT NOT NULL,
    size    INTEGER NOT NULL,
    PRIMARY KEY (held_id, blob)
) WITHOUT ROWID;
CREATE INDEX held_blobs_blob ON held_blobs (blob);

-- The journal learns 'held': make <data>/held/<backup_id>.json match its row (write or remove).
-- SQLite cannot widen a CHECK, so the table is rebuilt.
CREATE TABLE fs_journal_new (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    op        TEXT NOT NULL CHECK (op IN ('move', 'remove', 'manifest', 'target', 'held')),
    path      TEXT NOT NULL,
    dest      TEXT,
    backup_id TEXT,
    single    INTEGER NOT NULL DEFAULT 0,
    ident     TEXT,
    target_id TEXT
);
INSERT INTO fs_journal_new (id, op, path, dest, backup_id, single, ident, target_id)
    SELECT id, op, path, dest, backup_id, single, ident, target_id FROM fs_journal;
DROP TABLE fs_journal;
ALTER TABLE fs_journal_new RENAME TO fs_journal;
