//! The studio: a runtime that carries out the effects `update` asks for against the
//! store and the engine, and feeds the results back as actions.

pub mod base;
pub mod effect;
pub mod keymap;
pub mod layout;
pub mod runtime;
pub mod screens;
#[cfg(test)]
mod testing;
pub mod update;
pub mod widgets;
pub mod worker;
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
use crate::chat::{self};
use crate::domain::*;
use crate::engine::{Engine, EngineEvent, Sink};
use crate::store::Store;
use anyhow::Result;
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
pub use runtime::Runtime;
use state::{Action, Effect, NodeView, State};
use std::sync::Arc;

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
    runtime.worker = Some(worker::Worker::spawn(
        runtime.store.path(),
        runtime.worker_context(),
        bg_tx,
    )?);
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
