-- Benchmark overlaps: the row, the benchmark and item it matched, and the evidence n-gram.
CREATE OR REPLACE VIEW contamination AS
SELECT * FROM _side_contamination;
