-- Rows that survived every committed stage, with the columns the stages added.
CREATE OR REPLACE VIEW kept AS
SELECT * FROM _final;
