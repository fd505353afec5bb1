//! The Evals view (`E`): every eval run with its report; Enter opens the blind review.

use crate::tui::effect::{close, stay, Effect, Next, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

/// The Evals view: every eval run with its report; the selected one's charts.
#[derive(Debug, Clone, Default)]
pub struct EvalsView {
    pub runs: Vec<crate::eval::report::Report>,
    pub sel: usize,
}

pub fn on_key(v: &mut EvalsView, cmd: Option<Cmd>) -> Reply {
    match cmd {
        Some(Cmd::Down) => v.sel = (v.sel + 1).min(v.runs.len().saturating_sub(1)),
        Some(Cmd::Up) => v.sel = v.sel.saturating_sub(1),
        Some(Cmd::Open) => {
            if let Some(r) = v.runs.get(v.sel) {
                return stay(vec![Effect::OpenReview(r.run)]);
            }
        }
        Some(Cmd::Back) => return close(vec![]),
        Some(Cmd::Help) => return (Next::Help, vec![]),
        _ => {}
    }
    stay(vec![])
}

pub fn draw(f: &mut Frame, v: &EvalsView, area: Rect) {
    f.render_widget(Clear, area);
    let block = Block::bordered()
        .title(" eval runs — j/k select, Enter blind review, Esc closes (arbor eval report RUN: all of it) ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    if v.runs.is_empty() {
        f.render_widget(
            Paragraph::new(
                "No eval runs yet.\n\nMake a set (arbor eval set NAME --tag …, or v on a turn in a chat),\nthen: arbor eval run NAME --candidate base --candidate ADAPTER",
            ),
            inner,
        );
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(20)]).areas(inner);
    let lines: Vec<Line> = v
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            selectable(
                Line::raw(format!("run {:<4} {:<14} {}", r.run, r.set, r.status)),
                i == v.sel,
            )
        })
        .collect();
    draw_side_list(f, lines, left);
    let Some(r) = v.runs.get(v.sel) else {
        return;
    };
    let width = (right.width as usize).saturating_sub(50).clamp(6, 40);
    let mut out: Vec<Line> = vec![Line::styled(
        format!(" run {} · set {} · {} cases", r.run, r.set, r.cases),
        Style::new().bold(),
    )];
    for (i, c) in r.candidates.iter().enumerate() {
        out.push(Line::styled(
            format!(" {} {}", ["■", "□", "▪", "▫"][i % 4], c.spec),
            Style::new().fg(theme::get().candidates()[i % 4]),
        ));
    }
    if r.pairs.is_empty() {
        out.push(Line::styled(
            " blind review: no decisions yet — Enter starts it",
            Style::new().fg(theme::get().dim),
        ));
    }
    for p in &r.pairs {
        out.push(Line::raw(format!(" blind: {} vs {}", p.a, p.b)));
        out.push(Line::from(vec![
            Span::raw("   "),
            Span::styled(
                bar(p.win_rate.rate, width),
                Style::new().fg(theme::get().ok),
            ),
            Span::raw(format!(
                " wins {}/{} {:.0}% [{:.0}–{:.0}] · ties {} · sign p {:.2}",
                p.wins,
                p.wins + p.losses,
                p.win_rate.rate * 100.0,
                p.win_rate.low * 100.0,
                p.win_rate.high * 100.0,
                p.ties,
                p.sign_test_p
            )),
        ]));
    }
    let mut names: Vec<&'static str> = Vec::new();
    for c in &r.candidates {
        for k in c.all.rates.keys() {
            if !names.contains(k) {
                names.push(k);
            }
        }
    }
    for n in names {
        out.push(Line::raw(format!(" {n}")));
        for (i, c) in r.candidates.iter().enumerate() {
            let Some(rate) = c.all.rates.get(n) else {
                continue;
            };
            out.push(Line::from(vec![
                Span::raw("   "),
                Span::styled(
                    bar(rate.rate, width),
                    Style::new().fg(theme::get().candidates()[i % 4]),
                ),
                Span::raw(format!(
                    " {}/{} {:.0}% [{:.0}–{:.0}]",
                    rate.k,
                    rate.n,
                    rate.rate * 100.0,
                    rate.low * 100.0,
                    rate.high * 100.0
                )),
            ]));
        }
    }
    f.render_widget(Paragraph::new(out), right);
}
