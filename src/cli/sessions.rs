//! `arbor sessions`: list, search, show (`--tree`), set a conversation's settings,
//! delete.

use super::*;
use crate::app::{Env, Exit};
use crate::chat;
use anyhow::Result;
use std::path::Path;

pub(super) fn sessions(
    env: &Env,
    action: Option<SessionsAction>,
    tag: Option<String>,
    search: Option<String>,
    json: bool,
) -> Result<i32> {
    let store = env.store()?;
    match action.unwrap_or(SessionsAction::List) {
        SessionsAction::List => {
            if let Some(q) = search {
                let hits = store.search(&q, 50)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&hits)?);
                } else {
                    for h in hits {
                        println!(
                            "conversation {:>4}  message {:>5}  {:<9} {}",
                            h.conversation_id, h.node_id, h.role, h.snippet
                        );
                    }
                }
                return Ok(0);
            }
            let list = store.list_conversations(tag.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no conversations yet — start one with `arbor chat` or `arbor ask \"…\"`");
            } else {
                for c in list {
                    let stars = c
                        .avg_stars
                        .map(|s| format!("{s:.1}★ ({} rated)", c.rated))
                        .unwrap_or_else(|| "unrated".into());
                    println!(
                        "{:>4}  {:<40}  {:>3} msgs  {:<18} {}",
                        c.id,
                        c.title,
                        c.messages,
                        stars,
                        c.tags.join(",")
                    );
                }
            }
        }
        SessionsAction::Delete { id } => return super::trash::delete(env, id),
        SessionsAction::Set(a) => {
            let conv = store.conversation(a.id)?;
            if let Some(t) = &a.title {
                store.set_title(a.id, t)?;
            }
            if let Some(sys) = &a.system {
                store.set_system_prompt(a.id, sys)?;
            }
            let mut settings = conv
                .settings
                .clone()
                .unwrap_or_else(|| serde_json::json!({}));
            if a.clear_sampling {
                if let Some(o) = settings.as_object_mut() {
                    o.remove("sampling");
                }
            }
            let mut over = settings["sampling"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            over.extend(a.sampling.overrides());
            checked_sampling(&env.config.sampling, &over)?;
            if !over.is_empty() {
                settings["sampling"] = serde_json::Value::Object(over);
            }
            if let Some(o) = settings.as_object_mut() {
                o.extend(a.turn.settings());
            }
            if let Some(f) = &a.tools {
                store.set_tools(a.id, Some(&read_tools(f)?))?;
            } else if a.clear_tools {
                store.set_tools(a.id, None)?;
            }
            store.set_settings(a.id, Some(&settings))?;
            let conv = store.conversation(a.id)?;
            let effective = chat::sampling_for(&conv, &env.config.sampling);
            let turn = chat::turn_options(&conv, &env.config);
            println!("conversation {}: {}", a.id, conv.title);
            println!("sampling: {}", serde_json::to_string(&effective)?);
            // Saved tools were checked when they were set.
            let names = conv
                .tools
                .as_ref()
                .and_then(|t| crate::tools::ToolSet::new(t).ok())
                .map(|ts| ts.names().join(", "))
                .filter(|n| !n.is_empty());
            println!(
                "tools: {} · tool choice {:?} · grammar {} · few-shot {}",
                names.as_deref().unwrap_or("none"),
                turn.tool_choice,
                if turn.constrain_tools { "on" } else { "off" },
                turn.few_shot
            );
            return Ok(0);
        }
        SessionsAction::Show {
            id,
            tree: tree_view,
        } => {
            let conv = store.conversation(id)?;
            let nodes = if tree_view {
                store.conversation_nodes(id)?
            } else {
                store.active_path(id)?
            };
            if json {
                let with_ratings: Vec<_> = nodes
                    .iter()
                    .map(|n| {
                        Ok(serde_json::json!({
                            "node": n,
                            "ratings": store.ratings(n.id)?,
                            "tags": store.tags(n.id)?,
                        }))
                    })
                    .collect::<Result<_>>()?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"conversation": conv, "nodes": with_ratings})
                    )?
                );
                return Ok(0);
            }
            println!("# {} (conversation {})", conv.title, conv.id);
            if !conv.system_prompt.is_empty() {
                println!("system: {}", conv.system_prompt);
            }
            // The active path's depths are its positions; the tree's come from the walker.
            let tree = crate::tree::Tree::new(&conv, &nodes);
            for (i, n) in nodes.iter().enumerate() {
                let stars = store
                    .ratings(n.id)?
                    .iter()
                    .filter_map(|r| r.stars.map(|s| format!("{s}★ {}", r.rater)))
                    .collect::<Vec<_>>()
                    .join(" ");
                let indent = if tree_view {
                    "  ".repeat(tree.depth(i))
                } else {
                    String::new()
                };
                println!(
                    "{indent}[{}] {} ({}{}){}",
                    n.id,
                    n.role,
                    n.origin,
                    if n.status != Status::Complete {
                        format!(", {}", n.status)
                    } else {
                        String::new()
                    },
                    if stars.is_empty() {
                        String::new()
                    } else {
                        format!(" {stars}")
                    }
                );
                if let Some(id) = &n.tool_call_id {
                    println!("{indent}    (result of {id})");
                }
                for line in n.content.lines() {
                    println!("{indent}    {line}");
                }
                for c in &n.tool_calls {
                    println!("{indent}    → {}  [{}]", crate::tools::describe(c), c.id);
                }
                if !n.few_shot.is_empty() {
                    println!("{indent}    (few-shot examples: messages {:?})", n.few_shot);
                }
            }
        }
    }
    Ok(0)
}

/// Reads a tools file (an OpenAI `tools` JSON array) and checks it; errors name the file.
pub fn read_tools(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the tools file", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Exit(
            2,
            format!("{}:{}: not valid JSON: {e}", path.display(), e.line()),
        )
    })?;
    crate::tools::check_tools(&v).map_err(|e| Exit(2, format!("{}: {e}", path.display())))?;
    Ok(v)
}
