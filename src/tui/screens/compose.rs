//! The composer under the chat: Enter sends (or gives a waiting tool call its result),
//! Alt-Enter a new line, Esc leaves.

use super::*;
use crate::tui::base::{cancel, composer, ModelState, Screen};
use crate::tui::effect::Effect;
use crate::tui::keymap::Cmd;
use crate::tui::state::{Overlay, State};
use crossterm::event::KeyEvent;

pub fn on_key(s: &mut State, cmd: Option<Cmd>, k: KeyEvent) -> Vec<Effect> {
    match cmd {
        Some(Cmd::Send) => {
            let text = s.composer.lines().join("\n");
            if text.trim().is_empty() {
                return vec![];
            }
            if s.streaming.is_some() {
                s.message = Some("an answer is still being generated (Ctrl-C stops it)".into());
                return vec![];
            }
            if let ModelState::Failed(m) = &s.model {
                s.message = Some(format!("no model: {m}"));
                return vec![];
            }
            s.composer = composer();
            if let (Some(call), Some(last)) = (s.pending_calls().first(), s.path.last()) {
                return vec![Effect::ToolResult {
                    parent: last.node.id,
                    call_id: call.id.clone(),
                    text,
                }];
            }
            vec![Effect::Send {
                conv: s.conv.as_ref().map(|c| c.id),
                parent: s.path.last().map(|v| v.node.id),
                text,
            }]
        }
        Some(Cmd::Newline) => {
            s.composer.insert_newline();
            vec![]
        }
        Some(Cmd::Settings) => {
            if let Some(d) = settings::open(s) {
                s.open(Overlay::Settings(Box::new(d)));
            }
            vec![]
        }
        Some(Cmd::Cancel) => cancel(s),
        Some(Cmd::LeaveComposer) => {
            if s.streaming.is_some() {
                return cancel(s);
            }
            s.composing = false;
            s.sel = s.path.len().checked_sub(1);
            if s.path.is_empty() {
                s.screen = Screen::List;
                return vec![Effect::LoadList];
            }
            vec![]
        }
        _ => {
            s.composer.input(k);
            vec![]
        }
    }
}

#[cfg(test)]
mod tests {

    use crate::domain::*;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    #[test]
    fn composing_and_sending() {
        let mut s = open_chat();
        update(&mut s, key(KeyCode::Char('i')));
        assert!(s.composing);
        for c in "more".chars() {
            update(&mut s, key(KeyCode::Char(c)));
        }
        let alt_enter = Action::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
        update(&mut s, alt_enter);
        update(&mut s, key(KeyCode::Char('!')));
        let eff = update(&mut s, key(KeyCode::Enter));
        assert_eq!(
            eff,
            vec![Effect::Send {
                conv: Some(1),
                parent: Some(2),
                text: "more\n!".into()
            }]
        );
        assert_eq!(s.composer.lines(), [""]);
    }

    #[test]
    fn after_a_tool_call_the_composer_takes_each_result_in_turn() {
        let mut s = tool_chat();
        assert_eq!(s.pending_calls().len(), 2);
        update(&mut s, key(KeyCode::Char('i')));
        type_text(&mut s, "14C");
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::ToolResult {
                parent: 2,
                call_id: "a".into(),
                text: "14C".into()
            }]
        );
        // The runtime reloads the path with the first result: the second call is next.
        let mut path = s.path.clone();
        let mut res = node(3, Some(2), Role::Tool, "14C");
        res.node.tool_call_id = Some("a".into());
        path.push(res);
        let c = s.conv.clone().unwrap();
        update(&mut s, Action::PathLoaded(c, path));
        assert_eq!(s.pending_calls()[0].id, "b");
        type_text(&mut s, "20C");
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::ToolResult {
                parent: 3,
                call_id: "b".into(),
                text: "20C".into()
            }]
        );
    }
}
