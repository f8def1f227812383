-- When a backup went to the recycle bin (ISO 8601; NULL while active, and for backups recycled
-- before this column existed), and what the last integrity check found wrong with it (one
-- finding per line; NULL when healthy), so pages can name the damaged file.
ALTER TABLE backups ADD COLUMN recycled_at TEXT;
ALTER TABLE backups ADD COLUMN damage TEXT;
