-- Every ingested row (design §2), malformed ones included: ingest's kept rows plus its rejects.
CREATE OR REPLACE VIEW traces AS
SELECT id, row_id, problem_id, source, origin, subset, dataset_split, problem, reasoning, response, reference, tests, domain, teacher, meta
FROM stage_ingest
UNION ALL
SELECT id, row_id, problem_id, source, origin, subset, dataset_split, problem, reasoning, response, reference, tests, domain, teacher, meta
FROM _rejected_all
WHERE stage = 'ingest';
