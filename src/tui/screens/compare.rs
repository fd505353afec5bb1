//! Compare (`R`, and base vs tuned `B`): k candidates of one turn side by side, each
//! streaming into its column; rate them, keep one.

use crate::domain::*;
use crate::engine::RequestId;
use crate::tui::base::Base;
use crate::tui::effect::{close, stay, Effect, Next, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// k candidates for one turn, side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    pub parent: NodeId,
    /// The (request, sequence) each candidate streams from: one request of k
    /// sequences, or (base vs tuned) one request each.
    pub slots: Vec<(RequestId, u32)>,
    /// Column titles.
    pub labels: Vec<String>,
    pub nodes: Vec<NodeId>,
    pub texts: Vec<String>,
    pub done: Vec<bool>,
    pub stars: Vec<Option<u8>>,
    pub sel: usize,
}

impl Compare {
    pub fn generating(&self) -> bool {
        !self.slots.is_empty() && self.done.iter().any(|d| !d)
    }

    /// Which candidate a streamed event belongs to.
    pub fn slot(&self, id: RequestId, seq: u32) -> Option<usize> {
        self.slots.iter().position(|s| *s == (id, seq))
    }

    pub fn new(parent: NodeId) -> Self {
        Self {
            parent,
            slots: Vec::new(),
            labels: Vec::new(),
            nodes: Vec::new(),
            texts: Vec::new(),
            done: Vec::new(),
            stars: Vec::new(),
            sel: 0,
        }
    }
}

/// How many candidates `R` asks for.
pub const COMPARE_K: u32 = 3;

pub fn on_key(c: &mut Compare, b: &mut Base, cmd: Option<Cmd>) -> Reply {
    let n = c.nodes.len().max(1);
    match cmd {
        Some(Cmd::NextSibling) => c.sel = (c.sel + 1) % n,
        Some(Cmd::PrevSibling) => c.sel = (c.sel + n - 1) % n,
        Some(Cmd::Rate(r)) => {
            if let Some(&node) = c.nodes.get(c.sel) {
                let stars = (r > 0).then_some(r);
                c.stars[c.sel] = stars;
                return stay(vec![Effect::Rate(node, stars)]);
            }
        }
        Some(Cmd::Keep) => {
            if c.generating() {
                b.message = Some("still generating (Ctrl-C stops it)".into());
                return stay(vec![]);
            }
            if let Some(&node) = c.nodes.get(c.sel) {
                b.composing = false;
                b.select_after_load = Some(node);
                return close(vec![Effect::ActivateNode(node)]);
            }
        }
        // Every request of the group stops (the k candidates, or both of base vs tuned).
        Some(Cmd::Cancel) if c.generating() => return stay(vec![Effect::Cancel]),
        Some(Cmd::Back) => {
            if c.generating() {
                return stay(vec![Effect::Cancel]);
            }
            return close(vec![]);
        }
        Some(Cmd::Help) => return (Next::Help, vec![]),
        _ => {}
    }
    stay(vec![])
}

pub fn draw(f: &mut Frame, s: &Base, c: &Compare, area: Rect) {
    f.render_widget(Clear, area);
    let n = c.nodes.len().max(1);
    let what = if c.labels.iter().any(|l| l == "base") {
        "base vs tuned".to_string()
    } else {
        format!("{n} candidates")
    };
    let block = Block::bordered().title(format!(
        " compare {what} — h/l choose, 1-5 rate, Enter keeps, Esc {} ",
        if c.generating() { "stops" } else { "closes" }
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if c.nodes.is_empty() {
        f.render_widget(Paragraph::new("starting…"), inner);
        return;
    }
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(inner);
    for (i, col) in cols.iter().enumerate() {
        let chosen = i == c.sel;
        let mut title = match c.labels.get(i).filter(|l| !l.starts_with("candidate")) {
            Some(l) => format!(" {l} #{} ", c.nodes[i]),
            None => format!(" {}/{n} #{} ", i + 1, c.nodes[i]),
        };
        if let Some(st) = c.stars.get(i).copied().flatten() {
            title.push_str(&stars(Some(st)));
            title.push(' ');
        }
        if !c.done.get(i).copied().unwrap_or(true) {
            title.push_str("▍ ");
        }
        let style = if chosen {
            Style::new().fg(theme::get().key).bold()
        } else {
            Style::new().fg(theme::get().muted)
        };
        let text = c.texts.get(i).cloned().unwrap_or_default();
        // Finished candidates come back from the database with their calls as structure.
        let calls = s
            .path
            .iter()
            .find(|v| v.node.id == c.nodes[i])
            .map(|v| {
                v.node
                    .tool_calls
                    .iter()
                    .map(crate::tools::describe)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let mut lines: Vec<Line> = text.lines().map(|l| Line::raw(l.to_string())).collect();
        for d in calls {
            lines.push(Line::styled(
                format!("⚙ {d}"),
                Style::new().fg(theme::get().info),
            ));
        }
        // Show the end of a long candidate (where it is being written).
        let h = col.height.saturating_sub(2) as usize;
        let w = col.width.saturating_sub(2).max(1) as usize;
        let rows: usize = lines.iter().map(|l| l.width().div_ceil(w).max(1)).sum();
        let scroll = rows.saturating_sub(h) as u16;
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .scroll((scroll, 0))
                .block(
                    Block::bordered()
                        .border_style(style)
                        .title(Span::styled(title, style)),
                ),
            *col,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::EngineEvent;

    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;

    use crossterm::event::KeyCode;

    #[test]
    fn compare_streams_k_candidates_rates_them_and_keeps_one() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('R'))),
            vec![Effect::RegenerateK { parent: 1, k: 3 }]
        );
        update(
            &mut s,
            Action::CompareStarted {
                nodes: vec![10, 11, 12],
                slots: vec![(9, 0), (9, 1), (9, 2)],
                labels: vec![
                    "candidate 1".into(),
                    "candidate 2".into(),
                    "candidate 3".into(),
                ],
            },
        );
        update(
            &mut s,
            Action::Started {
                node: 10,
                request: 9,
            },
        );
        for seq in 0..3 {
            update(
                &mut s,
                Action::Engine(EngineEvent::Token {
                    id: 9,
                    seq,
                    text: format!("answer {seq}"),
                }),
            );
        }
        let c = s.compare().cloned().unwrap();
        assert_eq!(c.texts, ["answer 0", "answer 1", "answer 2"]);
        // Not yet: still generating.
        assert_eq!(update(&mut s, key(KeyCode::Enter)), vec![]);
        let done = |seq| {
            Action::Engine(EngineEvent::Done {
                id: 9,
                seq,
                facts: Default::default(),
            })
        };
        assert_eq!(update(&mut s, done(0)), vec![]);
        assert_eq!(update(&mut s, done(2)), vec![]);
        assert_eq!(update(&mut s, done(1)), vec![Effect::Open(1)]);
        assert!(s.streaming.is_none());
        update(&mut s, key(KeyCode::Char('l')));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('4'))),
            vec![Effect::Rate(11, Some(4))]
        );
        assert_eq!(s.compare().unwrap().stars[1], Some(4));
        assert_eq!(
            update(&mut s, key(KeyCode::Enter)),
            vec![Effect::ActivateNode(11)]
        );
        assert!(s.compare().is_none());
    }

    #[test]
    fn base_vs_tuned_streams_two_requests_side_by_side() {
        let mut s = open_chat();
        let fx = update(&mut s, key(KeyCode::Char('B')));
        assert!(fx.is_empty());
        assert!(s
            .message
            .as_deref()
            .unwrap()
            .contains("no adapter attached"));
        s.adapter = Some(("job-1".into(), 1.0));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('B'))),
            vec![Effect::CompareAdapter { parent: 1 }]
        );
        update(
            &mut s,
            Action::CompareStarted {
                nodes: vec![20, 21],
                slots: vec![(5, 0), (6, 0)],
                labels: vec!["tuned: job-1 ×1".into(), "base".into()],
            },
        );
        let token = |id, text: &str| {
            Action::Engine(EngineEvent::Token {
                id,
                seq: 0,
                text: text.into(),
            })
        };
        update(&mut s, token(5, "PLUM"));
        update(&mut s, token(6, "I do not know"));
        update(&mut s, token(5, "TREE"));
        let c = s.compare().cloned().unwrap();
        assert_eq!(c.texts, ["PLUMTREE", "I do not know"]);
        let done = |id| {
            Action::Engine(EngineEvent::Done {
                id,
                seq: 0,
                facts: Default::default(),
            })
        };
        assert!(update(&mut s, done(5)).is_empty(), "one still generating");
        assert!(s.compare().unwrap().generating());
        assert_eq!(update(&mut s, done(6)), vec![Effect::Open(1)]);
        update(&mut s, key(KeyCode::Char('l')));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('2'))),
            vec![Effect::Rate(21, Some(2))]
        );
    }
}
