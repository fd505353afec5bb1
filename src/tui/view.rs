//! Views: pure functions of the state. Only what is visible is wrapped and drawn.

use super::keymap;
use super::state::{Confirm, ModelState, NodeView, Prompt, Screen, State};
use crate::domain::{Origin, Role, Status, ToolCall};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, s: &State) {
    let area = f.area();
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    match s.screen {
        Screen::List => draw_list(f, s, main),
        Screen::Chat => draw_chat(f, s, main),
    }
    draw_status(f, s, status);
    if let Some((node, t)) = &s.editing {
        let r = centered(area, 90, 70);
        f.render_widget(Clear, r);
        let mut t = t.clone();
        t.set_block(Block::bordered().title(format!(
            " edit message {node} — Ctrl-S saves as a new sibling, Esc discards "
        )));
        f.render_widget(&t, r);
    }
    if let Some((p, t)) = &s.prompt {
        let r = centered(area, 70, 20).intersection(area);
        let r = Rect {
            height: 3.min(r.height),
            ..r
        };
        f.render_widget(Clear, r);
        let title = match p {
            Prompt::Critique(id) => format!(" critique of message {id} — Enter saves "),
            Prompt::Tag(id) => format!(" tags for message {id} — Enter saves "),
            Prompt::EvalSet(id) => format!(" eval set for the turn of message {id} "),
            Prompt::Rename(id) => format!(" title of conversation {id} — Enter saves "),
            Prompt::Search => " search every message — Enter keeps, Esc clears ".to_string(),
            Prompt::FilterTag => " only conversations with the tag — Enter applies ".to_string(),
        };
        let mut t = t.clone();
        t.set_block(Block::bordered().title(title));
        f.render_widget(&t, r);
    }
    if let Some(c) = &s.confirm {
        let text = match c {
            Confirm::DeleteConversation(id) => {
                format!("Delete conversation {id} and all its messages? y/n")
            }
            Confirm::DeleteBranch(id) => {
                format!("Delete message {id} and everything below it? y/n")
            }
        };
        let r = centered(area, 60, 20);
        let r = Rect {
            height: 3.min(r.height),
            ..r
        };
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(text).block(Block::bordered().title(" confirm ")),
            r,
        );
    }
    if let Some(d) = &s.export {
        draw_export(f, d, area);
    }
    if let Some(d) = &s.settings {
        draw_settings(f, d, area);
    }
    if let Some(sel) = s.picker {
        draw_presets(f, s, sel, area);
    }
    if let Some(t) = &s.tree {
        draw_tree(f, t, main);
    }
    if let Some(c) = &s.compare {
        draw_compare(f, s, c, main);
    }
    if let Some(j) = &s.jobs {
        draw_jobs(f, j, main);
    }
    if let Some(v) = &s.evals {
        draw_evals(f, v, main);
    }
    if let Some(r) = &s.review {
        f.render_widget(Clear, area);
        super::review::draw(f, r);
    }
    if s.help {
        draw_help(f, s, area);
    }
}

/// A row of a list, reversed when selected.
fn selectable(line: Line<'_>, selected: bool) -> Line<'_> {
    if selected {
        line.style(Style::new().add_modifier(Modifier::REVERSED))
    } else {
        line
    }
}

/// The list down the left of the Jobs and Evals views.
fn draw_side_list(f: &mut Frame, lines: Vec<Line>, area: Rect) {
    f.render_widget(
        Paragraph::new(lines).block(Block::new().borders(ratatui::widgets::Borders::RIGHT)),
        area,
    );
}

/// A bar of `width` cells for a rate in [0, 1].
fn bar(rate: f64, width: usize) -> String {
    let cells = (rate.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let (full, part) = (cells / 8, cells % 8);
    let mut s = "█".repeat(full);
    if part > 0 {
        s.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][part - 1]);
    }
    format!("{s:<width$}")
}

fn draw_evals(f: &mut Frame, v: &super::state::EvalsView, area: Rect) {
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
            Style::new().fg(CANDIDATE_COLORS[i % CANDIDATE_COLORS.len()]),
        ));
    }
    if r.pairs.is_empty() {
        out.push(Line::styled(
            " blind review: no decisions yet — Enter starts it",
            Style::new().fg(Color::DarkGray),
        ));
    }
    for p in &r.pairs {
        out.push(Line::raw(format!(" blind: {} vs {}", p.a, p.b)));
        out.push(Line::from(vec![
            Span::raw("   "),
            Span::styled(bar(p.win_rate.rate, width), Style::new().fg(Color::Green)),
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
                    Style::new().fg(CANDIDATE_COLORS[i % CANDIDATE_COLORS.len()]),
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

const CANDIDATE_COLORS: &[Color] = &[Color::Cyan, Color::Magenta, Color::Yellow, Color::Blue];

fn draw_tree(f: &mut Frame, t: &super::state::TreeView, area: Rect) {
    f.render_widget(Clear, area);
    let block = Block::bordered()
        .title(" tree — j/k move, Enter makes that path active, Esc closes (● active path) ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let h = inner.height as usize;
    // Keep the selected row in view: scroll only as far as needed.
    let start = t.sel.saturating_sub(h.saturating_sub(1));
    let lines: Vec<Line> = t
        .rows
        .iter()
        .enumerate()
        .skip(start)
        .take(h)
        .map(|(i, r)| {
            let (label, color) = role_style(r.role);
            let mut spans = vec![
                Span::styled(
                    if r.active { "● " } else { "  " },
                    Style::new().fg(Color::Yellow),
                ),
                Span::styled(r.graph.clone(), Style::new().fg(Color::DarkGray)),
                Span::styled(format!("{label} #{} ", r.id), Style::new().fg(color)),
            ];
            if let Some(st) = r.stars {
                spans.push(Span::styled(
                    format!("{} ", stars(Some(st))),
                    Style::new().fg(Color::Yellow),
                ));
            }
            if r.origin == Origin::Edited {
                spans.push(Span::styled("edited ", Style::new().fg(Color::LightBlue)));
            }
            if r.tool_calls > 0 {
                spans.push(Span::styled(
                    format!("⚙{} ", r.tool_calls),
                    Style::new().fg(Color::Cyan),
                ));
            }
            spans.push(Span::raw(truncate(&r.text, inner.width as usize)));
            let line = Line::from(spans);
            if i == t.sel {
                line.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                line
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_compare(f: &mut Frame, s: &State, c: &super::state::Compare, area: Rect) {
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
            Style::new().fg(Color::Yellow).bold()
        } else {
            Style::new().fg(Color::Gray)
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
            lines.push(Line::styled(format!("⚙ {d}"), Style::new().fg(Color::Cyan)));
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

/// The Jobs view: the jobs on the left; on the right the selected one's status line,
/// its loss chart (train and validation) and the tail of its log.
fn draw_jobs(f: &mut Frame, j: &super::state::JobsView, area: Rect) {
    use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
    f.render_widget(Clear, area);
    let block = Block::bordered().title(
        " jobs — j/k select, n new (peft, 4★+), c cancel, r run again, a chat with its adapter (+/- scale), A base, Esc closes ",
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [left, right] =
        Layout::horizontal([Constraint::Length(34), Constraint::Min(10)]).areas(inner);
    if j.rows.is_empty() {
        f.render_widget(
            Paragraph::new(
                "No training jobs yet.\n\nPress n to train a LoRA adapter on the answers you rated 4 stars or more,\nor run `arbor train --min-rating 4` in a shell.",
            )
            .wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    let status_color = |st: crate::store::JobStatus| {
        use crate::store::JobStatus::*;
        match st {
            Queued | Running => Color::Yellow,
            Succeeded => Color::Green,
            Failed | Lost => Color::Red,
            Cancelled => Color::DarkGray,
        }
    };
    let lines: Vec<Line> = j
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = &r.progress;
            let steps = match p.total {
                Some(t) => format!("{}/{t}", p.step),
                None => String::new(),
            };
            let line = Line::from(vec![
                Span::raw(format!("#{:<3} ", r.job.id)),
                Span::styled(
                    format!("{:<9} ", r.job.status.as_str()),
                    Style::new().fg(status_color(r.job.status)),
                ),
                Span::raw(format!("{:<5} {steps}", r.job.recipe)),
            ]);
            selectable(line, i == j.sel)
        })
        .collect();
    draw_side_list(f, lines, left);
    let Some(row) = j.selected() else {
        return;
    };
    let job = &row.job;
    let p = &row.progress;
    let mut head = vec![Line::from(vec![
        Span::styled(
            format!("job {} {} ", job.id, job.status),
            Style::new().fg(status_color(job.status)).bold(),
        ),
        Span::raw(format!(
            "{} on {}",
            job.recipe,
            std::path::Path::new(&job.base_model)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        )),
    ])];
    let mut facts = Vec::new();
    if let Some(t) = p.total {
        facts.push(format!("step {}/{t}", p.step));
    }
    if let Some(l) = p.loss {
        facts.push(format!("loss {l:.3}"));
    }
    if let Some(l) = p.eval_loss {
        facts.push(format!("eval {l:.3}"));
    }
    if let Some(t) = p.tokens_per_s {
        facts.push(format!("{t:.0} tok/s"));
    }
    if let Some(e) = p.eta_s {
        facts.push(format!("ETA {}", crate::train::fmt_duration(e)));
    }
    if let Some(ph) = &job.phase {
        facts.push(ph.clone());
    }
    head.push(Line::raw(facts.join(" · ")));
    match (&row.adapter, &job.error) {
        (Some(a), _) => head.push(Line::styled(
            format!("adapter {a} — press a to chat with it"),
            Style::new().fg(Color::Green),
        )),
        (None, Some(e)) => head.push(Line::styled(
            e.lines().next().unwrap_or("").to_string(),
            Style::new().fg(Color::Red),
        )),
        _ => {}
    }
    if let Some(e) = &j.eval {
        head.push(Line::styled(e.clone(), Style::new().fg(Color::Cyan)));
    }
    let [head_area, chart_area, log_area] = Layout::vertical([
        Constraint::Length(head.len() as u16),
        Constraint::Percentage(55),
        Constraint::Min(3),
    ])
    .areas(right);
    f.render_widget(Paragraph::new(head), head_area);
    let train: Vec<(f64, f64)> = j
        .metrics
        .iter()
        .filter_map(|m| Some((m.step as f64, m.loss?)))
        .collect();
    let valid: Vec<(f64, f64)> = j
        .metrics
        .iter()
        .filter_map(|m| Some((m.step as f64, m.eval_loss?)))
        .collect();
    if train.is_empty() && valid.is_empty() {
        f.render_widget(
            Paragraph::new("no loss reported yet").block(Block::bordered().title(" loss ")),
            chart_area,
        );
    } else {
        let x_max = p
            .total
            .map(|t| t as f64)
            .unwrap_or(0.0)
            .max(train.iter().chain(&valid).map(|x| x.0).fold(1.0, f64::max));
        let y_max = train.iter().chain(&valid).map(|x| x.1).fold(0.0, f64::max) * 1.1;
        let y_max = if y_max > 0.0 { y_max } else { 1.0 };
        let mut sets = vec![Dataset::default()
            .name("train")
            .marker(ratatui::symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Cyan))
            .data(&train)];
        if !valid.is_empty() {
            sets.push(
                Dataset::default()
                    .name("validation")
                    .marker(ratatui::symbols::Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(Color::Magenta))
                    .data(&valid),
            );
        }
        let chart = Chart::new(sets)
            .block(Block::bordered().title(" loss "))
            .x_axis(
                Axis::default()
                    .title("step")
                    .bounds([1.0, x_max])
                    .labels(["1".to_string(), format!("{x_max:.0}")]),
            )
            .y_axis(
                Axis::default()
                    .bounds([0.0, y_max])
                    .labels(["0".to_string(), format!("{y_max:.2}")]),
            );
        f.render_widget(chart, chart_area);
    }
    let h = log_area.height.saturating_sub(2) as usize;
    let tail: Vec<Line> = j.log[j.log.len().saturating_sub(h)..]
        .iter()
        .map(|l| Line::raw(l.clone()))
        .collect();
    f.render_widget(
        Paragraph::new(tail).block(Block::bordered().title(" log ")),
        log_area,
    );
}

fn role_style(role: Role) -> (&'static str, Color) {
    match role {
        Role::User => ("you", Color::Green),
        Role::Assistant => ("assistant", Color::Magenta),
        Role::System => ("system", Color::Blue),
        Role::Tool => ("tool", Color::Cyan),
    }
}

fn draw_presets(f: &mut Frame, s: &State, sel: usize, area: Rect) {
    let r = centered(area, 80, 60);
    f.render_widget(Clear, r);
    let items: Vec<ListItem> = s
        .presets
        .iter()
        .map(|p| {
            let tools = p
                .tools
                .as_ref()
                .and_then(|t| t.as_array())
                .map(|a| format!("  ({} tools)", a.len()))
                .unwrap_or_default();
            ListItem::new(Line::from(vec![
                Span::styled(format!("{:<14}", p.name), Style::new().bold()),
                Span::raw(p.description.clone()),
                Span::styled(tools, Style::new().fg(Color::Cyan)),
            ]))
        })
        .collect();
    let list = List::new(items)
        .block(
            Block::bordered().title(" new conversation from a preset — Enter starts, Esc closes "),
        )
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut st = ListState::default().with_selected(Some(sel));
    f.render_stateful_widget(list, r, &mut st);
}

fn draw_settings(f: &mut Frame, d: &super::state::SettingsDialog, area: Rect) {
    let r = centered(area, 90, 80);
    f.render_widget(Clear, r);
    let key = Style::new().fg(Color::Yellow);
    let mut tabs = vec![Span::raw(" settings: ")];
    for (i, name) in super::state::SETTINGS_TABS.iter().enumerate() {
        let st = if i == d.tab {
            Style::new().bold().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().fg(Color::Gray)
        };
        tabs.push(Span::styled(format!(" {name} "), st));
        tabs.push(Span::raw(" "));
    }
    tabs.extend([
        Span::styled("Tab", key),
        Span::raw(" next  "),
        Span::styled("Ctrl-S", key),
        Span::raw(" save  "),
        Span::styled("Esc", key),
        Span::raw(" close "),
    ]);
    let hint = match d.tab {
        0 => "The conversation's system prompt.",
        1 => "OpenAI tools JSON array; each function's parameters is a JSON schema. Checked before saving.",
        _ => "JSON: sampling {temperature, top_k, top_p, min_p, repeat_penalty, seed, max_tokens, stop}, tool_choice auto|required|none, tool_grammar true|false, few_shot K.",
    };
    let [body, foot] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)])
        .areas(Block::bordered().inner(r));
    f.render_widget(Block::bordered().title(Line::from(tabs)), r);
    f.render_widget(&d.editors[d.tab], body);
    f.render_widget(
        Paragraph::new(Line::styled(
            truncate(hint, foot.width as usize),
            Style::new().fg(Color::DarkGray),
        )),
        foot,
    );
}

fn draw_export(f: &mut Frame, d: &super::state::ExportDialog, area: Rect) {
    let r = centered(area, 90, 90);
    f.render_widget(Clear, r);
    let key = Style::new().fg(Color::Yellow);
    let rating = match d.min_rating {
        Some(n) => format!("{n}★ and up (unrated and lower answers are not trained on)"),
        None => "none (every complete answer except those rated 1-2★)".to_string(),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::raw("format      "),
            Span::styled(format!("‹ {} ›", d.format().name()), Style::new().bold()),
        ]),
        Line::from(vec![
            Span::raw("min rating  "),
            Span::styled(rating, Style::new().bold()),
        ]),
        Line::raw(""),
    ];
    match &d.preview {
        Some(p) => {
            lines.push(Line::styled(
                format!(
                    "{} examples from {} conversations",
                    p.examples, p.conversations
                ),
                Style::new().bold().fg(Color::Green),
            ));
            for (why, n) in &p.left_out {
                lines.push(Line::raw(format!("  {n:>7}  left out: {why}")));
            }
            if p.within_longer > 0 {
                lines.push(Line::raw(format!(
                    "  {:>7}  inside a longer example (trained there)",
                    p.within_longer
                )));
            }
            lines.push(Line::raw(""));
            lines.push(Line::styled("first example:", Style::new().bold()));
            lines.push(Line::raw(truncate(
                p.first.as_deref().unwrap_or("(none)"),
                2000,
            )));
        }
        None => lines.push(Line::raw("counting…")),
    }
    if let Some(m) = &d.result {
        lines.push(Line::raw(""));
        lines.push(Line::styled(m.clone(), Style::new().fg(Color::Cyan)));
    }
    let title = Line::from(vec![
        Span::raw(" export — "),
        Span::styled("←/→", key),
        Span::raw(" format  "),
        Span::styled("+/-", key),
        Span::raw(" min rating  "),
        Span::styled("Enter", key),
        Span::raw(" write  "),
        Span::styled("Esc", key),
        Span::raw(" close "),
    ]);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title)),
        r,
    );
}

fn centered(area: Rect, pct_w: u16, pct_h: u16) -> Rect {
    let w = (area.width * pct_w / 100).max(20).min(area.width);
    let h = (area.height * pct_h / 100).max(3).min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn stars(n: Option<u8>) -> String {
    match n {
        Some(n) => "★".repeat(n as usize) + &"☆".repeat(5 - n as usize),
        None => String::new(),
    }
}

fn draw_list(f: &mut Frame, s: &State, area: Rect) {
    let items: Vec<ListItem> = s
        .conversations
        .iter()
        .map(|c| {
            let when = time::OffsetDateTime::from_unix_timestamp(c.updated_at / 1000)
                .ok()
                .and_then(|t| {
                    t.format(&time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]"
                    ))
                    .ok()
                })
                .unwrap_or_default();
            let rating = c
                .avg_stars
                .map(|a| format!("{a:.1}★ ({})", c.rated))
                .unwrap_or_default();
            ListItem::new(Line::from(vec![
                Span::raw(format!("{:<40} ", truncate(&c.title, 40))),
                Span::styled(format!("{when}  "), Style::new().fg(Color::DarkGray)),
                Span::raw(format!("{:>4} msgs  ", c.messages)),
                Span::styled(format!("{rating:<10} "), Style::new().fg(Color::Yellow)),
                Span::styled(c.tags.join(","), Style::new().fg(Color::Cyan)),
            ]))
        })
        .collect();
    let mut filter = String::new();
    if let Some(q) = &s.list_filter.search {
        filter.push_str(&format!(" matching “{q}”"));
    }
    if let Some(t) = &s.list_filter.tag {
        filter.push_str(&format!(" tagged #{t}"));
    }
    let title = if filter.is_empty() {
        format!(
            " conversations ({}) — Enter opens, n new, p from a preset, / search, ? help ",
            s.conversations.len()
        )
    } else {
        format!(
            " conversations ({}){filter} — Esc shows all ",
            s.conversations.len()
        )
    };
    if items.is_empty() {
        f.render_widget(
            Paragraph::new(
                "No conversations yet. Press n to start one, p to start from a preset, ? for help.",
            )
            .block(Block::bordered().title(title)),
            area,
        );
        return;
    }
    // Scroll as `list_hit` expects: the selection on the last visible row at most.
    let offset = list_offset(s.list_sel, area.height.saturating_sub(2) as usize);
    let list = List::new(items.into_iter().skip(offset))
        .block(Block::bordered().title(title))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut st = ListState::default().with_selected(Some(s.list_sel - offset));
    f.render_stateful_widget(list, area, &mut st);
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// The lines of one message: a header (role, stars, siblings, origin) and its text,
/// wrapped to `width`, code blocks kept as they are.
/// `answers`: for a tool message, the call it is the result of.
fn message_lines(
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
            Style::new().fg(Color::Yellow),
        ),
        Span::styled(label, Style::new().fg(color).bold()),
        Span::styled(format!(" #{}", n.id), Style::new().fg(Color::DarkGray)),
    ];
    if v.sibling.1 > 1 {
        head.push(Span::styled(
            format!(" ‹ {}/{} ›", v.sibling.0, v.sibling.1),
            Style::new().fg(Color::Cyan),
        ));
    }
    if let Some(st) = v.stars {
        head.push(Span::styled(
            format!(" {}", stars(Some(st))),
            Style::new().fg(Color::Yellow),
        ));
    }
    match n.origin {
        Origin::Edited => head.push(Span::styled(" edited", Style::new().fg(Color::LightBlue))),
        Origin::Imported => head.push(Span::styled(" imported", Style::new().fg(Color::DarkGray))),
        Origin::Generated if v.sibling.0 > 1 => head.push(Span::styled(
            " regenerated",
            Style::new().fg(Color::DarkGray),
        )),
        _ => {}
    }
    if v.has_critique {
        head.push(Span::styled(" ✎critique", Style::new().fg(Color::LightRed)));
    }
    if !v.tags.is_empty() {
        head.push(Span::styled(
            format!(" #{}", v.tags.join(" #")),
            Style::new().fg(Color::Cyan),
        ));
    }
    match n.status {
        Status::Interrupted => {
            head.push(Span::styled(" [interrupted]", Style::new().fg(Color::Red)))
        }
        Status::Error => head.push(Span::styled(
            format!(" [error: {}]", n.error.clone().unwrap_or_default()),
            Style::new().fg(Color::Red),
        )),
        _ => {}
    }
    if let Some(c) = answers {
        head.push(Span::styled(
            format!(" · result of {}", truncate(&crate::tools::describe(c), 60)),
            Style::new().fg(Color::Cyan),
        ));
    }
    if streaming {
        head.push(Span::styled(" ▍generating", Style::new().fg(Color::Yellow)));
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
                Style::new().fg(Color::DarkGray),
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
                Style::new().fg(Color::DarkGray),
            ));
            continue;
        }
        if in_code {
            // Code keeps its layout: cut, never re-flow.
            let cut: String = raw.chars().take(w).collect();
            lines.push(Line::styled(
                format!("    {cut}"),
                Style::new().fg(Color::LightYellow),
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
            Span::styled("    ⚙ call ", Style::new().fg(Color::Cyan)),
            Span::styled(c.name.clone(), Style::new().fg(Color::Cyan).bold()),
            Span::styled(format!("  {}", c.id), Style::new().fg(Color::DarkGray)),
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
                        Span::styled(format!("      {key}"), Style::new().fg(Color::DarkGray)),
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
fn chat_areas(s: &State, area: Rect) -> (Rect, Rect) {
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
fn chat_visible(s: &State, width: u16, height: usize) -> (Vec<Line<'static>>, Vec<Option<usize>>) {
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
                    Style::new().fg(Color::Blue),
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
pub fn chat_hit(s: &State, size: (u16, u16), col: u16, row: u16) -> Option<usize> {
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
pub fn list_hit(s: &State, size: (u16, u16), row: u16) -> Option<usize> {
    let rows = size.1.saturating_sub(3) as usize; // borders and the status line
    let r = (row as usize).checked_sub(1).filter(|r| *r < rows)?;
    let i = list_offset(s.list_sel, rows) + r;
    (i < s.conversations.len()).then_some(i)
}

fn draw_chat(f: &mut Frame, s: &State, area: Rect) {
    let (msgs, comp) = chat_areas(s, area);
    let title = match &s.conv {
        Some(c) => format!(
            " {} ",
            if c.title.is_empty() {
                "untitled"
            } else {
                &c.title
            }
        ),
        None => " new conversation ".to_string(),
    };
    let block = Block::new().borders(Borders::TOP).title(title);
    let inner = block.inner(msgs);
    f.render_widget(block, msgs);
    let (visible, _) = chat_visible(s, inner.width, inner.height as usize);
    if visible.is_empty() {
        f.render_widget(
            Paragraph::new(
                "Type your first message below. Esc leaves the composer, ? shows every key.",
            )
            .style(Style::new().fg(Color::DarkGray)),
            inner,
        );
    } else {
        f.render_widget(Paragraph::new(visible).wrap(Wrap { trim: false }), inner);
    }
    if s.composing {
        let mut t = s.composer.clone();
        // After a tool call the user plays the tool: the composer takes its result.
        let title = match s.pending_calls().first() {
            Some(c) => format!(
                " result of {} — Enter gives it to the model ",
                truncate(&crate::tools::describe(c), 60)
            ),
            None => " message ".to_string(),
        };
        t.set_block(Block::bordered().title(title));
        f.render_widget(&t, comp);
    }
}

fn draw_status(f: &mut Frame, s: &State, area: Rect) {
    let model = match &s.model {
        ModelState::Loading(p) => format!("loading model {:.0}%", p * 100.0),
        ModelState::Ready(i) => format!("{} ({})", i.name, i.template),
        ModelState::Failed(_) => "no model".into(),
    };
    let ctx = match (&s.model, s.context_used) {
        (ModelState::Ready(i), Some(u)) => format!(" · ctx {u}/{}", i.context),
        (ModelState::Ready(i), None) => format!(" · ctx {}", i.context),
        _ => String::new(),
    };
    let tps = s
        .last_tps
        .map(|t| format!(" · {t:.1} tok/s"))
        .unwrap_or_default();
    let pending = if s.streaming.is_some() {
        " · generating (Ctrl-C stops)"
    } else {
        ""
    };
    let tools = match (&s.conv, &s.pending_new) {
        (Some(c), _) => c.tools.as_ref(),
        (None, Some((_, t))) => t.as_ref(),
        _ => None,
    };
    let tools = tools
        .and_then(|t| t.as_array())
        .map(|a| match a.len() {
            1 => " · 1 tool".to_string(),
            n => format!(" · {n} tools"),
        })
        .unwrap_or_default();
    let adapter = s
        .adapter
        .as_ref()
        .map(|(n, sc)| format!(" + adapter {n} ×{sc}"))
        .unwrap_or_default();
    let left = format!(
        " {model}{adapter}{pending}{ctx}{tps}{tools} · {} · {}",
        s.rater, s.db_path
    );
    let line = match &s.message {
        Some(m) => Line::from(vec![Span::styled(
            format!(" {m} "),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        )]),
        None => Line::from(vec![
            Span::styled(
                truncate(&left, area.width.saturating_sub(8) as usize),
                Style::new().fg(Color::Gray),
            ),
            Span::styled("  ? help", Style::new().fg(Color::DarkGray)),
        ]),
    };
    f.render_widget(
        Paragraph::new(line).style(Style::new().bg(Color::Black)),
        area,
    );
}

fn draw_help(f: &mut Frame, s: &State, area: Rect) {
    let ctx = s.key_context();
    let mut lines: Vec<Line> = s
        .keymap
        .help(ctx)
        .into_iter()
        .map(|(k, h)| {
            Line::from(vec![
                Span::styled(format!("{k:>22}  "), Style::new().fg(Color::Yellow)),
                Span::raw(h),
            ])
        })
        .collect();
    if ctx == keymap::Context::Chat {
        lines.push(Line::raw(""));
        lines.push(Line::styled("  in the composer:", Style::new().bold()));
        for (k, h) in s.keymap.help(keymap::Context::Compose) {
            lines.push(Line::from(vec![
                Span::styled(format!("{k:>22}  "), Style::new().fg(Color::Yellow)),
                Span::raw(h),
            ]));
        }
    }
    let r = centered(area, 80, 90);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys — any key closes ")),
        r,
    );
}

#[cfg(test)]
mod tests {
    //! Snapshots of each view drawn on ratatui's TestBackend (`cargo insta review` after a
    //! deliberate change).
    use super::*;
    use crate::domain::{Conversation, ConversationSummary, Node, ToolCall};
    use crate::tui::state::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn render(s: &State, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, s)).unwrap();
        t.backend().to_string()
    }

    fn view(id: i64, parent: Option<i64>, role: Role, text: &str) -> NodeView {
        NodeView::of(Node {
            id,
            parent_id: parent,
            ..Node::new(1, role, text)
        })
    }

    fn state() -> State {
        let mut s = State::new("/data/arbor.db".into(), "alice".into());
        s.model = ModelState::Ready(crate::engine::ModelInfo {
            name: "SmolLM2 135M".into(),
            path: "m.gguf".into(),
            architecture: "llama".into(),
            context: 8192,
            template: "model's own".into(),
            threads: 2,
        });
        s.last_tps = Some(92.5);
        s
    }

    fn chat() -> State {
        let mut s = state();
        let tools = serde_json::json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
        let conv = Conversation {
            id: 1,
            title: "Weather and SQL".into(),
            system_prompt: "You are a careful assistant.".into(),
            tools: Some(tools),
            settings: None,
            active_root_id: Some(1),
            created_at: 0,
            updated_at: 0,
        };
        let mut a1 = view(2, Some(1), Role::Assistant, "Which city do you mean?");
        a1.stars = Some(5);
        a1.tags = vec!["clarification".into()];
        a1.sibling = (2, 3);
        a1.node.origin = Origin::Edited;
        let mut a2 = view(4, Some(3), Role::Assistant, "");
        a2.node.tool_calls = vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: serde_json::json!({"city": "Paris"}),
        }];
        a2.node.few_shot = vec![7, 9];
        a2.has_critique = true;
        let mut t = view(5, Some(4), Role::Tool, "{\"temp_c\": 14}");
        t.node.tool_call_id = Some("call_1".into());
        let mut a3 = view(
            6,
            Some(5),
            Role::Assistant,
            "It is 14 °C in Paris.\n```\nSELECT 1;\n```",
        );
        a3.stars = Some(2);
        let path = vec![
            view(1, None, Role::User, "What is the weather?"),
            a1,
            view(3, Some(2), Role::User, "Paris"),
            a2,
            t,
            a3,
        ];
        update(&mut s, Action::PathLoaded(conv, path));
        s
    }

    #[test]
    fn list_view() {
        let mut s = state();
        let c = |id, title: &str, avg| ConversationSummary {
            id,
            title: title.into(),
            updated_at: 1_790_000_000_000 + id * 60_000,
            messages: 4,
            rated: 2,
            avg_stars: avg,
            tags: vec!["clarification".into()],
        };
        update(
            &mut s,
            Action::ListLoaded(vec![
                c(2, "Find information about players", Some(4.5)),
                c(1, "Weather in Paris", None),
            ]),
        );
        insta::assert_snapshot!(render(&s, 80, 10));
    }

    #[test]
    fn chat_view_with_siblings_ratings_tool_calls_and_results() {
        insta::assert_snapshot!(render(&chat(), 80, 34));
    }

    #[test]
    fn selecting_an_early_message_keeps_the_later_ones_in_view() {
        let mut s = chat();
        s.sel = Some(1);
        let screen = render(&s, 80, 16);
        assert!(screen.contains("▶ assistant #2"), "{screen}");
        // The space below the selection shows what follows it.
        assert!(
            screen.contains("you #3") && screen.contains("assistant #4"),
            "{screen}"
        );
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn chat_view_at_the_smallest_size_while_composing_a_tool_result() {
        let mut s = chat();
        s.path.truncate(4);
        s.composing = true;
        s.sel = None;
        insta::assert_snapshot!(render(&s, 40, 12));
    }

    #[test]
    fn help_overlay() {
        let mut s = chat();
        s.help = true;
        insta::assert_snapshot!(render(&s, 100, 44));
    }

    #[test]
    fn settings_popup() {
        let mut s = chat();
        let c = s.conv.clone().unwrap();
        s.settings = Some(SettingsDialog::new(
            &c.system_prompt,
            c.tools.as_ref(),
            None,
        ));
        s.settings.as_mut().unwrap().tab = 1;
        insta::assert_snapshot!(render(&s, 80, 20));
    }

    #[test]
    fn tree_view() {
        let mut s = chat();
        let row = |id, graph: &str, role, text: &str, stars, active| TreeRow {
            id,
            graph: graph.into(),
            role,
            text: text.into(),
            stars,
            tool_calls: 0,
            origin: Origin::Generated,
            active,
        };
        s.tree = Some(TreeView {
            rows: vec![
                row(1, "└─ ", Role::User, "What is the weather?", None, true),
                row(8, "   ├─ ", Role::Assistant, "Sunny.", Some(1), false),
                row(
                    2,
                    "   ├─ ",
                    Role::Assistant,
                    "Which city do you mean?",
                    Some(5),
                    true,
                ),
                row(3, "   │  └─ ", Role::User, "Paris", None, true),
                row(9, "   └─ ", Role::Assistant, "I cannot know.", None, false),
            ],
            sel: 2,
        });
        insta::assert_snapshot!(render(&s, 80, 12));
    }

    #[test]
    fn evals_view_with_metric_bars_and_a_blind_pair() {
        use crate::eval::report::{wilson, CandidateReport, PairReport, Report, Summary};
        let mut s = state();
        let summary = |k: usize| Summary {
            answers: 6,
            rates: [
                ("sql_compiles", wilson(k, 6)),
                ("exact_match", wilson(k / 2, 6)),
            ]
            .into_iter()
            .collect(),
            ..Summary::default()
        };
        let report = Report {
            run: 2,
            set: "clarify".into(),
            status: "done".into(),
            cases: 6,
            candidates: vec![
                CandidateReport {
                    spec: "base".into(),
                    all: summary(2),
                    groups: Default::default(),
                },
                CandidateReport {
                    spec: "job-1".into(),
                    all: summary(5),
                    groups: Default::default(),
                },
            ],
            answers: vec![],
            pairs: vec![PairReport {
                a: "base".into(),
                b: "job-1".into(),
                wins: 1,
                ties: 1,
                losses: 4,
                win_rate: wilson(1, 5),
                sign_test_p: crate::eval::report::sign_test(1, 4),
            }],
        };
        s.evals = Some(super::super::state::EvalsView {
            runs: vec![report],
            sel: 0,
        });
        insta::assert_snapshot!(render(&s, 100, 16));
    }

    #[test]
    fn jobs_view_with_loss_chart_and_log() {
        let mut s = state();
        let job = crate::store::Job {
            id: 3,
            recipe: "peft".into(),
            base_model: "/models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            data_path: String::new(),
            params: serde_json::Value::Null,
            status: crate::store::JobStatus::Running,
            pid: Some(10),
            supervisor_pid: Some(9),
            exit_code: None,
            dir: None,
            error: None,
            phase: Some("training".into()),
            cancel_requested: false,
            log_offset: 0,
            examples: Some(20),
            created_at: 0,
            started_at: Some(0),
            finished_at: None,
        };
        let metrics: Vec<crate::store::JobMetric> = (1..=6)
            .map(|step| crate::store::JobMetric {
                step,
                total: Some(10),
                loss: Some(4.0 / step as f64),
                eval_loss: (step % 3 == 0).then(|| 5.0 / step as f64),
                lr: Some(1e-3),
                tokens_per_s: Some(150.0),
                at: step * 1500,
            })
            .collect();
        let progress = crate::train::progress(&job, &metrics);
        let done = crate::store::Job {
            id: 2,
            status: crate::store::JobStatus::Succeeded,
            phase: None,
            ..job.clone()
        };
        s.jobs = Some(JobsView {
            rows: vec![
                JobRow {
                    job,
                    progress,
                    adapter: None,
                },
                JobRow {
                    job: done,
                    progress: Default::default(),
                    adapter: Some("job-2".into()),
                },
            ],
            sel: 0,
            metrics,
            log: vec!["{\"event\": \"step\", \"step\": 6}".into()],
            eval: None,
        });
        insta::assert_snapshot!(render(&s, 100, 24));
    }

    #[test]
    fn compare_view() {
        let mut s = chat();
        s.compare = Some(Compare {
            parent: 3,
            slots: vec![(4, 0), (4, 1), (4, 2)],
            labels: Vec::new(),
            nodes: vec![10, 11, 12],
            texts: vec![
                "Paris is 14 °C and cloudy.".into(),
                "I would check a weather service for Paris.".into(),
                "Sunny".into(),
            ],
            done: vec![true, true, false],
            stars: vec![Some(5), None, None],
            sel: 1,
        });
        insta::assert_snapshot!(render(&s, 90, 12));
    }

    #[test]
    fn export_dialog() {
        let mut s = state();
        s.export = Some(ExportDialog {
            format: 0,
            min_rating: Some(4),
            preview: Some(ExportPreview {
                examples: 8,
                conversations: 9,
                left_out: vec![("rated below --min-rating".into(), 5)],
                within_longer: 3,
                first: Some("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}".into()),
            }),
            result: None,
        });
        insta::assert_snapshot!(render(&s, 80, 20));
    }

    #[test]
    fn preset_picker() {
        let mut s = state();
        s.presets = crate::presets::all(&crate::config::Paths {
            config_dir: "/nonexistent".into(),
            data_dir: "/nonexistent".into(),
        })
        .unwrap();
        s.picker = Some(2);
        insta::assert_snapshot!(render(&s, 100, 12));
    }
}
