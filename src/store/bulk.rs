//! Bulk reads for export and stats, and one-transaction writes for import.

use super::raw::RawScan;
use super::CONV_COLS;
use super::{conversation_from_row_with, Result, Store, StoreError};
use crate::domain::*;
use rusqlite::OptionalExtension;
use std::collections::HashMap;

/// Every rating and tag in the database, by node, read in two queries.
#[derive(Debug, Default, Clone)]
pub struct Judgements {
    pub ratings: HashMap<NodeId, Vec<Rating>>,
    /// (rater, tag) pairs per node.
    pub tags: HashMap<NodeId, Vec<(String, String)>>,
    /// Human preferences: chosen answer → the answers it was preferred to.
    pub prefs: HashMap<NodeId, Vec<NodeId>>,
    /// Conversations eval sets hold: not exported or trained on.
    pub held_out: std::collections::HashSet<ConversationId>,
}

impl Judgements {
    pub fn has_tag(&self, node: NodeId, tag: &str, rater: Option<&str>) -> bool {
        self.tags.get(&node).is_some_and(|v| {
            v.iter()
                .any(|(r, t)| t == tag && rater.is_none_or(|x| r == x))
        })
    }

    pub fn tags_of(&self, node: NodeId) -> &[(String, String)] {
        self.tags.get(&node).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn ratings_of(&self, node: NodeId) -> &[Rating] {
        self.ratings.get(&node).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The stars that count per node (one rater's, or the lowest of all raters'). Node ids
/// are dense, so this is mostly a table indexed by id: looking one up costs an index,
/// not a hash, which the export does for every answer of every path.
#[derive(Debug, Default, Clone)]
pub struct Stars {
    /// Stars by node id; 0 = unrated.
    by_id: Vec<u8>,
    /// Ids past the table (only where ids are too large for one).
    far: HashMap<NodeId, u8>,
}

/// The largest node id kept in the table (16 MiB of it); larger ids go to a map.
const STARS_TABLE_MAX: NodeId = 1 << 24;

impl Stars {
    fn with_ids_up_to(top: NodeId) -> Self {
        let len = top.clamp(0, STARS_TABLE_MAX) as usize + 1;
        Self {
            by_id: vec![0; len],
            far: HashMap::new(),
        }
    }

    /// Counts `stars` (1-5) for `node`, keeping the lowest when a node has several.
    fn add(&mut self, node: NodeId, stars: i64) {
        let s = stars.clamp(1, 5) as u8;
        match usize::try_from(node).ok().filter(|&i| i < self.by_id.len()) {
            Some(i) => {
                let cur = &mut self.by_id[i];
                if *cur == 0 || s < *cur {
                    *cur = s;
                }
            }
            None => {
                let cur = self.far.entry(node).or_insert(s);
                *cur = (*cur).min(s);
            }
        }
    }

    pub fn get(&self, node: NodeId) -> Option<u8> {
        match usize::try_from(node).ok().and_then(|i| self.by_id.get(i)) {
            Some(0) => None,
            Some(&s) => Some(s),
            None => self.far.get(&node).copied(),
        }
    }

    /// Every rated node's stars.
    pub fn values(&self) -> impl Iterator<Item = u8> + '_ {
        self.by_id
            .iter()
            .copied()
            .filter(|&s| s > 0)
            .chain(self.far.values().copied())
    }
}

/// What a bulk read of trees fills in beyond each node's id, parent, role, text, tool
/// calls and status. What is not read is left as [`Node::new`] makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeFields {
    /// The model that wrote each answer (`Node::model`).
    pub model: bool,
    /// `origin`, `edited_from` and `created_at`.
    pub history: bool,
}

impl TreeFields {
    pub const ALL: Self = Self {
        model: true,
        history: true,
    };
}

/// A block of conversations with their nodes, as [`Store::read_block`] reads them.
#[derive(Debug, Default)]
pub struct TreeBlock {
    convs: Vec<Conversation>,
    /// Every conversation's nodes, one after another (by id within each); only the
    /// first `used` are this block's, the rest are kept to be filled again (so reading
    /// a block allocates nothing once the first has been read).
    nodes: Vec<Node>,
    used: usize,
    /// Where each conversation's nodes end in `nodes`.
    ends: Vec<usize>,
    /// Each used node's conversation (an index into `convs`), while reading.
    owner: Vec<u32>,
    /// The tools text last read and its value: conversations made from one preset
    /// share theirs, so they are parsed once for a run of such conversations.
    tools: Option<(String, serde_json::Value)>,
}

impl TreeBlock {
    /// Each conversation with its nodes, in id order.
    pub fn trees(&self) -> impl Iterator<Item = (&Conversation, &[Node])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.convs
            .iter()
            .zip(starts.zip(self.ends.iter().copied()))
            .map(|(c, (a, b))| (c, &self.nodes[a..b]))
    }

    /// The next node to fill in (a recycled one where there is one).
    fn next_node(&mut self) -> &mut Node {
        if self.used == self.nodes.len() {
            self.nodes.push(Node::new(0, Role::User, String::new()));
        }
        self.used += 1;
        &mut self.nodes[self.used - 1]
    }

    pub fn len(&self) -> usize {
        self.convs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.convs.is_empty()
    }
}

/// Conversations per block of a bulk read (memory holds one block at a time).
pub const TREE_BLOCK: usize = 2000;

impl Store {
    /// Preferences between answers (chosen → rejected), of one rater or all.
    pub fn preferences(&self, rater: Option<&str>) -> Result<HashMap<NodeId, Vec<NodeId>>> {
        let mut stmt = self.conn.prepare(
            "SELECT chosen_id, rejected_id FROM preferences WHERE ?1 IS NULL OR rater = ?1
              ORDER BY chosen_id, rejected_id",
        )?;
        let rows = stmt.query_map([rater], |r| Ok((r.get::<_, NodeId>(0)?, r.get(1)?)))?;
        let mut out: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
        for row in rows {
            let (c, r) = row?;
            out.entry(c).or_default().push(r);
        }
        Ok(out)
    }

    /// Reads every rating and tag.
    pub fn judgements(&self) -> Result<Judgements> {
        let mut j = Judgements::default();
        let mut stmt = self.conn.prepare(concat!(
            "SELECT node_id, rater, stars, critique FROM ratings WHERE ",
            crate::person!("rater")
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok(Rating {
                node_id: r.get(0)?,
                rater: r.get(1)?,
                stars: r.get(2)?,
                critique: r.get(3)?,
            })
        })?;
        for r in rows {
            let r = r?;
            j.ratings.entry(r.node_id).or_default().push(r);
        }
        let mut stmt = self.conn.prepare("SELECT node_id, rater, tag FROM tags")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, NodeId>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?;
        for r in rows {
            let (node, rater, tag) = r?;
            j.tags.entry(node).or_default().push((rater, tag));
        }
        Ok(j)
    }

    /// Calls `f` with each conversation and all its nodes (ordered by id, so a parent
    /// always comes before its children), in conversation id order, streaming: one block
    /// of conversations in memory at a time, lent to `f` (nothing is copied per
    /// conversation). `only` restricts to these conversations when not empty. Nodes carry
    /// their structure, text and tool calls, and `fields` beyond that (no sampling
    /// parameters or timing facts).
    ///
    /// One thread on purpose: a reader thread handing nodes to another thread measured
    /// twice as slow here (allocations freed across threads).
    pub fn for_each_tree<E: From<StoreError>>(
        &self,
        only: &[ConversationId],
        fields: TreeFields,
        mut f: impl FnMut(&Conversation, &[Node]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut block = TreeBlock::default();
        let ranges = if only.is_empty() {
            self.conversation_blocks(TREE_BLOCK)?
        } else {
            let mut ids = only.to_vec();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter().map(|id| (id, id)).collect()
        };
        for (lo, hi) in ranges {
            self.read_block(lo, hi, fields, &mut block)?;
            for (conv, nodes) in block.trees() {
                f(conv, nodes)?;
            }
        }
        Ok(())
    }

    /// The conversations' ids in blocks of `size` (ascending), as (first, last) ids.
    pub fn conversation_blocks(
        &self,
        size: usize,
    ) -> Result<Vec<(ConversationId, ConversationId)>> {
        let mut rows = RawScan::new(&self.conn, "SELECT id FROM conversations ORDER BY id", &[])?;
        let mut ids: Vec<ConversationId> = Vec::new();
        while rows.step()? {
            ids.push(rows.int(0));
        }
        Ok(ids
            .chunks(size.max(1))
            .map(|c| (c[0], c[c.len() - 1]))
            .collect())
    }

    /// Reads the conversations with ids `lo..=hi` and their nodes into `block`
    /// (replacing what it held, reusing its memory).
    pub fn read_block(
        &self,
        lo: ConversationId,
        hi: ConversationId,
        fields: TreeFields,
        block: &mut TreeBlock,
    ) -> Result<()> {
        block.convs.clear();
        block.used = 0;
        block.ends.clear();
        let mut count: i64 = 0;
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {CONV_COLS}, node_count FROM conversations WHERE id BETWEEN ?1 AND ?2
                  ORDER BY id"
            ))?;
            let mut rows = stmt.query([lo, hi])?;
            while let Some(r) = rows.next()? {
                block
                    .convs
                    .push(conversation_from_row_with(r, &mut block.tools)?);
                count += r.get::<_, i64>(8)?;
            }
        }
        if block.convs.is_empty() || count <= 0 {
            block.ends.resize(block.convs.len(), 0);
            return Ok(());
        }
        if self.read_by_range(fields, count, block)? {
            return Ok(());
        }
        self.read_by_conversation(lo, hi, fields, block)
    }

    /// The usual layout: conversations written one after another, so a block's `count`
    /// nodes lie between the first node of its first conversation and the last of its
    /// last, and that id range is read in one scan of the table (no index lookup per
    /// node: 8% of an export). Conversations interleaved inside the range are grouped.
    /// `false` (nothing kept) when the range does not hold exactly the block's nodes or
    /// holds more of other conversations' than of its own.
    fn read_by_range(&self, fields: TreeFields, count: i64, block: &mut TreeBlock) -> Result<bool> {
        let (lo, hi) = (block.convs[0].id, block.convs[block.convs.len() - 1].id);
        let end = |order: &str| -> rusqlite::Result<Option<NodeId>> {
            self.conn
                .prepare_cached(&format!(
                    "SELECT id FROM nodes WHERE conversation_id BETWEEN ?1 AND ?2
                      ORDER BY {order} LIMIT 1"
                ))?
                .query_row([lo, hi], |r| r.get(0))
                .optional()
        };
        let (Some(first), Some(last)) = (
            end("conversation_id, id")?,
            end("conversation_id DESC, id DESC")?,
        ) else {
            return Ok(false);
        };
        if last < first || last - first >= 2 * count {
            return Ok(false);
        }
        let sql = format!(
            "SELECT {} FROM nodes WHERE id BETWEEN ?1 AND ?2",
            lean_cols(fields)
        );
        self.read_nodes(&sql, &[first, last], fields, block)?;
        if block.used as i64 != count {
            // Some of the block's nodes lie outside the range (or a writer was busy).
            block.used = 0;
            block.ends.clear();
            return Ok(false);
        }
        Ok(true)
    }

    /// Any layout: the block's nodes through the index on conversation_id, conversation
    /// after conversation (a table lookup per node).
    fn read_by_conversation(
        &self,
        lo: ConversationId,
        hi: ConversationId,
        fields: TreeFields,
        block: &mut TreeBlock,
    ) -> Result<()> {
        let sql = format!(
            "SELECT {} FROM nodes WHERE conversation_id BETWEEN ?1 AND ?2
              ORDER BY conversation_id, id",
            lean_cols(fields)
        );
        self.read_nodes(&sql, &[lo, hi], fields, block)
    }

    /// Reads the nodes `sql` selects (in id order within each conversation) into `block`,
    /// each to its conversation, passing over other conversations' rows; conversations
    /// that come interleaved are grouped, keeping id order within each.
    fn read_nodes(
        &self,
        sql: &str,
        args: &[i64],
        fields: TreeFields,
        block: &mut TreeBlock,
    ) -> Result<()> {
        let mut rows = RawScan::new(&self.conn, sql, args)?;
        block.used = 0;
        block.ends.clear();
        block.owner.clear();
        // Each node's conversation, as an index into `convs`; rows mostly come
        // conversation after conversation, so the last one is tried first.
        let (mut at, mut grouped) = (0usize, true);
        while rows.step()? {
            let cid: ConversationId = rows.int(1);
            if block.convs[at].id != cid {
                match block.convs.binary_search_by_key(&cid, |c| c.id) {
                    Ok(i) => {
                        grouped &= i > at;
                        at = i;
                    }
                    // Another block's, or a conversation being deleted elsewhere.
                    Err(_) => continue,
                }
            }
            fill_node(block.next_node(), &rows, fields)?;
            block.owner.push(at as u32);
        }
        if !grouped {
            let mut order: Vec<usize> = (0..block.used).collect();
            order.sort_by_key(|&k| block.owner[k]);
            let moved: Vec<(Node, u32)> = order
                .iter()
                .map(|&k| {
                    let n = std::mem::replace(&mut block.nodes[k], Node::new(0, Role::User, ""));
                    (n, block.owner[k])
                })
                .collect();
            for (slot, (n, owner)) in moved.into_iter().enumerate() {
                block.nodes[slot] = n;
                block.owner[slot] = owner;
            }
        }
        let mut k = 0;
        for c in 0..block.convs.len() {
            while k < block.used && block.owner[k] as usize == c {
                k += 1;
            }
            block.ends.push(k);
        }
        Ok(())
    }

    /// Lets SQLite read this connection's pages straight from the OS page cache through
    /// a memory map (up to 1 GiB of the file) instead of copying each into its own cache:
    /// the export reads every page of a large database once, and this measured 8% of it.
    /// The mapped pages count in the process's resident size, but they are the page
    /// cache's, shared and clean, not memory Arbor allocates.
    pub fn map_for_scans(&self) -> Result<()> {
        self.conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
        Ok(())
    }

    /// Each rated node's stars: the given rater's, or the lowest of all raters'.
    pub fn stars(&self, rater: Option<&str>) -> Result<Stars> {
        let top: Option<NodeId> =
            self.conn
                .query_row("SELECT max(node_id) FROM ratings", [], |r| r.get(0))?;
        let mut stars = Stars::with_ids_up_to(top.unwrap_or(0));
        let mut rows = match rater {
            // People only: a judge's stars count when it is named.
            None => RawScan::new(
                &self.conn,
                concat!(
                    "SELECT node_id, stars FROM ratings WHERE stars IS NOT NULL AND ",
                    crate::person!("rater")
                ),
                &[],
            )?,
            Some(rater) => {
                let mut rows = RawScan::new(
                    &self.conn,
                    "SELECT node_id, stars FROM ratings WHERE stars IS NOT NULL AND rater = ?1",
                    &[],
                )?;
                rows.bind_text(1, rater)?;
                rows
            }
        };
        while rows.step()? {
            stars.add(rows.int(0), rows.int(1));
        }
        Ok(stars)
    }

    /// `rater`'s stars on the messages of one conversation (the tree view).
    pub fn conversation_stars(
        &self,
        conversation: ConversationId,
        rater: &str,
    ) -> Result<HashMap<NodeId, u8>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.node_id, r.stars FROM ratings r JOIN nodes n ON n.id = r.node_id
              WHERE n.conversation_id = ?1 AND r.rater = ?2 AND r.stars IS NOT NULL",
        )?;
        let rows = stmt.query_map(rusqlite::params![conversation, rater], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The node columns a bulk read takes, in `lean_node`'s order.
fn lean_cols(fields: TreeFields) -> String {
    let mut cols = String::from(
        "id, conversation_id, parent_id, role, content, tool_calls, tool_call_id, status",
    );
    if fields.history {
        cols.push_str(", origin, edited_from, created_at");
    }
    if fields.model {
        cols.push_str(", model");
    }
    cols
}

/// A text column parsed as one of Arbor's enums (role, status, origin).
fn enum_at<T: std::str::FromStr<Err = String>>(r: &RawScan, i: usize) -> rusqlite::Result<T> {
    r.text(i)?.unwrap_or("").parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// The role in column `i` (the common ones matched without building an error).
fn role_at(r: &RawScan, i: usize) -> rusqlite::Result<Role> {
    match r.bytes(i) {
        Some(b"user") => Ok(Role::User),
        Some(b"assistant") => Ok(Role::Assistant),
        _ => enum_at(r, i),
    }
}

/// The status in column `i`.
fn status_at(r: &RawScan, i: usize) -> rusqlite::Result<Status> {
    match r.bytes(i) {
        Some(b"complete") => Ok(Status::Complete),
        _ => enum_at(r, i),
    }
}

/// Sets `to` to `text`, reusing its memory.
fn set_text(to: &mut String, text: &str) {
    to.clear();
    to.push_str(text);
}

/// Sets an optional text, reusing the string already there.
fn set_opt_text(to: &mut Option<String>, text: Option<&str>) {
    match (text, to.as_mut()) {
        (Some(s), Some(t)) => set_text(t, s),
        (Some(s), None) => *to = Some(s.to_string()),
        (None, _) => *to = None,
    }
}

/// Fills `n` from a row of [`lean_cols`]; what `fields` leaves out is as `Node::new`
/// makes it. Strings are refilled in place: a recycled node allocates nothing.
fn fill_node(n: &mut Node, r: &RawScan, fields: TreeFields) -> rusqlite::Result<()> {
    n.id = r.int(0);
    n.conversation_id = r.int(1);
    n.parent_id = r.opt_int(2);
    n.role = role_at(r, 3)?;
    set_text(&mut n.content, r.text(4)?.unwrap_or(""));
    match r.text(5)? {
        Some(s) => {
            n.tool_calls = serde_json::from_str(s).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
            })?
        }
        None => n.tool_calls.clear(),
    }
    set_opt_text(&mut n.tool_call_id, r.text(6)?);
    n.status = status_at(r, 7)?;
    let mut next = 8;
    if fields.history {
        n.origin = enum_at(r, 8)?;
        n.edited_from = r.opt_int(9);
        n.created_at = r.int(10);
        next = 11;
    } else {
        n.origin = Origin::Typed;
        n.edited_from = None;
        n.created_at = 0;
    }
    if fields.model {
        set_opt_text(&mut n.model, r.text(next)?);
    } else {
        n.model = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ImportNode;

    #[test]
    fn stars_keep_the_lowest_per_node_in_the_table_and_beyond_it() {
        let mut s = Stars::with_ids_up_to(10);
        s.add(3, 5);
        s.add(3, 2);
        s.add(3, 4);
        s.add(10, 1);
        s.add(STARS_TABLE_MAX + 7, 4);
        s.add(STARS_TABLE_MAX + 7, 3);
        s.add(1 << 40, 5);
        assert_eq!(s.get(3), Some(2));
        assert_eq!(s.get(10), Some(1));
        assert_eq!(s.get(4), None);
        assert_eq!(s.get(11), None);
        assert_eq!(s.get(STARS_TABLE_MAX + 7), Some(3));
        assert_eq!(s.get(1 << 40), Some(5));
        assert_eq!(s.get(-1), None);
        let mut all: Vec<u8> = s.values().collect();
        all.sort();
        assert_eq!(all, [1, 2, 3, 5]);
    }

    #[test]
    fn trees_come_whole_when_conversations_were_written_in_turns() {
        let store = Store::open_in_memory().unwrap();
        let a = store.create_conversation("a", "", None).unwrap().id;
        let b = store.create_conversation("b", "", None).unwrap().id;
        let empty = store.create_conversation("empty", "", None).unwrap().id;
        let c = store.create_conversation("c", "", None).unwrap().id;
        // Nodes of a, b and c interleaved in id order.
        let mut last = HashMap::new();
        for (i, conv) in [a, b, a, c, b, a, c].into_iter().enumerate() {
            let parent = last.get(&conv).copied();
            let n = store
                .append_child(conv, parent, &NewNode::user(format!("{conv}:{i}")))
                .unwrap();
            last.insert(conv, n.id);
        }
        store.rate(last[&a], "ann", Some(4)).unwrap();
        store.rate(last[&a], "bob", Some(2)).unwrap();
        let mut seen = Vec::new();
        store
            .for_each_tree::<StoreError>(&[], TreeFields::ALL, |conv, nodes| {
                assert!(nodes.windows(2).all(|w| w[0].id < w[1].id));
                assert!(nodes.iter().all(|n| n.conversation_id == conv.id));
                seen.push((conv.id, nodes.len()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [(a, 3), (b, 2), (empty, 0), (c, 2)]);
        // Blocks of one conversation each read the same.
        let mut block = TreeBlock::default();
        for (lo, hi) in store.conversation_blocks(1).unwrap() {
            store
                .read_block(lo, hi, TreeFields::ALL, &mut block)
                .unwrap();
            let trees: Vec<_> = block.trees().map(|(c, n)| (c.id, n.len())).collect();
            assert_eq!(trees.len(), 1);
            assert!(seen.contains(&trees[0]));
        }
        // `only` keeps to the conversations asked for, in id order.
        let mut only = Vec::new();
        store
            .for_each_tree::<StoreError>(&[c, a, c], TreeFields::ALL, |conv, nodes| {
                only.push((conv.id, nodes.len()));
                Ok(())
            })
            .unwrap();
        assert_eq!(only, [(a, 3), (c, 2)]);
        assert_eq!(store.stars(None).unwrap().get(last[&a]), Some(2));
        assert_eq!(store.stars(Some("ann")).unwrap().get(last[&a]), Some(4));
        // Interleaved inside one id range: read in one scan and grouped.
        let mut block = TreeBlock::default();
        for (lo, hi) in store.conversation_blocks(10).unwrap() {
            store
                .read_block(lo, hi, TreeFields::ALL, &mut block)
                .unwrap();
        }
        assert!(store.read_by_range(TreeFields::ALL, 7, &mut block).unwrap());
        let trees: Vec<_> = block.trees().map(|(c, n)| (c.id, n.len())).collect();
        assert_eq!(trees, seen);
        // A later message of `a` after `d`'s: the range of a..c no longer holds all of
        // them, so they are read by conversation instead, with the same result.
        let d = store.create_conversation("d", "", None).unwrap().id;
        store.append_child(d, None, &NewNode::user("d")).unwrap();
        store
            .append_child(a, Some(last[&a]), &NewNode::user("a late"))
            .unwrap();
        store.read_block(a, c, TreeFields::ALL, &mut block).unwrap();
        let trees: Vec<_> = block.trees().map(|(c, n)| (c.id, n.len())).collect();
        assert_eq!(trees, [(a, 4), (b, 2), (empty, 0), (c, 2)]);
        assert!(!store.read_by_range(TreeFields::ALL, 8, &mut block).unwrap());
    }

    /// Every conversation's `node_count` against a count of its nodes.
    fn counts_agree(store: &Store) {
        let wrong: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM conversations c
                  WHERE node_count != (SELECT count(*) FROM nodes WHERE conversation_id = c.id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(wrong, 0);
    }

    #[test]
    fn node_counts_follow_every_insert_edit_and_delete() {
        let store = Store::open_in_memory().unwrap();
        let a = store.create_conversation("a", "", None).unwrap().id;
        let b = store.create_conversation("b", "", None).unwrap().id;
        let u = store.append_child(a, None, &NewNode::user("q")).unwrap();
        let x = store
            .append_child(a, Some(u.id), &NewNode::assistant("x", Origin::Generated))
            .unwrap();
        store.edit_as_sibling(x.id, "y", None).unwrap();
        let v = store.append_child(b, None, &NewNode::user("q")).unwrap();
        store
            .append_child(b, Some(v.id), &NewNode::assistant("z", Origin::Generated))
            .unwrap();
        counts_agree(&store);
        assert_eq!(store.list_conversations(None).unwrap().len(), 2);
        store.delete_branch(x.id).unwrap();
        counts_agree(&store);
        let imp = store.importer().unwrap();
        let first = imp.next_node_id().unwrap();
        let c = imp
            .create_conversation("imported", "", None, 0, Some(first))
            .unwrap();
        let n = ImportNode {
            node: NewNode::user("imported zebra"),
            model: None,
            edited_from: None,
            created_at: 0,
        };
        let root = imp.insert_node(c, None, &n, true).unwrap();
        assert_eq!(root, first);
        let leaf = imp.insert_node(c, Some(root), &n, false).unwrap();
        imp.add_to_count(c, 2).unwrap();
        // Hidden until published: not listed, not found.
        assert_eq!(store.list_conversations(None).unwrap().len(), 2);
        imp.publish().unwrap();
        counts_agree(&store);
        assert_eq!(store.list_conversations(None).unwrap().len(), 3);
        // The importer did the triggers' work: search finds both, the path is active.
        assert_eq!(store.search("zebra", 10).unwrap().len(), 2);
        let path: Vec<NodeId> = store.active_path(c).unwrap().iter().map(|n| n.id).collect();
        assert_eq!(path, vec![root, leaf]);
        // Triggers work again on this connection.
        let more = store
            .append_child(c, Some(leaf), &NewNode::user("okapi"))
            .unwrap();
        assert_eq!(store.search("okapi", 10).unwrap()[0].node_id, more.id);
        counts_agree(&store);
        // An importer dropped without publishing leaves nothing.
        {
            let imp = store.importer().unwrap();
            let first = imp.next_node_id().unwrap();
            let c = imp
                .create_conversation("gone", "", None, 0, Some(first))
                .unwrap();
            imp.insert_node(c, None, &n, false).unwrap();
            imp.add_to_count(c, 1).unwrap();
        }
        assert_eq!(store.list_conversations(None).unwrap().len(), 3);
        assert_eq!(store.search("zebra", 10).unwrap().len(), 2);
        counts_agree(&store);
        store.delete_conversation(b).unwrap();
        counts_agree(&store);
        let left = store.list_conversations(None).unwrap();
        let of = |id| left.iter().find(|c| c.id == id).unwrap().messages;
        assert_eq!(of(a), 2);
    }
}
