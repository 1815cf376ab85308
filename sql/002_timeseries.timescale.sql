-- 002_timeseries, TimescaleDB with the Timescale License only (applied after
-- 002_timeseries.hypertable.sql). The Apache edition refuses every statement below
-- ("Upgrade your license to 'timescale'"), so the migrator never sends them there.

ALTER TABLE check_history SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'subscription_id',
  timescaledb.compress_orderby = 'time DESC'
);
SELECT add_compression_policy('check_history', compress_after => INTERVAL '7 days',
                              if_not_exists => TRUE);
SELECT add_retention_policy('check_history', drop_after => INTERVAL '90 days',
                            if_not_exists => TRUE);

ALTER TABLE alert_history SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'subscription_id',
  timescaledb.compress_orderby = 'time DESC, id'  -- covers the (id, time) primary key
);
SELECT add_compression_policy('alert_history', compress_after => INTERVAL '30 days',
                              if_not_exists => TRUE);
SELECT add_retention_policy('alert_history', drop_after => INTERVAL '1 year',
                            if_not_exists => TRUE);
