-- 003_rollups, Timescale License only: the database schedules the refresh itself.
-- (The Apache edition refuses add_job; there, and on vanilla, lighthouse.db.maintenance runs
-- lh_refresh_rollups. Both paths may run at once: the refresh is locked and idempotent.)

CREATE PROCEDURE lh_rollup_job(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM lh_refresh_rollups(
    coalesce((config ->> 'late_horizon')::interval, interval '2 hours'));
END $$;

SELECT add_job('lh_rollup_job', INTERVAL '5 minutes',
               config => '{"late_horizon": "2 hours"}'::jsonb);
