//! Where things are on screen, shared by drawing and the mouse: the lines each message
//! of the chat takes (and which message each line belongs to), the chat's and the
//! list's areas. A click is hit-tested with the same functions the views draw with.

use super::base::{Base, NodeView};
use super::widgets::{role_style, stars, truncate};
use crate::domain::{Origin, Status, ToolCall};
use crate::tui::theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

/// The lines of one message: a header (role, stars, siblings, origin) and its text,
/// wrapped to `width`, code blocks kept as they are.
/// `answers`: for a tool message, the call it is the result of.
pub fn message_lines(
    v: &NodeView,
    width: u16,
    selected: bool,
    streaming: bool,
    answers: Option<&ToolCall>,
) -> Vec<Line<'static>> {
    let n = &v.node;
    let (label, color) = role_style(n.role);
    let mut head = vec![
        Span::styled(
            if selected { "▶ " } else { "  " },
            Style::new().fg(theme::get().key),
        ),
        Span::styled(label, Style::new().fg(color).bold()),
        Span::styled(format!(" #{}", n.id), Style::new().fg(theme::get().dim)),
    ];
    if v.sibling.1 > 1 {
        head.push(Span::styled(
            format!(" ‹ {}/{} ›", v.sibling.0, v.sibling.1),
            Style::new().fg(theme::get().info),
        ));
    }
    if let Some(st) = v.stars {
        head.push(Span::styled(
            format!(" {}", stars(Some(st))),
            Style::new().fg(theme::get().stars),
        ));
    }
    if let Some(j) = &v.judge {
        // The judge's score, dimmed: a suggestion beside the person's stars.
        head.push(Span::styled(
            format!(" ⚖{}", j.stars),
            Style::new().fg(theme::get().dim),
        ));
    }
    match n.origin {
        Origin::Edited => head.push(Span::styled(
            " edited",
            Style::new().fg(theme::get().edited),
        )),
        Origin::Imported => head.push(Span::styled(" imported", Style::new().fg(theme::get().dim))),
        Origin::Generated if v.sibling.0 > 1 => head.push(Span::styled(
            " regenerated",
            Style::new().fg(theme::get().dim),
        )),
        _ => {}
    }
    if v.has_critique {
        head.push(Span::styled(
            " ✎critique",
            Style::new().fg(theme::get().critique),
        ));
    }
    if !v.tags.is_empty() {
        head.push(Span::styled(
            format!(" #{}", v.tags.join(" #")),
            Style::new().fg(theme::get().tag),
        ));
    }
    match n.status {
        Status::Interrupted => head.push(Span::styled(
            " [interrupted]",
            Style::new().fg(theme::get().error),
        )),
        Status::Error => head.push(Span::styled(
            format!(" [error: {}]", n.error.clone().unwrap_or_default()),
            Style::new().fg(theme::get().error),
        )),
        _ => {}
    }
    if let Some(c) = answers {
        head.push(Span::styled(
            format!(" · result of {}", truncate(&crate::tools::describe(c), 60)),
            Style::new().fg(theme::get().info),
        ));
    }
    if streaming {
        head.push(Span::styled(
            " ▍generating",
            Style::new().fg(theme::get().busy),
        ));
    }
    let mut lines = vec![Line::from(head)];
    if !n.few_shot.is_empty() {
        let note = format!(
            "few-shot: {} of your 4+★ answers in the prompt (#{})",
            n.few_shot.len(),
            n.few_shot
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" #")
        );
        for part in textwrap::wrap(&note, width.saturating_sub(4).max(8) as usize) {
            lines.push(Line::styled(
                format!("    {part}"),
                Style::new().fg(theme::get().dim),
            ));
        }
    }
    if let (true, Some(j)) = (selected, &v.judge) {
        let note = format!(
            "⚖ {} gives {}: {} (a accepts it as your rating)",
            j.rater,
            stars(Some(j.stars)),
            if j.reason.is_empty() {
                "no reason given"
            } else {
                &j.reason
            }
        );
        for part in textwrap::wrap(&note, width.saturating_sub(4).max(8) as usize) {
            lines.push(Line::styled(
                format!("    {part}"),
                Style::new().fg(theme::get().dim),
            ));
        }
    }
    let w = width.saturating_sub(4).max(8) as usize;
    let mut in_code = false;
    // A call with no text around it shows just the call block.
    let text = if n.content.is_empty() && !n.tool_calls.is_empty() {
        None
    } else {
        Some(n.content.split('\n'))
    };
    for raw in text.into_iter().flatten() {
        if raw.trim_start().starts_with("```") {
            in_code = !in_code;
            lines.push(Line::styled(
                format!("    {raw}"),
                Style::new().fg(theme::get().dim),
            ));
            continue;
        }
        if in_code {
            // Code keeps its layout: cut, never re-flow.
            let cut: String = raw.chars().take(w).collect();
            lines.push(Line::styled(
                format!("    {cut}"),
                Style::new().fg(theme::get().code),
            ));
            continue;
        }
        for part in textwrap::wrap(raw, w) {
            lines.push(Line::raw(format!("    {part}")));
        }
    }
    // Tool calls as a readable block: the call, then each argument on its own line.
    for c in &n.tool_calls {
        lines.push(Line::from(vec![
            Span::styled("    ⚙ call ", Style::new().fg(theme::get().tool)),
            Span::styled(c.name.clone(), Style::new().fg(theme::get().tool).bold()),
            Span::styled(format!("  {}", c.id), Style::new().fg(theme::get().dim)),
        ]));
        if let Some(args) = c.arguments.as_object() {
            for (k, val) in args {
                let val = match val {
                    serde_json::Value::String(t) => t.clone(),
                    other => other.to_string(),
                };
                for (i, part) in textwrap::wrap(&val, w.saturating_sub(k.len() + 6).max(8))
                    .into_iter()
                    .enumerate()
                {
                    let key = if i == 0 {
                        format!("{k}: ")
                    } else {
                        " ".repeat(k.len() + 2)
                    };
                    lines.push(Line::from(vec![
                        Span::styled(format!("      {key}"), Style::new().fg(theme::get().dim)),
                        Span::raw(part.into_owned()),
                    ]));
                }
            }
        }
    }
    lines.push(Line::raw(""));
    lines
}

/// The chat's message area and composer area within `area`.
pub fn chat_areas(s: &Base, area: Rect) -> (Rect, Rect) {
    let composer_h = if s.composing {
        (s.composer.lines().len() as u16 + 2).clamp(3, area.height / 2)
    } else {
        0
    };
    let [msgs, comp] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(composer_h)]).areas(area);
    (msgs, comp)
}

/// The lines the chat shows in a message area of `width` × `height`, and for each the
/// index on the path of the message it belongs to. The selected (or last) message is always
/// in view: the messages above it fill the space first, then those below it; only what
/// fits is wrapped.
pub fn chat_visible(
    s: &Base,
    width: u16,
    height: usize,
) -> (Vec<Line<'static>>, Vec<Option<usize>>) {
    let anchor = s.sel.unwrap_or(s.path.len().saturating_sub(1));
    let streaming_id = s.streaming.as_ref().map(|st| st.node_id);
    let lines_of = |i: usize| {
        let v = &s.path[i];
        let answers = v.node.tool_call_id.as_ref().and_then(|id| {
            s.path[..i]
                .iter()
                .rev()
                .flat_map(|p| &p.node.tool_calls)
                .find(|c| &c.id == id)
        });
        message_lines(
            v,
            width,
            s.sel == Some(i),
            streaming_id == Some(v.node.id),
            answers,
        )
    };
    let mut above: Vec<(usize, Vec<Line>)> = Vec::new();
    let mut used = 0usize;
    let mut i = (anchor + 1).min(s.path.len());
    while i > 0 && used < height {
        i -= 1;
        let lines = lines_of(i);
        used += lines.len();
        above.push((i, lines));
    }
    above.reverse();
    let mut all: Vec<Line> = Vec::new();
    let mut owner: Vec<Option<usize>> = Vec::new();
    if i == 0 {
        if let Some(c) = &s.conv {
            if !c.system_prompt.is_empty() {
                all.push(Line::styled(
                    truncate(
                        &format!("  system: {}", c.system_prompt.replace('\n', " ")),
                        width as usize,
                    ),
                    Style::new().fg(theme::get().system_prompt),
                ));
                all.push(Line::raw(""));
                owner.extend([None, None]);
                used += 2;
            }
        }
    }
    for (i, b) in above {
        owner.extend(std::iter::repeat_n(Some(i), b.len()));
        all.extend(b);
    }
    // Room left: the messages after the selected one.
    let mut below = false;
    let mut k = anchor + 1;
    while used < height && k < s.path.len() {
        let lines = lines_of(k);
        used += lines.len();
        owner.extend(std::iter::repeat_n(Some(k), lines.len()));
        all.extend(lines);
        below = true;
        k += 1;
    }
    if below {
        // Everything above fitted: show from the top, cut at the bottom.
        all.truncate(height);
        owner.truncate(height);
        return (all, owner);
    }
    // Keep the bottom (the selected message) in view.
    let skip = all.len().saturating_sub(height);
    (
        all.into_iter().skip(skip).collect(),
        owner.into_iter().skip(skip).collect(),
    )
}

/// The message under a click at (`col`, `row`) of a terminal of `size`, if any.
pub fn chat_hit(s: &Base, size: (u16, u16), col: u16, row: u16) -> Option<usize> {
    let area = Rect::new(0, 0, size.0, size.1.saturating_sub(1));
    let (msgs, _) = chat_areas(s, area);
    let inner = Block::new().borders(Borders::TOP).inner(msgs);
    if !inner.contains(ratatui::layout::Position::new(col, row)) {
        return None;
    }
    let (_, owner) = chat_visible(s, inner.width, inner.height as usize);
    owner.get((row - inner.y) as usize).copied().flatten()
}

/// The first conversation shown in a list of `rows` rows with `sel` selected.
pub fn list_offset(sel: usize, rows: usize) -> usize {
    sel.saturating_sub(rows.saturating_sub(1))
}

/// The conversation under a click at `row` of a terminal of `size`, if any.
pub fn list_hit(s: &Base, size: (u16, u16), row: u16) -> Option<usize> {
    let rows = size.1.saturating_sub(3) as usize; // borders and the status line
    let r = (row as usize).checked_sub(1).filter(|r| *r < rows)?;
    let i = list_offset(s.list_sel, rows) + r;
    (i < s.conversations.len()).then_some(i)
}
