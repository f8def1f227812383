-- Space figures that do not read every file row (issue 17 at 10,000 backups × 1,000 files: the
-- target's usage and each backup's exclusive bytes took a minute, scanning ten million rows).

-- The blob index gains the backup: "which backups hold this content" becomes two seeks (the
-- lowest and highest backup id), and counting a backup's rows of one blob one seek.
CREATE INDEX backup_files_blob_backup ON backup_files(blob, backup_id);
DROP INDEX backup_files_blob;

-- Each target's distinct contents: how many file rows of its backups hold each blob, and its
-- size. Kept by triggers like file_paths, so every way a row comes or goes keeps it right.
CREATE TABLE target_blobs (
    target_id TEXT NOT NULL,
    blob      TEXT NOT NULL,
    size      INTEGER NOT NULL,
    rows      INTEGER NOT NULL,
    PRIMARY KEY (target_id, blob)
) WITHOUT ROWID;
CREATE INDEX target_blobs_blob ON target_blobs(blob);

INSERT INTO target_blobs (target_id, blob, size, rows)
    SELECT b.target_id, f.blob, MAX(f.size), COUNT(*) FROM backup_files f JOIN backups b ON b.id = f.backup_id
    GROUP BY b.target_id, f.blob;

CREATE TRIGGER target_blobs_add AFTER INSERT ON backup_files BEGIN
    INSERT INTO target_blobs (target_id, blob, size, rows)
        SELECT target_id, NEW.blob, NEW.size, 1 FROM backups WHERE id = NEW.backup_id
        ON CONFLICT (target_id, blob) DO UPDATE SET rows = rows + 1;
END;

-- Before the backup row goes, while its files are still there (a cascade removes them after).
CREATE TRIGGER target_blobs_drop BEFORE DELETE ON backups BEGIN
    UPDATE target_blobs
        SET rows = rows - (SELECT COUNT(*) FROM backup_files f WHERE f.blob = target_blobs.blob AND f.backup_id = OLD.id)
        WHERE target_id = OLD.target_id AND blob IN (SELECT blob FROM backup_files WHERE backup_id = OLD.id);
    DELETE FROM target_blobs WHERE target_id = OLD.target_id AND rows <= 0
        AND blob IN (SELECT blob FROM backup_files WHERE backup_id = OLD.id);
END;

CREATE TRIGGER target_blobs_target_gone AFTER DELETE ON targets BEGIN
    DELETE FROM target_blobs WHERE target_id = OLD.id;
END;
