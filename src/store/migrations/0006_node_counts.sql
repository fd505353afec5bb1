-- v6: each conversation's number of messages, kept by triggers on every insert, delete or
-- move of a node (whoever writes it): a bulk read knows how many nodes a block of
-- conversations holds without counting them, and the conversation list shows its counts
-- without counting either.
ALTER TABLE conversations ADD COLUMN node_count INTEGER NOT NULL DEFAULT 0;
UPDATE conversations
   SET node_count = (SELECT count(*) FROM nodes WHERE nodes.conversation_id = conversations.id);
CREATE TRIGGER nodes_count_insert AFTER INSERT ON nodes BEGIN
    UPDATE conversations SET node_count = node_count + 1 WHERE id = NEW.conversation_id;
END;
CREATE TRIGGER nodes_count_delete AFTER DELETE ON nodes BEGIN
    UPDATE conversations SET node_count = node_count - 1 WHERE id = OLD.conversation_id;
END;
CREATE TRIGGER nodes_count_move AFTER UPDATE OF conversation_id ON nodes BEGIN
    UPDATE conversations SET node_count = node_count - 1 WHERE id = OLD.conversation_id;
    UPDATE conversations SET node_count = node_count + 1 WHERE id = NEW.conversation_id;
END;
