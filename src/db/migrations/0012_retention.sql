-- Retention and file history (issue 17). Numbers 0013 and 0014 are reserved for parallel work.

-- A target's GFS keep policy (JSON, restic's keep rules; null = none) and its quota.
ALTER TABLE targets ADD COLUMN keep_policy TEXT;
ALTER TABLE targets ADD COLUMN quota_bytes INTEGER NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0);
ALTER TABLE targets ADD COLUMN quota_warning_percent INTEGER NOT NULL DEFAULT 90
    CHECK (quota_warning_percent BETWEEN 0 AND 100);

-- A pinned backup is never taken by retention and cannot be deleted until unpinned.
ALTER TABLE backups ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;

-- The file index: every distinct path of a target's backups and how many backup rows hold it,
-- so that a search by name scans a target's distinct paths (thousands) rather than every file
-- row of every backup (millions). Kept by triggers, so every way a row comes or goes (uploads,
-- rebuild-db, deletes, a target's cascade) keeps it right.
CREATE TABLE file_paths (
    target_id TEXT NOT NULL,
    path      TEXT NOT NULL,
    backups   INTEGER NOT NULL,
    PRIMARY KEY (target_id, path)
) WITHOUT ROWID;

INSERT INTO file_paths (target_id, path, backups)
    SELECT b.target_id, f.path, COUNT(*) FROM backup_files f JOIN backups b ON b.id = f.backup_id
    GROUP BY b.target_id, f.path;

CREATE TRIGGER file_paths_add AFTER INSERT ON backup_files BEGIN
    INSERT INTO file_paths (target_id, path, backups)
        SELECT target_id, NEW.path, 1 FROM backups WHERE id = NEW.backup_id
        ON CONFLICT (target_id, path) DO UPDATE SET backups = backups + 1;
END;

-- Before the backup row goes, while its files are still there (a cascade removes them after).
CREATE TRIGGER file_paths_drop BEFORE DELETE ON backups BEGIN
    UPDATE file_paths SET backups = backups - 1
        WHERE target_id = OLD.target_id AND path IN (SELECT path FROM backup_files WHERE backup_id = OLD.id);
    DELETE FROM file_paths WHERE target_id = OLD.target_id AND backups <= 0;
END;

-- A target that goes takes its index with it.
CREATE TRIGGER file_paths_target_gone AFTER DELETE ON targets BEGIN
    DELETE FROM file_paths WHERE target_id = OLD.id;
END;
