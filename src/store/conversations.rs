//! Conversations: create, read, rename, set up (system prompt, tools, settings), list,
//! delete; the studio's own key/value state (`meta`).

use super::*;
use rusqlite::{params, Connection, OptionalExtension};

impl Store {
    pub fn create_conversation(
        &self,
        title: &str,
        system_prompt: &str,
        tools: Option<&serde_json::Value>,
    ) -> Result<Conversation> {
        let now = now_ms();
        let tools = tools.map(serde_json::to_string).transpose()?;
        let tx = self.tx()?;
        tx.execute(
            "INSERT INTO conversations (title, system_prompt, tools, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![title, system_prompt, tools, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        self.conversation(id)
    }

    /// A conversation; one in the trash is refused (`StoreError::Trashed`).
    pub fn conversation(&self, id: ConversationId) -> Result<Conversation> {
        let (c, trashed) = self
            .conn
            .query_row(
                &format!(
                    "SELECT {CONV_COLS}, trashed_at IS NOT NULL FROM conversations WHERE id = ?1"
                ),
                [id],
                |r| Ok((conversation_from_row(r)?, r.get::<_, bool>(8)?)),
            )
            .optional()?
            .ok_or(StoreError::NoConversation(id))?;
        if trashed {
            return Err(StoreError::Trashed(id));
        }
        Ok(c)
    }

    pub fn set_title(&self, id: ConversationId, title: &str) -> Result<()> {
        self.update_conversation(id, "title", &title)
    }

    pub fn set_system_prompt(&self, id: ConversationId, prompt: &str) -> Result<()> {
        self.update_conversation(id, "system_prompt", &prompt)
    }

    pub fn set_tools(&self, id: ConversationId, tools: Option<&serde_json::Value>) -> Result<()> {
        let tools = tools.map(serde_json::to_string).transpose()?;
        self.update_conversation(id, "tools", &tools)
    }

    pub fn set_settings(
        &self,
        id: ConversationId,
        settings: Option<&serde_json::Value>,
    ) -> Result<()> {
        let settings = settings.map(serde_json::to_string).transpose()?;
        self.update_conversation(id, "settings", &settings)
    }

    /// System prompt, tools and settings in one transaction (the settings popup).
    pub fn set_conversation_setup(
        &self,
        id: ConversationId,
        system_prompt: &str,
        tools: Option<&serde_json::Value>,
        settings: Option<&serde_json::Value>,
    ) -> Result<()> {
        let tools = tools.map(serde_json::to_string).transpose()?;
        let settings = settings.map(serde_json::to_string).transpose()?;
        let tx = self.tx()?;
        let n = tx.execute(
            "UPDATE conversations SET system_prompt = ?1, tools = ?2, settings = ?3, updated_at = ?4
             WHERE id = ?5",
            params![system_prompt, tools, settings, now_ms(), id],
        )?;
        if n == 0 {
            return Err(StoreError::NoConversation(id));
        }
        tx.commit()?;
        Ok(())
    }

    fn update_conversation(
        &self,
        id: ConversationId,
        column: &'static str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<()> {
        let n = self.conn.execute(
            &format!("UPDATE conversations SET {column} = ?1, updated_at = ?2 WHERE id = ?3"),
            params![value, now_ms(), id],
        )?;
        if n == 0 {
            return Err(StoreError::NoConversation(id));
        }
        Ok(())
    }

    pub fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        let tx = self.tx()?;
        delete_conversation_in(&tx, id)?;
        tx.commit()?;
        Ok(())
    }

    /// Conversations, most recently active first, optionally only those with a tag.
    pub fn list_conversations(&self, tag: Option<&str>) -> Result<Vec<ConversationSummary>> {
        let mut stmt = self.conn.prepare(concat!(
            "SELECT c.id, c.title, c.updated_at, c.node_count,
                    (SELECT COUNT(*) FROM ratings r JOIN nodes n ON n.id = r.node_id
                      WHERE n.conversation_id = c.id AND r.stars IS NOT NULL AND ",
            crate::person!("r.rater"),
            "),
                    (SELECT AVG(r.stars) FROM ratings r JOIN nodes n ON n.id = r.node_id
                      WHERE n.conversation_id = c.id AND r.stars IS NOT NULL AND ",
            crate::person!("r.rater"),
            "),
                    (SELECT group_concat(tag, ',') FROM (SELECT DISTINCT t.tag FROM tags t
                      JOIN nodes n ON n.id = t.node_id WHERE n.conversation_id = c.id ORDER BY t.tag))
             FROM conversations c
             WHERE c.pending_import IS NULL AND c.trashed_at IS NULL AND (?1 IS NULL OR EXISTS (SELECT 1 FROM tags t JOIN nodes n ON n.id = t.node_id
                                         WHERE n.conversation_id = c.id AND t.tag = ?1))
             ORDER BY c.updated_at DESC, c.id DESC"
        ),
        )?;
        let rows = stmt.query_map([tag], |r| {
            let tags: Option<String> = r.get(6)?;
            Ok(ConversationSummary {
                id: r.get(0)?,
                title: r.get(1)?,
                updated_at: r.get(2)?,
                messages: r.get(3)?,
                rated: r.get(4)?,
                avg_stars: r.get(5)?,
                tags: tags
                    .map(|t| t.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Deletes a conversation and its messages inside the caller's transaction.
pub(super) fn delete_conversation_in(tx: &Connection, id: ConversationId) -> Result<()> {
    // Detach before deleting so ON DELETE CASCADE never recurses down a long chain.
    tx.execute(
        "UPDATE nodes SET parent_id = NULL WHERE conversation_id = ?1",
        [id],
    )?;
    tx.execute("DELETE FROM nodes WHERE conversation_id = ?1", [id])?;
    let n = tx.execute("DELETE FROM conversations WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(StoreError::NoConversation(id));
    }
    Ok(())
}
