-- One line per (row, stage) decision: 'keep' for each stage a row survived, 'flag' where a stage
-- kept it with a caveat (verify: no reference to check it against), 'drop' where it left.
-- Every ingested row has exactly one 'drop' or survives the last stage.
CREATE OR REPLACE VIEW ledger AS
SELECT k.id, k.row_id, k.stage, k.stage_index,
       CASE WHEN f.reason IS NULL THEN 'keep' ELSE 'flag' END AS decision,
       f.reason, f.detail
FROM _stage_keys AS k
LEFT JOIN _flagged AS f ON f.stage = k.stage AND f.row_id = k.row_id
UNION ALL
SELECT r.id, r.row_id, r.stage, s.stage_index, 'drop' AS decision, r.reason, r.detail
FROM _rejected_all AS r
JOIN _stages AS s ON s.stage = r.stage;
