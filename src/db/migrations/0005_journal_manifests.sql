-- Manifests (see src/model/manifest.rs) are rewritten by journalled steps, committed with the
-- change they describe: 'manifest' rewrites (or removes) one backup's manifest from its row,
-- 'target' one target's definition file. SQLite cannot widen a CHECK, so the table is rebuilt.
CREATE TABLE fs_journal_new (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    op        TEXT NOT NULL CHECK (op IN ('move', 'remove', 'manifest', 'target')),
    path      TEXT NOT NULL,
    dest      TEXT,
    backup_id TEXT,
    single    INTEGER NOT NULL DEFAULT 0,
    ident     TEXT,
    target_id TEXT
);
INSERT INTO fs_journal_new (id, op, path, dest, backup_id, single, ident)
    SELECT id, op, path, dest, backup_id, single, ident FROM fs_journal;
DROP TABLE fs_journal;
ALTER TABLE fs_journal_new RENAME TO fs_journal;
