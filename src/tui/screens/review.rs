//! `arbor eval review RUN`: the blind pairwise review. One case at a time: its context,
//! then two candidates' answers side by side in an order the rater cannot guess, names
//! hidden until the verdict. Every pair of candidates is scheduled for every case.

use crate::domain::*;
use crate::store::Store;
use crate::tui::theme;
use anyhow::Result;
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;
use std::collections::HashMap;

/// One comparison: a case, two candidates (`a` < `b`) and their answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub case_id: i64,
    pub a: usize,
    pub b: usize,
    pub nodes: (NodeId, NodeId),
    /// The answer of `a` is shown on the left.
    pub a_left: bool,
    pub context: Vec<(Role, String)>,
    pub texts: (String, String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Left,
    Right,
    Tie,
}

/// What a key asks of the review (the CLI maps keys, the studio its keymap's commands).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Left,
    Right,
    Tie,
    Skip,
    Undo,
    Quit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Decide { item: usize, winner: Option<usize> },
    Undo { item: usize },
    Quit,
}

/// The review's state; `on_key` is pure (the runner performs its effects).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewState {
    pub run: i64,
    pub candidates: Vec<String>,
    pub items: Vec<Item>,
    /// Which items are decided (by this rater, now or before).
    pub decided: Vec<bool>,
    pub pos: usize,
    /// Items decided in this session, latest last (for undo).
    pub history: Vec<usize>,
    /// The names behind the last verdict, shown until the next key.
    pub reveal: Option<String>,
}

impl ReviewState {
    pub fn done(&self) -> usize {
        self.decided.iter().filter(|d| **d).count()
    }

    /// The next undecided item at or after `from`, wrapping around.
    fn next_open(&self, from: usize) -> usize {
        let n = self.items.len();
        (0..n)
            .map(|i| (from + i) % n.max(1))
            .find(|&i| !self.decided[i])
            .unwrap_or(from.min(n.saturating_sub(1)))
    }

    pub fn on_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        if k.kind == KeyEventKind::Release {
            return vec![];
        }
        let act = match k.code {
            KeyCode::Char('h') | KeyCode::Left => Act::Left,
            KeyCode::Char('l') | KeyCode::Right => Act::Right,
            KeyCode::Char('=') => Act::Tie,
            KeyCode::Char('s') => Act::Skip,
            KeyCode::Char('u') => Act::Undo,
            KeyCode::Char('q') | KeyCode::Esc => Act::Quit,
            _ => return vec![],
        };
        self.act(act)
    }

    pub fn act(&mut self, act: Act) -> Vec<Effect> {
        self.reveal = None;
        let verdict = match act {
            Act::Left => Some(Verdict::Left),
            Act::Right => Some(Verdict::Right),
            Act::Tie => Some(Verdict::Tie),
            Act::Skip => {
                if !self.items.is_empty() {
                    self.pos = self.next_open((self.pos + 1) % self.items.len());
                }
                return vec![];
            }
            Act::Undo => {
                let Some(item) = self.history.pop() else {
                    self.reveal = Some("nothing to undo".into());
                    return vec![];
                };
                self.decided[item] = false;
                self.pos = item;
                self.reveal = Some("undone: decide this one again".into());
                return vec![Effect::Undo { item }];
            }
            Act::Quit => return vec![Effect::Quit],
        };
        let Some(v) = verdict else {
            return vec![];
        };
        if self.items.is_empty() || self.decided[self.pos] {
            return vec![];
        }
        let item = self.pos;
        let it = &self.items[item];
        let (left, right) = if it.a_left {
            (it.a, it.b)
        } else {
            (it.b, it.a)
        };
        let winner = match v {
            Verdict::Left => Some(left),
            Verdict::Right => Some(right),
            Verdict::Tie => None,
        };
        // The verdict first: a long candidate name may run past the screen's edge.
        self.reveal = Some(format!(
            "{} — left was {}, right was {}",
            match winner {
                Some(w) => format!("{} preferred", self.candidates[w]),
                None => "a tie".into(),
            },
            self.candidates[left],
            self.candidates[right],
        ));
        self.decided[item] = true;
        self.history.push(item);
        if self.done() < self.items.len() {
            self.pos = self.next_open((item + 1) % self.items.len());
        }
        vec![Effect::Decide { item, winner }]
    }
}

/// A stable coin per (run, case, pair, rater): which answer goes left.
fn left_coin(run: i64, case: i64, a: usize, b: usize, rater: &str) -> bool {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(run.to_le_bytes());
    h.update(case.to_le_bytes());
    h.update((a as u64).to_le_bytes());
    h.update((b as u64).to_le_bytes());
    h.update(rater.as_bytes());
    h.finalize()[0] & 1 == 0
}

/// The review of `run` for `rater`: every pair of finished answers of every case.
pub fn load(store: &Store, run: i64, rater: &str) -> Result<ReviewState> {
    let r = store.eval_run(run)?;
    let (_, cases) = store.eval_set(&r.set_name)?;
    let mut answers: HashMap<i64, Vec<(usize, Node)>> = HashMap::new();
    for a in store.eval_answers(run)? {
        let n = store.node(a.node_id)?;
        if n.status == Status::Complete {
            answers.entry(a.case_id).or_default().push((a.candidate, n));
        }
    }
    let decided: std::collections::HashSet<(i64, usize, usize)> = store
        .decisions(run)?
        .into_iter()
        .filter(|d| d.rater == rater)
        .map(|d| (d.case_id, d.a, d.b))
        .collect();
    let mut items = Vec::new();
    let mut done = Vec::new();
    for case in &cases {
        let Some(list) = answers.get_mut(&case.id) else {
            continue;
        };
        list.sort_by_key(|(c, _)| *c);
        let conv = store.conversation(case.conversation_id)?;
        let mut context: Vec<(Role, String)> = Vec::new();
        if !conv.system_prompt.trim().is_empty() {
            context.push((Role::System, conv.system_prompt.clone()));
        }
        for n in store.path_to_root(case.user_node_id)? {
            context.push((n.role, crate::tools::editable(&n.content, &n.tool_calls)));
        }
        for i in 0..list.len() {
            for j in i + 1..list.len() {
                let (a, na) = &list[i];
                let (b, nb) = &list[j];
                items.push(Item {
                    case_id: case.id,
                    a: *a,
                    b: *b,
                    nodes: (na.id, nb.id),
                    a_left: left_coin(run, case.id, *a, *b, rater),
                    context: context.clone(),
                    texts: (
                        crate::tools::editable(&na.content, &na.tool_calls),
                        crate::tools::editable(&nb.content, &nb.tool_calls),
                    ),
                });
                done.push(decided.contains(&(case.id, *a, *b)));
            }
        }
    }
    let mut s = ReviewState {
        run,
        candidates: r.candidates,
        items,
        decided: done,
        pos: 0,
        history: Vec::new(),
        reveal: None,
    };
    if !s.items.is_empty() {
        s.pos = s.next_open(0);
    }
    Ok(s)
}

pub fn draw(f: &mut Frame, s: &ReviewState) {
    let area = f.area();
    let [head, ctx, answers, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(35),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    let total = s.items.len();
    let header = format!(
        " blind review · run {} · {} / {} decided ",
        s.run,
        s.done(),
        total
    );
    f.render_widget(Line::from(header.bold()), head);
    let help = if s.done() == total && total > 0 {
        " all decided · u undo · q leave (arbor eval report shows the win rates) "
    } else {
        " h/← left better · l/→ right better · = tie · s skip · u undo · q leave "
    };
    match &s.reveal {
        Some(r) => f.render_widget(Line::from(r.clone().yellow()), foot),
        None => f.render_widget(Line::from(help.dark_gray()), foot),
    }
    let Some(it) = s.items.get(s.pos) else {
        f.render_widget(
            Paragraph::new(
                "No pairs to review: the run needs at least two candidates with finished answers.",
            ),
            ctx,
        );
        return;
    };
    // The end of the context (the user's last message) always shows: lines are wrapped here
    // and the last ones that fit are drawn.
    let width = ctx.width.saturating_sub(4).max(10) as usize;
    let mut lines: Vec<Line> = Vec::new();
    for (role, text) in &it.context {
        lines.push(Line::from(Span::styled(
            format!("{role}"),
            Style::new().fg(theme::get().info).bold(),
        )));
        for l in text.lines() {
            for w in textwrap::wrap(l, width) {
                lines.push(Line::raw(format!("  {w}")));
            }
        }
    }
    let room = ctx.height.saturating_sub(2) as usize;
    let skip = lines.len().saturating_sub(room);
    let lines: Vec<Line> = lines.into_iter().skip(skip).collect();
    let title = match (s.decided[s.pos], skip > 0) {
        (true, _) => " context (decided) ",
        (false, true) => " context (its end) ",
        (false, false) => " context ",
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        ctx,
    );
    let (left, right) = if it.a_left {
        (&it.texts.0, &it.texts.1)
    } else {
        (&it.texts.1, &it.texts.0)
    };
    let [l, r] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(answers);
    for (area, text, name) in [(l, left, " left "), (r, right, " right ")] {
        f.render_widget(
            Paragraph::new(text.as_str())
                .wrap(Wrap { trim: false })
                .block(Block::default().borders(Borders::ALL).title(name)),
            area,
        );
    }
}

/// Runs the review in the terminal until `q`.
pub fn run(store: &Store, run: i64, rater: &str) -> Result<i32> {
    let mut s = load(store, run, rater)?;
    let mut terminal = crate::tui::term::init_terminal()?;
    let result = (|| -> Result<()> {
        loop {
            terminal.draw(|f| draw(f, &s))?;
            let Event::Key(k) = event::read()? else {
                continue;
            };
            for e in s.on_key(k) {
                match e {
                    Effect::Quit => return Ok(()),
                    Effect::Decide { item, winner } => {
                        let it = &s.items[item];
                        store.record_decision(
                            run,
                            it.case_id,
                            (it.a, it.b),
                            it.nodes,
                            winner,
                            rater,
                        )?;
                    }
                    Effect::Undo { item } => {
                        let it = &s.items[item];
                        store.undo_decision(run, it.case_id, (it.a, it.b), it.nodes, rater)?;
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result?;
    Ok(0)
}

/// The studio's review overlay: the keymap's `review` commands as acts, the review's
/// effects as the studio's.
pub fn on_cmd(
    r: &mut ReviewState,
    cmd: Option<crate::tui::keymap::Cmd>,
) -> crate::tui::effect::Reply {
    use crate::tui::effect::{close, stay, Effect as E};
    use crate::tui::keymap::Cmd;
    let act = match cmd {
        Some(Cmd::BetterLeft) => Act::Left,
        Some(Cmd::BetterRight) => Act::Right,
        Some(Cmd::Tie) => Act::Tie,
        Some(Cmd::Skip) => Act::Skip,
        Some(Cmd::Undo) => Act::Undo,
        Some(Cmd::Back) => Act::Quit,
        _ => return stay(vec![]),
    };
    let run = r.run;
    let mut out = Vec::new();
    for e in r.act(act) {
        match e {
            Effect::Quit => {
                out.push(E::LoadEvals);
                return close(out);
            }
            Effect::Decide { item, winner } => {
                let it = &r.items[item];
                out.push(E::Decide {
                    run,
                    case: it.case_id,
                    pair: (it.a, it.b),
                    nodes: it.nodes,
                    winner,
                });
            }
            Effect::Undo { item } => {
                let it = &r.items[item];
                out.push(E::Undecide {
                    run,
                    case: it.case_id,
                    pair: (it.a, it.b),
                    nodes: it.nodes,
                });
            }
        }
    }
    stay(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn state(n: usize) -> ReviewState {
        let item = |i: usize| Item {
            case_id: i as i64,
            a: 0,
            b: 1,
            nodes: (10 + i as i64, 20 + i as i64),
            a_left: i.is_multiple_of(2),
            context: vec![(Role::User, format!("q{i}"))],
            texts: ("A".into(), "B".into()),
        };
        ReviewState {
            run: 1,
            candidates: vec!["base".into(), "tuned".into()],
            items: (0..n).map(item).collect(),
            decided: vec![false; n],
            pos: 0,
            history: Vec::new(),
            reveal: None,
        }
    }

    #[test]
    fn every_pair_of_three_candidates_is_scheduled_for_every_case() {
        let s = Store::open_in_memory().unwrap();
        let c = s.create_conversation("c", "", None).unwrap();
        let u = s.append_child(c.id, None, &NewNode::user("q")).unwrap();
        s.create_eval_set(
            "t",
            "",
            &[crate::store::NewCase {
                conversation_id: c.id,
                user_node_id: u.id,
                reference_node_id: None,
                tags: vec![],
            }],
        )
        .unwrap();
        let (set, cases) = s.eval_set("t").unwrap();
        let specs: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let run = s.create_eval_run(set.id, &specs).unwrap();
        for i in 0..3 {
            let n = s
                .start_eval_answer(
                    run,
                    &cases[0],
                    i,
                    &NewNode::assistant("x", Origin::Generated),
                )
                .unwrap();
            s.update_generation(
                n,
                &format!("answer {i}"),
                Status::Complete,
                None,
                None,
                None,
            )
            .unwrap();
        }
        let r = load(&s, run, "me").unwrap();
        let pairs: Vec<(usize, usize)> = r.items.iter().map(|i| (i.a, i.b)).collect();
        assert_eq!(pairs, vec![(0, 1), (0, 2), (1, 2)]);
    }

    #[test]
    fn verdicts_map_sides_to_candidates_and_undo_goes_back() {
        let mut s = state(3);
        // Item 0 shows a (base) on the left: h prefers base.
        assert_eq!(
            s.on_key(key('h')),
            vec![Effect::Decide {
                item: 0,
                winner: Some(0)
            }]
        );
        assert_eq!(
            s.reveal.as_deref(),
            Some("base preferred — left was base, right was tuned")
        );
        // Item 1 shows b (tuned) on the left: h prefers tuned.
        assert_eq!(
            s.on_key(key('h')),
            vec![Effect::Decide {
                item: 1,
                winner: Some(1)
            }]
        );
        assert_eq!(s.on_key(key('u')), vec![Effect::Undo { item: 1 }]);
        assert_eq!(s.pos, 1);
        assert_eq!(
            s.on_key(key('=')),
            vec![Effect::Decide {
                item: 1,
                winner: None
            }]
        );
        // s skips without deciding; q leaves.
        assert_eq!(s.pos, 2);
        assert!(s.on_key(key('s')).is_empty());
        assert_eq!(s.done(), 2);
        assert_eq!(s.on_key(key('q')), vec![Effect::Quit]);
    }
}
