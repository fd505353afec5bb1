//! `arbor ask`: one turn from the command line, streamed to stdout (or `--json`),
//! through the turn service; Ctrl-C keeps the partial answer as interrupted.

use super::*;
use crate::app::{engine_error, spawn_engine, Env, Exit};
use crate::chat;
use crate::engine::{EngineEvent, GenRequest, OverflowPolicy, Sink};
use anyhow::{bail, Result};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The message of `ask`: the argument, or a file's or standard input's text (`-`).
pub(super) fn ask_message(a: &AskArgs) -> Result<String> {
    let from = |path: &Path| -> Result<String> {
        let mut text = String::new();
        if path == Path::new("-") {
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Exit(2, format!("reading the message from standard input: {e}")))?;
        } else {
            text = std::fs::read_to_string(path)
                .map_err(|e| Exit(2, format!("--file {}: {e}", path.display())))?;
        }
        Ok(text)
    };
    let text = match (&a.message, &a.file) {
        (Some(m), _) if m == "-" => from(Path::new("-"))?,
        (Some(m), _) => m.clone(),
        (None, Some(f)) => from(f)?,
        (None, None) => unreachable!("clap requires a message or --file"),
    };
    if text.trim().is_empty() {
        return Err(Exit(2, "the message is empty".into()).into());
    }
    Ok(text)
}

pub(super) fn ask(env: &Env, a: AskArgs) -> Result<i32> {
    let message = ask_message(&a)?;
    let message = message.as_str();
    let choice = env.engine_choice()?;
    if a.k == 0 || a.k > crate::engine::llama::MAX_SEQUENCES {
        return Err(Exit(
            2,
            format!(
                "--k must be between 1 and {}",
                crate::engine::llama::MAX_SEQUENCES
            ),
        )
        .into());
    }
    let store = env.store()?;
    // The path the message continues, or what a new conversation starts with.
    let (conv, parent_path) = match a.conversation {
        Some(id) => {
            let c = store.conversation(id)?;
            let path = store.active_path(id)?;
            (c, path)
        }
        None => {
            let (mut system, mut tools) = (String::new(), None);
            if let Some(name) = &a.preset {
                let p = crate::presets::find(&env.paths, name)?;
                system = p.system;
                tools = p.tools;
            }
            if let Some(f) = &a.tools {
                tools = Some(read_tools(f)?);
            }
            if let Some(s) = &a.system {
                system = s.clone();
            }
            let c = Conversation {
                id: 0,
                title: chat::title_from(message),
                system_prompt: system,
                tools,
                settings: None,
                active_root_id: None,
                created_at: 0,
                updated_at: 0,
            };
            (c, Vec::new())
        }
    };
    // The new message: a user turn, or the result of a waiting tool call.
    let new_node =
        if a.tool_result {
            let waiting = crate::tools::pending(&parent_path);
            let call =
                match &a.call_id {
                    Some(id) => waiting.iter().find(|c| &c.id == id).ok_or_else(|| {
                        Exit(
                            2,
                            format!(
                        "no tool call {id} waits for a result in conversation {} (waiting: {})",
                        conv.id,
                        waiting.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                        )
                    })?,
                    None => waiting.first().ok_or_else(|| {
                        Exit(
                            2,
                            format!(
                                "no tool call waits for a result at the end of conversation {}",
                                conv.id
                            ),
                        )
                    })?,
                };
            NewNode {
                tool_call_id: Some(call.id.clone()),
                ..NewNode::new(Role::Tool, message.to_string(), Origin::Typed)
            }
        } else {
            NewNode::user(message.to_string())
        };

    // The turn, planned on the path with the new message (config, then the conversation's
    // own settings, then the flags; the flag forces this answer's tool choice).
    let mut path = parent_path.clone();
    path.push(Node {
        tool_call_id: new_node.tool_call_id.clone(),
        ..Node::new(conv.id, new_node.role, message.to_string())
    });
    let flags = chat::TurnFlags {
        sampling: a.sampling.overrides(),
        tool_choice: a.turn.tool_choice,
        tool_grammar: a.turn.tool_grammar,
        few_shot: a.turn.few_shot,
        vary_seed: true,
    };
    let turn = chat::plan_turn(&store, &conv, &path, &env.config, &flags)?;
    let request = GenRequest {
        id: 1,
        k: a.k,
        overflow: if a.drop_oldest {
            OverflowPolicy::DropOldest
        } else {
            OverflowPolicy::Error
        },
        ..turn.request
    };

    let (tx, rx) = std::sync::mpsc::channel();
    let sink: Sink = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let mut engine = spawn_engine(choice, sink);
    let wait_ready = || -> Result<()> {
        for e in rx.iter() {
            match e {
                EngineEvent::Ready(_) => return Ok(()),
                EngineEvent::LoadFailed(m) => return Err(Exit(2, m).into()),
                _ => {}
            }
        }
        bail!("the engine stopped while loading")
    };

    let examples = turn.examples;
    if a.show_prompt {
        wait_ready()?;
        engine.render(request);
        for e in rx.iter() {
            match e {
                EngineEvent::Prompt { text, tokens, .. } => {
                    print!("{text}");
                    eprintln!("\n[{tokens} tokens]");
                    print_few_shot(&examples);
                    return Ok(0);
                }
                EngineEvent::Error {
                    message, bad_input, ..
                } => return Err(engine_error(message, bad_input)),
                _ => {}
            }
        }
        bail!("the engine stopped");
    }

    let conv = if conv.id == 0 {
        store.create_conversation(&conv.title, &conv.system_prompt, conv.tools.as_ref())?
    } else {
        conv
    };
    let added = store.append_child(conv.id, parent_path.last().map(|n| n.id), &new_node)?;
    let path = store.path_to_root(added.id)?;
    let still_waiting = crate::tools::pending(&path);
    if !still_waiting.is_empty() {
        // Parallel calls: the model answers once every call has its result.
        eprintln!(
            "[result stored as message {}; still waiting for: {}]",
            added.id,
            still_waiting
                .iter()
                .map(|c| format!("{} [{}]", crate::tools::describe(c), c.id))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(0);
    }
    wait_ready()?;
    let mut answers = chat::start_answers(&store, &conv, added.id, a.k, &examples)?;
    engine.generate(request);

    // Ctrl-C cancels the generation; the partial answer is kept as interrupted.
    let mut facts: Vec<Option<GenerationFacts>> = vec![None; a.k as usize];
    let mut done = 0;
    let mut out = std::io::stdout();
    let mut error = None;
    for e in rx.iter() {
        match e {
            EngineEvent::Token { seq, text, .. } => {
                answers[seq as usize].push(&store, &text)?;
                if !a.json && seq == 0 {
                    print!("{text}");
                    out.flush().ok();
                }
            }
            EngineEvent::Done { seq, facts: f, .. } => {
                answers[seq as usize].finish(&store, &f)?;
                facts[seq as usize] = Some(f);
                done += 1;
                if done == a.k {
                    break;
                }
            }
            EngineEvent::Error {
                message, bad_input, ..
            } => {
                for r in answers.iter_mut() {
                    r.fail(&store, &message)?;
                }
                error = Some((message, bad_input));
                break;
            }
            _ => {}
        }
    }
    // Waits for the worker: the conversation's KV state is written after the answer.
    engine.shutdown();
    if let Some(m) = error {
        return Err(engine_error(m.0, m.1));
    }
    let calls_of = |r: &chat::AnswerRecorder| {
        r.parsed
            .as_ref()
            .map(|p| (p.calls.clone(), p.errors.clone()))
            .unwrap_or_default()
    };
    if a.json {
        let list: Vec<_> = answers
            .iter()
            .zip(&facts)
            .map(|(r, f)| {
                let (calls, errors) = calls_of(r);
                let content = r
                    .parsed
                    .as_ref()
                    .filter(|p| !p.calls.is_empty())
                    .map_or(r.text.as_str(), |p| p.content.as_str());
                serde_json::json!({
                    "node_id": r.node_id,
                    "content": content,
                    "tool_calls": calls,
                    "tool_call_errors": errors,
                    "few_shot": examples.iter().map(|e| e.answer_id).collect::<Vec<_>>(),
                    "facts": f,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "conversation_id": conv.id,
                "user_node_id": added.id,
                "answers": list,
            }))?
        );
    } else {
        println!();
        if a.k > 1 {
            for (i, r) in answers.iter().enumerate().skip(1) {
                println!(
                    "--- candidate {} (message {}) ---\n{}",
                    i + 1,
                    r.node_id,
                    r.text
                );
            }
        }
        print_few_shot(&examples);
        let (calls, errors) = calls_of(&answers[0]);
        for c in &calls {
            eprintln!("[tool call {} → {}]", c.id, crate::tools::describe(c));
        }
        for e in &errors {
            eprintln!("[{e}; kept as text]");
        }
        if !calls.is_empty() {
            eprintln!(
                "[give each result with: arbor ask --conversation {} --tool-result '…'{}]",
                conv.id,
                if calls.len() > 1 { " --call-id ID" } else { "" }
            );
        }
        if let Some(Some(f)) = facts.first() {
            eprintln!(
                "[conversation {} · message {} · {} prompt tokens ({} reused) · {} generated · {:.1} tok/s · {}]",
                conv.id, answers[0].node_id, f.prompt_tokens, f.reused_tokens, f.generated_tokens,
                f.tokens_per_s, f.stop_reason
            );
        }
    }
    Ok(0)
}

pub(super) fn print_few_shot(examples: &[crate::store::Example]) {
    if !examples.is_empty() {
        eprintln!(
            "[few-shot: {} of your 4+★ answers in the system prompt: messages {}]",
            examples.len(),
            examples
                .iter()
                .map(|e| e.answer_id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
