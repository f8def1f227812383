-- Replicas (issue 16). Numbers 0012 and 0013 are reserved for parallel work.

-- What bakch knows of each configured replica, for its page, /metrics and notifications. The
-- bucket itself is the truth of what it holds (a sync lists it), so this is only a summary.
CREATE TABLE replica_states (
    replica         TEXT PRIMARY KEY,
    last_success    TEXT,
    last_attempt    TEXT,
    last_error      TEXT,
    -- Errors since bakch's database began, for /metrics.
    errors          INTEGER NOT NULL DEFAULT 0,
    objects         INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    pending_objects INTEGER NOT NULL DEFAULT 0,
    pending_bytes   INTEGER NOT NULL DEFAULT 0,
    -- Objects waiting for their delete delay to pass.
    doomed_objects  INTEGER NOT NULL DEFAULT 0,
    last_outcome    TEXT,
    last_verify     TEXT,
    verify_outcome  TEXT,
    -- The name the next verification starts after (it goes round the sorted names).
    verify_cursor   TEXT NOT NULL DEFAULT '',
    -- Whether the last run failed and a `replica_failed` notification was queued for it.
    failing         INTEGER NOT NULL DEFAULT 0
);

-- Objects in a bucket that nothing here needs any more, since when: removed only once
-- `delete_delay_days` have passed since `since` (and still unneeded then).
CREATE TABLE replica_unneeded (
    replica TEXT NOT NULL,
    object  TEXT NOT NULL,
    since   TEXT NOT NULL,
    PRIMARY KEY (replica, object)
);
