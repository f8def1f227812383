-- Target pages are ordered by name without case, then id: this index serves that order, so a
-- page is a short index walk instead of sorting every target on each request.
CREATE INDEX targets_name_nocase ON targets(name COLLATE NOCASE, id);
