-- Rows in, out and dropped per stage, in pipeline order, with the drops counted by reason.
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
)
SELECT s.stage,
       coalesce(k.rows_out, 0) + coalesce(d.dropped, 0) AS rows_in,
       coalesce(k.rows_out, 0) AS rows_out,
       coalesce(d.dropped, 0) AS dropped,
       d.by_reason
FROM _stages AS s
LEFT JOIN kept AS k USING (stage)
LEFT JOIN dropped AS d USING (stage)
ORDER BY s.stage_index;
