-- v1: conversation trees, one row per message, ratings/critiques/tags per rater, FTS5 search.
CREATE TABLE conversations (
    id             INTEGER PRIMARY KEY,
    title          TEXT    NOT NULL DEFAULT '',
    system_prompt  TEXT    NOT NULL DEFAULT '',
    tools          TEXT,              -- JSON array of OpenAI tool definitions, or NULL
    settings       TEXT,              -- JSON object: per-conversation sampling/template overrides
    active_root_id INTEGER,           -- which root message the active path starts from
    created_at     INTEGER NOT NULL,  -- unix milliseconds
    updated_at     INTEGER NOT NULL
);

CREATE TABLE nodes (
    id               INTEGER PRIMARY KEY,
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id        INTEGER REFERENCES nodes(id) ON DELETE CASCADE,
    role             TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content          TEXT    NOT NULL DEFAULT '',
    tool_calls       TEXT,            -- JSON array of {id, name, arguments: {..}} (arguments kept as objects)
    tool_call_id     TEXT,            -- for role = tool: the call this result answers
    origin           TEXT    NOT NULL CHECK (origin IN ('typed', 'generated', 'edited', 'imported')),
    edited_from      INTEGER REFERENCES nodes(id) ON DELETE SET NULL,
    active_child_id  INTEGER,         -- the child the active path continues with
    status           TEXT    NOT NULL DEFAULT 'complete'
                     CHECK (status IN ('complete', 'streaming', 'interrupted', 'error')),
    model            TEXT,
    adapter          TEXT,
    sampling         TEXT,            -- JSON object of the sampling parameters used
    prompt_tokens    INTEGER,
    reused_tokens    INTEGER,
    generated_tokens INTEGER,
    ttft_ms          REAL,
    tokens_per_s     REAL,
    stop_reason      TEXT,
    error            TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX nodes_conversation ON nodes(conversation_id);
CREATE INDEX nodes_parent ON nodes(parent_id);

-- A node's parent must live in the same conversation.
CREATE TRIGGER nodes_parent_same_conversation
BEFORE INSERT ON nodes
WHEN NEW.parent_id IS NOT NULL
 AND (SELECT conversation_id FROM nodes WHERE id = NEW.parent_id) IS NOT NEW.conversation_id
BEGIN
    SELECT RAISE(ABORT, 'parent node belongs to another conversation');
END;

CREATE TABLE ratings (
    node_id    INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    rater      TEXT    NOT NULL,
    stars      INTEGER CHECK (stars BETWEEN 1 AND 5),
    critique   TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, rater)
);

CREATE TABLE tags (
    node_id    INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    rater      TEXT    NOT NULL,
    tag        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, rater, tag)
);
CREATE INDEX tags_tag ON tags(tag);

CREATE VIRTUAL TABLE nodes_fts USING fts5(content, content = 'nodes', content_rowid = 'id');
CREATE TRIGGER nodes_fts_ai AFTER INSERT ON nodes BEGIN
    INSERT INTO nodes_fts(rowid, content) VALUES (NEW.id, NEW.content);
END;
CREATE TRIGGER nodes_fts_ad AFTER DELETE ON nodes BEGIN
    INSERT INTO nodes_fts(nodes_fts, rowid, content) VALUES ('delete', OLD.id, OLD.content);
END;
CREATE TRIGGER nodes_fts_au AFTER UPDATE OF content ON nodes BEGIN
    INSERT INTO nodes_fts(nodes_fts, rowid, content) VALUES ('delete', OLD.id, OLD.content);
    INSERT INTO nodes_fts(rowid, content) VALUES (NEW.id, NEW.content);
END;
