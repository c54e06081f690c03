-- Where each kept row landed: domain, split (train/val) and shard file.
CREATE OR REPLACE VIEW shards AS
SELECT * FROM _side_shards;
