//! The pure heart of the studio: `update(state, action) -> effects`. No IO here: effects
//! are data the runtime carries out. Keys go to the top overlay, else to the screen.

use super::effect::Next;
use super::keymap::Context;
use super::layout;
use super::screens::{self, *};
use super::state::*;
use crate::domain::*;
use crate::engine::EngineEvent;
use crossterm::event::{KeyEvent, KeyEventKind};

/// The pure heart of the studio.
pub fn update(s: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Key(k) if k.kind == KeyEventKind::Release => vec![],
        Action::Key(k) => on_key(s, k),
        Action::Engine(e) => on_engine(s, e),
        Action::ListLoaded(list) => {
            s.list_sel = s.list_sel.min(list.len().saturating_sub(1));
            s.conversations = list;
            vec![]
        }
        Action::PathLoaded(conv, path) => {
            let keep_sel = s.conv.as_ref().map(|c| c.id) == Some(conv.id);
            s.conv = Some(conv);
            s.pending_new = None;
            s.screen = Screen::Chat;
            s.path = path;
            if s.path.is_empty() {
                s.sel = None;
                s.composing = true;
            } else if let Some(i) = s
                .select_after_load
                .take()
                .and_then(|id| s.path.iter().position(|v| v.node.id == id))
            {
                s.composing = false;
                s.sel = Some(i);
                // `e` in the review queue: the editor on that answer.
                if let Some(id) = s
                    .edit_after_load
                    .take()
                    .filter(|id| *id == s.path[i].node.id)
                {
                    let o = Overlay::Edit(id, screens::edit::editor(&s.path[i].node));
                    s.open(o);
                }
            } else if !keep_sel || s.sel.is_none_or(|i| i >= s.path.len()) {
                s.sel = if s.composing {
                    None
                } else {
                    Some(s.path.len() - 1)
                };
            }
            vec![]
        }
        Action::CompareStarted {
            nodes,
            slots,
            labels,
        } => {
            if let Some(c) = s.compare_mut() {
                c.slots = slots;
                c.labels = labels;
                c.texts = vec![String::new(); nodes.len()];
                c.done = vec![false; nodes.len()];
                c.stars = vec![None; nodes.len()];
                c.nodes = nodes;
            }
            vec![]
        }
        Action::EvalsLoaded(runs) => {
            if s.evals().is_none() {
                s.open(Overlay::Evals(EvalsView::default()));
            }
            if let Some(v) = s.evals_mut() {
                v.sel = v.sel.min(runs.len().saturating_sub(1));
                v.runs = runs;
            }
            vec![]
        }
        Action::QueueLoaded(items, judge) => {
            if items.is_empty() {
                s.message =
                    Some("nothing to review: every answer is rated, and no judge disagrees".into());
                return vec![];
            }
            let mut q = screens::queue::QueueView::new(items);
            q.judge = judge;
            let e = q.load();
            s.close_where(|o| matches!(o, Overlay::Queue(_)));
            s.open(Overlay::Queue(Box::new(q)));
            e
        }
        Action::QueueItemLoaded(conv, path) => {
            if let Some(q) = s.queue_mut() {
                if q.current().map(|i| i.answer) == path.last().map(|v| v.node.id) {
                    q.conv = Some(conv);
                    q.path = path;
                }
            }
            vec![]
        }
        Action::ReviewLoaded(r) => {
            if r.items.is_empty() {
                s.message = Some(format!(
                    "run {}: nothing to review (it needs two candidates with finished answers)",
                    r.run
                ));
            } else {
                s.open(Overlay::Review(r));
            }
            vec![]
        }
        Action::JobsLoaded(mut v) => {
            let keep = s.jobs().and_then(|j| j.selected()).map(|r| r.job.id);
            v.sel = keep
                .and_then(|id| v.rows.iter().position(|r| r.job.id == id))
                .unwrap_or(0);
            // Loads arrive from the worker: one for a view closed meanwhile is dropped.
            if let Some(j) = s.jobs_mut() {
                *j = v;
            }
            vec![]
        }
        Action::Tick => match s.jobs() {
            Some(j) => vec![Effect::LoadJobs(j.selected().map(|r| r.job.id))],
            None => vec![],
        },
        Action::ModelsLoaded(items) => {
            if let Some(Overlay::Models(v)) = s
                .overlays
                .iter_mut()
                .find(|o| matches!(o, Overlay::Models(_)))
            {
                v.sel = items.iter().position(|m| m.in_use).unwrap_or(0);
                v.items = Some(items);
            }
            vec![]
        }
        Action::ModelSwitched => {
            // The status line follows the load, then shows the new model's name.
            s.model = ModelState::Loading(0.0);
            s.message = None;
            s.adapter = None;
            vec![]
        }
        Action::AdapterAttached(a) => {
            s.message = Some(match &a {
                Some((name, scale)) => {
                    format!("chatting with adapter {name} ×{scale}; B compares base vs tuned")
                }
                None => "chatting with the base model".into(),
            });
            s.adapter = a;
            vec![]
        }
        Action::TreeLoaded(rows) => {
            let sel = rows.iter().rposition(|r| r.active).unwrap_or(0);
            // The view opened (empty) with the key; closed meanwhile, the rows are dropped.
            if let Some(t) = s.tree_mut() {
                *t = TreeView { rows, sel };
            }
            vec![]
        }
        Action::Started { node, request } => {
            s.streaming = Some(Streaming {
                request: Some(request),
                node_id: node,
                tokens_per_s: 0.0,
            });
            vec![]
        }
        Action::EditedExternally {
            node,
            before,
            after,
        } => match after {
            Err(e) => {
                s.message = Some(format!("not saved — {e}"));
                vec![]
            }
            Ok(text) if text.trim_end() == before.trim_end() => {
                s.message = Some("no change in the editor; nothing saved".into());
                vec![]
            }
            Ok(text) => match screens::edit::save(node, text.trim_end().to_string(), &s.base) {
                None => vec![],
                Some(Ok(e)) => vec![e],
                Some(Err(m)) => {
                    s.message = Some(m);
                    vec![]
                }
            },
        },
        Action::Error(m) | Action::Notice(m) => {
            s.message = Some(m);
            vec![]
        }
        Action::ExportPreviewed(p) => {
            if let Some(d) = s.export_mut() {
                d.preview = Some(p);
            }
            vec![]
        }
        Action::ExportWritten(m) => {
            if let Some(d) = s.export_mut() {
                d.result = Some(m);
            }
            vec![]
        }
        Action::Resize(w, h) => {
            s.size = (w, h);
            vec![]
        }
        Action::Mouse(m) => on_mouse(s, m),
    }
}

fn on_engine(s: &mut State, e: EngineEvent) -> Vec<Effect> {
    match e {
        EngineEvent::Loading { progress } => {
            s.model = ModelState::Loading(progress);
            vec![]
        }
        EngineEvent::Ready(info) => {
            s.model = ModelState::Ready(info);
            vec![]
        }
        EngineEvent::LoadFailed(m) => {
            s.message = Some(format!("model failed to load: {m}"));
            s.model = ModelState::Failed(m);
            vec![]
        }
        EngineEvent::Prompt {
            tokens,
            dropped_messages,
            ..
        } => {
            s.context_used = Some(tokens);
            if dropped_messages > 0 {
                s.message = Some(format!(
                    "{dropped_messages} old messages left out to fit the context"
                ));
            }
            vec![]
        }
        EngineEvent::Token { id, seq, text }
            if s.compare().and_then(|c| c.slot(id, seq)).is_some() =>
        {
            if let Some(c) = s.compare_mut() {
                if let Some(i) = c.slot(id, seq) {
                    c.texts[i].push_str(&text);
                }
            }
            vec![]
        }
        EngineEvent::Token { seq: 0, text, .. } => {
            if let Some(st) = &s.streaming {
                let id = st.node_id;
                if let Some(v) = s.path.iter_mut().find(|v| v.node.id == id) {
                    v.node.content.push_str(&text);
                }
            }
            if let Some(used) = &mut s.context_used {
                *used += 1;
            }
            vec![]
        }
        EngineEvent::Token { .. } => vec![],
        EngineEvent::Done { id, seq, .. }
            if s.compare().and_then(|c| c.slot(id, seq)).is_some() =>
        {
            if let Some(c) = s.compare_mut() {
                if let Some(i) = c.slot(id, seq) {
                    c.done[i] = true;
                }
                if c.generating() {
                    return vec![];
                }
            }
            s.streaming = None;
            s.conv
                .as_ref()
                .map(|c| vec![Effect::Open(c.id)])
                .unwrap_or_default()
        }
        EngineEvent::Done { seq, facts, .. } => {
            if seq == 0 {
                s.last_tps = Some(facts.tokens_per_s);
                if let Some(st) = s.streaming.take() {
                    if let Some(v) = s.path.iter_mut().find(|v| v.node.id == st.node_id) {
                        v.node.status = if facts.stop_reason == "cancelled" {
                            Status::Interrupted
                        } else {
                            Status::Complete
                        };
                        v.node.tokens_per_s = Some(facts.tokens_per_s);
                    }
                }
                if let Some(c) = &s.conv {
                    return vec![Effect::Open(c.id)];
                }
            }
            vec![]
        }
        EngineEvent::Error { message, .. } => {
            s.streaming = None;
            if let Some(c) = s.compare_mut() {
                c.done.iter_mut().for_each(|d| *d = true);
            }
            s.message = Some(message);
            s.conv
                .as_ref()
                .map(|c| vec![Effect::Open(c.id)])
                .unwrap_or_default()
        }
    }
}

fn on_key(s: &mut State, k: KeyEvent) -> Vec<Effect> {
    s.message = None;
    let ctx = s.key_context();
    let cmd = s.keymap.lookup(ctx, &k);
    let State { base, overlays } = s;
    if let Some(top) = overlays.last_mut() {
        let (next, effects) = match top {
            Overlay::Help => screens::help::on_key(&mut base.help_scroll, k),
            Overlay::Confirm(c) => screens::prompt::on_confirm(c, base, k),
            Overlay::Prompt(p, t) => screens::prompt::on_key(p, t, base, k),
            Overlay::Edit(node, t) => screens::edit::on_key(*node, t, base, cmd, k),
            Overlay::Settings(d) => screens::settings::on_key(d, base, cmd, k),
            Overlay::Export(d) => screens::export::on_key(d, cmd),
            Overlay::Presets(i) => screens::presets::on_key(i, base, cmd),
            Overlay::Models(v) => screens::models::on_key(v, base, cmd),
            Overlay::Tree(t) => screens::tree::on_key(t, base, cmd),
            Overlay::Compare(c) => screens::compare::on_key(c, base, cmd),
            Overlay::Jobs(j) => screens::jobs::on_key(j, base, cmd),
            Overlay::Evals(v) => screens::evals::on_key(v, cmd),
            Overlay::Review(r) => screens::review::on_cmd(r, cmd),
            Overlay::Queue(q) => screens::queue::on_key(q, base, cmd),
        };
        // A prompt the queue asked for (critique, tags) opens over it.
        let prompt = match overlays.last_mut() {
            Some(Overlay::Queue(q)) if next == Next::Stay => q.prompt.take(),
            _ => None,
        };
        if let Some(p) = prompt {
            let hint = match p {
                screens::Prompt::Tag(_) => "tags, e.g. clarification tool-call",
                _ => "critique, Enter saves",
            };
            overlays.push(Overlay::Prompt(p, crate::tui::base::textarea(hint)));
        }
        match next {
            Next::Stay => {}
            Next::Close => {
                overlays.pop();
            }
            Next::Help => {
                base.help_scroll = 0;
                overlays.push(Overlay::Help)
            }
        }
        return effects;
    }
    match ctx {
        Context::List => screens::list::on_key(s, cmd),
        Context::Compose => screens::compose::on_key(s, cmd, k),
        _ => screens::chat::on_key(s, cmd),
    }
}

/// Mouse: the wheel moves the selection, a click selects what is under it.
fn on_mouse(s: &mut State, m: crossterm::event::MouseEvent) -> Vec<Effect> {
    use crossterm::event::{MouseButton, MouseEventKind};
    let step: isize = match m.kind {
        MouseEventKind::ScrollDown => 1,
        MouseEventKind::ScrollUp => -1,
        MouseEventKind::Down(MouseButton::Left) => 0,
        _ => return vec![],
    };
    let moved =
        |i: usize, n: usize| (i as isize + step).clamp(0, n.saturating_sub(1) as isize) as usize;
    match s.key_context() {
        Context::List if step == 0 => {
            if let Some(i) = layout::list_hit(&s.base, s.size, m.row) {
                s.list_sel = i;
            }
        }
        Context::List => s.list_sel = moved(s.list_sel, s.conversations.len()),
        Context::Chat | Context::Compose if step == 0 => {
            if let Some(i) = layout::chat_hit(&s.base, s.size, m.column, m.row) {
                s.composing = false;
                s.sel = Some(i);
            }
        }
        Context::Chat | Context::Compose if !s.path.is_empty() => {
            s.composing = false;
            let cur = s.sel.unwrap_or(s.path.len() - 1);
            s.sel = Some(moved(cur, s.path.len()));
        }
        Context::Tree => {
            if let Some(t) = s.tree_mut() {
                t.sel = moved(t.sel, t.rows.len());
            }
        }
        Context::Jobs => {
            if let Some(j) = s.jobs_mut() {
                j.sel = moved(j.sel, j.rows.len());
                return vec![Effect::LoadJobs(j.selected().map(|r| r.job.id))];
            }
        }
        Context::Presets => {
            let n = s.presets.len();
            if let Some(p) = s.picker_mut() {
                *p = moved(*p, n);
            }
        }
        _ => {}
    }
    vec![]
}

#[cfg(test)]
mod tests {
    use crate::engine::EngineEvent;

    use crate::domain::*;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;
    use crossterm::event::{KeyCode, KeyModifiers};

    #[test]
    fn streaming_tokens_land_on_the_answer_and_escape_cancels() {
        let mut s = open_chat();
        update(
            &mut s,
            Action::Started {
                node: 2,
                request: 7,
            },
        );
        update(
            &mut s,
            Action::Engine(EngineEvent::Token {
                id: 7,
                seq: 0,
                text: " there".into(),
            }),
        );
        assert_eq!(s.path[1].node.content, "hello there");
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![Effect::Cancel]);
        let facts = GenerationFacts {
            stop_reason: "cancelled".into(),
            tokens_per_s: 12.5,
            ..Default::default()
        };
        let eff = update(
            &mut s,
            Action::Engine(EngineEvent::Done {
                id: 7,
                seq: 0,
                facts,
            }),
        );
        assert_eq!(eff, vec![Effect::Open(1)]);
        assert!(s.streaming.is_none());
        assert_eq!(s.path[1].node.status, Status::Interrupted);
        assert_eq!(s.last_tps, Some(12.5));
    }

    #[test]
    fn a_load_that_arrives_after_its_view_closed_is_dropped() {
        let mut s = open_chat();
        update(&mut s, key(KeyCode::Char('J')));
        update(&mut s, key(KeyCode::Esc));
        update(&mut s, Action::JobsLoaded(Default::default()));
        assert!(s.jobs().is_none());
        update(&mut s, key(KeyCode::Char('T')));
        assert_eq!(s.key_context(), crate::tui::keymap::Context::Tree);
        update(&mut s, key(KeyCode::Esc));
        update(&mut s, Action::TreeLoaded(Vec::new()));
        assert!(s.tree().is_none());
        assert_eq!(s.key_context(), crate::tui::keymap::Context::Chat);
    }

    #[test]
    fn the_mouse_wheel_moves_and_a_click_selects() {
        use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
        let mouse = |kind, column, row| {
            Action::Mouse(MouseEvent {
                kind,
                column,
                row,
                modifiers: KeyModifiers::NONE,
            })
        };
        let mut s = open_chat();
        update(&mut s, Action::Resize(80, 24));
        assert_eq!(s.sel, Some(1));
        // Rows: 0 title, 1 "you #1", 2 "hi", 3 blank, 4 "assistant #2".
        update(
            &mut s,
            mouse(MouseEventKind::Down(MouseButton::Left), 10, 2),
        );
        assert_eq!(s.sel, Some(0));
        update(&mut s, mouse(MouseEventKind::ScrollDown, 5, 5));
        assert_eq!(s.sel, Some(1));
        update(&mut s, mouse(MouseEventKind::ScrollDown, 5, 5));
        assert_eq!(s.sel, Some(1));
        update(&mut s, mouse(MouseEventKind::ScrollUp, 5, 5));
        assert_eq!(s.sel, Some(0));
        update(&mut s, mouse(MouseEventKind::ScrollDown, 5, 5));
        update(
            &mut s,
            mouse(MouseEventKind::Down(MouseButton::Left), 10, 4),
        );
        assert_eq!(s.sel, Some(1));
        // Below the last message: nothing changes.
        update(
            &mut s,
            mouse(MouseEventKind::Down(MouseButton::Left), 10, 20),
        );
        assert_eq!(s.sel, Some(1));
        // In the list a click picks the row under it.
        let mut s = State::new("db".into(), "me".into());
        let c = |id| ConversationSummary {
            id,
            title: format!("c{id}"),
            updated_at: 0,
            messages: 1,
            rated: 0,
            avg_stars: None,
            tags: vec![],
        };
        update(&mut s, Action::ListLoaded(vec![c(3), c(2), c(1)]));
        update(
            &mut s,
            mouse(MouseEventKind::Down(MouseButton::Left), 10, 3),
        );
        assert_eq!(s.list_sel, 2);
        update(&mut s, mouse(MouseEventKind::ScrollUp, 10, 3));
        assert_eq!(s.list_sel, 1);
    }
}
