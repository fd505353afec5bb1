//! `u` in the studio: the changes made in this session, taken back one at a time, newest
//! first. Each change the runtime makes that can be undone leaves its inverse here, read
//! from the store just before (the rating it replaced, the path that was active) or just
//! after (the trash entry a delete made, the sibling an edit made).

use crate::domain::*;
use crate::store::{Store, StoreError};

/// How to take one change back.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// A deleted conversation or branch: restore trash entry `trash`.
    Restore { trash: ConversationId, what: String },
    /// A rating: set the stars it replaced (`None`: there were none).
    Rating { node: NodeId, stars: Option<u8> },
    /// A critique: set the text it replaced (empty: there was none).
    Critique { node: NodeId, text: String },
    /// A tag added (`added`) or removed.
    Tag {
        node: NodeId,
        tag: String,
        added: bool,
    },
    /// An edit saved as a sibling: the sibling (and what grew under it) goes to the
    /// trash and the path that was active before is active again.
    Edit { sibling: NodeId, leaf: NodeId },
    /// Another path made active: the one ending at `leaf` is active again.
    Active { leaf: NodeId },
}

/// What an undo did: the status line's words and the conversation it touched.
#[derive(Debug, Clone, PartialEq)]
pub struct Undone {
    pub said: String,
    pub conversation: Option<ConversationId>,
}

/// The last message of a conversation's active path (what an [`Undo::Active`] restores).
pub fn leaf(store: &Store, conv: ConversationId) -> Result<Option<NodeId>, StoreError> {
    Ok(store.active_path(conv)?.last().map(|n| n.id))
}

impl Undo {
    /// Takes the change back.
    pub fn apply(&self, store: &Store, rater: &str) -> Result<Undone, StoreError> {
        let conv_of = |n: NodeId| store.node(n).map(|n| Some(n.conversation_id));
        Ok(match self {
            Undo::Restore { trash, what } => {
                let r = store.restore(*trash)?;
                Undone {
                    said: format!("undid the delete of {what} (restored from the trash)"),
                    conversation: Some(r.conversation),
                }
            }
            Undo::Rating { node, stars } => {
                store.rate(*node, rater, *stars)?;
                Undone {
                    said: match stars {
                        Some(s) => format!("undid the rating of message {node}: back to {s}★"),
                        None => format!("undid the rating of message {node}: unrated again"),
                    },
                    conversation: conv_of(*node)?,
                }
            }
            Undo::Critique { node, text } => {
                store.critique(*node, rater, text)?;
                Undone {
                    said: format!("undid the critique of message {node}"),
                    conversation: conv_of(*node)?,
                }
            }
            Undo::Tag { node, tag, added } => {
                if *added {
                    store.remove_tag(*node, rater, tag)?;
                } else {
                    store.add_tag(*node, rater, tag)?;
                }
                Undone {
                    said: format!(
                        "undid {} #{tag} on message {node}",
                        if *added { "adding" } else { "removing" }
                    ),
                    conversation: conv_of(*node)?,
                }
            }
            Undo::Edit { sibling, leaf } => {
                let trash = store.trash_branch(*sibling)?;
                store.set_active(*leaf)?;
                Undone {
                    said: format!(
                        "undid the edit: message {sibling} is in the trash (entry {trash})"
                    ),
                    conversation: conv_of(*leaf)?,
                }
            }
            Undo::Active { leaf } => {
                store.set_active(*leaf)?;
                Undone {
                    said: "undid the change of branch: the path before is active again".into(),
                    conversation: conv_of(*leaf)?,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_undo_puts_the_store_back() {
        let store = Store::open_in_memory().unwrap();
        let c = store.create_conversation("t", "", None).unwrap();
        let u = store.append_child(c.id, None, &NewNode::user("q")).unwrap();
        let a = store
            .append_child(
                c.id,
                Some(u.id),
                &NewNode::new(Role::Assistant, "a", Origin::Generated),
            )
            .unwrap();
        store.rate(a.id, "me", Some(2)).unwrap();
        store.rate(a.id, "me", Some(5)).unwrap();
        Undo::Rating {
            node: a.id,
            stars: Some(2),
        }
        .apply(&store, "me")
        .unwrap();
        assert_eq!(store.rating(a.id, "me").unwrap().unwrap().stars, Some(2));
        store.add_tag(a.id, "me", "x").unwrap();
        let done = Undo::Tag {
            node: a.id,
            tag: "x".into(),
            added: true,
        }
        .apply(&store, "me")
        .unwrap();
        assert!(!store.has_tag(a.id, "me", "x").unwrap());
        assert_eq!(done.conversation, Some(c.id));
        let before = leaf(&store, c.id).unwrap().unwrap();
        let e = store.edit_as_sibling(a.id, "better", None).unwrap();
        Undo::Edit {
            sibling: e.id,
            leaf: before,
        }
        .apply(&store, "me")
        .unwrap();
        assert_eq!(leaf(&store, c.id).unwrap(), Some(a.id));
        assert_eq!(store.siblings(a.id).unwrap().len(), 1);
        assert_eq!(store.trash().unwrap().len(), 1);
    }
}
