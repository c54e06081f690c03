-- Every dropped row, whole, with the stage that dropped it, the reason and the detail.
CREATE OR REPLACE VIEW rejected AS
SELECT * FROM _rejected_all;
