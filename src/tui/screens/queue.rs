//! The review queue (`V` in the list, `arbor review`): one answer at a time with its
//! context — unrated answers first, then those an LLM judge and the curator disagree on by
//! 2★ or more, then those the judge was unsure of. Rating moves on; the header shows the
//! progress and the pace.

use crate::domain::*;
use crate::eval::queue::{QueueItem, Why};
use crate::tui::base::{Base, NodeView};
use crate::tui::effect::{close, stay, Effect, Next, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::layout::message_lines;
use crate::tui::screens::Prompt;
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

#[derive(Debug, Clone)]
pub struct QueueView {
    pub items: Vec<QueueItem>,
    pub pos: usize,
    /// The current answer's conversation and its path down to it (loaded by the runtime).
    pub conv: Option<Conversation>,
    pub path: Vec<NodeView>,
    /// Answers rated in this queue, and since when (the pace in the header).
    pub rated: usize,
    pub started: std::time::Instant,
    /// A prompt (critique, tags) to open over the queue: `update` opens it.
    pub prompt: Option<Prompt>,
    /// How far the judge agrees with this curator (shown so they know whether to trust
    /// its suggestions).
    pub judge: Option<String>,
}

impl QueueView {
    pub fn new(items: Vec<QueueItem>) -> Self {
        Self {
            items,
            pos: 0,
            conv: None,
            path: Vec::new(),
            rated: 0,
            started: std::time::Instant::now(),
            prompt: None,
            judge: None,
        }
    }

    pub fn current(&self) -> Option<&QueueItem> {
        self.items.get(self.pos)
    }

    /// The answer under review as the chat would show it.
    fn answer(&self) -> Option<&NodeView> {
        let id = self.current()?.answer;
        self.path.last().filter(|v| v.node.id == id)
    }

    /// The effect that loads the current item (none past the end).
    pub fn load(&self) -> Vec<Effect> {
        self.current()
            .map(|i| vec![Effect::LoadQueueItem(i.answer)])
            .unwrap_or_default()
    }

    fn go(&mut self, to: usize) -> Vec<Effect> {
        self.pos = to.min(self.items.len());
        self.path.clear();
        self.load()
    }

    /// Answers rated per hour in this queue.
    pub fn per_hour(&self) -> f64 {
        let h = self.started.elapsed().as_secs_f64() / 3600.0;
        if h > 0.0 {
            self.rated as f64 / h
        } else {
            0.0
        }
    }
}

pub fn on_key(q: &mut QueueView, b: &mut Base, cmd: Option<Cmd>) -> Reply {
    let Some(item) = q.current().copied() else {
        return match cmd {
            Some(Cmd::Back | Cmd::Quit) => close(vec![Effect::LoadList]),
            Some(Cmd::ReviewBack) => stay(q.go(q.pos.saturating_sub(1))),
            _ => stay(vec![]),
        };
    };
    let id = item.answer;
    match cmd {
        Some(Cmd::Rate(n)) => {
            let stars = (n > 0).then_some(n);
            if stars.is_some() {
                q.rated += 1;
            }
            let mut e = vec![Effect::Rate(id, stars)];
            e.extend(q.go(q.pos + 1));
            stay(e)
        }
        Some(Cmd::AcceptJudge) => match q.answer().and_then(|v| v.judge.as_ref()) {
            Some(j) => {
                let mut e = vec![Effect::Rate(id, Some(j.stars))];
                q.rated += 1;
                e.extend(q.go(q.pos + 1));
                stay(e)
            }
            None => {
                b.message = Some("no judge has scored this answer (arbor judge)".into());
                stay(vec![])
            }
        },
        Some(Cmd::Skip) => stay(q.go(q.pos + 1)),
        Some(Cmd::ReviewBack) => stay(q.go(q.pos.saturating_sub(1))),
        Some(Cmd::Critique) => {
            q.prompt = Some(Prompt::Critique(id));
            stay(vec![])
        }
        Some(Cmd::Tag) => {
            q.prompt = Some(Prompt::Tag(id));
            stay(vec![])
        }
        Some(Cmd::MarkClarification) => {
            let marked = q
                .answer()
                .is_some_and(|v| v.tags.iter().any(|t| t == "clarification"));
            let e = if marked {
                Effect::Untag(id, "clarification".into())
            } else {
                Effect::Tag(id, "clarification".into())
            };
            // The runtime reads the item again after a tag (as after a critique).
            stay(vec![e])
        }
        Some(Cmd::Open | Cmd::Edit) => {
            // The conversation at this answer (the path through it made active).
            b.composing = false;
            b.select_after_load = Some(id);
            b.edit_after_load = matches!(cmd, Some(Cmd::Edit)).then_some(id);
            close(vec![Effect::ActivateNode(id)])
        }
        Some(Cmd::Back | Cmd::Quit) => close(vec![Effect::LoadList]),
        Some(Cmd::Help) => (Next::Help, vec![]),
        _ => stay(vec![]),
    }
}

pub fn draw(f: &mut Frame, q: &QueueView, area: Rect) {
    f.render_widget(Clear, area);
    let total = q.items.len();
    let title = match q.current() {
        None => format!(
            " review queue — done: {} rated ({:.0}/h); b goes back, q leaves ",
            q.rated,
            q.per_hour()
        ),
        Some(i) => format!(
            " review {} / {total} · {} rated ({:.0}/h) · {} — 1-5 rate, a accept judge, n skip, b back, o open, q leave ",
            q.pos + 1,
            q.rated,
            q.per_hour(),
            match i.why {
                Why::Unrated => "unrated".to_string(),
                Why::Disagree { mine, judge } => format!("you {mine}★ vs judge {judge}★"),
                Why::Unsure { mine } => format!("judge unsure (3★), you {mine}★"),
            }
        ),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if q.current().is_none() {
        f.render_widget(
            Paragraph::new("Nothing left to review here. b goes back, q leaves."),
            inner,
        );
        return;
    }
    let mut lines: Vec<Line> = Vec::new();
    if let Some(j) = &q.judge {
        lines.push(Line::styled(
            truncate(j, inner.width as usize),
            Style::new().fg(theme::get().dim),
        ));
    }
    if let Some(c) = &q.conv {
        lines.push(Line::styled(
            truncate(
                &format!("conversation {}: {}", c.id, c.title),
                inner.width as usize,
            ),
            Style::new().fg(theme::get().dim),
        ));
        if !c.system_prompt.is_empty() {
            lines.push(Line::styled(
                truncate(
                    &format!("system: {}", c.system_prompt.replace('\n', " ")),
                    inner.width as usize,
                ),
                Style::new().fg(theme::get().system_prompt),
            ));
        }
        lines.push(Line::raw(""));
    }
    let last = q.path.len().saturating_sub(1);
    for (i, v) in q.path.iter().enumerate() {
        lines.extend(message_lines(v, inner.width, i == last, false, None));
        lines.push(Line::raw(""));
    }
    // The answer is at the bottom: show the end.
    let rows = inner.height as usize;
    let skip = lines.len().saturating_sub(rows);
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>())
            .wrap(Wrap { trim: false })
            .style(Style::new().not_bold()),
        inner,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;
    use crossterm::event::KeyCode;

    fn items() -> Vec<QueueItem> {
        [7, 8, 9]
            .into_iter()
            .map(|answer| QueueItem {
                answer,
                why: Why::Unrated,
            })
            .collect()
    }

    #[test]
    fn rating_moves_on_and_n_b_walk_the_queue() {
        let mut s = State::new("db".into(), "me".into());
        let q = QueueView::new(items());
        let e = q.load();
        s.open(Overlay::Queue(Box::new(q)));
        assert_eq!(e, vec![Effect::LoadQueueItem(7)]);
        assert_eq!(
            update(&mut s, key(KeyCode::Char('4'))),
            vec![Effect::Rate(7, Some(4)), Effect::LoadQueueItem(8)]
        );
        assert_eq!(s.queue().unwrap().rated, 1);
        assert_eq!(
            update(&mut s, key(KeyCode::Char('n'))),
            vec![Effect::LoadQueueItem(9)]
        );
        assert_eq!(
            update(&mut s, key(KeyCode::Char('b'))),
            vec![Effect::LoadQueueItem(8)]
        );
        // 0 clears and moves on without counting as rated.
        assert_eq!(
            update(&mut s, key(KeyCode::Char('0'))),
            vec![Effect::Rate(8, None), Effect::LoadQueueItem(9)]
        );
        assert_eq!(s.queue().unwrap().rated, 1);
        // a without a judge score says so.
        assert!(update(&mut s, key(KeyCode::Char('a'))).is_empty());
        assert!(s.message.clone().unwrap().contains("no judge"));
        // o opens the conversation at the answer; q leaves to the list.
        assert_eq!(
            update(&mut s, key(KeyCode::Char('o'))),
            vec![Effect::ActivateNode(9)]
        );
        assert!(s.queue().is_none());
    }
}
