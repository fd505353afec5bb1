//! Work off the event loop (gitui's asyncgit idea). Loads are latest-wins per kind: of
//! the Export dialog's counts, the Jobs view's refreshes, the tree view's and the model
//! picker's loads waiting, only the newest of each kind is served, since the view shows nothing older.
//! Tasks (an export written, a training job cancelled) are all done, in order, on a
//! thread of their own, so a trainer's grace period never holds up a load. Each thread
//! has its own connection (`Store::open_again`: no migration, no crash recovery); results
//! come back to the event loop as actions.
//!
//! Without a worker (the runtime's unit tests) the same functions run in place.

use super::state::{Action, ExportPreview, JobRow, JobsView, ModelItem, TreeRow};
use crate::domain::*;
use crate::store::Store;
use anyhow::Result;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A read for a view; a newer one of the same kind replaces it while it waits.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// The Export dialog's dry run.
    ExportCount {
        format: crate::dataset::Format,
        min_rating: Option<u8>,
    },
    /// The Jobs view, with the selected job's metrics and log.
    Jobs(Option<i64>),
    /// The tree view of a conversation.
    Tree(ConversationId),
    /// The model picker: every model on this machine (a directory walk and a GGUF header
    /// per model), `given` files first where no store holds them, `current` marked.
    Models {
        models_dir: PathBuf,
        model_dirs: Vec<PathBuf>,
        given: Vec<PathBuf>,
        current: Option<PathBuf>,
    },
}

impl Load {
    fn same_kind(&self, other: &Load) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// Work that is never dropped.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Write the export into the exports folder.
    ExportWrite {
        format: crate::dataset::Format,
        min_rating: Option<u8>,
    },
    /// Stop a training job (SIGTERM, the grace period, SIGKILL).
    CancelJob { id: i64, grace: Duration },
}

/// The one-line summary of each finished eval run the Jobs view shows (it reloads every
/// second; a finished run's report only changes with a blind verdict, which forgets it).
pub type EvalLines = Arc<Mutex<HashMap<i64, String>>>;

/// What loads need besides the store.
#[derive(Clone)]
pub struct Context {
    pub rater: String,
    pub exports_dir: PathBuf,
    pub eval_lines: EvalLines,
}

/// The two background threads.
pub struct Worker {
    loads: mpsc::Sender<Load>,
    tasks: mpsc::Sender<Task>,
}

impl Worker {
    pub fn spawn(
        db: &Path,
        cx: Context,
        results: tokio::sync::mpsc::UnboundedSender<Action>,
    ) -> std::io::Result<Self> {
        let (loads, loads_rx) = mpsc::channel::<Load>();
        let (tasks, tasks_rx) = mpsc::channel::<Task>();
        let (db1, cx1, out1) = (db.to_path_buf(), cx.clone(), results.clone());
        std::thread::Builder::new()
            .name("arbor-loads".into())
            .spawn(move || {
                let Some(store) = open(&db1, &out1) else {
                    return;
                };
                while let Ok(first) = loads_rx.recv() {
                    for l in newest_of_each_kind(first, &loads_rx) {
                        if out1.send(load(&store, &cx1, l)).is_err() {
                            return;
                        }
                    }
                }
            })?;
        let db2 = db.to_path_buf();
        std::thread::Builder::new()
            .name("arbor-tasks".into())
            .spawn(move || {
                let Some(store) = open(&db2, &results) else {
                    return;
                };
                for t in tasks_rx {
                    if let Some(a) = task(&store, &cx, t) {
                        if results.send(a).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok(Self { loads, tasks })
    }

    /// Hands `job` to its thread; `false` when the worker is gone.
    pub fn send(&self, job: Job) -> bool {
        match job {
            Job::Load(l) => self.loads.send(l).is_ok(),
            Job::Task(t) => self.tasks.send(t).is_ok(),
        }
    }
}

/// A load or a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Load(Load),
    Task(Task),
}

/// Serves a job in place (the runtime without a worker).
pub fn serve(store: &Store, cx: &Context, job: Job) -> Option<Action> {
    match job {
        Job::Load(l) => Some(load(store, cx, l)),
        Job::Task(t) => task(store, cx, t),
    }
}

fn open(db: &Path, results: &tokio::sync::mpsc::UnboundedSender<Action>) -> Option<Store> {
    match Store::open_again(db) {
        Ok(s) => Some(s),
        Err(e) => {
            let _ = results.send(Action::Error(format!("background work: {e}")));
            None
        }
    }
}

/// `first` and whatever else waits, keeping only the newest load of each kind (in the
/// order those newest ones were asked for).
pub fn newest_of_each_kind(first: Load, waiting: &mpsc::Receiver<Load>) -> Vec<Load> {
    let all: Vec<Load> = std::iter::once(first).chain(waiting.try_iter()).collect();
    let mut keep: Vec<Load> = Vec::new();
    for l in all.into_iter().rev() {
        if !keep.iter().any(|k| k.same_kind(&l)) {
            keep.push(l);
        }
    }
    keep.reverse();
    keep
}

/// Serves one load (on the worker, or in place).
pub fn load(store: &Store, cx: &Context, l: Load) -> Action {
    let result = match l {
        Load::ExportCount { format, min_rating } => {
            return export_action(store, &cx.exports_dir, format, min_rating, false)
        }
        Load::Jobs(sel) => jobs_view(store, cx, sel).map(Action::JobsLoaded),
        Load::Tree(conv) => tree(store, &cx.rater, conv).map(Action::TreeLoaded),
        Load::Models {
            models_dir,
            model_dirs,
            given,
            current,
        } => Ok(Action::ModelsLoaded(model_items(
            models_dir, model_dirs, &given, current,
        ))),
    };
    result.unwrap_or_else(|e| Action::Error(format!("{e:#}")))
}

/// The picker's rows: what `arbor models` lists, each described, the one in use marked.
fn model_items(
    models_dir: PathBuf,
    model_dirs: Vec<PathBuf>,
    given: &[PathBuf],
    current: Option<PathBuf>,
) -> Vec<ModelItem> {
    let roots = crate::models::Roots::from_env(models_dir, model_dirs);
    let given: Vec<&Path> = given.iter().map(PathBuf::as_path).collect();
    crate::models::discover_with(&roots, &given)
        .into_iter()
        .map(|f| {
            let (detail, loadable) = crate::models::describe(&f);
            ModelItem {
                in_use: current
                    .as_ref()
                    .is_some_and(|c| crate::models::same_file(c, &f.path)),
                name: f.name,
                source: f.source.into(),
                path: f.path,
                detail,
                loadable,
            }
        })
        .collect()
}

/// Does one task (on the worker, or in place).
pub fn task(store: &Store, cx: &Context, t: Task) -> Option<Action> {
    match t {
        Task::ExportWrite { format, min_rating } => Some(export_action(
            store,
            &cx.exports_dir,
            format,
            min_rating,
            true,
        )),
        Task::CancelJob { id, grace } => match crate::train::cancel(store, id, grace) {
            Ok(_) => None,
            Err(e) => Some(Action::Error(format!("job {id}: {e:#}"))),
        },
    }
}

/// A run's one-line summary, computed once the run is done.
fn eval_line(store: &Store, lines: &EvalLines, run: i64) -> Result<String> {
    if let Some(l) = lines.lock().unwrap_or_else(|p| p.into_inner()).get(&run) {
        return Ok(l.clone());
    }
    let r = crate::eval::report::report(store, run, None)?;
    let line = r.summary_line();
    if r.status == "done" {
        lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run, line.clone());
    }
    Ok(line)
}

/// The Jobs view's contents: every job with its progress, and the selected one's
/// metrics and log tail.
fn jobs_view(store: &Store, cx: &Context, selected: Option<i64>) -> Result<JobsView> {
    let mut rows = Vec::new();
    for job in store.jobs()? {
        let metrics = store.job_metrics(job.id)?;
        rows.push(JobRow {
            progress: crate::train::progress(&job, &metrics),
            adapter: store.adapter_of_job(job.id)?.map(|a| a.name),
            job,
        });
    }
    let sel = selected
        .and_then(|id| rows.iter().position(|r| r.job.id == id))
        .unwrap_or(0);
    let eval = match rows.get(sel) {
        Some(r) => match store.job_eval_run(r.job.id)? {
            Some(run) => Some(eval_line(store, &cx.eval_lines, run)?),
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
                store.job_metrics(r.job.id)?,
                log.lines().map(str::to_string).collect(),
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(JobsView {
        rows,
        sel,
        metrics,
        log,
        eval,
    })
}

/// The tree view's rows: every message of the conversation depth-first (children
/// oldest first), drawn like `git log --graph`, with this rater's stars.
fn tree(store: &Store, rater: &str, conv: ConversationId) -> Result<Vec<TreeRow>> {
    let c = store.conversation(conv)?;
    let nodes = store.conversation_nodes(conv)?;
    let stars = store.conversation_stars(conv, rater)?;
    let active: HashSet<NodeId> = store.active_path(conv)?.iter().map(|n| n.id).collect();
    let tree = crate::tree::Tree::new(&c, &nodes);
    Ok(tree
        .outline()
        .into_iter()
        .map(|(i, graph)| {
            let n = &nodes[i];
            TreeRow {
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

/// The Export dialog: a dry run for its counts, or the export written to the
/// exports folder (same code as `arbor export`).
fn export_action(
    store: &Store,
    exports_dir: &Path,
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
        Ok(r) => Action::ExportPreviewed(ExportPreview {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_load_of_each_kind_is_served() {
        let (tx, rx) = mpsc::channel();
        for l in [
            Load::Jobs(Some(1)),
            Load::Tree(4),
            Load::Jobs(Some(2)),
            Load::Jobs(Some(3)),
        ] {
            tx.send(l).unwrap();
        }
        let first = rx.recv().unwrap();
        assert_eq!(
            newest_of_each_kind(first, &rx),
            vec![Load::Tree(4), Load::Jobs(Some(3))]
        );
    }
}
