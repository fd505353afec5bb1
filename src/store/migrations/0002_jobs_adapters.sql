-- v2: training jobs, their metrics, and the adapters they produce.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    recipe      TEXT    NOT NULL,
    base_model  TEXT    NOT NULL,
    data_path   TEXT    NOT NULL,     -- the export snapshot the job trains on
    params      TEXT    NOT NULL,     -- JSON object of hyper-parameters
    status      TEXT    NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'lost')),
    pid         INTEGER,
    exit_code   INTEGER,
    dir         TEXT,                 -- working directory: log, outputs
    error       TEXT,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);

CREATE TABLE job_metrics (
    job_id        INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    step          INTEGER NOT NULL,
    total         INTEGER,
    loss          REAL,
    eval_loss     REAL,
    lr            REAL,
    tokens_per_s  REAL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (job_id, step)
);

CREATE TABLE adapters (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    base_model TEXT    NOT NULL,
    job_id     INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    scale      REAL    NOT NULL DEFAULT 1.0,
    created_at INTEGER NOT NULL
);

-- Which adapter generated a node already lives in nodes.adapter; the scale goes with it.
ALTER TABLE nodes ADD COLUMN adapter_scale REAL;
