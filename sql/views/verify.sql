-- One verdict per verified row (math or code): status, extracted answer or code, detail, seconds.
CREATE OR REPLACE VIEW verify AS
SELECT v.* REPLACE (coalesce(t.seconds, v.seconds) AS seconds)
FROM _side_verify v LEFT JOIN _timings_verify t ON t.row_id = v.row_id;
