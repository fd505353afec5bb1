-- v10: global ids, so the same conversation and message are recognised in two databases
-- (`arbor merge`). Existing rows get theirs right after this script, derived from the row's
-- id, time and content (copies of one database made before the upgrade agree); rows made
-- later get theirs, the same way, when a merge first needs them.
ALTER TABLE conversations ADD COLUMN gid TEXT;
ALTER TABLE nodes ADD COLUMN gid TEXT;
CREATE UNIQUE INDEX conversations_gid ON conversations(gid) WHERE gid IS NOT NULL;
CREATE UNIQUE INDEX nodes_gid ON nodes(gid) WHERE gid IS NOT NULL;
