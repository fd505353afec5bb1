//! Small drawing pieces every screen uses: the selection style, centred popups, star
//! strings, bars, role colours.

use crate::domain::Role;
use crate::tui::theme;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

/// A row of a list, reversed when selected.
pub fn selectable(line: Line<'_>, selected: bool) -> Line<'_> {
    if selected {
        line.style(Style::new().add_modifier(Modifier::REVERSED))
    } else {
        line
    }
}

/// The list down the left of the Jobs and Evals views.
pub fn draw_side_list(f: &mut Frame, lines: Vec<Line>, area: Rect) {
    f.render_widget(
        Paragraph::new(lines).block(Block::new().borders(ratatui::widgets::Borders::RIGHT)),
        area,
    );
}

/// A bar of `width` cells for a rate in [0, 1].
pub fn bar(rate: f64, width: usize) -> String {
    let cells = (rate.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let (full, part) = (cells / 8, cells % 8);
    let mut s = "█".repeat(full);
    if part > 0 {
        s.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][part - 1]);
    }
    format!("{s:<width$}")
}

pub fn role_style(role: Role) -> (&'static str, Color) {
    match role {
        Role::User => ("you", theme::get().user),
        Role::Assistant => ("assistant", theme::get().assistant),
        Role::System => ("system", theme::get().system),
        Role::Tool => ("tool", theme::get().tool),
    }
}

pub fn centered(area: Rect, pct_w: u16, pct_h: u16) -> Rect {
    let w = (area.width * pct_w / 100).max(20).min(area.width);
    let h = (area.height * pct_h / 100).max(3).min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn stars(n: Option<u8>) -> String {
    match n {
        Some(n) => "★".repeat(n as usize) + &"☆".repeat(5 - n as usize),
        None => String::new(),
    }
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}
