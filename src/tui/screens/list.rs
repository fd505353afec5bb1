//! The conversation list: open, start (blank or from a preset), search, filter by tag,
//! rename, delete; the Jobs and Evals views and the Export dialog open from here.

use super::*;
use crate::tui::base::Base;
use crate::tui::base::{start_new, textarea, ListFilter};
use crate::tui::effect::Effect;
use crate::tui::keymap::Cmd;
use crate::tui::layout::*;
use crate::tui::state::{Overlay, State};
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph};
use ratatui::Frame;

pub fn on_key(s: &mut State, cmd: Option<Cmd>) -> Vec<Effect> {
    match cmd {
        Some(Cmd::Quit) => {
            s.quit = true;
            vec![Effect::Quit]
        }
        Some(Cmd::Search) => {
            let mut t = textarea("search every message; Enter keeps the filter, Esc clears");
            if let Some(q) = &s.list_filter.search {
                t.insert_str(q);
            }
            s.open(Overlay::Prompt(Prompt::Search, t));
            vec![]
        }
        Some(Cmd::FilterTag) => {
            s.open(Overlay::Prompt(
                Prompt::FilterTag,
                textarea("tag, e.g. clarification (empty: every conversation)"),
            ));
            vec![]
        }
        Some(Cmd::ClearFilter) => {
            if s.list_filter == ListFilter::default() {
                return vec![];
            }
            s.list_filter = ListFilter::default();
            vec![Effect::LoadList]
        }
        Some(Cmd::Rename) => {
            if let Some(c) = s.conversations.get(s.list_sel) {
                let mut t = textarea("new title, Enter saves");
                t.insert_str(&c.title);
                s.open(Overlay::Prompt(Prompt::Rename(c.id), t));
            }
            vec![]
        }
        Some(Cmd::Presets) => {
            if s.presets.is_empty() {
                s.message = Some("no presets found".into());
            } else {
                s.open(Overlay::Presets(0));
            }
            vec![]
        }
        Some(Cmd::Undo) => vec![Effect::Undo],
        Some(Cmd::Models) => {
            s.open(Overlay::Models(Default::default()));
            vec![Effect::LoadModels]
        }
        Some(Cmd::Help) => {
            s.open(Overlay::Help);
            vec![]
        }
        Some(Cmd::Down) => {
            s.list_sel = (s.list_sel + 1).min(s.conversations.len().saturating_sub(1));
            vec![]
        }
        Some(Cmd::Up) => {
            s.list_sel = s.list_sel.saturating_sub(1);
            vec![]
        }
        Some(Cmd::ReviewQueue) => vec![Effect::LoadQueue],
        Some(Cmd::Trash) => {
            s.list_filter = ListFilter {
                trash: !s.list_filter.trash,
                ..ListFilter::default()
            };
            s.list_sel = 0;
            vec![Effect::LoadList]
        }
        Some(Cmd::Open) if s.list_filter.trash => match s.conversations.get(s.list_sel) {
            Some(c) => vec![Effect::Restore(c.id), Effect::LoadList],
            None => vec![],
        },
        Some(Cmd::Delete) if s.list_filter.trash => {
            s.message = Some(
                "emptying the trash is explicit: arbor trash empty [--older-than DAYS]".into(),
            );
            vec![]
        }
        Some(Cmd::Open) => match s.conversations.get(s.list_sel).map(|c| c.id) {
            Some(id) => {
                s.composing = false;
                vec![Effect::Open(id)]
            }
            None => vec![],
        },
        Some(Cmd::NewConversation) => {
            start_new(&mut s.base, String::new(), None);
            vec![]
        }
        Some(Cmd::Jobs) => {
            s.open(Overlay::Jobs(JobsView::default()));
            vec![Effect::LoadJobs(None)]
        }
        Some(Cmd::Evals) => {
            s.open(Overlay::Evals(EvalsView::default()));
            vec![Effect::LoadEvals]
        }
        Some(Cmd::Export) => {
            let d = ExportDialog {
                min_rating: Some(4),
                ..Default::default()
            };
            let e = d.effect(false);
            s.open(Overlay::Export(d));
            vec![e]
        }
        Some(Cmd::Delete) => {
            if let Some(c) = s.conversations.get(s.list_sel) {
                s.open(Overlay::Confirm(Confirm::DeleteConversation(c.id)));
            }
            vec![]
        }
        _ => vec![],
    }
}

pub fn draw(f: &mut Frame, s: &Base, area: Rect) {
    let items: Vec<ListItem> = s
        .conversations
        .iter()
        .map(|c| {
            let when = crate::domain::minute_of(c.updated_at);
            let rating = c
                .avg_stars
                .map(|a| format!("{a:.1}★ ({})", c.rated))
                .unwrap_or_default();
            ListItem::new(Line::from(vec![
                Span::raw(format!("{:<40} ", truncate(&c.title, 40))),
                Span::styled(format!("{when}  "), Style::new().fg(theme::get().dim)),
                Span::raw(format!("{:>4} msgs  ", c.messages)),
                Span::styled(
                    format!("{rating:<10} "),
                    Style::new().fg(theme::get().stars),
                ),
                Span::styled(c.tags.join(","), Style::new().fg(theme::get().tag)),
            ]))
        })
        .collect();
    let mut filter = String::new();
    if let Some(q) = &s.list_filter.search {
        filter.push_str(&format!(" matching “{q}”"));
    }
    if let Some(t) = &s.list_filter.tag {
        filter.push_str(&format!(" tagged #{t}"));
    }
    let title = if s.list_filter.trash {
        format!(
            " trash ({}) — Enter restores, D or Esc goes back; arbor trash empty deletes for good ",
            s.conversations.len()
        )
    } else if filter.is_empty() {
        format!(
            " conversations ({}) — Enter opens, n new, p from a preset, / search, ? help ",
            s.conversations.len()
        )
    } else {
        format!(
            " conversations ({}){filter} — Esc shows all ",
            s.conversations.len()
        )
    };
    if items.is_empty() && s.list_filter.trash {
        f.render_widget(
            Paragraph::new("The trash is empty. D or Esc goes back.")
                .block(Block::bordered().title(title)),
            area,
        );
        return;
    }
    if items.is_empty() {
        f.render_widget(
            Paragraph::new(
                "No conversations yet. Press n to start one, p to start from a preset, ? for help.",
            )
            .block(Block::bordered().title(title)),
            area,
        );
        return;
    }
    // Scroll as `list_hit` expects: the selection on the last visible row at most.
    let offset = list_offset(s.list_sel, area.height.saturating_sub(2) as usize);
    let list = List::new(items.into_iter().skip(offset))
        .block(Block::bordered().title(title))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut st = ListState::default().with_selected(Some(s.list_sel - offset));
    f.render_stateful_widget(list, area, &mut st);
}

#[cfg(test)]
mod tests {

    use crate::domain::*;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;
    use crossterm::event::KeyCode;

    #[test]
    fn the_list_filters_by_search_as_typed_and_by_tag() {
        let mut s = State::new("db".into(), "me".into());
        update(&mut s, key(KeyCode::Char('/')));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('g'))),
            vec![Effect::LoadList]
        );
        update(&mut s, key(KeyCode::Char('o')));
        assert_eq!(s.list_filter.search.as_deref(), Some("go"));
        update(&mut s, key(KeyCode::Enter));
        assert!(s.prompt().is_none());
        assert_eq!(s.list_filter.search.as_deref(), Some("go"));
        update(&mut s, key(KeyCode::Char('f')));
        type_text(&mut s, "clarification");
        assert_eq!(update(&mut s, key(KeyCode::Enter)), vec![Effect::LoadList]);
        assert_eq!(s.list_filter.tag.as_deref(), Some("clarification"));
        // Esc in the list shows everything again.
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![Effect::LoadList]);
        assert_eq!(s.list_filter, ListFilter::default());
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![]);
    }

    #[test]
    fn the_trash_filter_lists_the_trash_and_enter_restores() {
        let mut s = State::new("db".into(), "me".into());
        assert_eq!(
            update(&mut s, key(KeyCode::Char('D'))),
            vec![Effect::LoadList]
        );
        assert!(s.list_filter.trash);
        update(
            &mut s,
            Action::ListLoaded(vec![ConversationSummary {
                id: 9,
                title: "gone".into(),
                updated_at: 0,
                messages: 2,
                rated: 0,
                avg_stars: None,
                tags: vec![],
            }]),
        );
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::Restore(9), Effect::LoadList]
        );
        // d does not empty it; Esc (or D) goes back to the list.
        assert!(update(&mut s, key(KeyCode::Char('d'))).is_empty());
        assert!(s.confirm().is_none());
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![Effect::LoadList]);
        assert!(!s.list_filter.trash);
    }

    #[test]
    fn rename_prefills_the_title() {
        let mut s = State::new("db".into(), "me".into());
        update(
            &mut s,
            Action::ListLoaded(vec![ConversationSummary {
                id: 4,
                title: "old".into(),
                updated_at: 0,
                messages: 2,
                rated: 0,
                avg_stars: None,
                tags: vec![],
            }]),
        );
        update(&mut s, key(KeyCode::Char('r')));
        type_text(&mut s, " one");
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::Rename(4, "old one".into()), Effect::LoadList]
        );
    }
}
