//! The help overlay (`?`): every key of the view under it, from the keymap in effect.

use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::keymap::{Context, Keymap};

pub fn draw(f: &mut Frame, keymap: &Keymap, ctx: Context, area: Rect) {
    let mut lines: Vec<Line> = keymap
        .help(ctx)
        .into_iter()
        .map(|(k, h)| {
            Line::from(vec![
                Span::styled(format!("{k:>22}  "), Style::new().fg(theme::get().key)),
                Span::raw(h),
            ])
        })
        .collect();
    if ctx == Context::Chat {
        lines.push(Line::raw(""));
        lines.push(Line::styled("  in the composer:", Style::new().bold()));
        for (k, h) in keymap.help(Context::Compose) {
            lines.push(Line::from(vec![
                Span::styled(format!("{k:>22}  "), Style::new().fg(theme::get().key)),
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

    use crate::tui::keymap::{self, Context};
    use crate::tui::testing::*;

    #[test]
    fn help_lists_every_binding_of_the_view() {
        let lines = s_keymap().help(Context::Chat);
        for b in keymap::BINDINGS
            .iter()
            .filter(|b| b.context == Context::Chat)
        {
            assert!(
                lines
                    .iter()
                    .any(|(k, _)| k.split(" / ").any(|x| x == b.key)),
                "{}",
                b.key
            );
        }
    }
}
