-- The audit trail: one row per change (and per refused attempt), kept for `[audit] keep_days`.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    who      TEXT NOT NULL,
    session  TEXT,
    origin   TEXT NOT NULL,
    action   TEXT NOT NULL,
    route    TEXT,
    target   TEXT,
    backup   TEXT,
    job      TEXT,
    status   INTEGER NOT NULL,
    message  TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_target ON audit (target, id);
