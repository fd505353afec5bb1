-- v5: what supervising a training job needs: the supervising Arbor process (the trainer
-- itself is `pid`, leader of its own process group), a cancel request, the phase the job
-- is in, how far its log has been read, and how many examples it trains on. Adapters get
-- unique names and the job's final figures.
ALTER TABLE jobs ADD COLUMN supervisor_pid INTEGER;
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN phase TEXT;
ALTER TABLE jobs ADD COLUMN log_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN examples INTEGER;
ALTER TABLE adapters ADD COLUMN metrics TEXT;
CREATE UNIQUE INDEX adapters_name ON adapters(name);
CREATE INDEX job_metrics_job ON job_metrics(job_id, step);
