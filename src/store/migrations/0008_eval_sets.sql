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
