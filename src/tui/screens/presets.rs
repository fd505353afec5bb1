//! The preset picker (`p` in the list): a new conversation from a preset's system
//! prompt and tools.

use crate::tui::base::Base;
use crate::tui::effect::{close, stay, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState};
use ratatui::Frame;

pub fn on_key(sel: &mut usize, b: &mut Base, cmd: Option<Cmd>) -> Reply {
    let n = b.presets.len();
    match cmd {
        Some(Cmd::Down) => *sel = (*sel + 1).min(n.saturating_sub(1)),
        Some(Cmd::Up) => *sel = sel.saturating_sub(1),
        Some(Cmd::Open) => {
            if let Some(p) = b.presets.get(*sel).cloned() {
                crate::tui::base::start_new(b, p.system, p.tools);
                b.message = Some(format!("new conversation from preset {}", p.name));
            }
            return close(vec![]);
        }
        Some(Cmd::Back) => return close(vec![]),
        _ => {}
    }
    stay(vec![])
}

pub fn draw(f: &mut Frame, s: &Base, sel: usize, area: Rect) {
    let r = centered(area, 80, 60);
    f.render_widget(Clear, r);
    let items: Vec<ListItem> = s
        .presets
        .iter()
        .map(|p| {
            let tools = p
                .tools
                .as_ref()
                .and_then(|t| t.as_array())
                .map(|a| format!("  ({} tools)", a.len()))
                .unwrap_or_default();
            ListItem::new(Line::from(vec![
                Span::styled(format!("{:<14}", p.name), Style::new().bold()),
                Span::raw(p.description.clone()),
                Span::styled(tools, Style::new().fg(theme::get().info)),
            ]))
        })
        .collect();
    let list = List::new(items)
        .block(
            Block::bordered().title(" new conversation from a preset — Enter starts, Esc closes "),
        )
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut st = ListState::default().with_selected(Some(sel));
    f.render_stateful_widget(list, r, &mut st);
}

#[cfg(test)]
mod tests {

    use crate::tui::keymap::Context;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;

    use crossterm::event::KeyCode;

    #[test]
    fn a_new_conversation_starts_from_a_picked_preset() {
        let mut s = State::new("db".into(), "me".into());
        let preset = |name: &str, tools| crate::presets::Preset {
            name: name.into(),
            description: String::new(),
            system: format!("system of {name}"),
            tools,
        };
        s.presets = vec![
            preset("clarifying", None),
            preset("tool-caller", Some(serde_json::json!([]))),
        ];
        update(&mut s, key(KeyCode::Char('p')));
        assert_eq!(s.key_context(), Context::Presets);
        update(&mut s, key(KeyCode::Char('j')));
        update(&mut s, key(KeyCode::Enter));
        assert_eq!(s.key_context(), Context::Compose);
        assert_eq!(
            s.pending_new,
            Some(("system of tool-caller".into(), Some(serde_json::json!([]))))
        );
        // Esc closes the picker without starting anything.
        let mut s2 = State::new("db".into(), "me".into());
        s2.presets = s.presets.clone();
        update(&mut s2, key(KeyCode::Char('p')));
        update(&mut s2, key(KeyCode::Esc));
        assert_eq!(s2.key_context(), Context::List);
        assert!(s2.pending_new.is_none());
    }
}
