-- One line per (row, stage) decision: 'keep' for each stage a row survived, 'drop' where it left.
-- Every ingested row has exactly one 'drop' or survives the last stage.
CREATE OR REPLACE VIEW ledger AS
SELECT id, row_id, stage, stage_index, 'keep' AS decision, NULL::VARCHAR AS reason, NULL::VARCHAR AS detail
FROM _stage_keys
UNION ALL
SELECT r.id, r.row_id, r.stage, s.stage_index, 'drop' AS decision, r.reason, r.detail
FROM _rejected_all AS r
JOIN _stages AS s ON s.stage = r.stage;
