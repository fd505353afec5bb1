//! The command line (clap). Each command is a thin layer over the library.

pub use crate::app::exit_code;
use crate::app::{check_model, engine_error, spawn_engine, Env, Exit, Overrides};
use crate::chat;
use crate::config::{Config, Paths};
use crate::domain::*;
use crate::engine::{EngineEvent, GenRequest, OverflowPolicy, Sink};
use anyhow::{bail, Context as _, Result};
use clap::{CommandFactory, Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod datasets;
mod evals;
mod train;

#[derive(Parser, Debug)]
#[command(
    name = "arbor",
    version,
    about = "Chat with a local LLM, rate and edit its answers, branch conversations into trees, \
             and turn the best of them into fine-tuning data.",
    after_help = "Run without a command to open the studio on the conversation list."
)]
pub struct Cli {
    /// SQLite database to use [default: <data dir>/arbor.db]
    #[arg(long, global = true, env = "ARBOR_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// GGUF model to chat with (give it before the command: `arbor --model M ask …`)
    /// [default: `model` in config.toml, else the model setup installed]
    #[arg(long, env = "ARBOR_MODEL", value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Chat through an OpenAI-compatible server (llama-server, Ollama, vLLM) at this URL
    /// instead of the embedded engine [config: server_url]
    #[arg(long, global = true, env = "ARBOR_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Model name to ask the server for [default: the first it lists]
    #[arg(long, global = true, env = "ARBOR_SERVER_MODEL", value_name = "NAME")]
    pub server_model: Option<String>,
    /// Chat template to use instead of the model's own: chatml, gemma, llama3
    #[arg(long, global = true, value_name = "NAME")]
    pub template: Option<String>,
    /// LoRA adapter to chat with: a name from `arbor models` or a GGUF LoRA file
    #[arg(long, global = true, env = "ARBOR_ADAPTER", value_name = "NAME|PATH")]
    pub adapter: Option<String>,
    /// Strength of the adapter (1.0: as trained; 0 turns it off)
    #[arg(long, global = true, default_value_t = 1.0, value_name = "S")]
    pub adapter_scale: f32,
    /// CPU threads for llama.cpp, and for `export` (1: one pass) [default: physical cores]
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<u32>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the studio straight into a new conversation
    Chat {
        /// System prompt of the new conversation
        #[arg(long)]
        system: Option<String>,
        /// Start from a preset (see `arbor chat --preset list`)
        #[arg(long)]
        preset: Option<String>,
    },
    /// Send one message and stream the answer to stdout (everything is stored)
    Ask(AskArgs),
    /// List conversations, or show one
    Sessions {
        #[command(subcommand)]
        action: Option<SessionsAction>,
        /// Only conversations with this tag
        #[arg(long, global = true)]
        tag: Option<String>,
        /// Full-text search across all messages
        #[arg(long, global = true)]
        search: Option<String>,
        /// Machine-readable output
        #[arg(long, global = true)]
        json: bool,
    },
    /// Rate a message 1-5 stars (0 clears), with an optional critique and tags
    Rate {
        /// Message id (see `arbor sessions show`)
        node: NodeId,
        /// Stars, 1-5; 0 clears the rating
        stars: u8,
        #[arg(long)]
        critique: Option<String>,
        /// Tag to add (repeatable)
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Rate as this rater [default: config `rater`, else the OS user]
        #[arg(long)]
        rater: Option<String>,
    },
    /// Export rated paths as fine-tuning data (see docs/datasets.md)
    Export(datasets::ExportArgs),
    /// Import a dataset file (OpenAI, ShareGPT, Alpaca, OASST, TRL, tool-call logs, Q:/A: text) as trees
    Import(datasets::ImportArgs),
    /// Check a dataset file: JSON, roles, order, tool names and arguments, token counts
    Validate(datasets::ValidateArgs),
    /// The database as a dataset: ratings, tags, models, tool calls, clarification dialogues
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// List the models Arbor can use (the models directory and the configured model)
    Models {
        #[arg(long)]
        json: bool,
    },
    /// Check the installation: versions, paths, model, build features, database, recipes
    Doctor,
    /// Train a LoRA adapter on your rated data in the background (see docs/training.md)
    Train(train::TrainArgs),
    /// Eval sets: held-out cases to measure a model on (see docs/evals.md)
    Eval {
        #[command(subcommand)]
        action: evals::EvalAction,
    },
    /// Training jobs: list, show, logs, cancel, resume
    Jobs {
        #[command(subcommand)]
        action: Option<train::JobsAction>,
    },
    /// Print shell completions
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionsAction {
    /// List conversations (the default)
    List,
    /// Print a conversation: the active path, or the whole tree with --tree
    Show {
        id: ConversationId,
        #[arg(long)]
        tree: bool,
    },
    /// Change a conversation: title, system prompt, and sampling overrides (used by the
    /// studio and `ask --conversation` over the config's defaults)
    Set(SetArgs),
}

#[derive(clap::Args, Debug)]
pub struct SetArgs {
    pub id: ConversationId,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Drop this conversation's sampling overrides (back to the config's)
    #[arg(long)]
    pub clear_sampling: bool,
    /// Tool definitions (a JSON file with an OpenAI `tools` array), checked before saving
    #[arg(long, value_name = "FILE", conflicts_with = "clear_tools")]
    pub tools: Option<PathBuf>,
    /// Remove the conversation's tools
    #[arg(long)]
    pub clear_tools: bool,
    #[command(flatten)]
    pub turn: TurnArgs,
}

/// How answers use tools and examples; for `ask` (this message) and `sessions set`.
#[derive(clap::Args, Debug, Default)]
pub struct TurnArgs {
    /// auto: the model decides; required: the answer to a user message is a tool call;
    /// none: no call is constrained [config: tool_choice]
    #[arg(long, value_name = "CHOICE")]
    pub tool_choice: Option<crate::domain::ToolChoice>,
    /// Constrain tool calls to the tools' schemas with a grammar: on or off
    /// [default: on; config: tool_grammar]
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub tool_grammar: Option<bool>,
    /// Put the K most similar 4+-star exchanges of the database into the system prompt
    /// (0: off) [config: few_shot]
    #[arg(long, value_name = "K")]
    pub few_shot: Option<usize>,
}

impl TurnArgs {
    /// The flags given, as conversation settings keys.
    fn settings(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        if let Some(c) = self.tool_choice {
            m.insert("tool_choice".into(), serde_json::to_value(c).expect("enum"));
        }
        if let Some(g) = self.tool_grammar {
            m.insert("tool_grammar".into(), g.into());
        }
        if let Some(k) = self.few_shot {
            m.insert("few_shot".into(), k.into());
        }
        m
    }
}

fn parse_on_off(s: &str) -> std::result::Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        o => Err(format!("expected on or off, found '{o}'")),
    }
}

/// Sampling flags, shared by `ask` (this message) and `sessions set` (the conversation).
#[derive(clap::Args, Debug, Default)]
pub struct SamplingArgs {
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub top_k: Option<i32>,
    #[arg(long, allow_negative_numbers = true)]
    pub top_p: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub min_p: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub repeat_penalty: Option<f32>,
    #[arg(long)]
    pub seed: Option<u32>,
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Stop string (repeatable; replaces the list)
    #[arg(long = "stop")]
    pub stop: Vec<String>,
}

impl SamplingArgs {
    /// The flags given, as sampling overrides (`settings.sampling` keys).
    pub fn overrides(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut over = serde_json::Map::new();
        macro_rules! put {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { over.insert(stringify!($f).into(), v.into()); } )* };
        }
        put!(
            temperature,
            top_k,
            top_p,
            min_p,
            repeat_penalty,
            seed,
            max_tokens
        );
        if !self.stop.is_empty() {
            over.insert("stop".into(), self.stop.clone().into());
        }
        over
    }
}

#[derive(clap::Args, Debug)]
pub struct AskArgs {
    /// The message to send; `-` reads it from standard input
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub message: Option<String>,
    /// Read the message from this file (`-`: standard input)
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Continue this conversation's active path instead of starting a new one
    #[arg(long)]
    pub conversation: Option<ConversationId>,
    /// System prompt for a new conversation
    #[arg(long)]
    pub system: Option<String>,
    /// Start the new conversation from a preset (its system prompt and tools; see
    /// `arbor chat --preset list`)
    #[arg(long, conflicts_with = "conversation")]
    pub preset: Option<String>,
    /// Tool definitions of the new conversation (a JSON file with an OpenAI `tools` array)
    #[arg(long, value_name = "FILE", conflicts_with = "conversation")]
    pub tools: Option<PathBuf>,
    /// The message is the result of the tool call waiting on the conversation's path
    /// (stored as a `tool` message); the model answers once every call has its result
    #[arg(long, requires = "conversation")]
    pub tool_result: bool,
    /// Which waiting call the result is for [default: the first]
    #[arg(long, value_name = "ID", requires = "tool_result")]
    pub call_id: Option<String>,
    #[command(flatten)]
    pub turn: TurnArgs,
    /// Number of alternative answers, sampled in parallel
    #[arg(long, default_value_t = 1)]
    pub k: u32,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Drop the oldest turns (keeping the system prompt) when the prompt does not fit
    #[arg(long)]
    pub drop_oldest: bool,
    /// Print the exact rendered prompt and its token count, and generate nothing
    #[arg(long)]
    pub show_prompt: bool,
    /// Print ids and generation facts as JSON instead of streaming text
    #[arg(long)]
    pub json: bool,
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code(&e);
            eprintln!("arbor: {e:#}");
            code
        }
    }
}

/// `[#####-----]`: `done` of `total` in `width` cells (empty when the total is unknown).
pub(crate) fn text_bar(done: usize, total: usize, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((done as f64 / total as f64) * width as f64).round() as usize
    }
    .min(width);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

impl Cli {
    /// The global flags, as what they set over the config.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            db: self.db.clone(),
            model: self.model.clone(),
            server: self.server.clone(),
            server_model: self.server_model.clone(),
            template: self.template.clone(),
            adapter: self.adapter.clone(),
            adapter_scale: self.adapter_scale,
            threads: self.threads,
        }
    }
}

pub fn run(cli: Cli) -> Result<i32> {
    if let Some(Command::Completions { shell }) = &cli.command {
        clap_complete::generate(*shell, &mut Cli::command(), "arbor", &mut std::io::stdout());
        return Ok(0);
    }
    // `doctor` reports a broken config.toml among its problems instead of stopping at it.
    let (env, config_problem) = match (Env::new(&cli.overrides()), &cli.command) {
        (Err(e), Some(Command::Doctor)) => (
            Env::with_config(&cli.overrides(), Paths::discover(), Config::default())?,
            Some(format!("{e:#}")),
        ),
        (env, _) => (env?, None),
    };
    match cli.command {
        None => crate::tui::run(&env, crate::tui::Start::List),
        Some(Command::Chat { system, preset }) => {
            let start = match preset.as_deref() {
                Some("list") => {
                    for p in crate::presets::all(&env.paths)? {
                        println!("{:<14} {}", p.name, p.description);
                    }
                    return Ok(0);
                }
                Some(name) => {
                    let p = crate::presets::find(&env.paths, name)?;
                    crate::tui::Start::New {
                        system: system.unwrap_or(p.system),
                        tools: p.tools,
                    }
                }
                None => crate::tui::Start::New {
                    system: system.unwrap_or_default(),
                    tools: None,
                },
            };
            crate::tui::run(&env, start)
        }
        Some(Command::Ask(args)) => ask(&env, args),
        Some(Command::Sessions {
            action,
            tag,
            search,
            json,
        }) => sessions(&env, action, tag, search, json),
        Some(Command::Rate {
            node,
            stars,
            critique,
            tags,
            rater,
        }) => {
            let store = env.store()?;
            let rater = rater.unwrap_or_else(|| env.config.rater());
            store.rate(node, &rater, (stars > 0).then_some(stars))?;
            if let Some(c) = critique {
                store.critique(node, &rater, &c)?;
            }
            for t in tags {
                store.add_tag(node, &rater, &t)?;
            }
            println!(
                "message {node}: {} by {rater}",
                if stars > 0 {
                    format!("{stars}★")
                } else {
                    "rating cleared".into()
                }
            );
            Ok(0)
        }
        Some(Command::Export(a)) => datasets::export(&env, a),
        Some(Command::Import(a)) => datasets::import(&env, a),
        Some(Command::Validate(a)) => datasets::validate(&env, a),
        Some(Command::Stats { json }) => {
            let s = crate::dataset::stats::stats(&env.store()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{s}");
            }
            Ok(0)
        }
        Some(Command::Models { json }) => models(&env, json),
        Some(Command::Doctor) => doctor(&env, config_problem),
        Some(Command::Train(a)) => train::train(&env, a),
        Some(Command::Jobs { action }) => train::jobs(&env, action),
        Some(Command::Eval { action }) => evals::eval(&env, action),
        Some(Command::Completions { .. }) => unreachable!("handled above"),
    }
}

/// The message of `ask`: the argument, or a file's or standard input's text (`-`).
fn ask_message(a: &AskArgs) -> Result<String> {
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

/// `base` with `over` applied, every value in range (`Err`: exit 2 naming the field).
pub(crate) fn checked_sampling(
    base: &Sampling,
    over: &serde_json::Map<String, serde_json::Value>,
) -> Result<Sampling> {
    let s = chat::with_overrides(base, over);
    s.check().map_err(|m| Exit(2, format!("sampling: {m}")))?;
    Ok(s)
}

fn ask(env: &Env, a: AskArgs) -> Result<i32> {
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
    let engine = spawn_engine(choice, sink);
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
                EngineEvent::Error { message, .. } => return Err(engine_error(message)),
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
            EngineEvent::Error { message, .. } => {
                for r in answers.iter_mut() {
                    r.fail(&store, &message)?;
                }
                error = Some(message);
                break;
            }
            _ => {}
        }
    }
    drop(engine);
    if let Some(m) = error {
        return Err(engine_error(m));
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

fn print_few_shot(examples: &[crate::store::Example]) {
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

fn sessions(
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

fn describe_model(path: &Path) -> Result<serde_json::Value> {
    let info = crate::gguf::read(path)?;
    Ok(serde_json::json!({
        "name": info.name(),
        "path": path.display().to_string(),
        "type": info.file_type(),
        "architecture": info.architecture(),
        "size_bytes": info.file_size,
        "context_length": info.context_length(),
        "chat_template": info.chat_template().is_some(),
    }))
}

fn models(env: &Env, json: bool) -> Result<i32> {
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(env.paths.models_dir()) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "gguf") {
                paths.push(p);
            }
        }
    }
    paths.sort();
    if env.model.exists() && !paths.contains(&env.model) {
        paths.insert(0, env.model.clone());
    }
    let mut list = Vec::new();
    for p in &paths {
        match describe_model(p) {
            Ok(v) => list.push(v),
            Err(e) => list
                .push(serde_json::json!({"path": p.display().to_string(), "error": e.to_string()})),
        }
    }
    let adapters = env.store()?.adapters()?;
    if json {
        for a in &adapters {
            let mut v = serde_json::to_value(a)?;
            v["type"] = "adapter".into();
            v["loads"] = Path::new(&a.path).is_file().into();
            list.push(v);
        }
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if list.is_empty() {
        println!(
            "no models in {} — run scripts/setup.sh, or pass --model PATH",
            env.paths.models_dir().display()
        );
    }
    for (v, p) in list.iter().zip(&paths) {
        let mark = if *p == env.model { "*" } else { " " };
        if let Some(e) = v.get("error") {
            println!("{mark} {}  ERROR {}", p.display(), e.as_str().unwrap_or(""));
            continue;
        }
        println!(
            "{mark} {:<28} {:<9} {:<8} {:>7.1} MB  ctx {:<6} template {:<4} {}",
            v["name"].as_str().unwrap_or(""),
            v["type"].as_str().unwrap_or(""),
            v["architecture"].as_str().unwrap_or(""),
            v["size_bytes"].as_u64().unwrap_or(0) as f64 / 1e6,
            v["context_length"]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or("?".into()),
            if v["chat_template"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            p.display()
        );
    }
    if !adapters.is_empty() {
        println!("\nadapters (chat with one: arbor --adapter NAME)");
    }
    for a in &adapters {
        let loss = a
            .metrics
            .as_ref()
            .and_then(|m| Some((m["first_loss"].as_f64()?, m["last_loss"].as_f64()?)))
            .map(|(f, l)| format!("loss {f:.2}→{l:.2}"))
            .unwrap_or_default();
        println!(
            "  {:<20} job {:<4} on {:<32} {:<18} {}{}",
            a.name,
            a.job_id.map(|j| j.to_string()).unwrap_or("-".into()),
            Path::new(&a.base_model)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            loss,
            a.path,
            if Path::new(&a.path).is_file() {
                ""
            } else {
                "  (file missing)"
            }
        );
    }
    Ok(0)
}

fn doctor(env: &Env, config_problem: Option<String>) -> Result<i32> {
    let mut problems = Vec::new();
    println!("arbor {}", env!("CARGO_PKG_VERSION"));
    println!("  llama.cpp        llama-cpp-2 0.1.160 (embedded)");
    println!("  sqlite           {}", rusqlite::version());
    let mut features = vec!["cpu"];
    if cfg!(feature = "cuda") {
        features.push("cuda");
    }
    if cfg!(feature = "metal") {
        features.push("metal");
    }
    if cfg!(feature = "vulkan") {
        features.push("vulkan");
    }
    println!(
        "  build features   {} (GPU offload {})",
        features.join(", "),
        if crate::engine::llama::supports_gpu_offload() {
            "available"
        } else {
            "not available"
        }
    );
    println!("paths");
    println!("  config           {}", env.paths.config_file().display());
    println!("  data             {}", env.paths.data_dir.display());
    println!("  database         {}", env.db.display());
    println!("  models           {}", env.paths.models_dir().display());
    println!("  rater            {}", env.config.rater());
    println!("  threads          {}", env.threads);
    println!("configuration");
    match config_problem {
        None if env.paths.config_file().exists() => println!("  config.toml      ok"),
        None => println!("  config.toml      none (defaults)"),
        Some(e) => {
            println!("  config.toml      BROKEN: {e}");
            problems.push(e);
        }
    }
    let keymap = env.paths.keymap_file();
    match crate::tui::keymap::Keymap::load(&keymap) {
        Ok(_) if keymap.exists() => println!("  keymap.toml      ok"),
        Ok(_) => println!("  keymap.toml      none (default keys)"),
        Err(e) => {
            println!("  keymap.toml      BROKEN: {e}");
            problems.push(e);
        }
    }
    if let Some(t) = env.template.as_deref() {
        if let Err(e) = crate::engine::template::check_builtin_name(t) {
            println!("  template         BROKEN: {e}");
            problems.push(format!("--template {t}: {e}"));
        }
    }
    println!("model");
    match check_model(&env.model, &env.paths) {
        Ok(info) => {
            println!("  name             {}", info.name());
            println!("  file             {}", env.model.display());
            println!(
                "  architecture     {}",
                info.architecture().unwrap_or("unknown")
            );
            println!("  size             {:.1} MB", info.file_size as f64 / 1e6);
            println!(
                "  context length   {}",
                info.context_length()
                    .map(|c| c.to_string())
                    .unwrap_or("unknown".into())
            );
            let sha = PathBuf::from(format!("{}.sha256", env.model.display()));
            if let Ok(rec) = std::fs::read_to_string(&sha) {
                println!(
                    "  sha256 (setup)   {}",
                    rec.split_whitespace().next().unwrap_or("")
                );
            }
            match (info.chat_template(), env.template.as_deref()) {
                (_, Some(t)) => println!("  chat template    built-in {t} (chosen)"),
                (Some(_), None) => println!("  chat template    yes, in the model's metadata"),
                (None, None) => match info
                    .architecture()
                    .and_then(crate::engine::template::builtin_for_architecture)
                {
                    Some(b) => println!(
                        "  chat template    none in the model; using built-in {b} for its architecture"
                    ),
                    None => {
                        println!("  chat template    none in the model, and no built-in fits");
                        problems.push(
                            "the model has no chat template: pass --template chatml|gemma|llama3"
                                .to_string(),
                        );
                    }
                },
            }
        }
        Err(e) => {
            println!("  MISSING          {e}");
            problems.push(e.to_string());
        }
    }
    println!("database");
    match env.store() {
        Ok(store) => {
            let c = {
                // An import still running is not counted yet.
                let _visible = store.visible_only(true)?;
                store.counts()?
            };
            println!(
                "  schema version   {} (current {})",
                store.schema_version()?,
                crate::store::SCHEMA_VERSION
            );
            println!(
                "  rows             {} conversations, {} messages, {} ratings, {} tags, {} jobs, {} adapters",
                c.conversations, c.nodes, c.ratings, c.tags, c.jobs, c.adapters
            );
        }
        Err(e) => {
            println!("  ERROR            {e:#}");
            problems.push(format!("{e:#}"));
        }
    }
    println!("training recipes");
    for (name, verdict) in train::doctor_lines(env) {
        println!("  {name:<16} {verdict}");
    }
    if problems.is_empty() {
        println!("\nall good");
        Ok(0)
    } else {
        println!();
        for p in &problems {
            eprintln!("problem: {p}");
        }
        Err(Exit(2, format!("{} problem(s) found", problems.len())).into())
    }
}
