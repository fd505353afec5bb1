//! The tree of a conversation (`t`): every branch, the active path marked; Enter makes
//! the selected message's path the active one.

use crate::domain::*;
use crate::tui::base::Base;
use crate::tui::effect::{close, stay, Effect, Next, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

/// One row of the tree view.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeRow {
    pub id: NodeId,
    /// `├─ `/`└─ `/`│  ` drawing of the row's place in the tree.
    pub graph: String,
    pub role: Role,
    pub text: String,
    pub stars: Option<u8>,
    pub tool_calls: usize,
    pub origin: Origin,
    /// On the active path.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TreeView {
    pub rows: Vec<TreeRow>,
    pub sel: usize,
}

pub fn on_key(t: &mut TreeView, b: &mut Base, cmd: Option<Cmd>) -> Reply {
    match cmd {
        Some(Cmd::Down) => t.sel = (t.sel + 1).min(t.rows.len().saturating_sub(1)),
        Some(Cmd::Up) => t.sel = t.sel.saturating_sub(1),
        Some(Cmd::Open) => {
            let Some(row) = t.rows.get(t.sel) else {
                return stay(vec![]);
            };
            let id = row.id;
            if b.streaming.is_some() {
                b.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                return stay(vec![]);
            }
            b.composing = false;
            b.select_after_load = Some(id);
            return close(vec![Effect::ActivateNode(id)]);
        }
        Some(Cmd::Back) => return close(vec![]),
        Some(Cmd::Help) => return (Next::Help, vec![]),
        _ => {}
    }
    stay(vec![])
}

pub fn draw(f: &mut Frame, t: &TreeView, area: Rect) {
    f.render_widget(Clear, area);
    let block = Block::bordered()
        .title(" tree — j/k move, Enter makes that path active, Esc closes (● active path) ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let h = inner.height as usize;
    // Keep the selected row in view: scroll only as far as needed.
    let start = t.sel.saturating_sub(h.saturating_sub(1));
    let lines: Vec<Line> = t
        .rows
        .iter()
        .enumerate()
        .skip(start)
        .take(h)
        .map(|(i, r)| {
            let (label, color) = role_style(r.role);
            let mut spans = vec![
                Span::styled(
                    if r.active { "● " } else { "  " },
                    Style::new().fg(theme::get().key),
                ),
                Span::styled(r.graph.clone(), Style::new().fg(theme::get().dim)),
                Span::styled(format!("{label} #{} ", r.id), Style::new().fg(color)),
            ];
            if let Some(st) = r.stars {
                spans.push(Span::styled(
                    format!("{} ", stars(Some(st))),
                    Style::new().fg(theme::get().stars),
                ));
            }
            if r.origin == Origin::Edited {
                spans.push(Span::styled(
                    "edited ",
                    Style::new().fg(theme::get().edited),
                ));
            }
            if r.tool_calls > 0 {
                spans.push(Span::styled(
                    format!("⚙{} ", r.tool_calls),
                    Style::new().fg(theme::get().tool),
                ));
            }
            spans.push(Span::raw(truncate(&r.text, inner.width as usize)));
            let line = Line::from(spans);
            if i == t.sel {
                line.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                line
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {

    use crate::domain::*;
    use crate::tui::keymap::Context;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;
    use crossterm::event::KeyCode;

    #[test]
    fn the_tree_opens_on_the_active_path_and_enter_makes_a_path_active() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('T'))),
            vec![Effect::LoadTree(1)]
        );
        let row = |id, active| TreeRow {
            id,
            graph: String::new(),
            role: Role::Assistant,
            text: String::new(),
            stars: None,
            tool_calls: 0,
            origin: Origin::Generated,
            active,
        };
        update(
            &mut s,
            Action::TreeLoaded(vec![row(1, true), row(2, true), row(3, false)]),
        );
        assert_eq!(s.key_context(), Context::Tree);
        assert_eq!(s.tree().unwrap().sel, 1);
        update(&mut s, key(KeyCode::Char('j')));
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::ActivateNode(3)]
        );
        assert!(s.tree().is_none());
        // The reloaded path selects the picked message.
        let mut path = s.path.clone();
        path[1].node.id = 3;
        update(&mut s, Action::PathLoaded(conv(), path));
        assert_eq!(s.sel, Some(1));
        // Esc closes without changing anything.
        update(&mut s, key(KeyCode::Char('T')));
        update(&mut s, Action::TreeLoaded(vec![row(1, true)]));
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![]);
        assert!(s.tree().is_none());
    }
}
