//! The message editor (`e`): Ctrl-S saves the text as a new sibling (tool calls checked
//! against the conversation's tools), Esc discards.

use crate::domain::*;
use crate::tui::base::Base;
use crate::tui::effect::{close, stay, Effect, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Clear};
use ratatui::Frame;

use crossterm::event::KeyEvent;
use tui_textarea::TextArea;

/// The editor on `node`'s text (tool calls as `<tool_call>` blocks).
pub fn editor(node: &Node) -> TextArea<'static> {
    editor_with(&crate::tools::editable(&node.content, &node.tool_calls))
}

fn editor_with(text: &str) -> TextArea<'static> {
    let mut t = TextArea::from(text.lines().map(str::to_string));
    t.set_placeholder_text("Ctrl-S saves as a new sibling, Esc discards, Ctrl-K clears");
    t
}

/// The effect that saves `text` as an edit of `node` (a new sibling), under the rules
/// both editors share: a user message is answered again (not while an answer streams); an
/// answer's `<tool_call>` blocks are checked against the conversation's tools. `Err` says
/// why nothing is saved. `None`: the message is no longer on the path.
pub fn save(node: NodeId, text: String, b: &Base) -> Option<Result<Effect, String>> {
    let v = b.path.iter().find(|v| v.node.id == node)?;
    let answer = v.node.role == Role::User;
    if answer && b.streaming.is_some() {
        return Some(Err(
            "an answer is still being generated (Ctrl-C stops it)".into()
        ));
    }
    let tools = b.conv.as_ref().and_then(|c| c.tools.as_ref());
    if v.node.role == Role::Assistant && (tools.is_some() || !v.node.tool_calls.is_empty()) {
        // Calls are edited as `<tool_call>` blocks and checked against the schema.
        return Some(
            crate::tools::from_edit(&text, tools, &v.node.tool_calls)
                .map(|(text, calls)| Effect::SaveEdit {
                    node,
                    text,
                    answer,
                    tool_calls: Some(calls),
                })
                .map_err(|e| format!("not saved — {e}")),
        );
    }
    Some(Ok(Effect::SaveEdit {
        node,
        text,
        answer,
        tool_calls: None,
    }))
}

pub fn on_key(
    node: NodeId,
    t: &mut TextArea<'static>,
    b: &mut Base,
    cmd: Option<Cmd>,
    k: KeyEvent,
) -> Reply {
    match cmd {
        Some(Cmd::Save) => match save(node, t.lines().join("\n"), b) {
            None => close(vec![]),
            Some(Ok(e)) => close(vec![e]),
            Some(Err(m)) => {
                b.message = Some(m);
                stay(vec![])
            }
        },
        Some(Cmd::Discard) => close(vec![]),
        Some(Cmd::ClearText) => {
            *t = editor_with("");
            stay(vec![])
        }
        _ => {
            t.input(k);
            stay(vec![])
        }
    }
}

pub fn draw(f: &mut Frame, node: NodeId, t: &TextArea<'static>, area: Rect) {
    let r = centered(area, 90, 70);
    f.render_widget(Clear, r);
    let mut t = t.clone();
    t.set_block(Block::bordered().title(format!(
        " edit message {node} — Ctrl-S saves as a new sibling, Esc discards "
    )));
    f.render_widget(&t, r);
}

#[cfg(test)]
mod tests {

    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;
    use tui_textarea::TextArea;

    use crossterm::event::KeyCode;

    #[test]
    fn ctrl_l_clears_the_editor() {
        let mut s = open_chat();
        update(&mut s, key(KeyCode::Char('e')));
        assert!(!s.editing().unwrap().1.is_empty());
        update(&mut s, ctrl('l'));
        assert!(s.editing().unwrap().1.is_empty());
        type_text(&mut s, "new");
        assert_eq!(s.editing().unwrap().1.lines(), ["new"]);
    }

    #[test]
    fn editing_a_tool_call_checks_it_against_the_schema() {
        let mut s = tool_chat();
        s.sel = Some(1);
        update(&mut s, key(KeyCode::Char('e')));
        let (_, t) = s.editing().unwrap();
        assert!(t.lines().join("\n").contains("\"city\":\"Paris\""));
        // Break the schema: `city` renamed. Nothing is saved; the editor stays open.
        let (id, _) = s.editing().unwrap();
        let bad =
            crate::tools::editable("", &s.path[1].node.tool_calls[..1]).replace("city", "town");
        *s.editing_mut().unwrap().1 = TextArea::from(bad.lines().map(str::to_string));
        assert_eq!(update(&mut s, ctrl('s')), vec![]);
        assert!(s.editing().is_some());
        assert!(s
            .message
            .as_deref()
            .unwrap()
            .contains("do not match its schema"));
        // A valid change saves the calls as structure, ids kept.
        let good =
            crate::tools::editable("Checking.", &s.path[1].node.tool_calls).replace("Rome", "Oslo");
        assert_eq!(s.editing().unwrap().0, id);
        *s.editing_mut().unwrap().1 = TextArea::from(good.lines().map(str::to_string));
        match update(&mut s, ctrl('s')).as_slice() {
            [Effect::SaveEdit {
                text,
                tool_calls: Some(calls),
                answer: false,
                ..
            }] => {
                assert_eq!(text, "Checking.");
                assert_eq!(calls[1].arguments["city"], "Oslo");
                assert_eq!(calls[1].id, "b");
            }
            other => panic!("{other:?}"),
        }
    }
}
