-- v4: the few-shot examples (assistant node ids, JSON array) put into the system prompt
-- when this answer was generated ("few-shot from your own best"); and a key-value table
-- for the studio's own state (the conversation to reopen); and the process writing an answer
-- that is streaming, so opening the database elsewhere does not mark a live answer
-- interrupted.
ALTER TABLE nodes ADD COLUMN few_shot TEXT;
ALTER TABLE nodes ADD COLUMN writer_pid INTEGER;
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
