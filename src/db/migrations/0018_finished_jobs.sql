-- A finished upload's job kept its whole file list (a nightly push of a million files left
-- ~150 MB in this table each night). It now keeps the first 3 files and the list's totals, as
-- db::jobs::finish does from now on; the backups hold the lists.
UPDATE jobs SET payload = json_set(payload,
    '$.source.files', (SELECT json_group_array(json(value))
                         FROM (SELECT value FROM json_each(payload, '$.source.files') ORDER BY key LIMIT 3)),
    '$.source.totals', json_object(
        'count', json_array_length(payload, '$.source.files'),
        'bytes', (SELECT COALESCE(SUM(json_extract(value, '$.size')), 0) FROM json_each(payload, '$.source.files'))))
WHERE status = 'FINISHED' AND kind = 'upload_job' AND json_valid(payload)
  AND json_extract(payload, '$.source.kind') = 'files'
  AND json_extract(payload, '$.source.totals') IS NULL;
