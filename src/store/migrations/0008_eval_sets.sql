-- v8: eval sets. A case is a user turn (the path up to it is its context) and, where one
-- exists, its reference answer; every conversation with a case is held out of training.
CREATE TABLE eval_sets (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    source     TEXT    NOT NULL DEFAULT '',   -- how it was made: the filters, or the file
    created_at INTEGER NOT NULL
);
CREATE TABLE eval_cases (
    id                INTEGER PRIMARY KEY,
    set_id            INTEGER NOT NULL REFERENCES eval_sets(id) ON DELETE CASCADE,
    conversation_id   INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_node_id      INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    reference_node_id INTEGER REFERENCES nodes(id) ON DELETE SET NULL,
    tags              TEXT    NOT NULL DEFAULT '[]',   -- JSON array: the turn's tags
    UNIQUE (set_id, user_node_id)
);
CREATE INDEX eval_cases_conversation ON eval_cases(conversation_id);
CREATE INDEX eval_cases_user ON eval_cases(user_node_id);
CREATE INDEX eval_cases_reference ON eval_cases(reference_node_id) WHERE reference_node_id IS NOT NULL;

-- An eval run answers every case of a set with every candidate (a spec: base, an adapter,
-- a server model, with sampling overrides); each answer is a sibling answer of the case's
-- turn (origin generated, never made the active path) linked here.
CREATE TABLE eval_runs (
    id          INTEGER PRIMARY KEY,
    set_id      INTEGER NOT NULL REFERENCES eval_sets(id) ON DELETE CASCADE,
    candidates  TEXT    NOT NULL,              -- JSON array of the specs, in order
    status      TEXT    NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'done', 'failed')),
    error       TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    job_id      INTEGER REFERENCES jobs(id) ON DELETE SET NULL   -- `train --eval`: the job it measures
);
CREATE TABLE eval_answers (
    run_id    INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    case_id   INTEGER NOT NULL REFERENCES eval_cases(id) ON DELETE CASCADE,
    candidate INTEGER NOT NULL,                -- index into the run's candidates
    node_id   INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    PRIMARY KEY (run_id, case_id, candidate)
);
CREATE INDEX eval_answers_node ON eval_answers(node_id);

-- A blind pairwise decision of a rater between two candidates' answers to one case
-- (`cand_a` < `cand_b`; `winner` one of them, or NULL for a tie). A decision with a winner
-- is also a row of `preferences` (source 'blind').
CREATE TABLE eval_decisions (
    run_id     INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    case_id    INTEGER NOT NULL REFERENCES eval_cases(id) ON DELETE CASCADE,
    cand_a     INTEGER NOT NULL,
    cand_b     INTEGER NOT NULL,
    winner     INTEGER,
    rater      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, case_id, cand_a, cand_b, rater),
    CHECK (cand_a < cand_b AND (winner IS NULL OR winner IN (cand_a, cand_b)))
);
