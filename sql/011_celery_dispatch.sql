-- Transcoding on Celery workers (issue 13). The job table stays the truth: a task carries only
-- its job's id, and a worker claims the job with the same compare-and-set as the local pool.
-- A job sent to the broker records its last task (to revoke it on `mpr jobs cancel`) and when
-- it was sent (a PENDING job whose task is older than the broker's visibility timeout may have
-- lost it: the next dispatch sends another).
ALTER TABLE transcode_jobs ADD COLUMN task_id text;
ALTER TABLE transcode_jobs ADD COLUMN dispatched_at timestamptz;
ALTER TABLE transcode_jobs ADD CONSTRAINT transcode_jobs_dispatched_has_task
    CHECK ((task_id IS NULL) = (dispatched_at IS NULL));
