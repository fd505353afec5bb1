-- v4: the few-shot examples (assistant node ids, JSON array) put into the system prompt
-- when this answer was generated ("few-shot from your own best"); and a key-value table
-- for the studio's own state (the conversation to reopen).
ALTER TABLE nodes ADD COLUMN few_shot TEXT;
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
