-- Health (issue 15): expected intervals, the change canary, delivery retries, the monitor's states.

-- How often a target expects a backup, in seconds; 0 = not monitored.
ALTER TABLE targets ADD COLUMN expected_interval INTEGER NOT NULL DEFAULT 0 CHECK (expected_interval >= 0);

-- The change canary: how a finished backup differs from the previous one of its target, as
-- JSON (`files_new`, `files_changed`, `files_removed`, `files_same`, `bytes_new`, `unusual`);
-- null for backups made before it existed, or rebuilt from manifests.
ALTER TABLE backups ADD COLUMN changes TEXT;

-- Which target a queued job works on, so the newest upload of a target is found by an index.
ALTER TABLE jobs ADD COLUMN target_id TEXT;
UPDATE jobs SET target_id = json_extract(payload, '$.target_id') WHERE json_valid(payload);
CREATE INDEX jobs_target ON jobs (target_id, kind, id);

-- A job that must not run before this time (a notification's retry backoff); null = now.
ALTER TABLE jobs ADD COLUMN run_after TEXT;

-- The last known health of each subject (a target id, or `disk` for the data disk), so that a
-- change is noticed once, also across restarts. `notified_at` is when its last notification
-- (or reminder) was queued.
CREATE TABLE health_states (
    subject     TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    since       TEXT NOT NULL,
    notified_at TEXT
);

-- When each scheduled job last ended without an error (for /metrics).
ALTER TABLE scheduled_runs ADD COLUMN last_success_at TEXT;
