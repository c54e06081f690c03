-- Rows in, out and dropped per stage, in pipeline order, with the drops counted by reason, and
-- the kept rows a stage flagged counted apart by status (verify: traces kept without a check,
-- `no_reference`).
CREATE OR REPLACE VIEW funnel AS
WITH kept AS (
    SELECT stage, count(*) AS rows_out FROM _stage_keys GROUP BY stage
),
reasons AS (
    SELECT stage, reason, count(*) AS n FROM _rejected_all GROUP BY stage, reason
),
dropped AS (
    SELECT stage, sum(n)::BIGINT AS dropped,
           map_from_entries(list({'k': reason, 'v': n} ORDER BY n DESC, reason)) AS by_reason
    FROM reasons GROUP BY stage
),
flags AS (
    SELECT stage, reason AS status, count(*) AS n FROM _flagged GROUP BY stage, reason
),
flagged AS (
    SELECT stage, map_from_entries(list({'k': status, 'v': n} ORDER BY n DESC, status)) AS flagged
    FROM flags GROUP BY stage
)
SELECT s.stage,
       coalesce(k.rows_out, 0) + coalesce(d.dropped, 0) AS rows_in,
       coalesce(k.rows_out, 0) AS rows_out,
       coalesce(d.dropped, 0) AS dropped,
       d.by_reason,
       f.flagged
FROM _stages AS s
LEFT JOIN kept AS k USING (stage)
LEFT JOIN dropped AS d USING (stage)
LEFT JOIN flagged AS f USING (stage)
ORDER BY s.stage_index;
