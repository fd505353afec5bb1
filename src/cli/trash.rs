//! `arbor trash [list|restore ID|empty [--older-than DAYS]]` and `arbor sessions delete`:
//! what was deleted (in the studio or here) waits in the trash until it is emptied.

use super::*;
use crate::store::{TrashEntry, TrashKind};

#[derive(Subcommand, Debug)]
pub enum TrashAction {
    /// What the trash holds, most recently deleted first (the default)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Put a conversation or branch back where it was (ID from `arbor trash list`)
    Restore { id: ConversationId },
    /// Delete for good what the trash holds
    Empty {
        /// Only what was deleted at least this many days ago
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u32>,
    },
}

const DAY_MS: i64 = 86_400_000;

pub(super) fn trash(env: &Env, action: Option<TrashAction>) -> Result<i32> {
    let store = env.store()?;
    match action.unwrap_or(TrashAction::List { json: false }) {
        TrashAction::List { json } => {
            let entries = store.trash()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else if entries.is_empty() {
                println!("the trash is empty");
            } else {
                for e in &entries {
                    println!("{}", line(e));
                }
                println!(
                    "{} in the trash — arbor trash restore ID puts one back; arbor trash empty deletes them for good",
                    entries.len()
                );
            }
        }
        TrashAction::Restore { id } => {
            let r = store.restore(id)?;
            match r.root {
                Some(root) if r.conversation != id => println!(
                    "restored the branch from message {root} into conversation {}",
                    r.conversation
                ),
                _ => println!("restored conversation {}", r.conversation),
            }
        }
        TrashAction::Empty { older_than } => {
            let n = store.empty_trash(older_than.map(|d| i64::from(d) * DAY_MS))?;
            println!(
                "deleted {n} trash {} for good",
                if n == 1 { "entry" } else { "entries" }
            );
        }
    }
    Ok(0)
}

fn line(e: &TrashEntry) -> String {
    let when = crate::domain::minute_of(e.trashed_at);
    let what = match &e.kind {
        TrashKind::Conversation => format!("conversation “{}”", e.title),
        TrashKind::Branch { of, parent } => match parent {
            Some(p) => format!("branch of conversation {of} under message {p}"),
            None => format!("branch of conversation {of} (a root)"),
        },
    };
    let first: String = e
        .first
        .chars()
        .take(50)
        .collect::<String>()
        .replace('\n', " ");
    format!(
        "{:>5}  {when}  {:>4} msgs  {what}: {first}",
        e.id, e.messages
    )
}

/// `arbor sessions delete ID`: to the trash.
pub(super) fn delete(env: &Env, id: ConversationId) -> Result<i32> {
    env.store()?.trash_conversation(id)?;
    println!("conversation {id} moved to the trash (arbor trash restore {id} brings it back)");
    Ok(0)
}
