//! One-line prompts over any screen (critique, tags, eval set, rename, search, tag
//! filter) and the y/n confirmation of a delete.

use crate::domain::*;
use crate::tui::base::textarea;
use crate::tui::base::Base;
use crate::tui::effect::{close, stay, Effect, Reply};
use crate::tui::widgets::*;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;
use tui_textarea::TextArea;

#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Critique(NodeId),
    Tag(NodeId),
    /// The eval set the selected turn goes into.
    EvalSet(NodeId),
    Rename(ConversationId),
    /// Incremental full-text search of the conversation list.
    Search,
    FilterTag,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    DeleteConversation(ConversationId),
    DeleteBranch(NodeId),
}

/// A prompt's editor with its hint.
pub fn editor(hint: &str) -> TextArea<'static> {
    textarea(hint)
}

pub fn on_key(p: &Prompt, t: &mut TextArea<'static>, b: &mut Base, k: KeyEvent) -> Reply {
    match k.code {
        KeyCode::Enter => {
            let text = t.lines().join(" ");
            close(match p {
                Prompt::Critique(id) => vec![Effect::Critique(*id, text)],
                Prompt::Tag(id) => text
                    .split([',', ' '])
                    .filter(|x| !x.is_empty())
                    .map(|x| Effect::Tag(*id, x.to_string()))
                    .collect(),
                Prompt::EvalSet(id) if !text.trim().is_empty() => {
                    vec![Effect::AddToEval(*id, text.trim().to_string())]
                }
                Prompt::EvalSet(_) => vec![],
                Prompt::Rename(id) if !text.trim().is_empty() => {
                    vec![
                        Effect::Rename(*id, text.trim().to_string()),
                        Effect::LoadList,
                    ]
                }
                Prompt::Rename(_) => vec![],
                // The search already filters as it is typed; Enter keeps it.
                Prompt::Search => vec![],
                Prompt::FilterTag => {
                    let tag = text.trim().to_string();
                    b.list_filter.tag = (!tag.is_empty()).then_some(tag);
                    b.list_sel = 0;
                    vec![Effect::LoadList]
                }
            })
        }
        KeyCode::Esc => {
            if *p == Prompt::Search {
                b.list_filter.search = None;
                return close(vec![Effect::LoadList]);
            }
            close(vec![])
        }
        _ => {
            t.input(k);
            if *p != Prompt::Search {
                return stay(vec![]);
            }
            // The search filters as it is typed.
            let q = t.lines().join(" ");
            b.list_filter.search = (!q.trim().is_empty()).then_some(q);
            b.list_sel = 0;
            stay(vec![Effect::LoadList])
        }
    }
}

/// y deletes, any other key keeps.
pub fn on_confirm(c: &Confirm, b: &mut Base, k: KeyEvent) -> Reply {
    let yes = matches!(k.code, KeyCode::Char('y' | 'Y'));
    close(match (yes, c) {
        (true, Confirm::DeleteConversation(id)) => {
            vec![Effect::DeleteConversation(*id), Effect::LoadList]
        }
        (true, Confirm::DeleteBranch(id)) => {
            b.sel = b.sel.map(|i| i.saturating_sub(1));
            vec![Effect::DeleteBranch(*id)]
        }
        (false, _) => vec![],
    })
}

pub fn draw(f: &mut Frame, p: &Prompt, t: &TextArea<'static>, area: Rect) {
    let r = centered(area, 70, 20).intersection(area);
    let r = Rect {
        height: 3.min(r.height),
        ..r
    };
    f.render_widget(Clear, r);
    let title = match p {
        Prompt::Critique(id) => format!(" critique of message {id} — Enter saves "),
        Prompt::Tag(id) => format!(" tags for message {id} — Enter saves "),
        Prompt::EvalSet(id) => format!(" eval set for the turn of message {id} "),
        Prompt::Rename(id) => format!(" title of conversation {id} — Enter saves "),
        Prompt::Search => " search every message — Enter keeps, Esc clears ".to_string(),
        Prompt::FilterTag => " only conversations with the tag — Enter applies ".to_string(),
    };
    let mut t = t.clone();
    t.set_block(Block::bordered().title(title));
    f.render_widget(&t, r);
}

pub fn draw_confirm(f: &mut Frame, c: &Confirm, area: Rect) {
    let text = match c {
        Confirm::DeleteConversation(id) => {
            format!("Move conversation {id} and all its messages to the trash? y/n")
        }
        Confirm::DeleteBranch(id) => {
            format!("Move message {id} and everything below it to the trash? y/n")
        }
    };
    let r = centered(area, 60, 20);
    let r = Rect {
        height: 3.min(r.height),
        ..r
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).block(Block::bordered().title(" confirm ")),
        r,
    );
}

#[cfg(test)]
mod tests {

    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;

    use crossterm::event::KeyCode;

    #[test]
    fn delete_asks_first() {
        let mut s = open_chat();
        assert!(update(&mut s, key(KeyCode::Char('d'))).is_empty());
        assert_eq!(s.confirm().cloned(), Some(Confirm::DeleteBranch(2)));
        assert!(update(&mut s, key(KeyCode::Char('n'))).is_empty());
        update(&mut s, key(KeyCode::Char('d')));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('y'))),
            vec![Effect::DeleteBranch(2)]
        );
    }
}
