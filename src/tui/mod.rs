//! The studio: a runtime that carries out the effects `update` asks for against the
//! store and the engine, and feeds the results back as actions.

pub mod base;
pub mod effect;
pub mod keymap;
pub mod layout;
pub mod screens;
#[cfg(test)]
mod testing;
pub mod update;
pub mod widgets;
pub use screens::review;

/// The terminal for a full-screen view; without one (a pipe, a script, no tty) a clear
/// error (exit 2) instead of a panic.
pub fn init_terminal() -> anyhow::Result<ratatui::DefaultTerminal> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(crate::app::Exit(
            2,
            "this is a full-screen view: run it in a terminal (standard input and output are not one)"
                .into(),
        )
        .into());
    }
    ratatui::try_init()
        .map_err(|e| crate::app::Exit(2, format!("could not take over the terminal: {e}")).into())
}
pub mod state;
pub mod view;

use crate::app::Env;
use crate::chat::{self, AnswerRecorder};
use crate::domain::*;
use crate::engine::{Cancel, Engine, EngineEvent, GenRequest, RequestId, Sink};
use crate::store::Store;
use anyhow::Result;
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use state::{Action, Effect, NodeView, State};
use std::collections::HashMap;
use std::sync::Arc;
use update::update;

/// What starting and reloading needs that the store does not hold: where jobs live, the
/// model and how the engine was loaded (to reload it with an adapter).
pub struct Setup {
    pub paths: crate::config::Paths,
    pub db: std::path::PathBuf,
    pub model: std::path::PathBuf,
    pub template: Option<String>,
    pub threads: u32,
    /// The embedded engine's options (`None`: chatting through a server).
    pub llama: Option<crate::engine::llama::LlamaOptions>,
    pub sink: Sink,
}

/// Where the studio opens.
pub enum Start {
    List,
    New {
        system: String,
        tools: Option<serde_json::Value>,
    },
}

/// Builds the view of a conversation's active path (ratings of this rater, tags,
/// siblings) in one query.
pub fn load_path(
    store: &Store,
    conv: ConversationId,
    rater: &str,
) -> crate::store::Result<Vec<NodeView>> {
    store.path_view(conv, rater)
}

/// The `meta` key of the conversation to reopen.
pub const LAST_CONVERSATION: &str = "last_conversation";

/// Carries out effects. Holds every piece of IO the studio does.
pub struct Runtime {
    pub store: Store,
    pub engine: Engine,
    pub rater: String,
    pub config: crate::config::Config,
    /// Where the Export dialog writes.
    pub exports_dir: std::path::PathBuf,
    /// Where work done off the event loop reports back (the Export dialog's counts).
    /// The Export dialog's background worker (see `export_worker`); without one the
    /// export runs in place.
    pub exporter: Option<std::sync::mpsc::Sender<ExportJob>>,
    recorders: HashMap<(RequestId, u32), AnswerRecorder>,
    /// The stop switch of every request still streaming (or queued); a group's requests
    /// share one, and `Effect::Cancel` throws all of them.
    cancels: HashMap<RequestId, Cancel>,
    conv_of_request: HashMap<RequestId, ConversationId>,
    /// The adapter the engine applies (name, scale).
    pub adapter: Option<(String, f32)>,
    /// Set by `run`; without it (unit tests) jobs and adapters are unavailable.
    pub setup: Option<Setup>,
    /// The Jobs view's eval line of each finished eval run (the view reloads every
    /// second; a finished run's report only changes with a blind verdict, which clears it).
    eval_lines: HashMap<i64, String>,
}

impl Runtime {
    pub fn new(store: Store, engine: Engine, rater: String, config: crate::config::Config) -> Self {
        Self {
            store,
            engine,
            rater,
            config,
            exports_dir: std::env::temp_dir(),
            exporter: None,
            recorders: HashMap::new(),
            cancels: HashMap::new(),
            conv_of_request: HashMap::new(),
            adapter: None,
            setup: None,
            eval_lines: HashMap::new(),
        }
    }

    /// A run's one-line summary, computed once the run is done.
    fn eval_line(&mut self, run: i64) -> Result<String> {
        if let Some(l) = self.eval_lines.get(&run) {
            return Ok(l.clone());
        }
        let r = crate::eval::report::report(&self.store, run, None)?;
        let line = r.summary_line();
        if r.status == "done" {
            self.eval_lines.insert(run, line.clone());
        }
        Ok(line)
    }

    fn setup(&self) -> Result<&Setup> {
        self.setup
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("training is not available here"))
    }

    /// The Jobs view's contents: every job with its progress, and the selected one's
    /// metrics and log tail.
    fn jobs_view(&mut self, selected: Option<i64>) -> Result<state::JobsView> {
        let mut rows = Vec::new();
        for job in self.store.jobs()? {
            let metrics = self.store.job_metrics(job.id)?;
            rows.push(state::JobRow {
                progress: crate::train::progress(&job, &metrics),
                adapter: self.store.adapter_of_job(job.id)?.map(|a| a.name),
                job,
            });
        }
        let sel = selected
            .and_then(|id| rows.iter().position(|r| r.job.id == id))
            .unwrap_or(0);
        let eval = match rows.get(sel) {
            Some(r) => match self.store.job_eval_run(r.job.id)? {
                Some(run) => Some(self.eval_line(run)?),
                None => None,
            },
            None => None,
        };
        let (metrics, log) = match rows.get(sel) {
            Some(r) => {
                let log = r
                    .job
                    .dir
                    .as_ref()
                    .map(|d| crate::train::JobFiles::at(d).log())
                    .map(|p| crate::train::tail(&p, 200, true))
                    .unwrap_or_default();
                (
                    self.store.job_metrics(r.job.id)?,
                    log.lines().map(str::to_string).collect(),
                )
            }
            None => (Vec::new(), Vec::new()),
        };
        Ok(state::JobsView {
            rows,
            sel,
            metrics,
            log,
            eval,
        })
    }

    /// A `peft` job on the answers rated 4+ (a tenth held out for validation loss).
    fn start_job(&self) -> Result<i64> {
        let setup = self.setup()?;
        let mut export = crate::dataset::export::ExportOptions::new(crate::dataset::Format::Openai);
        export.min_rating = Some(4);
        export.split = crate::dataset::SplitSpec {
            valid: 0.1,
            test: 0.0,
        };
        let recipe = crate::train::recipes(&self.config.train)?
            .remove("peft")
            .ok_or_else(|| anyhow::anyhow!("the peft recipe is missing"))?;
        let req = crate::train::JobRequest {
            recipe_name: "peft".into(),
            recipe,
            data: None,
            export,
            model: setup.model.clone(),
            template: setup.template.clone(),
            params: crate::train::TrainParams {
                threads: setup.threads,
                ..Default::default()
            },
            env_root: crate::train::env_root(&setup.paths, &self.config.train),
        };
        let p = crate::train::prepare(&self.store, &setup.paths, &req)?;
        self.supervise(p.id)?;
        Ok(p.id)
    }

    /// Starts job `id`'s supervisor (reaped by a thread of its own when it ends).
    fn supervise(&self, id: i64) -> Result<()> {
        let setup = self.setup()?;
        let job = self.store.job(id)?;
        let dir = std::path::PathBuf::from(job.dir.unwrap_or_default());
        let mut child = crate::train::spawn_supervisor(&setup.db, &dir, id, false)?;
        self.store.reattach_job(id, child.id())?;
        std::thread::spawn(move || child.wait());
        Ok(())
    }

    /// Reloads the engine with adapter `name` at `scale` (or none).
    fn use_adapter(&mut self, choice: Option<(String, f32)>, out: &mut Vec<Action>) -> Result<()> {
        let setup = self.setup()?;
        let Some(base) = setup.llama.clone() else {
            anyhow::bail!("adapters need the embedded engine (the studio chats through a server)");
        };
        let adapter = match &choice {
            Some((n, scale)) => {
                let row = self.store.adapter(n)?;
                let same = |a: &str, b: &std::path::Path| {
                    std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok()
                };
                if !same(&row.base_model, &base.model) {
                    anyhow::bail!(
                        "adapter {n} was trained on {}; the studio runs {}",
                        row.base_model,
                        base.model.display()
                    );
                }
                Some((std::path::PathBuf::from(&row.path), *scale))
            }
            None => None,
        };
        let opts = crate::engine::llama::LlamaOptions { adapter, ..base };
        self.engine = crate::app::spawn_llama(opts, setup.sink.clone());
        self.adapter = choice;
        out.push(Action::AdapterAttached(self.adapter.clone()));
        Ok(())
    }

    /// Stops every request in flight (Compare's k candidates, both of base vs tuned).
    pub fn cancel_all(&mut self) {
        for (_, c) in self.cancels.drain() {
            c.cancel();
        }
    }

    /// Persists what an engine event carries (before the state sees it).
    pub fn record(&mut self, e: &EngineEvent) -> Result<()> {
        match e {
            EngineEvent::Token { id, seq, text } => {
                if let Some(r) = self.recorders.get_mut(&(*id, *seq)) {
                    r.push(&self.store, text)?;
                }
            }
            EngineEvent::Done { id, seq, facts } => {
                if let Some(mut r) = self.recorders.remove(&(*id, *seq)) {
                    r.finish(&self.store, facts)?;
                }
            }
            EngineEvent::Error { id, message } => {
                let keys: Vec<_> = self
                    .recorders
                    .keys()
                    .filter(|k| k.0 == *id)
                    .cloned()
                    .collect();
                for k in keys {
                    if let Some(mut r) = self.recorders.remove(&k) {
                        r.fail(&self.store, message)?;
                    }
                }
            }
            _ => {}
        }
        if let EngineEvent::Done { id, .. } | EngineEvent::Error { id, .. } = e {
            if !self.recorders.keys().any(|k| k.0 == *id) {
                self.cancels.remove(id);
            }
        }
        Ok(())
    }

    /// Writes out whatever is buffered (called on ticks and before exit).
    pub fn flush(&mut self) -> Result<()> {
        for r in self.recorders.values_mut() {
            r.flush(&self.store)?;
        }
        Ok(())
    }

    fn generate(
        &mut self,
        conv: ConversationId,
        parent: NodeId,
        out: &mut Vec<Action>,
    ) -> Result<()> {
        self.generate_k(conv, parent, 1, out)
    }

    /// What answering under `parent` needs (the turn service plans it).
    fn plan(&self, conv: ConversationId, parent: NodeId) -> Result<chat::Turn> {
        let c = self.store.conversation(conv)?;
        let path = self.store.path_to_root(parent)?;
        let flags = chat::TurnFlags {
            vary_seed: true,
            ..Default::default()
        };
        Ok(chat::plan_turn(
            &self.store,
            &c,
            &path,
            &self.config,
            &flags,
        )?)
    }

    /// Answers under `parent`: one (streams into the chat), or `k` candidates at once
    /// (the Compare view).
    fn generate_k(
        &mut self,
        conv: ConversationId,
        parent: NodeId,
        k: u32,
        out: &mut Vec<Action>,
    ) -> Result<()> {
        let plan = self.plan(conv, parent)?;
        let answers = chat::start_answers(&self.store, &plan.conv, parent, k, &plan.examples)?;
        let id = self.engine.next_id();
        let nodes: Vec<NodeId> = answers.iter().map(|r| r.node_id).collect();
        for (seq, rec) in answers.into_iter().enumerate() {
            self.recorders.insert((id, seq as u32), rec);
        }
        self.conv_of_request.insert(id, conv);
        let cancel = Cancel::default();
        self.cancels.insert(id, cancel.clone());
        self.engine.generate(GenRequest {
            id,
            k,
            cancel,
            ..plan.request
        });
        if k > 1 {
            out.push(Action::CompareStarted {
                slots: (0..k).map(|seq| (id, seq)).collect(),
                labels: (1..=k).map(|i| format!("candidate {i}")).collect(),
                nodes: nodes.clone(),
            });
        }
        out.push(Action::Started {
            node: nodes[0],
            request: id,
        });
        self.open(conv, out)
    }

    /// Base vs tuned: the turn answered twice, with the adapter and without, one
    /// request after the other (an adapter applies to the whole context).
    fn compare_adapter(
        &mut self,
        conv: ConversationId,
        parent: NodeId,
        out: &mut Vec<Action>,
    ) -> Result<()> {
        let Some((name, scale)) = self.adapter.clone() else {
            anyhow::bail!("no adapter attached: pick one in the Jobs view (J, then a) or start with --adapter");
        };
        let plan = self.plan(conv, parent)?;
        let answers = chat::start_answers(&self.store, &plan.conv, parent, 2, &plan.examples)?;
        let nodes: Vec<NodeId> = answers.iter().map(|r| r.node_id).collect();
        let mut slots = Vec::new();
        // One switch for both: Esc stops the one streaming and the one still queued.
        let cancel = Cancel::default();
        for (rec, tuned) in answers.into_iter().zip([true, false]) {
            let id = self.engine.next_id();
            self.recorders.insert((id, 0), rec);
            self.conv_of_request.insert(id, conv);
            self.cancels.insert(id, cancel.clone());
            self.engine.generate(GenRequest {
                id,
                use_adapter: tuned,
                cancel: cancel.clone(),
                ..plan.request.clone()
            });
            slots.push((id, 0));
        }
        out.push(Action::CompareStarted {
            slots: slots.clone(),
            labels: vec![format!("tuned: {name} ×{scale}"), "base".into()],
            nodes: nodes.clone(),
        });
        out.push(Action::Started {
            node: nodes[0],
            request: slots[0].0,
        });
        self.open(conv, out)
    }

    fn open(&mut self, conv: ConversationId, out: &mut Vec<Action>) -> Result<()> {
        let c = self.store.conversation(conv)?;
        let path = load_path(&self.store, conv, &self.rater)?;
        out.push(Action::PathLoaded(c, path));
        Ok(())
    }

    /// Carries out one effect; returns the actions that report its results.
    pub fn perform(&mut self, effect: Effect, s: &State) -> Vec<Action> {
        let mut out = Vec::new();
        if let Err(e) = self.perform_inner(effect, s, &mut out) {
            out.push(Action::Error(format!("{e:#}")));
        }
        out
    }

    fn perform_inner(&mut self, effect: Effect, s: &State, out: &mut Vec<Action>) -> Result<()> {
        let conv_id = s.conv.as_ref().map(|c| c.id);
        // Only these change the open conversation without reloading it themselves.
        let changes_conversation = matches!(
            effect,
            Effect::Rate(..)
                | Effect::Critique(..)
                | Effect::Tag(..)
                | Effect::Untag(..)
                | Effect::ActivateSibling { .. }
                | Effect::DeleteBranch(_)
        );
        match effect {
            Effect::LoadList => out.push(Action::ListLoaded(self.list(&s.list_filter)?)),
            Effect::RegenerateK { parent, k } => {
                let conv = self.store.node(parent)?.conversation_id;
                self.generate_k(conv, parent, k, out)?;
            }
            Effect::LoadTree(conv) => out.push(Action::TreeLoaded(self.tree(conv)?)),
            Effect::ActivateNode(node) => {
                self.store.set_active(node)?;
                let conv = self.store.node(node)?.conversation_id;
                self.open(conv, out)?;
            }
            Effect::Rename(conv, title) => self.store.set_title(conv, &title)?,
            Effect::Open(id) => self.open(id, out)?,
            Effect::DeleteConversation(id) => self.store.delete_conversation(id)?,
            Effect::Send { conv, parent, text } => {
                let conv = match conv {
                    Some(c) => c,
                    None => {
                        let (system, tools) = s.pending_new.clone().unwrap_or_default();
                        self.store
                            .create_conversation(&chat::title_from(&text), &system, tools.as_ref())?
                            .id
                    }
                };
                let user = self
                    .store
                    .append_child(conv, parent, &NewNode::user(text))?;
                self.generate(conv, user.id, out)?;
            }
            Effect::Regenerate { parent } => {
                let conv = self.store.node(parent)?.conversation_id;
                self.generate(conv, parent, out)?;
            }
            Effect::SaveEdit {
                node,
                text,
                answer,
                tool_calls,
            } => {
                let edited = self.store.edit_as_sibling(node, &text, tool_calls)?;
                if answer {
                    self.generate(edited.conversation_id, edited.id, out)?;
                } else {
                    self.open(edited.conversation_id, out)?;
                }
            }
            Effect::ToolResult {
                parent,
                call_id,
                text,
            } => {
                let conv = self.store.node(parent)?.conversation_id;
                let result = NewNode {
                    tool_call_id: Some(call_id),
                    ..NewNode::new(Role::Tool, text, Origin::Typed)
                };
                let added = self.store.append_child(conv, Some(parent), &result)?;
                let path = self.store.path_to_root(added.id)?;
                if crate::tools::pending(&path).is_empty() {
                    self.generate(conv, added.id, out)?;
                } else {
                    self.open(conv, out)?;
                }
            }
            Effect::SaveSettings {
                conv,
                system,
                tools,
                settings,
            } => {
                self.store.set_conversation_setup(
                    conv,
                    &system,
                    tools.as_ref(),
                    settings.as_ref(),
                )?;
                self.open(conv, out)?;
            }
            Effect::Untag(node, tag) => self.store.remove_tag(node, &self.rater, &tag)?,
            Effect::Rate(node, stars) => self.store.rate(node, &self.rater, stars)?,
            Effect::Critique(node, text) => self.store.critique(node, &self.rater, &text)?,
            Effect::Tag(node, tag) => self.store.add_tag(node, &self.rater, &tag)?,
            Effect::AddToEval(node, name) => {
                let (set, created) = self.store.add_eval_case(&name, node)?;
                out.push(Action::Notice(format!(
                    "turn added to {} eval set {} ({} cases); held out of training",
                    if created { "new" } else { "the" },
                    set.name,
                    set.cases
                )));
            }
            Effect::ActivateSibling { node, position } => {
                let sibs = self.store.siblings(node)?;
                if let Some(t) = sibs.get(position.saturating_sub(1)) {
                    self.store.set_active(t.id)?;
                }
            }
            Effect::DeleteBranch(node) => self.store.delete_branch(node)?,
            Effect::Export {
                format,
                min_rating,
                write,
            } => match &self.exporter {
                // Off the event loop: counting a large database takes seconds.
                Some(jobs) => {
                    if jobs.send((format, min_rating, write)).is_err() {
                        out.push(Action::Error(
                            "export: the background worker stopped".into(),
                        ));
                    }
                }
                None => out.push(export_action(
                    &self.store,
                    &self.exports_dir,
                    format,
                    min_rating,
                    write,
                )),
            },
            Effect::CompareAdapter { parent } => {
                let conv = self.store.node(parent)?.conversation_id;
                self.compare_adapter(conv, parent, out)?;
            }
            Effect::LoadJobs(sel) => out.push(Action::JobsLoaded(self.jobs_view(sel)?)),
            Effect::LoadEvals => {
                let mut runs = Vec::new();
                for r in self.store.eval_runs()? {
                    runs.push(crate::eval::report::report(&self.store, r.id, None)?);
                }
                runs.reverse();
                out.push(Action::EvalsLoaded(runs));
            }
            Effect::OpenReview(run) => out.push(Action::ReviewLoaded(review::load(
                &self.store,
                run,
                &self.rater,
            )?)),
            Effect::Decide {
                run,
                case,
                pair,
                nodes,
                winner,
            } => {
                self.eval_lines.remove(&run);
                self.store
                    .record_decision(run, case, pair, nodes, winner, &self.rater)?
            }
            Effect::Undecide {
                run,
                case,
                pair,
                nodes,
            } => self
                .store
                .undo_decision(run, case, pair, nodes, &self.rater)?,
            Effect::StartJob => {
                let id = self.start_job()?;
                out.push(Action::Error(format!(
                    "job {id} started (peft on answers rated 4+); its progress shows here"
                )));
            }
            Effect::CancelJob(id) => {
                // Off the event loop: a trainer may take its grace period to stop.
                let db = self.setup()?.db.clone();
                let grace =
                    std::time::Duration::from_secs(self.config.train.cancel_grace_s.unwrap_or(10));
                std::thread::spawn(move || {
                    if let Ok(store) = Store::open_again(&db) {
                        let _ = crate::train::cancel(&store, id, grace);
                    }
                });
            }
            Effect::ResumeJob(id) => {
                let job = self.store.job(id)?;
                if job.status.is_live() || job.status == crate::store::JobStatus::Succeeded {
                    anyhow::bail!(
                        "job {id} {}: only a failed, cancelled or lost job runs again",
                        job.status
                    );
                }
                self.store.requeue_job(id)?;
                self.supervise(id)?;
            }
            Effect::UseAdapter(choice) => self.use_adapter(choice, out)?,
            Effect::Cancel => self.cancel_all(),
            Effect::Quit => {
                // Reopening returns to the conversation the user quit from (its path is
                // kept by the store); quitting from the list reopens the list.
                let open = match (s.screen, &s.conv) {
                    (state::Screen::Chat, Some(c)) => Some(c.id.to_string()),
                    _ => None,
                };
                self.store.set_meta(LAST_CONVERSATION, open.as_deref())?;
            }
        }
        if let (true, Some(id)) = (changes_conversation, conv_id) {
            self.open(id, out)?;
        }
        Ok(())
    }

    /// The conversation list under the filter: by tag, and by full-text search over every
    /// message (conversations in order of activity, those with a match).
    fn list(&self, f: &state::ListFilter) -> Result<Vec<ConversationSummary>> {
        let mut list = self.store.list_conversations(f.tag.as_deref())?;
        if let Some(q) = f.search.as_deref().filter(|q| !q.trim().is_empty()) {
            let hits: std::collections::HashSet<ConversationId> = self
                .store
                .search(q, 10_000)?
                .into_iter()
                .map(|h| h.conversation_id)
                .collect();
            list.retain(|c| hits.contains(&c.id));
        }
        Ok(list)
    }

    /// The tree view's rows: every message of the conversation depth-first (children
    /// oldest first), drawn like `git log --graph`, with this rater's stars.
    fn tree(&self, conv: ConversationId) -> Result<Vec<state::TreeRow>> {
        let c = self.store.conversation(conv)?;
        let nodes = self.store.conversation_nodes(conv)?;
        let stars = self.store.conversation_stars(conv, &self.rater)?;
        let active: std::collections::HashSet<NodeId> =
            self.store.active_path(conv)?.iter().map(|n| n.id).collect();
        let tree = crate::tree::Tree::new(&c, &nodes);
        Ok(tree
            .outline()
            .into_iter()
            .map(|(i, graph)| {
                let n = &nodes[i];
                state::TreeRow {
                    id: n.id,
                    graph,
                    role: n.role,
                    text: n.content.lines().next().unwrap_or("").to_string(),
                    stars: stars.get(&n.id).copied(),
                    tool_calls: n.tool_calls.len(),
                    origin: n.origin,
                    active: active.contains(&n.id),
                }
            })
            .collect())
    }

    /// Runs `update` on an action and every action its effects produce.
    pub fn dispatch(&mut self, s: &mut State, action: Action) {
        let mut queue = std::collections::VecDeque::from([action]);
        while let Some(a) = queue.pop_front() {
            for eff in update(s, a) {
                queue.extend(self.perform(eff, s));
            }
        }
    }
}

/// Opens the terminal and runs the studio until the user quits.
pub fn run(env: &Env, start: Start) -> Result<i32> {
    let store = env.store()?;
    let opts = env.engine_choice();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<EngineEvent>();
    let sink: Sink = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let mut state = State::new(env.db.display().to_string(), env.config.rater());
    state.presets = crate::presets::all(&env.paths)?;
    state.keymap = keymap::Keymap::load(&env.paths.keymap_file())
        .map_err(|e| crate::app::Exit(2, format!("keymap: {e}")))?;
    let llama = match &opts {
        Ok(crate::app::EngineChoice::Llama(o)) => Some(o.clone()),
        _ => None,
    };
    let setup = Setup {
        paths: env.paths.clone(),
        db: env.db.clone(),
        model: env.model.clone(),
        template: env.template.clone(),
        threads: env.threads,
        llama,
        sink: sink.clone(),
    };
    // Jobs whose supervisor died while the studio was closed: reattach, or mark lost.
    let _ = crate::train::reconcile(&store, &env.db);
    let engine = match opts {
        Ok(o) => crate::app::spawn_engine(o, sink),
        Err(e) => {
            let msg = format!("{e:#}");
            Engine::spawn(move |_| Err(msg), sink)
        }
    };
    let mut runtime = Runtime::new(store, engine, env.config.rater(), env.config.clone());
    runtime.exports_dir = env.paths.exports_dir();
    runtime.adapter = env
        .adapter
        .clone()
        .filter(|_| setup.llama.as_ref().is_some_and(|l| l.adapter.is_some()));
    state.adapter = runtime.adapter.clone();
    state.adapter_scale = env.adapter.as_ref().map_or(1.0, |a| a.1);
    runtime.setup = Some(setup);
    let (bg_tx, mut bg_rx) = tokio::sync::mpsc::unbounded_channel::<Action>();
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<ExportJob>();
    let (db, dir) = (
        runtime.store.path().to_path_buf(),
        runtime.exports_dir.clone(),
    );
    std::thread::Builder::new()
        .name("arbor-export".into())
        .spawn(move || export_worker(&db, &dir, jobs_rx, bg_tx))?;
    runtime.exporter = Some(jobs_tx);
    runtime.dispatch(
        &mut state,
        Action::ListLoaded(runtime.store.list_conversations(None)?),
    );
    match start {
        Start::New { system, tools } => state::start_new(&mut state, system, tools),
        Start::List => {
            let last = runtime
                .store
                .meta(LAST_CONVERSATION)?
                .and_then(|v| v.parse::<ConversationId>().ok())
                .filter(|id| runtime.store.conversation(*id).is_ok());
            if let Some(id) = last {
                let opened = runtime.perform(Effect::Open(id), &state);
                for a in opened {
                    runtime.dispatch(&mut state, a);
                }
            }
        }
    }

    let mut terminal = init_terminal()?;
    // Mouse: wheel to scroll, click to select (hold Shift to select text in most terminals).
    crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)?;
    if let Ok(size) = terminal.size() {
        state.size = (size.width, size.height);
    }
    let result: Result<()> = rt.block_on(async {
        let mut events = EventStream::new();
        let mut tick = tokio::time::interval(chat::FLUSH_EVERY);
        let mut second = tokio::time::interval(std::time::Duration::from_secs(1));
        let mut dirty = true;
        loop {
            if dirty {
                terminal.draw(|f| view::draw(f, &state))?;
                dirty = false;
            }
            if state.quit {
                break;
            }
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(Event::Key(k))) => { runtime.dispatch(&mut state, Action::Key(k)); dirty = true; }
                    Some(Ok(Event::Resize(w, h))) => { runtime.dispatch(&mut state, Action::Resize(w, h)); dirty = true; }
                    Some(Ok(Event::Mouse(m))) => { runtime.dispatch(&mut state, Action::Mouse(m)); dirty = true; }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => break,
                },
                Some(a) = bg_rx.recv() => {
                    runtime.dispatch(&mut state, a);
                    dirty = true;
                },
                Some(e) = rx.recv() => {
                    if let Err(err) = runtime.record(&e) {
                        state.message = Some(format!("could not save: {err:#}"));
                    }
                    runtime.dispatch(&mut state, Action::Engine(e));
                    dirty = true;
                },
                _ = second.tick() => {
                    if state.jobs().is_some() {
                        runtime.dispatch(&mut state, Action::Tick);
                        dirty = true;
                    }
                },
                _ = tick.tick() => {
                    if let Err(err) = runtime.flush() {
                        state.message = Some(format!("could not save: {err:#}"));
                        dirty = true;
                    }
                },
            }
        }
        Ok(())
    });
    // Keep what streamed so far: mark it interrupted rather than losing it.
    runtime.cancel_all();
    let _ = runtime.flush();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    result?;
    Ok(0)
}

/// An Export dialog request: format, minimum rating, write (or only count).
pub type ExportJob = (crate::dataset::Format, Option<u8>, bool);

/// Serves the Export dialog on its own thread and connection (`Store::open_again`: no
/// migration, no crash recovery). Of the dry runs waiting, only the newest is counted (the
/// dialog shows nothing older); every write is done. Results go back to the event loop.
fn export_worker(
    db: &std::path::Path,
    dir: &std::path::Path,
    jobs: std::sync::mpsc::Receiver<ExportJob>,
    results: tokio::sync::mpsc::UnboundedSender<Action>,
) {
    let store = match Store::open_again(db) {
        Ok(s) => s,
        Err(e) => {
            let _ = results.send(Action::Error(format!("export: {e}")));
            return;
        }
    };
    while let Ok(first) = jobs.recv() {
        let waiting: Vec<ExportJob> = std::iter::once(first).chain(jobs.try_iter()).collect();
        let last = waiting.len() - 1;
        for (i, (format, min_rating, write)) in waiting.into_iter().enumerate() {
            if write || i == last {
                let action = export_action(&store, dir, format, min_rating, write);
                if results.send(action).is_err() {
                    return;
                }
            }
        }
    }
}

/// The Export dialog: a dry run for its counts, or the export written to the
/// exports folder (same code as `arbor export`).
fn export_action(
    store: &Store,
    exports_dir: &std::path::Path,
    format: crate::dataset::Format,
    min_rating: Option<u8>,
    write: bool,
) -> Action {
    use crate::dataset::export as ex;
    let mut opts = ex::ExportOptions::new(format);
    opts.min_rating = min_rating;
    if format.is_directory() {
        opts.split = crate::dataset::SplitSpec {
            valid: 0.1,
            test: 0.0,
        };
    }
    if write {
        let path = ex::default_output(exports_dir, &opts);
        return match ex::write(store, &opts, None, &path, &mut |_, _| {}) {
            Ok(r) => Action::ExportWritten(format!(
                "wrote {} examples to {}",
                r.total(),
                path.display()
            )),
            Err(e) => Action::ExportWritten(format!("export failed: {e:#}")),
        };
    }
    match ex::preview(store, &opts, None) {
        Ok(r) => Action::ExportPreviewed(state::ExportPreview {
            examples: r.total(),
            conversations: r.conversations,
            left_out: r
                .left_out
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            within_longer: r.within_longer,
            first: r.first,
        }),
        Err(e) => Action::Error(format!("export: {e:#}")),
    }
}
