//! What the studio's unit tests share: keys, a small conversation, a chat opened on it.

use super::keymap::Keymap;
use super::state::*;
use super::update::update;
use crate::domain::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub fn key(c: KeyCode) -> Action {
    Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

pub fn node(id: NodeId, parent: Option<NodeId>, role: Role, text: &str) -> NodeView {
    NodeView {
        sibling: (1, 2),
        ..NodeView::of(Node {
            id,
            parent_id: parent,
            ..Node::new(1, role, text)
        })
    }
}

pub fn conv() -> Conversation {
    Conversation {
        id: 1,
        title: "t".into(),
        system_prompt: String::new(),
        tools: None,
        settings: None,
        active_root_id: Some(1),
        created_at: 0,
        updated_at: 0,
    }
}

pub fn open_chat() -> State {
    let mut s = State::new("db".into(), "me".into());
    let path = vec![
        node(1, None, Role::User, "hi"),
        node(2, Some(1), Role::Assistant, "hello"),
    ];
    update(&mut s, Action::PathLoaded(conv(), path));
    s
}

pub fn s_keymap() -> Keymap {
    Keymap::default()
}

pub fn type_text(s: &mut State, text: &str) {
    for c in text.chars() {
        update(s, key(KeyCode::Char(c)));
    }
}

pub fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn tool_chat() -> State {
    let mut s = State::new("db".into(), "me".into());
    let call = |id: &str, city: &str| ToolCall {
        id: id.into(),
        name: "get_weather".into(),
        arguments: serde_json::json!({ "city": city }),
    };
    let mut asst = node(2, Some(1), Role::Assistant, "");
    asst.node.tool_calls = vec![call("a", "Paris"), call("b", "Rome")];
    let c = Conversation {
        tools: Some(
            serde_json::json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]),
        ),
        ..conv()
    };
    update(
        &mut s,
        Action::PathLoaded(c, vec![node(1, None, Role::User, "weather?"), asst]),
    );
    s
}
