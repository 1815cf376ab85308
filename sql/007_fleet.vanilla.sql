-- 007_fleet, vanilla PostgreSQL: check_history gains the location. A constant default is
-- stored in the catalog, so existing rows are not rewritten; the primary key is rebuilt once
-- (an index build over the whole table: minutes at tens of millions of rows, during which
-- the probers spool).

ALTER TABLE check_history ADD COLUMN location text NOT NULL DEFAULT '';
ALTER TABLE check_history DROP CONSTRAINT check_history_pkey;
ALTER TABLE check_history ADD CONSTRAINT check_history_pkey
  PRIMARY KEY (subscription_id, time, location);
