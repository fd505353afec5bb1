//! Plain-text dialogues (`Q:`/`A:`, `System:/Human:/AI:`): reading.

use super::*;
use crate::dataset::{FieldError, Msg, Record};
use crate::domain::Role;
use serde_json::Value;

/// Markers of the plain-text styles users train on (seed 000): `System:/Human:/AI:`
/// (also `USER:/ASSISTANT:`) and `Q:/A:`. Text before the first marker is context
/// (e.g. a table schema) and becomes the system prompt.
pub fn parse_text_dialogue(text: &str) -> Option<(String, Vec<Msg>)> {
    const HUMAN_AI: &[(&str, Role)] = &[
        ("System:", Role::System),
        ("Human:", Role::User),
        ("AI:", Role::Assistant),
        ("USER:", Role::User),
        ("ASSISTANT:", Role::Assistant),
    ];
    const QA: &[(&str, Role)] = &[("Q:", Role::User), ("A:", Role::Assistant)];
    let starts = |markers: &[(&str, Role)]| {
        text.lines()
            .any(|l| markers[1..].iter().any(|(m, _)| l.starts_with(m)))
    };
    let markers = if starts(HUMAN_AI) {
        HUMAN_AI
    } else if starts(QA) {
        QA
    } else {
        return None;
    };
    let mut preamble = String::new();
    let mut msgs: Vec<Msg> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some((m, role)) = markers.iter().find(|(m, _)| line.starts_with(m)) {
            let rest = line[m.len()..]
                .strip_prefix(' ')
                .unwrap_or(&line[m.len()..]);
            msgs.push(Msg::new(*role, rest));
        } else if let Some(last) = msgs.last_mut() {
            last.content.push_str(line);
        } else {
            preamble.push_str(line);
        }
    }
    for m in &mut msgs {
        m.content = m.content.trim().to_string();
    }
    let (mut system, msgs) = split_system(msgs);
    let preamble = preamble.trim();
    if !preamble.is_empty() {
        system = if system.is_empty() {
            preamble.to_string()
        } else {
            format!("{preamble}\n{system}")
        };
    }
    Some((system, msgs))
}

pub(super) fn parse_text(v: &Value) -> Result<Record, FieldError> {
    let text = str_field(v, "text")?;
    let (system, msgs) = parse_text_dialogue(text).ok_or_else(|| {
        FieldError::field(
            "text",
            "no dialogue markers found (expected lines starting with Human:/AI:, USER:/ASSISTANT: or Q:/A:)",
        )
    })?;
    record(system, None, msgs)
}
