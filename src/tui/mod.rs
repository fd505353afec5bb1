//! The studio. `state` (what is on screen), `update` (keys and results in, effects
//! out; pure), `view` (drawing; pure), `screens/` (each screen's part of all three),
//! `runtime` (the effects carried out), `worker` (loads and tasks off the event loop);
//! `run` here is the event loop that ties them to the terminal.

pub mod base;
pub mod effect;
pub mod keymap;
pub mod layout;
pub mod runtime;
pub mod screens;
pub mod term;
#[cfg(test)]
mod testing;
pub mod theme;
pub mod undo;
pub mod update;
pub mod widgets;
pub mod worker;
pub use runtime::{load_path, Runtime, Setup, LAST_CONVERSATION};
pub use screens::review;
pub use term::init_terminal;

pub mod state;
pub mod view;

use crate::app::Env;
use crate::chat::{self};
use crate::domain::*;
use crate::engine::{Engine, EngineEvent, Sink};
use anyhow::Result;
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use state::{Action, Effect, State};
use std::sync::Arc;

/// Where the studio opens.
pub enum Start {
    List,
    /// The review queue over these answers.
    Review(Vec<crate::eval::queue::QueueItem>),
    New {
        system: String,
        tools: Option<serde_json::Value>,
    },
}

/// Runs `$VISUAL` (else `$EDITOR`, else `vi`) on `text` in a temporary file, with the
/// terminal handed back to it; the file's text when it exits successfully.
fn edit_externally(text: &str) -> std::result::Result<String, String> {
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".into());
    let run = || -> std::result::Result<String, String> {
        let mut argv =
            shell_words::split(&editor).map_err(|e| format!("$EDITOR {editor:?}: {e}"))?;
        if argv.is_empty() {
            return Err("$EDITOR is empty".into());
        }
        let file = tempfile::Builder::new()
            .prefix("arbor-message-")
            .suffix(".md")
            .tempfile()
            .map_err(|e| format!("a temporary file: {e}"))?;
        std::fs::write(file.path(), text).map_err(|e| format!("{}: {e}", file.path().display()))?;
        argv.push(file.path().display().to_string());
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .map_err(|e| format!("could not run {}: {e}", argv[0]))?;
        if !status.success() {
            return Err(format!("{editor} exited with {status}"));
        }
        std::fs::read_to_string(file.path()).map_err(|e| format!("{}: {e}", file.path().display()))
    };
    run()
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
    theme::set(
        theme::Theme::load(env.config.theme.as_deref(), &env.paths.theme_file())
            .map_err(|e| crate::app::Exit(2, format!("theme: {e}")))?,
    );
    let llama = match &opts {
        Ok(crate::app::EngineChoice::Llama(o)) => Some(o.clone()),
        _ => None,
    };
    let setup = Setup {
        paths: env.paths.clone(),
        db: env.db.clone(),
        model: env.model.clone(),
        started_with: env.model.clone(),
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
            Engine::spawn(move |_| Err(msg.into()), sink)
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
    runtime.clipboard = runtime::Clipboard::Terminal;
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
        Start::Review(items) => {
            let judge = runtime.judge_summary();
            runtime.dispatch(&mut state, Action::QueueLoaded(items, judge))
        }
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
                    Some(Ok(Event::Key(k))) => {
                        runtime.dispatch(&mut state, Action::Key(k));
                        if let Some((node, before)) = runtime.external_edit.take() {
                            // The editor gets the terminal, and the keys: no reader of ours
                            // may stay on standard input meanwhile.
                            drop(events);
                            let after = edit_externally(&before);
                            terminal = init_terminal()?;
                            crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)?;
                            terminal.clear()?;
                            events = EventStream::new();
                            runtime.dispatch(&mut state, Action::EditedExternally { node, before, after });
                        }
                        dirty = true;
                    }
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
    // The conversation's KV state is written after its last answer: wait for it (not for
    // a model still loading: nothing was answered on it).
    if matches!(state.model, state::ModelState::Ready(_)) {
        runtime.engine.shutdown();
    }
    result?;
    Ok(0)
}
