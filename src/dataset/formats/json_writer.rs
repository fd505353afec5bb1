//! The fast JSON writer of the export's hot path: OpenAI-style messages written straight
//! into a buffer, strings escaped by a table (no serde tree per message).

use super::*;
use crate::domain::{Node, Role};

/// How serde_json escapes each byte in a string: 0 = as it is, `u` = `\u00XX`, else the
/// letter after the backslash.
pub(super) const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Whether any of the 8 bytes in `w` may need escaping (a control byte, `"` or `\`);
/// never false when one does.
#[inline]
pub(super) fn may_need_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    (w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0)
        || zero_in(w ^ (ONES * b'"' as u64))
        || zero_in(w ^ (ONES * b'\\' as u64))
}

/// Appends `s` as a JSON string, escaped byte for byte as serde_json escapes it (so
/// hand-written lines equal serde's), skipping clean text 8 bytes at a time.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if let Some(chunk) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            if !may_need_escape(w) {
                i += 8;
                continue;
            }
        }
        let esc = ESCAPE[b[i] as usize];
        if esc != 0 {
            out.extend_from_slice(&b[start..i]);
            if esc == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let c = b[i];
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(c >> 4) as usize],
                    HEX[(c & 0xf) as usize],
                ]);
            } else {
                out.extend_from_slice(&[b'\\', esc]);
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Appends the system message of an OpenAI line.
pub fn push_oa_system(out: &mut Vec<u8>, content: &str) {
    out.extend_from_slice(br#"{"role":"system","content":"#);
    push_json_str(out, content);
    out.push(b'}');
}

/// Appends one message in OpenAI's chat fine-tuning shape: the same bytes serde writes
/// for [`openai_message`]'s fields (`role`, `content`, `tool_calls` with `arguments` a
/// JSON string, `tool_call_id`, `weight` on answers), without building anything. The
/// exporter's hot path.
pub fn push_oa_message(out: &mut Vec<u8>, n: &Node, weight: Option<u8>, null_content: bool) {
    out.extend_from_slice(br#"{"role":""#);
    out.extend_from_slice(n.role.as_str().as_bytes());
    out.extend_from_slice(br#"","content":"#);
    match content_of(n, null_content) {
        Some(c) => push_json_str(out, c),
        None => out.extend_from_slice(b"null"),
    }
    if n.role == Role::Assistant && !n.tool_calls.is_empty() {
        out.extend_from_slice(br#","tool_calls":["#);
        for (i, c) in n.tool_calls.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"id":"#);
            if c.id.is_empty() {
                push_json_str(out, &format!("call_{i}"));
            } else {
                push_json_str(out, &c.id);
            }
            out.extend_from_slice(br#","type":"function","function":{"name":"#);
            push_json_str(out, &c.name);
            out.extend_from_slice(br#","arguments":"#);
            push_json_str(out, &c.arguments.to_string());
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    if n.role == Role::Tool {
        if let Some(id) = &n.tool_call_id {
            out.extend_from_slice(br#","tool_call_id":"#);
            push_json_str(out, id);
        }
    }
    if let (Role::Assistant, Some(w)) = (n.role, weight) {
        use std::io::Write;
        let _ = write!(out, r#","weight":{w}"#);
    }
    out.push(b'}');
}
