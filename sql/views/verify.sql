-- One verdict per verified row (math or code): status, extracted answer or code, detail, seconds.
CREATE OR REPLACE VIEW verify AS
SELECT * FROM _side_verify;
