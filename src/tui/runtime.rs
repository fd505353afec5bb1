//! The effect runner: carries out what `update` asks for against the store and the
//! engine (and the worker), and feeds the results back as actions. Every piece of IO the
//! studio does is here or in `worker.rs`.

use super::screens::review;
use super::state::{self, Action, Effect, NodeView, State};
use super::undo::{self, Undo};
use super::update::update;
use super::worker;
use crate::chat::{self, AnswerRecorder};
use crate::domain::*;
use crate::engine::{Cancel, Engine, EngineEvent, GenRequest, RequestId, Sink};
use crate::store::Store;
use anyhow::Result;
use std::collections::HashMap;

/// What starting and reloading needs that the store does not hold: where jobs live, the
/// model and how the engine was loaded (to reload it with an adapter).
pub struct Setup {
    pub paths: crate::config::Paths,
    pub db: std::path::PathBuf,
    pub model: std::path::PathBuf,
    /// The model the studio started on (the picker keeps offering it).
    pub started_with: std::path::PathBuf,
    pub template: Option<String>,
    pub threads: u32,
    /// The embedded engine's options (`None`: chatting through a server).
    pub llama: Option<crate::engine::llama::LlamaOptions>,
    pub sink: Sink,
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

/// Where `y`/`Y` put text: the terminal's clipboard through OSC 52 (it works in tmux
/// with `set-clipboard on` and over SSH), or a list (the runtime's tests).
#[derive(Debug)]
pub enum Clipboard {
    Terminal,
    Memory(Vec<String>),
}

impl Clipboard {
    fn put(&mut self, text: &str) -> Result<()> {
        use base64::Engine as _;
        match self {
            Clipboard::Terminal => {
                use std::io::Write;
                let b64 = base64::engine::general_purpose::STANDARD.encode(text);
                let mut out = std::io::stdout();
                write!(out, "\x1b]52;c;{b64}\x07")?;
                out.flush()?;
            }
            Clipboard::Memory(v) => v.push(text.to_string()),
        }
        Ok(())
    }
}

/// A trash entry as a row of the list (its title says what it is).
fn trash_row(e: crate::store::TrashEntry) -> ConversationSummary {
    let first: String = e
        .first
        .chars()
        .take(30)
        .collect::<String>()
        .replace('\n', " ");
    ConversationSummary {
        id: e.id,
        title: match e.kind {
            crate::store::TrashKind::Conversation => e.title,
            crate::store::TrashKind::Branch { of, .. } => format!("branch of {of}: {first}"),
        },
        updated_at: e.trashed_at,
        messages: e.messages,
        rated: 0,
        avg_stars: None,
        tags: Vec::new(),
    }
}

/// Carries out effects. Holds every piece of IO the studio does.
pub struct Runtime {
    pub store: Store,
    pub engine: Engine,
    pub rater: String,
    pub config: crate::config::Config,
    /// Where the Export dialog writes.
    pub exports_dir: std::path::PathBuf,
    /// Loads and tasks off the event loop (`worker.rs`); without one (unit tests) they
    /// run in place.
    pub worker: Option<worker::Worker>,
    recorders: HashMap<(RequestId, u32), AnswerRecorder>,
    /// The stop switch of every request still streaming (or queued); a group's requests
    /// share one, and `Effect::Cancel` throws all of them.
    cancels: HashMap<RequestId, Cancel>,
    conv_of_request: HashMap<RequestId, ConversationId>,
    /// The adapter the engine applies (name, scale).
    pub adapter: Option<(String, f32)>,
    /// Set by `run`; without it (unit tests) jobs and adapters are unavailable.
    pub setup: Option<Setup>,
    /// The Jobs view's eval line of each finished eval run (shared with the worker).
    pub eval_lines: worker::EvalLines,
    pub clipboard: Clipboard,
    /// The changes of this session that `u` takes back, newest last.
    pub undo: Vec<super::undo::Undo>,
    /// A message to open in the user's editor: the event loop does it (it owns the
    /// terminal) and sends back `Action::EditedExternally`.
    pub external_edit: Option<(NodeId, String)>,
}

impl Runtime {
    pub fn new(store: Store, engine: Engine, rater: String, config: crate::config::Config) -> Self {
        Self {
            store,
            engine,
            rater,
            config,
            exports_dir: std::env::temp_dir(),
            worker: None,
            recorders: HashMap::new(),
            cancels: HashMap::new(),
            conv_of_request: HashMap::new(),
            adapter: None,
            setup: None,
            eval_lines: Default::default(),
            clipboard: Clipboard::Memory(Vec::new()),
            undo: Vec::new(),
            external_edit: None,
        }
    }

    /// What the worker's loads need.
    pub fn worker_context(&self) -> worker::Context {
        worker::Context {
            rater: self.rater.clone(),
            exports_dir: self.exports_dir.clone(),
            eval_lines: self.eval_lines.clone(),
        }
    }

    /// A view's read: on the worker, or (without one) in place.
    fn load(&self, l: worker::Load, out: &mut Vec<Action>) {
        self.on_worker(worker::Job::Load(l), out)
    }

    /// Work that must be done: on the worker, or (without one) in place.
    fn task(&self, t: worker::Task, out: &mut Vec<Action>) {
        self.on_worker(worker::Job::Task(t), out)
    }

    fn on_worker(&self, job: worker::Job, out: &mut Vec<Action>) {
        match &self.worker {
            Some(w) => {
                if !w.send(job) {
                    out.push(Action::Error("the background worker stopped".into()));
                }
            }
            None => out.extend(worker::serve(&self.store, &self.worker_context(), job)),
        }
    }

    fn setup(&self) -> Result<&Setup> {
        self.setup
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("training is not available here"))
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
                if !crate::app::same_model(std::path::Path::new(&row.base_model), &base.model) {
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

    /// The picker's read (on the worker: it walks directories and reads GGUF headers).
    fn load_models(&self, out: &mut Vec<Action>) -> Result<()> {
        let setup = self.setup()?;
        let current = setup.llama.as_ref().map(|l| l.model.clone());
        let given = [Some(setup.started_with.clone()), current.clone()]
            .into_iter()
            .flatten()
            .collect();
        self.load(
            worker::Load::Models {
                models_dir: setup.paths.models_dir(),
                model_dirs: self.config.model_dirs.clone(),
                given,
                current,
            },
            out,
        );
        Ok(())
    }

    /// Reloads the engine on another model (the adapter, made for the old one, goes).
    fn switch_model(&mut self, path: std::path::PathBuf, out: &mut Vec<Action>) -> Result<()> {
        if !self.recorders.is_empty() {
            anyhow::bail!("an answer is still being generated (Esc stops it); switch after it");
        }
        let setup = self
            .setup
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("switching models is not available here"))?;
        let Some(base) = setup.llama.clone() else {
            anyhow::bail!(
                "the studio chats through a server (--server): its model is the server's"
            );
        };
        crate::app::check_model(&path, &setup.paths)?;
        let opts = crate::engine::llama::LlamaOptions {
            model: path.clone(),
            adapter: None,
            ..base
        };
        self.engine = crate::app::spawn_llama(opts.clone(), setup.sink.clone());
        setup.llama = Some(opts);
        setup.model = path;
        self.adapter = None;
        out.push(Action::ModelSwitched);
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
            EngineEvent::Error { id, message, .. } => {
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
        let changes_conversation = effect.reloads_conversation();
        let rated = matches!(effect, Effect::Rate(..));
        match effect {
            Effect::LoadList => out.push(Action::ListLoaded(self.list(&s.list_filter)?)),
            Effect::RegenerateK { parent, k } => {
                let conv = self.store.node(parent)?.conversation_id;
                self.generate_k(conv, parent, k, out)?;
            }
            Effect::LoadTree(conv) => self.load(worker::Load::Tree(conv), out),
            Effect::ActivateNode(node) => {
                let conv = self.store.node(node)?.conversation_id;
                let before = undo::leaf(&self.store, conv)?;
                self.store.set_active(node)?;
                self.done(before.map(|leaf| Undo::Active { leaf }));
                self.open(conv, out)?;
            }
            Effect::Rename(conv, title) => self.store.set_title(conv, &title)?,
            Effect::Open(id) => self.open(id, out)?,
            Effect::Restore(id) => {
                let r = self.store.restore(id)?;
                out.push(Action::Notice(if r.conversation == id {
                    format!("restored conversation {id}")
                } else {
                    format!("restored the branch into conversation {}", r.conversation)
                }));
            }
            Effect::DeleteConversation(id) => {
                let title = self.store.conversation(id)?.title;
                self.store.trash_conversation(id)?;
                self.done(Some(Undo::Restore {
                    trash: id,
                    what: format!("conversation “{title}”"),
                }));
                out.push(Action::Notice(format!(
                    "conversation {id} moved to the trash — u undoes"
                )));
            }
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
                let conv = self.store.node(node)?.conversation_id;
                let before = undo::leaf(&self.store, conv)?;
                let edited = self.store.edit_as_sibling(node, &text, tool_calls)?;
                self.done(before.map(|leaf| Undo::Edit {
                    sibling: edited.id,
                    leaf,
                }));
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
            Effect::Untag(node, tag) => {
                let had = self.store.has_tag(node, &self.rater, &tag)?;
                self.store.remove_tag(node, &self.rater, &tag)?;
                self.done(had.then_some(Undo::Tag {
                    node,
                    tag,
                    added: false,
                }));
            }
            Effect::Rate(node, stars) => {
                let before = self.store.rating(node, &self.rater)?.and_then(|r| r.stars);
                self.store.rate(node, &self.rater, stars)?;
                self.done((before != stars).then_some(Undo::Rating {
                    node,
                    stars: before,
                }));
            }
            Effect::Critique(node, text) => {
                let before = self
                    .store
                    .rating(node, &self.rater)?
                    .and_then(|r| r.critique)
                    .unwrap_or_default();
                self.store.critique(node, &self.rater, &text)?;
                self.done((before != text).then_some(Undo::Critique { node, text: before }));
            }
            Effect::Tag(node, tag) => {
                let had = self.store.has_tag(node, &self.rater, &tag)?;
                self.store.add_tag(node, &self.rater, &tag)?;
                self.done((!had).then(|| Undo::Tag {
                    node,
                    tag: tag.trim().to_string(),
                    added: true,
                }));
            }
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
                    let conv = t.conversation_id;
                    let before = undo::leaf(&self.store, conv)?;
                    self.store.set_active(t.id)?;
                    if t.id != node {
                        self.done(before.map(|leaf| Undo::Active { leaf }));
                    }
                }
            }
            Effect::DeleteBranch(node) => {
                let trash = self.store.trash_branch(node)?;
                self.done(Some(Undo::Restore {
                    trash,
                    what: format!("message {node} and what grew under it"),
                }));
                out.push(Action::Notice(format!(
                    "message {node} and its branch moved to the trash — u undoes"
                )));
            }
            // Counting a large database takes seconds: off the event loop.
            Effect::Export {
                format,
                min_rating,
                write: false,
            } => self.load(worker::Load::ExportCount { format, min_rating }, out),
            Effect::Export {
                format,
                min_rating,
                write: true,
            } => self.task(worker::Task::ExportWrite { format, min_rating }, out),
            Effect::CompareAdapter { parent } => {
                let conv = self.store.node(parent)?.conversation_id;
                self.compare_adapter(conv, parent, out)?;
            }
            Effect::LoadJobs(sel) => self.load(worker::Load::Jobs(sel), out),
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
                self.eval_lines
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&run);
                self.store
                    .record_decision(run, case, pair, nodes, winner, &self.rater)?
            }
            Effect::Undecide {
                run,
                case,
                pair,
                nodes,
            } => {
                self.eval_lines
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&run);
                self.store
                    .undo_decision(run, case, pair, nodes, &self.rater)?
            }
            Effect::StartJob => {
                let id = self.start_job()?;
                out.push(Action::Error(format!(
                    "job {id} started (peft on answers rated 4+); its progress shows here"
                )));
            }
            // A trainer may take its grace period to stop: off the event loop.
            Effect::CancelJob(id) => {
                let grace =
                    std::time::Duration::from_secs(self.config.train.cancel_grace_s.unwrap_or(10));
                self.task(worker::Task::CancelJob { id, grace }, out);
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
            Effect::LoadModels => self.load_models(out)?,
            Effect::SwitchModel(path) => self.switch_model(path, out)?,
            Effect::Cancel => self.cancel_all(),
            Effect::Undo => self.take_back(s, out)?,
            Effect::LoadQueue => {
                let filters =
                    crate::dataset::export::ExportOptions::new(crate::dataset::Format::Openai);
                out.push(Action::QueueLoaded(
                    crate::eval::queue::from_filters(&self.store, filters, &self.rater)?,
                    self.judge_summary(),
                ));
            }
            Effect::LoadQueueItem(answer) => self.queue_item(answer, out)?,
            Effect::EditExternally(node) => {
                let n = self.store.node(node)?;
                self.external_edit =
                    Some((node, crate::tools::editable(&n.content, &n.tool_calls)));
            }
            Effect::Copy { text, what } => {
                self.clipboard.put(&text)?;
                out.push(Action::Notice(format!(
                    "copied {what} to the clipboard ({} characters)",
                    text.chars().count()
                )));
            }
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
        // A tag or critique made in the review queue shows there at once (a rating moves the
        // queue on, which loads the next answer itself).
        if let (true, false, Some(item)) = (
            changes_conversation,
            rated,
            s.queue().and_then(|q| q.current()),
        ) {
            self.queue_item(item.answer, out)?;
        }
        Ok(())
    }

    /// How far the LLM judge (the latest to score) agrees with this curator, in a line.
    pub fn judge_summary(&self) -> Option<String> {
        let judge = self.store.judge_raters().ok()?.pop()?;
        let c = crate::eval::judge::calibrate(&self.store, Some(&judge), Some(&self.rater)).ok()?;
        let f = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.2}"));
        Some(format!(
            "⚖ {judge} vs you: κ {}, within one star {}, n {} (arbor judge calibrate)",
            f(c.kappa_quadratic),
            c.within_one
                .map_or("–".into(), |x| format!("{:.0}%", x * 100.0)),
            c.n
        ))
    }

    /// The review queue's answer `answer` with its conversation and context.
    fn queue_item(&self, answer: NodeId, out: &mut Vec<Action>) -> Result<()> {
        let path = self.store.path_entries(answer, &self.rater)?;
        let conv = self.store.conversation(path[0].node.conversation_id)?;
        out.push(Action::QueueItemLoaded(conv, path));
        Ok(())
    }

    /// Keeps the inverse of a change just made, for `u`.
    fn done(&mut self, undo: Option<Undo>) {
        self.undo.extend(undo);
    }

    /// `u`: takes back the newest change of this session and shows what it touched.
    fn take_back(&mut self, s: &State, out: &mut Vec<Action>) -> Result<()> {
        let Some(u) = self.undo.pop() else {
            out.push(Action::Notice("nothing to undo in this session".into()));
            return Ok(());
        };
        let done = u.apply(&self.store, &self.rater)?;
        match (s.screen, done.conversation) {
            (state::Screen::Chat, Some(c)) => self.open(c, out)?,
            _ => out.push(Action::ListLoaded(self.list(&s.list_filter)?)),
        }
        out.push(Action::Notice(done.said));
        Ok(())
    }

    /// The conversation list under the filter: by tag, and by full-text search over every
    /// message (conversations in order of activity, those with a match).
    fn list(&self, f: &state::ListFilter) -> Result<Vec<ConversationSummary>> {
        if f.trash {
            return Ok(self.store.trash()?.into_iter().map(trash_row).collect());
        }
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

#[cfg(test)]
mod tests {
    //! The effect runner without a terminal: an in-memory store and a fake backend that
    //! answers every prompt with the same words, one token at a time.
    use super::*;
    use crate::engine::{Backend, ModelInfo, Sink};
    use crate::tui::testing::key;
    use crossterm::event::KeyCode;
    use std::sync::mpsc;
    use std::time::Duration;

    struct Echo;

    impl Backend for Echo {
        fn info(&self) -> ModelInfo {
            ModelInfo {
                name: "echo".into(),
                path: String::new(),
                architecture: "fake".into(),
                context: 512,
                template: "none".into(),
                threads: 1,
            }
        }
        fn render(
            &mut self,
            _req: &GenRequest,
        ) -> std::result::Result<(String, u32), crate::engine::EngineError> {
            Ok((String::new(), 0))
        }
        fn generate(&mut self, req: &GenRequest, sink: &Sink) {
            for seq in 0..req.k {
                for piece in ["hello", " ", "world"] {
                    sink(EngineEvent::Token {
                        id: req.id,
                        seq,
                        text: piece.into(),
                    });
                }
                sink(EngineEvent::Done {
                    id: req.id,
                    seq,
                    facts: GenerationFacts {
                        generated_tokens: 3,
                        stop_reason: "stop".into(),
                        ..Default::default()
                    },
                });
            }
        }
    }

    fn runtime() -> (Runtime, mpsc::Receiver<EngineEvent>) {
        let (tx, rx) = mpsc::channel();
        let sink: Sink = std::sync::Arc::new(move |e| {
            let _ = tx.send(e);
        });
        let engine = Engine::spawn(|_| Ok(Box::new(Echo) as Box<dyn Backend>), sink);
        let store = Store::open_in_memory().unwrap();
        let rt = Runtime::new(store, engine, "me".into(), Default::default());
        (rt, rx)
    }

    /// Feeds engine events to the runtime and the state until a request is done.
    fn pump(rt: &mut Runtime, s: &mut State, rx: &mpsc::Receiver<EngineEvent>) {
        loop {
            let e = rx.recv_timeout(Duration::from_secs(10)).expect("an event");
            let done = matches!(e, EngineEvent::Done { .. } | EngineEvent::Error { .. });
            rt.record(&e).unwrap();
            rt.dispatch(s, Action::Engine(e));
            if done {
                return;
            }
        }
    }

    fn sent(rt: &mut Runtime, s: &mut State, rx: &mpsc::Receiver<EngineEvent>) -> Vec<Action> {
        let ready = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(ready, EngineEvent::Ready(_)), "{ready:?}");
        rt.dispatch(s, Action::Engine(ready));
        state::start_new(s, "Be brief.".into(), None);
        let actions = rt.perform(
            Effect::Send {
                conv: None,
                parent: None,
                text: "hi".into(),
            },
            s,
        );
        for a in actions.clone() {
            rt.dispatch(s, a);
        }
        actions
    }

    #[test]
    fn send_creates_the_conversation_then_streams_and_records_the_answer() {
        let (mut rt, rx) = runtime();
        let mut s = State::new(String::new(), "me".into());
        let actions = sent(&mut rt, &mut s, &rx);
        let answer = match actions.as_slice() {
            [Action::Started { node, .. }, Action::PathLoaded(conv, path)] => {
                assert_eq!(conv.system_prompt, "Be brief.");
                assert_eq!(conv.title, "hi");
                assert_eq!(path.len(), 2);
                assert_eq!(path[1].node.status, Status::Streaming);
                *node
            }
            other => panic!("{other:?}"),
        };
        pump(&mut rt, &mut s, &rx);
        let n = rt.store.node(answer).unwrap();
        assert_eq!(
            (n.content.as_str(), n.status),
            ("hello world", Status::Complete)
        );
        // The Done reloaded the conversation: the state shows what the store holds.
        assert_eq!(s.path.last().unwrap().node.content, "hello world");
        assert!(s.streaming.is_none());
    }

    #[test]
    fn a_rating_reloads_the_open_conversation_with_its_stars() {
        let (mut rt, rx) = runtime();
        let mut s = State::new(String::new(), "me".into());
        sent(&mut rt, &mut s, &rx);
        pump(&mut rt, &mut s, &rx);
        let answer = s.path[1].node.id;
        let actions = rt.perform(Effect::Rate(answer, Some(4)), &s);
        match actions.as_slice() {
            [Action::PathLoaded(_, path)] => assert_eq!(path[1].stars, Some(4)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            rt.store.rating(answer, "me").unwrap().unwrap().stars,
            Some(4)
        );
    }

    #[test]
    fn u_takes_back_ratings_tags_and_branch_changes_newest_first() {
        let (mut rt, rx) = runtime();
        let mut s = State::new(String::new(), "me".into());
        sent(&mut rt, &mut s, &rx);
        pump(&mut rt, &mut s, &rx);
        let answer = s.path[1].node.id;
        // Out of the composer (Esc), on the answer.
        rt.dispatch(&mut s, key(KeyCode::Esc));
        assert!(!s.composing);
        rt.dispatch(&mut s, key(KeyCode::Char('4')));
        rt.dispatch(&mut s, key(KeyCode::Char('2')));
        rt.perform(Effect::Tag(answer, "x".into()), &s);
        // Saving an edit makes a sibling and moves the path to it.
        rt.perform(
            Effect::SaveEdit {
                node: answer,
                text: "better".into(),
                answer: false,
                tool_calls: None,
            },
            &s,
        );
        assert_eq!(rt.store.siblings(answer).unwrap().len(), 2);
        let undo = |rt: &mut Runtime, s: &mut State| {
            rt.dispatch(s, key(KeyCode::Char('u')));
            s.message.clone().unwrap_or_default()
        };
        let m = undo(&mut rt, &mut s);
        assert!(m.contains("undid the edit"), "{m} {:?}", s.screen);
        assert_eq!(rt.store.siblings(answer).unwrap().len(), 1);
        assert_eq!(s.path[1].node.id, answer);
        assert!(undo(&mut rt, &mut s).contains("undid adding #x"));
        assert!(!rt.store.has_tag(answer, "me", "x").unwrap());
        assert!(undo(&mut rt, &mut s).contains("back to 4★"));
        assert_eq!(s.path[1].stars, Some(4));
        assert!(undo(&mut rt, &mut s).contains("unrated again"));
        assert_eq!(rt.store.rating(answer, "me").unwrap(), None);
        assert!(undo(&mut rt, &mut s).contains("nothing to undo"));
    }

    #[test]
    fn copy_puts_the_text_on_the_clipboard_and_says_so() {
        let (mut rt, _rx) = runtime();
        let s = State::new(String::new(), "me".into());
        let actions = rt.perform(
            Effect::Copy {
                text: "héllo".into(),
                what: "message 2".into(),
            },
            &s,
        );
        match actions.as_slice() {
            [Action::Notice(m)] => {
                assert_eq!(m, "copied message 2 to the clipboard (5 characters)")
            }
            other => panic!("{other:?}"),
        }
        match &rt.clipboard {
            Clipboard::Memory(v) => assert_eq!(v, &["héllo".to_string()]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn loads_run_in_place_without_a_worker() {
        let (mut rt, rx) = runtime();
        let mut s = State::new(String::new(), "me".into());
        sent(&mut rt, &mut s, &rx);
        pump(&mut rt, &mut s, &rx);
        let conv = s.conv.as_ref().unwrap().id;
        match rt.perform(Effect::LoadTree(conv), &s).as_slice() {
            [Action::TreeLoaded(rows)] => {
                let graphs: Vec<&str> = rows.iter().map(|r| r.graph.as_str()).collect();
                assert_eq!(graphs, ["└─ ", "   └─ "]);
                assert!(rows.iter().all(|r| r.active));
            }
            other => panic!("{other:?}"),
        }
        match rt.perform(Effect::LoadJobs(None), &s).as_slice() {
            [Action::JobsLoaded(v)] => assert!(v.rows.is_empty()),
            other => panic!("{other:?}"),
        }
    }
}
