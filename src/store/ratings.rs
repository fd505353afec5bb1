//! Ratings, critiques and tags per rater; full-text search; counts.

use super::*;
use rusqlite::{params, Connection};

impl Store {
    /// Sets (or with `None` clears) a rater's stars on a node.
    pub fn rate(&self, node: NodeId, rater: &str, stars: Option<u8>) -> Result<()> {
        if let Some(s) = stars {
            if !(1..=5).contains(&s) {
                return Err(StoreError::Invalid(format!(
                    "rating must be 1-5 stars (0 clears), got {s}"
                )));
            }
        }
        self.set_rating_part(
            node,
            "INSERT INTO ratings (node_id, rater, stars, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (node_id, rater) DO UPDATE SET stars = excluded.stars, updated_at = excluded.updated_at",
            params![node, rater, stars, now_ms()],
            rater,
        )
    }

    /// Sets (or with an empty text clears) a rater's critique of a node.
    pub fn critique(&self, node: NodeId, rater: &str, text: &str) -> Result<()> {
        let text = (!text.trim().is_empty()).then_some(text);
        self.set_rating_part(
            node,
            "INSERT INTO ratings (node_id, rater, critique, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (node_id, rater) DO UPDATE SET critique = excluded.critique, updated_at = excluded.updated_at",
            params![node, rater, text, now_ms()],
            rater,
        )
    }

    /// Sets a rater's stars and critique together (a judge's score and reason).
    pub fn set_rating(
        &self,
        node: NodeId,
        rater: &str,
        stars: Option<u8>,
        critique: &str,
    ) -> Result<()> {
        let critique = (!critique.trim().is_empty()).then_some(critique);
        self.set_rating_part(
            node,
            "INSERT INTO ratings (node_id, rater, stars, critique, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (node_id, rater) DO UPDATE SET stars = excluded.stars,
                 critique = excluded.critique, updated_at = excluded.updated_at",
            params![node, rater, stars, critique, now_ms()],
            rater,
        )
    }

    /// Each answer's latest judge score (any `judge:…` rater).
    pub fn judge_stars(&self) -> Result<std::collections::HashMap<NodeId, u8>> {
        let mut stmt = self.conn.prepare(
            "SELECT node_id, stars FROM ratings WHERE rater LIKE 'judge:%' AND stars IS NOT NULL
              ORDER BY updated_at",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The path from the root to `node` as the chat shows it: `rater`'s stars and
    /// critique, every rater's tags, the latest judge score, the place among siblings.
    pub fn path_entries(&self, node: NodeId, rater: &str) -> Result<Vec<PathEntry>> {
        let mut out = Vec::new();
        for n in self.path_to_root(node)? {
            let mine = self.rating(n.id, rater)?;
            let sibs = self.siblings(n.id)?;
            let judge = self
                .ratings(n.id)?
                .into_iter()
                .filter(|r| is_judge(&r.rater))
                .find_map(|r| {
                    Some(Judged {
                        stars: r.stars?,
                        rater: r.rater,
                        reason: r.critique.unwrap_or_default(),
                    })
                });
            out.push(PathEntry {
                stars: mine.as_ref().and_then(|r| r.stars),
                has_critique: mine.is_some_and(|r| r.critique.is_some()),
                tags: self.tags(n.id)?,
                sibling: (
                    sibs.iter().position(|s| s.id == n.id).unwrap_or(0) + 1,
                    sibs.len(),
                ),
                judge,
                node: n,
            });
        }
        Ok(out)
    }

    /// The judges (`judge:…` raters) that rated something, by name.
    pub fn judge_raters(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT rater FROM ratings WHERE rater LIKE 'judge:%' AND stars IS NOT NULL
              ORDER BY rater",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// (human stars, judge stars) on every visible answer both rated: one pair per human
    /// rating (of `rater` only, when given).
    pub fn judge_pairs(&self, judge: &str, rater: Option<&str>) -> Result<Vec<(u8, u8)>> {
        let mut stmt = self.conn.prepare(concat!(
            "SELECT h.stars, j.stars FROM ratings h
               JOIN ratings j ON j.node_id = h.node_id AND j.rater = ?1 AND j.stars IS NOT NULL
               JOIN nodes n ON n.id = h.node_id
              WHERE h.stars IS NOT NULL AND ",
            crate::person!("h.rater"),
            "
                AND (?2 IS NULL OR h.rater = ?2)
                AND n.conversation_id NOT IN ",
            hidden_conversations!(),
            " ORDER BY h.node_id, h.rater"
        ))?;
        let rows = stmt.query_map(params![judge, rater], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Writes one part of a rater's rating of `node` (`upsert` with its parameters) in one
    /// transaction; a rating left with neither stars nor critique is removed. A person's
    /// rating makes the conversation the most recently active.
    fn set_rating_part(
        &self,
        node: NodeId,
        upsert: &str,
        params: impl rusqlite::Params,
        rater: &str,
    ) -> Result<()> {
        let tx = self.tx()?;
        ensure_node(&tx, node)?;
        tx.execute(upsert, params)?;
        prune_rating(&tx, node, rater)?;
        // A judge's score is no activity of the curator's: the list keeps its order.
        if !is_judge(rater) {
            touch_conversation_of(&tx, node)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn ratings(&self, node: NodeId) -> Result<Vec<Rating>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT node_id, rater, stars, critique FROM ratings WHERE node_id = ?1 ORDER BY rater",
        )?;
        let rows = stmt.query_map([node], |r| {
            Ok(Rating {
                node_id: r.get(0)?,
                rater: r.get(1)?,
                stars: r.get(2)?,
                critique: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One rater's rating of a node, if any.
    pub fn rating(&self, node: NodeId, rater: &str) -> Result<Option<Rating>> {
        Ok(self.ratings(node)?.into_iter().find(|r| r.rater == rater))
    }

    pub fn add_tag(&self, node: NodeId, rater: &str, tag: &str) -> Result<()> {
        let tag = tag.trim();
        if tag.is_empty() || tag.contains(',') || tag.contains(char::is_whitespace) {
            return Err(StoreError::Invalid(format!(
                "tag '{tag}' must be one word without commas"
            )));
        }
        let tx = self.tx()?;
        ensure_node(&tx, node)?;
        tx.execute(
            "INSERT OR IGNORE INTO tags (node_id, rater, tag, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![node, rater, tag, now_ms()],
        )?;
        touch_conversation_of(&tx, node)?;
        tx.commit()?;
        Ok(())
    }

    pub fn remove_tag(&self, node: NodeId, rater: &str, tag: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM tags WHERE node_id = ?1 AND rater = ?2 AND tag = ?3",
            params![node, rater, tag],
        )?;
        Ok(())
    }

    /// Whether `rater` put `tag` on `node`.
    pub fn has_tag(&self, node: NodeId, rater: &str, tag: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM tags WHERE node_id = ?1 AND rater = ?2 AND tag = ?3)",
            params![node, rater, tag.trim()],
            |r| r.get(0),
        )?)
    }

    /// Tags on a node from every rater, deduplicated and sorted.
    pub fn tags(&self, node: NodeId) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT tag FROM tags WHERE node_id = ?1 ORDER BY tag")?;
        let rows = stmt.query_map([node], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Full-text search over message text (FTS5 syntax; plain words are matched as
    /// prefixes), best matches first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let fts = fts_query(query);
        if fts.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT n.conversation_id, n.id, n.role,
                    snippet(nodes_fts, 0, '[', ']', '…', 12)
                 FROM nodes_fts JOIN nodes n ON n.id = nodes_fts.rowid
                 WHERE nodes_fts MATCH ?1 AND n.conversation_id NOT IN ",
            hidden_conversations!(),
            " ORDER BY bm25(nodes_fts) LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![fts, limit as i64], |r| {
            Ok(SearchHit {
                conversation_id: r.get(0)?,
                node_id: r.get(1)?,
                role: parse_enum(2, r.get(2)?)?,
                snippet: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn counts(&self) -> Result<Counts> {
        let count = |table: &str| -> Result<i64> {
            Ok(self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
        };
        Ok(Counts {
            conversations: count("conversations")?,
            nodes: count("nodes")?,
            ratings: count("ratings")?,
            tags: count("tags")?,
            jobs: count("jobs")?,
            adapters: count("adapters")?,
        })
    }
}

/// Row counts, for `arbor doctor` and `arbor stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub conversations: i64,
    pub nodes: i64,
    pub ratings: i64,
    pub tags: i64,
    pub jobs: i64,
    pub adapters: i64,
}

/// Turns user input into an FTS5 query: each word quoted and prefix-matched, so
/// punctuation in what people type never becomes FTS syntax errors.
pub(super) fn fts_query(input: &str) -> String {
    input
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn prune_rating(tx: &Connection, node: NodeId, rater: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM ratings WHERE node_id = ?1 AND rater = ?2 AND stars IS NULL AND critique IS NULL",
        params![node, rater],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_person_test_matches_the_judge_prefix() {
        assert_eq!(
            crate::person!("rater"),
            format!("rater NOT LIKE '{}%'", crate::store::JUDGE_PREFIX)
        );
    }

    #[test]
    fn fts_query_quotes_words() {
        assert_eq!(
            fts_query("SELECT * FROM \"x\""),
            "\"SELECT\"* \"FROM\"* \"x\"*"
        );
        assert_eq!(fts_query("  ()  "), "");
    }
}
