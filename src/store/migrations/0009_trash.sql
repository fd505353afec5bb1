-- v9: the trash. Deleting a conversation marks it `trashed_at` and keeps every row; deleting a
-- branch moves its messages into a conversation of their own, marked the same way, that
-- remembers where they hung (`trash_of`: the conversation, `trash_parent`: the message, NULL
-- for a root; `trash_active`: whether the branch was on the active path). Message ids,
-- ratings, tags, preferences and eval links never change, so restoring is exact. Trashed
-- conversations are hidden from every reader like an unfinished import's;
-- `arbor trash restore` puts them back and `arbor trash empty` deletes them for good.
ALTER TABLE conversations ADD COLUMN trashed_at INTEGER;
ALTER TABLE conversations ADD COLUMN trash_of INTEGER;
ALTER TABLE conversations ADD COLUMN trash_parent INTEGER;
ALTER TABLE conversations ADD COLUMN trash_active INTEGER;
CREATE INDEX conversations_trashed ON conversations(trashed_at) WHERE trashed_at IS NOT NULL;
