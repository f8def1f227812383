-- `bakch push` (issue 18): incremental snapshots that send only the content a target lacks.

-- An open push: a file list arriving page by page, then its missing blobs, then a finish that
-- queues the upload job. Several may be open per target (one per client machine); an idle one
-- is purged by `stale_seq_upload_job` like a sequential upload.
CREATE TABLE push_sessions (
    id             TEXT PRIMARY KEY,
    target_id      TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    manual         INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    -- What crossed the wire into this push: blobs stored and their bytes (verified content only).
    blobs_received INTEGER NOT NULL DEFAULT 0,
    bytes_received INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX push_sessions_target ON push_sessions(target_id);

-- The file list of an open push.
CREATE TABLE push_files (
    session_id TEXT NOT NULL REFERENCES push_sessions(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    blob       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    mode       INTEGER NOT NULL,
    mtime      INTEGER NOT NULL,
    PRIMARY KEY (session_id, path)
) WITHOUT ROWID;
CREATE INDEX push_files_blob ON push_files(blob);

-- Blobs received by pushes into a target, so that a push cut off and started again does not
-- send them twice, while a key still learns nothing about other targets' content. Kept a day
-- (then only backups keep the content, and garbage collection may take what none uses).
CREATE TABLE push_blobs (
    target_id   TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    blob        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (target_id, blob)
) WITHOUT ROWID;
CREATE INDEX push_blobs_blob ON push_blobs(blob);
