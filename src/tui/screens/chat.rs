//! The chat: the open conversation's active path, one message selected; rate, edit,
//! regenerate, move between siblings, tag, critique, open the tree, compare.

use super::*;
use crate::domain::*;
use crate::tui::base::Base;
use crate::tui::base::{cancel, textarea, turn_parent, Screen, CLARIFICATION};
use crate::tui::effect::Effect;
use crate::tui::keymap::Cmd;
use crate::tui::layout::*;
use crate::tui::state::{Overlay, State};
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub fn on_key(s: &mut State, cmd: Option<Cmd>) -> Vec<Effect> {
    match cmd {
        Some(Cmd::Quit) => {
            s.quit = true;
            vec![Effect::Cancel, Effect::Quit]
        }
        Some(Cmd::Undo) => vec![Effect::Undo],
        Some(Cmd::EditExternal) => match s.selected() {
            Some(v)
                if s.streaming
                    .as_ref()
                    .is_none_or(|st| st.node_id != v.node.id) =>
            {
                vec![Effect::EditExternally(v.node.id)]
            }
            _ => vec![],
        },
        Some(Cmd::AcceptJudge) => {
            let judged = s
                .selected()
                .map(|v| (v.node.id, v.judge.as_ref().map(|j| j.stars)));
            match judged {
                Some((id, Some(stars))) => vec![Effect::Rate(id, Some(stars))],
                Some((_, None)) => {
                    s.message = Some(
                        "no judge has scored this message (arbor judge scores answers)".into(),
                    );
                    vec![]
                }
                None => vec![],
            }
        }
        Some(Cmd::Help) => {
            s.open(Overlay::Help);
            vec![]
        }
        Some(Cmd::Up) => {
            s.sel = Some(
                s.sel
                    .map_or(s.path.len().saturating_sub(1), |i| i.saturating_sub(1)),
            );
            vec![]
        }
        Some(Cmd::Down) => {
            s.sel = Some(
                s.sel
                    .map_or(0, |i| (i + 1).min(s.path.len().saturating_sub(1))),
            );
            vec![]
        }
        Some(Cmd::Compose) => {
            s.composing = true;
            s.sel = None;
            vec![]
        }
        Some(Cmd::Cancel) => cancel(s),
        Some(Cmd::Back) => {
            if s.streaming.is_some() {
                return cancel(s);
            }
            s.screen = Screen::List;
            s.conv = None;
            s.path.clear();
            vec![Effect::LoadList]
        }
        Some(Cmd::Rate(n)) => match s.selected() {
            Some(v) if v.node.role == Role::Assistant => {
                vec![Effect::Rate(v.node.id, (n > 0).then_some(n))]
            }
            Some(_) => {
                s.message = Some("only assistant messages are rated".into());
                vec![]
            }
            None => vec![],
        },
        Some(Cmd::Edit) => {
            if let Some(v) = s.selected() {
                if s.streaming
                    .as_ref()
                    .is_some_and(|st| st.node_id == v.node.id)
                {
                    return vec![];
                }
                let o = Overlay::Edit(v.node.id, edit::editor(&v.node));
                s.open(o);
            }
            vec![]
        }
        Some(Cmd::Regenerate) => {
            if s.streaming.is_some() {
                s.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                return vec![];
            }
            match s.selected() {
                Some(v) if v.node.role == Role::Assistant => match v.node.parent_id {
                    Some(parent) => vec![Effect::Regenerate { parent }],
                    None => vec![],
                },
                Some(v) if v.node.role == Role::User => {
                    vec![Effect::Regenerate { parent: v.node.id }]
                }
                _ => vec![],
            }
        }
        Some(c @ (Cmd::PrevSibling | Cmd::NextSibling)) => {
            if s.streaming.is_some() {
                return vec![];
            }
            let Some(v) = s.selected() else { return vec![] };
            let (pos, n) = v.sibling;
            let target = if c == Cmd::PrevSibling {
                pos.checked_sub(1)
            } else {
                Some(pos + 1)
            };
            match target {
                Some(t) if t >= 1 && t <= n => vec![Effect::ActivateSibling {
                    node: v.node.id,
                    position: t,
                }],
                _ => vec![],
            }
        }
        Some(Cmd::Yank) => match s.selected() {
            Some(v) => vec![Effect::Copy {
                text: crate::tools::editable(&v.node.content, &v.node.tool_calls),
                what: format!("message {}", v.node.id),
            }],
            None => vec![],
        },
        Some(Cmd::YankPath) => match &s.conv {
            Some(c) if !s.path.is_empty() => {
                let path: Vec<&Node> = s.path.iter().map(|v| &v.node).collect();
                vec![Effect::Copy {
                    text: crate::chat::markdown(c, &path),
                    what: "the conversation".into(),
                }]
            }
            _ => vec![],
        },
        Some(Cmd::Critique) => {
            if let Some(v) = s.selected() {
                s.open(Overlay::Prompt(
                    Prompt::Critique(v.node.id),
                    textarea("critique, Enter saves"),
                ));
            }
            vec![]
        }
        Some(Cmd::Tag) => {
            if let Some(v) = s.selected() {
                s.open(Overlay::Prompt(
                    Prompt::Tag(v.node.id),
                    textarea("tags, e.g. clarification tool-call"),
                ));
            }
            vec![]
        }
        Some(Cmd::AddToEval) => {
            if let Some(v) = s.selected() {
                s.open(Overlay::Prompt(
                    Prompt::EvalSet(v.node.id),
                    textarea("eval set: an existing name or a new one — Enter adds this turn"),
                ));
            }
            vec![]
        }
        Some(Cmd::Tree) => match s.conv.as_ref().map(|c| c.id) {
            // Open at once, empty until the worker's rows arrive.
            Some(id) => {
                s.open(Overlay::Tree(TreeView {
                    rows: Vec::new(),
                    sel: 0,
                }));
                vec![Effect::LoadTree(id)]
            }
            None => vec![],
        },
        Some(Cmd::Jobs) => {
            s.open(Overlay::Jobs(JobsView::default()));
            vec![Effect::LoadJobs(None)]
        }
        Some(Cmd::Models) => {
            s.open(Overlay::Models(Default::default()));
            vec![Effect::LoadModels]
        }
        Some(Cmd::CompareBase) => {
            if s.streaming.is_some() {
                s.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                return vec![];
            }
            if s.adapter.is_none() {
                s.message =
                    Some("no adapter attached: open the Jobs view (J), pick a job, press a".into());
                return vec![];
            }
            match turn_parent(s) {
                Some(parent) => {
                    s.open(Overlay::Compare(Compare::new(parent)));
                    vec![Effect::CompareAdapter { parent }]
                }
                None => vec![],
            }
        }
        Some(Cmd::CompareK) => {
            if s.streaming.is_some() {
                s.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                return vec![];
            }
            match turn_parent(s) {
                Some(parent) => {
                    s.open(Overlay::Compare(Compare::new(parent)));
                    vec![Effect::RegenerateK {
                        parent,
                        k: COMPARE_K,
                    }]
                }
                None => vec![],
            }
        }
        Some(Cmd::MarkClarification) => match s.selected() {
            Some(v) if v.node.role == Role::Assistant => {
                let tag = CLARIFICATION.to_string();
                if v.tags.iter().any(|t| t == CLARIFICATION) {
                    vec![Effect::Untag(v.node.id, tag)]
                } else {
                    vec![Effect::Tag(v.node.id, tag)]
                }
            }
            Some(_) => {
                s.message = Some("only an assistant message can be a clarifying question".into());
                vec![]
            }
            None => vec![],
        },
        Some(Cmd::Settings) => {
            if let Some(d) = settings::open(s) {
                s.open(Overlay::Settings(Box::new(d)));
            }
            vec![]
        }
        Some(Cmd::Delete) => {
            if let Some(v) = s.selected() {
                if s.streaming.is_none() {
                    s.open(Overlay::Confirm(Confirm::DeleteBranch(v.node.id)));
                }
            }
            vec![]
        }
        _ => vec![],
    }
}

pub fn draw(f: &mut Frame, s: &Base, area: Rect) {
    let (msgs, comp) = chat_areas(s, area);
    let title = match &s.conv {
        Some(c) => format!(
            " {} ",
            if c.title.is_empty() {
                "untitled"
            } else {
                &c.title
            }
        ),
        None => " new conversation ".to_string(),
    };
    let block = Block::new().borders(Borders::TOP).title(title);
    let inner = block.inner(msgs);
    f.render_widget(block, msgs);
    let (visible, _) = chat_visible(s, inner.width, inner.height as usize);
    if visible.is_empty() {
        f.render_widget(
            Paragraph::new(
                "Type your first message below. Esc leaves the composer, ? shows every key.",
            )
            .style(Style::new().fg(theme::get().dim)),
            inner,
        );
    } else {
        f.render_widget(Paragraph::new(visible).wrap(Wrap { trim: false }), inner);
    }
    if s.composing {
        let mut t = s.composer.clone();
        // After a tool call the user plays the tool: the composer takes its result.
        let title = match s.pending_calls().first() {
            Some(c) => format!(
                " result of {} — Enter gives it to the model ",
                truncate(&crate::tools::describe(c), 60)
            ),
            None => " message ".to_string(),
        };
        t.set_block(Block::bordered().title(title));
        f.render_widget(&t, comp);
    }
}

#[cfg(test)]
mod tests {

    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    #[test]
    fn y_copies_the_selected_message_and_shift_y_the_conversation() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('y'))),
            vec![Effect::Copy {
                text: "hello".into(),
                what: "message 2".into(),
            }]
        );
        match update(&mut s, key(KeyCode::Char('Y'))).as_slice() {
            [Effect::Copy { text, what }] => {
                assert_eq!(what, "the conversation");
                assert_eq!(text, "# t\n\n**user**\n\nhi\n\n**assistant**\n\nhello\n");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn opening_selects_the_last_message_and_keys_rate_it() {
        let mut s = open_chat();
        assert_eq!(s.sel, Some(1));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('4'))),
            vec![Effect::Rate(2, Some(4))]
        );
        assert_eq!(
            update(&mut s, key(KeyCode::Char('0'))),
            vec![Effect::Rate(2, None)]
        );
        update(&mut s, key(KeyCode::Char('k')));
        assert_eq!(s.sel, Some(0));
        assert!(update(&mut s, key(KeyCode::Char('5'))).is_empty());
        assert_eq!(
            s.message.as_deref(),
            Some("only assistant messages are rated")
        );
    }

    #[test]
    fn regenerate_edit_and_siblings() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('r'))),
            vec![Effect::Regenerate { parent: 1 }]
        );
        assert_eq!(
            update(&mut s, key(KeyCode::Char('l'))),
            vec![Effect::ActivateSibling {
                node: 2,
                position: 2
            }]
        );
        assert!(
            update(&mut s, key(KeyCode::Char('h'))).is_empty(),
            "already the first sibling"
        );
        update(&mut s, key(KeyCode::Char('e')));
        assert!(s.editing().is_some());
        update(&mut s, key(KeyCode::Char('X')));
        let save = Action::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
        assert_eq!(
            update(&mut s, save),
            vec![Effect::SaveEdit {
                node: 2,
                text: "Xhello".into(),
                answer: false,
                tool_calls: None,
            }]
        );
    }

    #[test]
    fn a_takes_the_judges_score_as_the_curators_rating() {
        let mut s = open_chat();
        assert!(update(&mut s, key(KeyCode::Char('a'))).is_empty());
        assert!(s.message.clone().unwrap().contains("no judge has scored"));
        s.path[1].judge = Some(crate::store::Judged {
            stars: 2,
            rater: "judge:m".into(),
            reason: "wrong table".into(),
        });
        assert_eq!(
            update(&mut s, key(KeyCode::Char('a'))),
            vec![Effect::Rate(2, Some(2))]
        );
    }

    #[test]
    fn m_marks_and_unmarks_a_clarifying_question() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('m'))),
            vec![Effect::Tag(2, "clarification".into())]
        );
        s.path[1].tags = vec!["clarification".into()];
        assert_eq!(
            update(&mut s, key(KeyCode::Char('m'))),
            vec![Effect::Untag(2, "clarification".into())]
        );
        s.sel = Some(0);
        assert_eq!(update(&mut s, key(KeyCode::Char('m'))), vec![]);
        assert!(s.message.is_some());
    }
}
