//! The model picker (`M` in the list and the chat): every model `arbor models` finds
//! (Arbor's directory, Ollama, LM Studio, the Hugging Face and llama.cpp caches,
//! `model_dirs`); Enter switches the chat model without restarting.

use crate::tui::base::Base;
use crate::tui::effect::{close, stay, Effect, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};
use ratatui::Frame;
use std::path::PathBuf;

/// One model on the list.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelItem {
    pub name: String,
    pub source: String,
    pub path: PathBuf,
    /// Architecture, size, parts, chat template — or why it cannot load.
    pub detail: String,
    /// The model the chat runs now.
    pub in_use: bool,
    pub loadable: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ModelsView {
    /// `None` while the models are being found.
    pub items: Option<Vec<ModelItem>>,
    pub sel: usize,
}

pub fn on_key(v: &mut ModelsView, b: &mut Base, cmd: Option<Cmd>) -> Reply {
    let n = v.items.as_ref().map_or(0, Vec::len);
    match cmd {
        Some(Cmd::Down) => v.sel = (v.sel + 1).min(n.saturating_sub(1)),
        Some(Cmd::Up) => v.sel = v.sel.saturating_sub(1),
        Some(Cmd::Open) => {
            let Some(m) = v.items.as_ref().and_then(|i| i.get(v.sel)).cloned() else {
                return stay(vec![]);
            };
            if !m.loadable {
                b.message = Some(format!("{} cannot load: {}", m.name, m.detail));
                return stay(vec![]);
            }
            if m.in_use {
                return close(vec![]);
            }
            return close(vec![Effect::SwitchModel(m.path)]);
        }
        Some(Cmd::Back) => return close(vec![]),
        _ => {}
    }
    stay(vec![])
}

pub fn draw(f: &mut Frame, v: &ModelsView, area: Rect) {
    let r = centered(area, 90, 70);
    f.render_widget(Clear, r);
    let title = " chat model — Enter switches, Esc closes ";
    let Some(items) = &v.items else {
        f.render_widget(
            Paragraph::new("finding models…").block(Block::bordered().title(title)),
            r,
        );
        return;
    };
    if items.is_empty() {
        f.render_widget(
            Paragraph::new(
                "no models found: run scripts/setup.sh, or list directories in `model_dirs` (config.toml)",
            )
            .block(Block::bordered().title(title)),
            r,
        );
        return;
    }
    let t = theme::get();
    let rows: Vec<ListItem> = items
        .iter()
        .map(|m| {
            let mark = if m.in_use { "● " } else { "  " };
            let detail_style = if m.loadable {
                Style::new().fg(t.dim)
            } else {
                Style::new().fg(t.error)
            };
            ListItem::new(Line::from(vec![
                Span::raw(mark),
                Span::styled(format!("{:<40} ", m.name), Style::new().bold()),
                Span::styled(format!("{:<12} ", m.source), Style::new().fg(t.info)),
                Span::styled(m.detail.clone(), detail_style),
            ]))
        })
        .collect();
    let list = List::new(rows)
        .block(Block::bordered().title(title))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut st = ListState::default().with_selected(Some(v.sel));
    f.render_stateful_widget(list, r, &mut st);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keymap::Context;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;
    use crossterm::event::KeyCode;

    fn item(name: &str, in_use: bool, loadable: bool) -> ModelItem {
        ModelItem {
            name: name.into(),
            source: "arbor".into(),
            path: PathBuf::from(format!("/m/{name}")),
            detail: if loadable { "llama" } else { "missing part 2" }.into(),
            in_use,
            loadable,
        }
    }

    #[test]
    fn m_finds_the_models_and_enter_switches_to_the_picked_one() {
        let mut s = State::new("db".into(), "me".into());
        let fx = update(&mut s, key(KeyCode::Char('M')));
        assert_eq!(fx, vec![Effect::LoadModels]);
        assert_eq!(s.key_context(), Context::Models);
        let models = || {
            Action::ModelsLoaded(vec![
                item("a.gguf", true, true),
                item("broken", false, false),
                item("b.gguf", false, true),
            ])
        };
        update(&mut s, models());
        // Enter on the one in use just closes.
        assert_eq!(update(&mut s, key(KeyCode::Enter)), vec![]);
        assert_eq!(s.key_context(), Context::List);
        update(&mut s, key(KeyCode::Char('M')));
        update(&mut s, models());
        update(&mut s, key(KeyCode::Char('j')));
        assert_eq!(update(&mut s, key(KeyCode::Enter)), vec![]);
        assert!(s.message.as_deref().unwrap().contains("cannot load"));
        assert_eq!(s.key_context(), Context::Models);
        update(&mut s, key(KeyCode::Char('j')));
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::SwitchModel("/m/b.gguf".into())]
        );
        assert_eq!(s.key_context(), Context::List);
    }
}
