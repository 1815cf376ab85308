-- 007_fleet, TimescaleDB with the Timescale License: compressed chunks cannot take a new
-- primary key, so the policy is paused, every chunk is decompressed, the key is rebuilt with
-- the location and compression comes back segmented by (subscription_id, location).
-- Not rehearsed on this project's machines (they run the Apache edition); needs disk for the
-- decompressed chunks (about 10x their compressed size) while it runs.

SELECT remove_compression_policy('check_history', if_exists => TRUE);
SELECT decompress_chunk(c, if_compressed => TRUE) FROM show_chunks('check_history') AS c;
ALTER TABLE check_history SET (timescaledb.compress = false);
ALTER TABLE check_history ADD COLUMN location text NOT NULL DEFAULT '';
ALTER TABLE check_history DROP CONSTRAINT check_history_pkey;
ALTER TABLE check_history ADD CONSTRAINT check_history_pkey
  PRIMARY KEY (subscription_id, time, location);
ALTER TABLE check_history SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'subscription_id, location',
  timescaledb.compress_orderby = 'time DESC'
);
SELECT add_compression_policy('check_history', compress_after => INTERVAL '7 days',
                              if_not_exists => TRUE);
