-- Duplicate lineage: each clustered row, its cluster, its representative and their similarity.
CREATE OR REPLACE VIEW clusters AS
SELECT * FROM _side_clusters;
