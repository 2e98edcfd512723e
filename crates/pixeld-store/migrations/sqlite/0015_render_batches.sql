-- CSV batch renders from the dashboard: each row is an asynchronous render tagged with its batch,
-- so the progress page and the ZIP download find a batch's renders by index.
ALTER TABLE render_jobs ADD COLUMN batch_id BLOB;
CREATE INDEX render_jobs_batch ON render_jobs (org_id, batch_id) WHERE batch_id IS NOT NULL;
