-- When and from where each named key was last used (the keys themselves live in keys.json, which
-- outlives `bakch rebuild-db`; losing this table loses only "last used").
CREATE TABLE key_use (
    name      TEXT PRIMARY KEY,
    last_used TEXT NOT NULL,
    address   TEXT NOT NULL
);
