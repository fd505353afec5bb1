-- v7: an import writes in short transactions under conversations that stay hidden until the
-- last one commits (`pending_import` = the importing process id; NULL = visible), so readers
-- and other writers never wait long on it and a killed import leaves nothing visible; the
-- next open removes what a dead import left.
ALTER TABLE conversations ADD COLUMN pending_import INTEGER;
CREATE INDEX conversations_pending ON conversations(pending_import)
    WHERE pending_import IS NOT NULL;

-- Human preferences between two answers to the same message: OpenAssistant ranks among
-- siblings (source 'rank'), and later blind eval decisions. Every row exports as a
-- preference pair.
CREATE TABLE preferences (
    chosen_id   INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    rejected_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    rater       TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (chosen_id, rejected_id, rater),
    CHECK (chosen_id <> rejected_id)
);
CREATE INDEX preferences_rejected ON preferences(rejected_id);

-- Deleting a message sets `edited_from` to NULL where it pointed at it: without an index
-- that is a scan of every message per deleted message (a conversation's delete took
-- seconds on a large database, a killed import's cleanup minutes).
CREATE INDEX nodes_edited_from ON nodes(edited_from) WHERE edited_from IS NOT NULL;
