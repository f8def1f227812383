-- Targets: a folder on disk plus rules. Tags are a JSON array of strings.
CREATE TABLE targets (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    target_type      TEXT NOT NULL CHECK (target_type IN ('single', 'multi')),
    recycle_criteria TEXT NOT NULL CHECK (recycle_criteria IN ('none', 'count', 'age')),
    recycle_value    INTEGER NOT NULL CHECK (recycle_value >= 0),
    recycle_action   TEXT NOT NULL CHECK (recycle_action IN ('recycle', 'delete')),
    location         TEXT NOT NULL,
    name_template    TEXT NOT NULL UNIQUE,
    deduplicate      INTEGER NOT NULL,
    alias            TEXT UNIQUE,
    min_backups      INTEGER NOT NULL CHECK (min_backups >= 0),
    tags             TEXT NOT NULL DEFAULT '[]',
    created_at       TEXT NOT NULL
);
CREATE INDEX targets_name ON targets(name);

-- Backups. A row is 'pending' while its files are being placed and only listed once 'complete'.
-- `name` is the file or folder name inside the target's location (or the recycle bin).
CREATE TABLE backups (
    id            TEXT PRIMARY KEY,
    target_id     TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    manual        INTEGER NOT NULL,
    is_recycled   INTEGER NOT NULL DEFAULT 0,
    filesize      INTEGER NOT NULL,
    hash          TEXT NOT NULL,
    hash_mismatch INTEGER NOT NULL DEFAULT 0,
    name          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'complete'))
);
CREATE INDEX backups_target ON backups(target_id, created_at);
CREATE INDEX backups_recycled ON backups(is_recycled, created_at);

-- One row per file of a backup: its path inside the backup and the blob holding its bytes.
CREATE TABLE backup_files (
    backup_id TEXT NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
    path      TEXT NOT NULL,
    blob      TEXT NOT NULL,
    size      INTEGER NOT NULL,
    mode      INTEGER NOT NULL,
    PRIMARY KEY (backup_id, path)
) WITHOUT ROWID;
CREATE INDEX backup_files_blob ON backup_files(blob);

-- The durable job queue.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('IDLE', 'RUNNING', 'FINISHED', 'ERROR')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX jobs_status ON jobs(status, id);

-- Last run of each scheduled job, so /api/jobs can show it and missed runs can catch up.
CREATE TABLE scheduled_runs (
    name        TEXT PRIMARY KEY,
    last_run_at TEXT,
    last_outcome TEXT,
    last_duration_ms INTEGER
);

-- Open sequential uploads: at most one per target.
CREATE TABLE seq_uploads (
    target_id  TEXT PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
    manual     INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The files a sequential upload announced; `blob` is set once the file arrived.
CREATE TABLE seq_files (
    target_id TEXT NOT NULL REFERENCES seq_uploads(target_id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    path      TEXT NOT NULL,
    name      TEXT NOT NULL,
    blob      TEXT,
    size      INTEGER,
    PRIMARY KEY (target_id, position),
    UNIQUE (target_id, path, name)
);
CREATE INDEX seq_files_blob ON seq_files(blob);
