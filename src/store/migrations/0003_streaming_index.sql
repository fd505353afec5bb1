-- v3: opening a database marks answers left `streaming` by a crash as interrupted; a
-- partial index makes that check free on a million-message database.
CREATE INDEX nodes_streaming ON nodes(status) WHERE status = 'streaming';
