//! The trash: what a user deletes is hidden, not destroyed, until the trash is emptied.
//!
//! A deleted conversation keeps its rows and is marked `trashed_at`. A deleted branch moves
//! into a conversation of its own (a *holder*), marked the same way, which remembers the
//! conversation and the message it hung under and whether it was on the active path.
//! Message ids never change, so ratings, critiques, tags, preferences and eval links stay
//! attached and a restore is exact. Every reader skips trashed conversations through
//! `hidden_conversations!()` and `visible_only` (list, search, export, stats, few-shot,
//! eval sets).

use super::*;
use rusqlite::{params, OptionalExtension};

/// What a trash entry holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TrashKind {
    Conversation,
    /// A branch of conversation `of`, cut under message `parent` (`None`: a root).
    Branch {
        of: ConversationId,
        parent: Option<NodeId>,
    },
}

/// One entry of `arbor trash list` (its id is the one `restore` takes).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrashEntry {
    pub id: ConversationId,
    #[serde(flatten)]
    pub kind: TrashKind,
    pub title: String,
    /// The first message it holds, for telling entries apart.
    pub first: String,
    pub messages: i64,
    /// Unix milliseconds.
    pub trashed_at: i64,
}

/// What a restore put back: the conversation to show and the branch's first message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub conversation: ConversationId,
    pub root: Option<NodeId>,
}

impl Store {
    /// Moves a conversation to the trash (hidden everywhere, restorable).
    pub fn trash_conversation(&self, id: ConversationId) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE conversations SET trashed_at = ?1
              WHERE id = ?2 AND trashed_at IS NULL AND pending_import IS NULL",
            params![now_ms(), id],
        )?;
        if n == 0 {
            return Err(StoreError::NoConversation(id));
        }
        Ok(())
    }

    /// Moves message `id` and everything under it to the trash, in one transaction; returns
    /// the trash entry's id. If it was on the active path, the parent's active child moves
    /// to the nearest remaining sibling (as a delete did).
    pub fn trash_branch(&self, id: NodeId) -> Result<ConversationId> {
        let node = self.node(id)?;
        let conv = self.conversation(node.conversation_id)?;
        let tx = self.tx()?;
        let subtree = subtree_of(&tx, id)?;
        let active = match node.parent_id {
            Some(p) => tx.query_row(
                "SELECT active_child_id IS ?1 FROM nodes WHERE id = ?2",
                params![id, p],
                |r| r.get::<_, bool>(0),
            )?,
            None => conv.active_root_id == Some(id),
        };
        let now = now_ms();
        tx.execute(
            "INSERT INTO conversations (title, system_prompt, tools, settings, active_root_id,
                 created_at, updated_at, trashed_at, trash_of, trash_parent, trash_active)
             SELECT title, system_prompt, tools, settings, ?1, created_at, ?2, ?2, id, ?3, ?4
               FROM conversations WHERE id = ?5",
            params![id, now, node.parent_id, active, conv.id],
        )?;
        let holder = tx.last_insert_rowid();
        tx.execute("UPDATE nodes SET parent_id = NULL WHERE id = ?1", [id])?;
        {
            let mut mv = tx.prepare("UPDATE nodes SET conversation_id = ?1 WHERE id = ?2")?;
            for n in &subtree {
                mv.execute(params![holder, n])?;
            }
        }
        active_to_nearest_sibling(&tx, &node)?;
        tx.commit()?;
        Ok(holder)
    }

    /// The trash, most recently deleted first.
    pub fn trash(&self) -> Result<Vec<TrashEntry>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.id, c.title, c.trash_of, c.trash_parent, c.node_count, c.trashed_at,
                    (SELECT substr(content, 1, 200) FROM nodes WHERE id = c.active_root_id)
               FROM conversations c
              WHERE c.trashed_at IS NOT NULL
              ORDER BY c.trashed_at DESC, c.id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            let of: Option<ConversationId> = r.get(2)?;
            Ok(TrashEntry {
                id: r.get(0)?,
                title: r.get(1)?,
                kind: match of {
                    Some(of) => TrashKind::Branch {
                        of,
                        parent: r.get(3)?,
                    },
                    None => TrashKind::Conversation,
                },
                messages: r.get(4)?,
                trashed_at: r.get(5)?,
                first: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Puts trash entry `id` back where it was. A branch goes back under its message (and
    /// becomes the active path again if it was); it cannot while its conversation or its
    /// parent message is itself in the trash, or gone.
    pub fn restore(&self, id: ConversationId) -> Result<Restored> {
        let tx = self.tx()?;
        type Place = (Option<ConversationId>, Option<NodeId>, bool, Option<NodeId>);
        let row: Option<Place> = tx
            .query_row(
                "SELECT trash_of, trash_parent, coalesce(trash_active, 0), active_root_id
                   FROM conversations WHERE id = ?1 AND trashed_at IS NOT NULL",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((of, parent, active, root)) = row else {
            return Err(StoreError::Invalid(format!(
                "nothing in the trash with id {id} (see arbor trash list)"
            )));
        };
        let Some(of) = of else {
            tx.execute(
                "UPDATE conversations SET trashed_at = NULL, updated_at = ?1 WHERE id = ?2",
                params![now_ms(), id],
            )?;
            tx.commit()?;
            return Ok(Restored {
                conversation: id,
                root,
            });
        };
        let target: Option<Option<i64>> = tx
            .query_row(
                "SELECT trashed_at FROM conversations WHERE id = ?1",
                [of],
                |r| r.get(0),
            )
            .optional()?;
        match target {
            None => {
                return Err(StoreError::Invalid(format!(
                    "trash entry {id} is a branch of conversation {of}, which is gone; \
                     it cannot be restored (arbor trash empty removes it)"
                )))
            }
            Some(Some(_)) => {
                return Err(StoreError::Invalid(format!(
                    "trash entry {id} is a branch of conversation {of}, which is in the trash \
                     too: restore {of} first"
                )))
            }
            Some(None) => {}
        }
        if let Some(p) = parent {
            let home: Option<ConversationId> = tx
                .query_row(
                    "SELECT conversation_id FROM nodes WHERE id = ?1",
                    [p],
                    |r| r.get(0),
                )
                .optional()?;
            match home {
                Some(c) if c == of => {}
                Some(c) => {
                    return Err(StoreError::Invalid(format!(
                        "trash entry {id} hangs under message {p}, which is in the trash \
                         (entry {c}): restore {c} first"
                    )))
                }
                None => {
                    return Err(StoreError::Invalid(format!(
                        "trash entry {id} hangs under message {p}, which is gone; \
                         it cannot be restored (arbor trash empty removes it)"
                    )))
                }
            }
        }
        let Some(root) = root else {
            return Err(StoreError::Invalid(format!(
                "trash entry {id} holds no message"
            )));
        };
        // Into the conversation first, then under the parent: the trigger that keeps a
        // parent in its child's conversation checks inserts only, but the order is right.
        tx.execute(
            "UPDATE nodes SET conversation_id = ?1 WHERE conversation_id = ?2",
            params![of, id],
        )?;
        tx.execute(
            "UPDATE nodes SET parent_id = ?1 WHERE id = ?2",
            params![parent, root],
        )?;
        tx.execute("DELETE FROM conversations WHERE id = ?1", [id])?;
        if active {
            set_active_in(&tx, root)?;
        }
        tx.execute(
            "UPDATE conversations SET updated_at = ?1 WHERE id = ?2",
            params![now_ms(), of],
        )?;
        tx.commit()?;
        Ok(Restored {
            conversation: of,
            root: Some(root),
        })
    }

    /// Deletes for good what the trash holds (only what was trashed at least `older_than_ms`
    /// ago, when given); returns how many entries went. A few hundred per transaction.
    pub fn empty_trash(&self, older_than_ms: Option<i64>) -> Result<usize> {
        let cutoff = older_than_ms.map_or(i64::MAX, |ms| now_ms() - ms);
        let mut gone = 0;
        loop {
            let tx = self.tx()?;
            let ids: Vec<ConversationId> = {
                let mut stmt = tx.prepare(
                    "SELECT id FROM conversations
                      WHERE trashed_at IS NOT NULL AND trashed_at <= ?1 LIMIT 500",
                )?;
                let rows = stmt.query_map([cutoff], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            if ids.is_empty() {
                return Ok(gone);
            }
            for id in &ids {
                delete_conversation_in(&tx, *id)?;
            }
            tx.commit()?;
            gone += ids.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// user → (a1 | a2 → user2 → a3), a2 active.
    fn tree(store: &Store) -> (ConversationId, [NodeId; 5]) {
        let c = store.create_conversation("t", "", None).unwrap();
        let u = store.append_child(c.id, None, &NewNode::user("q")).unwrap();
        let a1 = store
            .append_child(
                c.id,
                Some(u.id),
                &NewNode::new(Role::Assistant, "one", Origin::Generated),
            )
            .unwrap();
        let a2 = store
            .append_child(
                c.id,
                Some(u.id),
                &NewNode::new(Role::Assistant, "two", Origin::Generated),
            )
            .unwrap();
        let u2 = store
            .append_child(c.id, Some(a2.id), &NewNode::user("more"))
            .unwrap();
        let a3 = store
            .append_child(
                c.id,
                Some(u2.id),
                &NewNode::new(Role::Assistant, "three", Origin::Generated),
            )
            .unwrap();
        (c.id, [u.id, a1.id, a2.id, u2.id, a3.id])
    }

    fn contents(store: &Store, c: ConversationId) -> Vec<String> {
        store
            .active_path(c)
            .unwrap()
            .into_iter()
            .map(|n| n.content)
            .collect()
    }

    #[test]
    fn a_trashed_branch_is_hidden_then_restored_exactly() {
        let store = Store::open_in_memory().unwrap();
        let (c, [_, a1, a2, _, a3]) = tree(&store);
        store.rate(a3, "me", Some(5)).unwrap();
        store.add_tag(a3, "me", "good").unwrap();
        let before = store.list_conversations(None).unwrap()[0].messages;
        let t = store.trash_branch(a2).unwrap();
        assert_eq!(contents(&store, c), ["q", "one"]);
        assert_eq!(store.siblings(a1).unwrap().len(), 1);
        let list = store.list_conversations(None).unwrap();
        assert_eq!(
            list.len(),
            1,
            "the holder is not a conversation of the list"
        );
        assert_eq!(list[0].messages, before - 3);
        assert!(store.search("three", 10).unwrap().is_empty());
        let trash = store.trash().unwrap();
        assert_eq!(trash.len(), 1);
        assert_eq!(trash[0].id, t);
        assert_eq!(trash[0].messages, 3);
        assert_eq!(trash[0].first, "two");
        assert!(matches!(trash[0].kind, TrashKind::Branch { of, parent: Some(_) } if of == c));

        let r = store.restore(t).unwrap();
        assert_eq!(r.conversation, c);
        assert_eq!(r.root, Some(a2));
        assert_eq!(contents(&store, c), ["q", "two", "more", "three"]);
        assert_eq!(store.rating(a3, "me").unwrap().unwrap().stars, Some(5));
        assert_eq!(store.tags(a3).unwrap(), ["good"]);
        assert_eq!(store.list_conversations(None).unwrap()[0].messages, before);
        assert!(store.trash().unwrap().is_empty());
        assert_eq!(store.search("three", 10).unwrap().len(), 1);
    }

    #[test]
    fn a_trashed_conversation_is_hidden_restored_and_emptied() {
        let store = Store::open_in_memory().unwrap();
        let (c, _) = tree(&store);
        store.trash_conversation(c).unwrap();
        assert!(store.list_conversations(None).unwrap().is_empty());
        assert!(store.search("three", 10).unwrap().is_empty());
        assert!(matches!(store.conversation(c), Err(StoreError::Trashed(_))));
        assert!(matches!(
            store.trash_conversation(c),
            Err(StoreError::NoConversation(_))
        ));
        store.restore(c).unwrap();
        assert_eq!(store.list_conversations(None).unwrap().len(), 1);
        store.trash_conversation(c).unwrap();
        assert_eq!(store.empty_trash(Some(3_600_000)).unwrap(), 0, "too young");
        assert_eq!(store.empty_trash(None).unwrap(), 1);
        assert!(matches!(
            store.conversation(c),
            Err(StoreError::NoConversation(_))
        ));
        let n: i64 = store
            .conn
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn few_shot_examples_and_judge_pairs_leave_out_the_trash() {
        let store = Store::open_in_memory().unwrap();
        let (c, [_, _, _, u2, a3]) = tree(&store);
        store.rate(a3, "me", Some(5)).unwrap();
        store.rate(a3, "judge:m", Some(4)).unwrap();
        let examples = |s: &Store| s.best_examples("more please", 3, 4, None).unwrap();
        assert_eq!(examples(&store).len(), 1);
        assert_eq!(store.judge_pairs("judge:m", None).unwrap(), [(5, 4)]);
        store.trash_conversation(c).unwrap();
        assert!(examples(&store).is_empty());
        assert!(store.judge_pairs("judge:m", None).unwrap().is_empty());
        store.restore(c).unwrap();
        assert_eq!(examples(&store)[0].user_id, u2);
    }

    #[test]
    fn eval_sets_leave_out_cases_in_the_trash() {
        let store = Store::open_in_memory().unwrap();
        let (_, [u, _, a2, u2, _]) = tree(&store);
        store.add_eval_case("held", u).unwrap();
        store.add_eval_case("held", u2).unwrap();
        assert_eq!(store.eval_set("held").unwrap().1.len(), 2);
        let t = store.trash_branch(a2).unwrap();
        let (set, cases) = store.eval_set("held").unwrap();
        assert_eq!((set.cases, cases.len()), (1, 1));
        assert_eq!(cases[0].user_node_id, u);
        store.restore(t).unwrap();
        assert_eq!(store.eval_sets().unwrap()[0].cases, 2);
    }

    #[test]
    fn a_branch_waits_for_its_conversation_and_its_parent() {
        let store = Store::open_in_memory().unwrap();
        let (c, [_, _, a2, u2, a3]) = tree(&store);
        let inner = store.trash_branch(a3).unwrap();
        let outer = store.trash_branch(a2).unwrap();
        let e = store.restore(inner).unwrap_err().to_string();
        assert!(e.contains(&format!("restore {outer} first")), "{e}");
        store.restore(outer).unwrap();
        store.restore(inner).unwrap();
        assert_eq!(store.node(a3).unwrap().parent_id, Some(u2));
        let b = store.trash_branch(a3).unwrap();
        store.trash_conversation(c).unwrap();
        let e = store.restore(b).unwrap_err().to_string();
        assert!(e.contains(&format!("restore {c} first")), "{e}");
        assert!(store
            .restore(999)
            .unwrap_err()
            .to_string()
            .contains("nothing in the trash"));
    }
}
