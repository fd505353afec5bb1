//! The help overlay (`?`): every key of the view under it, from the keymap in effect.

use crate::tui::effect::{close, stay, Reply};
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::keymap::{Context, Keymap};

/// ↑/↓ (j/k, PageUp/PageDown) scroll; any other key closes.
pub fn on_key(scroll: &mut usize, k: crossterm::event::KeyEvent) -> Reply {
    use crossterm::event::KeyCode::*;
    match k.code {
        Down | Char('j') => *scroll += 1,
        Up | Char('k') => *scroll = scroll.saturating_sub(1),
        PageDown => *scroll += 10,
        PageUp => *scroll = scroll.saturating_sub(10),
        _ => return close(vec![]),
    }
    stay(vec![])
}

pub fn draw(f: &mut Frame, keymap: &Keymap, ctx: Context, scroll: usize, area: Rect) {
    let key = |k: &str, h: &str| {
        Line::from(vec![
            Span::styled(format!("{k:>22}  "), Style::new().fg(theme::get().key)),
            Span::raw(h.to_string()),
        ])
    };
    let mut lines: Vec<Line> = keymap.help(ctx).iter().map(|(k, h)| key(k, h)).collect();
    if ctx == Context::Chat {
        lines.push(Line::raw(""));
        lines.push(Line::styled("  in the composer:", Style::new().bold()));
        lines.extend(keymap.help(Context::Compose).iter().map(|(k, h)| key(k, h)));
    }
    let r = centered(area, 80, 90);
    f.render_widget(Clear, r);
    let rows = r.height.saturating_sub(2) as usize;
    // Never past the end; say when there is more.
    let scroll = scroll.min(lines.len().saturating_sub(rows));
    let title = if lines.len() > rows {
        format!(
            " keys {}–{} of {} — ↑/↓ scroll, any other key closes ",
            scroll + 1,
            (scroll + rows).min(lines.len()),
            lines.len()
        )
    } else {
        " keys — any key closes ".to_string()
    };
    f.render_widget(
        Paragraph::new(lines)
            .scroll((scroll as u16, 0))
            .block(Block::bordered().title(title)),
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

    #[test]
    fn the_help_scrolls_and_any_other_key_closes_it() {
        use crate::tui::state::Overlay;
        use crate::tui::update::update;
        use crossterm::event::KeyCode;
        let mut s = open_chat();
        update(&mut s, key(KeyCode::Char('?')));
        assert!(matches!(s.overlays.last(), Some(Overlay::Help)));
        update(&mut s, key(KeyCode::Down));
        update(&mut s, key(KeyCode::Char('j')));
        update(&mut s, key(KeyCode::Up));
        assert_eq!(s.help_scroll, 1);
        assert!(matches!(s.overlays.last(), Some(Overlay::Help)));
        update(&mut s, key(KeyCode::Char('x')));
        assert!(s.overlays.is_empty());
        // Opened again, it starts at the top.
        update(&mut s, key(KeyCode::Char('?')));
        assert_eq!(s.help_scroll, 0);
    }
}
