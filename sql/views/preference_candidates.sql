-- Every candidate REDI pair (docs/sft.md): a passing trace in the shards against a failed trace of
-- the same problem. Negatives are verify's drops with status `fail` only: never `no_answer`,
-- `timeout`, `error`, a malformed row (ingest drops those) or a row another stage dropped.
-- `distillery export WS --to redi` picks its pairs from these rows.
CREATE OR REPLACE VIEW preference_candidates AS
SELECT s.domain, s.split, k.problem_id,
       k.id AS chosen_id, k.row_id AS chosen_row_id, vc.status AS chosen_status,
       r.id AS rejected_id, r.row_id AS rejected_row_id, vr.status AS rejected_status
FROM _side_shards AS s
JOIN _final AS k ON k.row_id = s.row_id
JOIN _side_verify AS vc ON vc.row_id = s.row_id AND vc.status = 'pass'
JOIN _rejected_all AS r ON r.problem_id = k.problem_id AND r.stage = 'verify' AND r.reason = 'fail'
JOIN _side_verify AS vr ON vr.row_id = r.row_id AND vr.status = 'fail';
