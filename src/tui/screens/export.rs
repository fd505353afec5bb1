//! The Export dialog (`x`): a format and a minimum rating, the counts of a dry run as
//! they change (computed off the event loop), `w` writes.

use crate::tui::effect::{close, stay, Effect, Next, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// Formats the Export dialog offers (`text` needs a template: `arbor export`).
pub const EXPORT_FORMATS: &[crate::dataset::Format] = {
    use crate::dataset::Format::*;
    &[
        Openai,
        Trl,
        Mlx,
        Sharegpt,
        Alpaca,
        OpenaiDpo,
        TrlPreference,
        TrlPromptCompletion,
        Kto,
        Oasst,
    ]
};

/// What the Export dialog shows: the choice, and the counts of a dry run of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportDialog {
    pub format: usize,
    pub min_rating: Option<u8>,
    pub preview: Option<ExportPreview>,
    /// Where the last export went, or why it failed.
    pub result: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportPreview {
    pub examples: usize,
    pub conversations: usize,
    pub left_out: Vec<(String, usize)>,
    pub within_longer: usize,
    pub first: Option<String>,
}

impl ExportDialog {
    pub fn format(&self) -> crate::dataset::Format {
        EXPORT_FORMATS[self.format]
    }
    pub fn effect(&self, write: bool) -> Effect {
        Effect::Export {
            format: self.format(),
            min_rating: self.min_rating,
            write,
        }
    }
}

pub fn on_key(d: &mut ExportDialog, cmd: Option<Cmd>) -> Reply {
    let n = EXPORT_FORMATS.len();
    match cmd {
        Some(Cmd::NextFormat) => d.format = (d.format + 1) % n,
        Some(Cmd::PrevFormat) => d.format = (d.format + n - 1) % n,
        Some(Cmd::MoreStars) => d.min_rating = Some(d.min_rating.map_or(1, |r| (r + 1).min(5))),
        Some(Cmd::FewerStars) => d.min_rating = d.min_rating.and_then(|r| (r > 1).then(|| r - 1)),
        Some(Cmd::Write) => {
            d.result = Some("writing…".into());
            return stay(vec![d.effect(true)]);
        }
        Some(Cmd::Help) => return (Next::Help, vec![]),
        Some(Cmd::Back) => return close(vec![]),
        _ => return stay(vec![]),
    }
    d.result = None;
    stay(vec![d.effect(false)])
}

pub fn draw(f: &mut Frame, d: &ExportDialog, area: Rect) {
    let r = centered(area, 90, 90);
    f.render_widget(Clear, r);
    let key = Style::new().fg(theme::get().key);
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
                Style::new().bold().fg(theme::get().ok),
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
        lines.push(Line::styled(m.clone(), Style::new().fg(theme::get().info)));
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

#[cfg(test)]
mod tests {

    use crate::tui::keymap::Context;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;

    use crossterm::event::KeyCode;

    #[test]
    fn export_dialog_asks_for_counts_on_every_change() {
        use crate::dataset::Format;
        let mut s = State::new("db".into(), "me".into());
        let fx = update(&mut s, key(KeyCode::Char('x')));
        assert_eq!(
            fx,
            vec![Effect::Export {
                format: Format::Openai,
                min_rating: Some(4),
                write: false
            }]
        );
        assert_eq!(s.key_context(), Context::Export);
        let fx = update(&mut s, key(KeyCode::Right));
        assert_eq!(
            fx,
            vec![Effect::Export {
                format: Format::Trl,
                min_rating: Some(4),
                write: false
            }]
        );
        for _ in 0..4 {
            update(&mut s, key(KeyCode::Char('-')));
        }
        assert_eq!(
            s.export().unwrap().min_rating,
            None,
            "below 1 star is no threshold"
        );
        let fx = update(&mut s, key(KeyCode::Left));
        assert_eq!(
            fx,
            vec![Effect::Export {
                format: Format::Openai,
                min_rating: None,
                write: false
            }]
        );
        let fx = update(&mut s, key(KeyCode::Enter));
        assert_eq!(
            fx,
            vec![Effect::Export {
                format: Format::Openai,
                min_rating: None,
                write: true
            }]
        );
        update(
            &mut s,
            Action::ExportWritten("wrote 3 examples to x".into()),
        );
        assert_eq!(
            s.export().unwrap().result.as_deref(),
            Some("wrote 3 examples to x")
        );
        update(&mut s, key(KeyCode::Esc));
        assert!(s.export().is_none());
        assert_eq!(s.key_context(), Context::List);
    }
}
