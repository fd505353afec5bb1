//! The studio's colours: one table of roles (what a colour means: dim text, stars, tags,
//! errors, each speaker…) with two built-in themes, `dark` (the default) and `light`, picked
//! by `theme` in config.toml; `theme.toml` beside it may override any role:
//!
//! ```toml
//! stars = "#b8860b"    # a name (yellow, dark-gray, light-blue…), #rrggbb, or 0-255
//! tag = "cyan"
//! ```
//!
//! Screens read colours through [`get`], never name a colour themselves. The theme is kept
//! per thread (the studio draws on one; each test renders on its own).

use ratatui::style::Color;
use std::cell::Cell;
use std::str::FromStr;

macro_rules! theme {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// What each colour of the studio means.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Theme {
            $($(#[doc = $doc])* pub $name: Color,)*
        }

        /// Every role's name in `theme.toml`.
        pub const ROLES: &[&str] = &[$(stringify!($name)),*];

        impl Theme {
            fn slot(&mut self, role: &str) -> Option<&mut Color> {
                match role {
                    $(stringify!($name) => Some(&mut self.$name),)*
                    _ => None,
                }
            }
        }
    };
}

theme!(
    /// Secondary text: ids, times, hints, what is not set.
    dim,
    /// Inactive tabs and the status bar's text.
    muted,
    /// Key names in hints and help.
    key,
    /// Star ratings.
    stars,
    /// Tags.
    tag,
    /// Tool calls, notes and results.
    info,
    /// The "edited" mark.
    edited,
    /// The critique mark.
    critique,
    /// Errors, failed jobs, interrupted answers.
    error,
    /// Success: finished jobs, written exports, wins.
    ok,
    /// Work in progress: generating, queued or running jobs.
    busy,
    /// Code blocks in messages.
    code,
    /// The system prompt line.
    system_prompt,
    user,
    assistant,
    system,
    tool,
    /// The status bar.
    bar_fg,
    bar_bg,
    /// A status message over the bar.
    notice_fg,
    notice_bg,
    /// Candidates side by side (compare, evals) and the loss chart's train and validation lines.
    candidate_1,
    candidate_2,
    candidate_3,
    candidate_4,
);

impl Theme {
    /// For a dark terminal background (the default).
    pub const DARK: Theme = Theme {
        dim: Color::DarkGray,
        muted: Color::Gray,
        key: Color::Yellow,
        stars: Color::Yellow,
        tag: Color::Cyan,
        info: Color::Cyan,
        edited: Color::LightBlue,
        critique: Color::LightRed,
        error: Color::Red,
        ok: Color::Green,
        busy: Color::Yellow,
        code: Color::LightYellow,
        system_prompt: Color::Blue,
        user: Color::Green,
        assistant: Color::Magenta,
        system: Color::Blue,
        tool: Color::Cyan,
        bar_fg: Color::Gray,
        bar_bg: Color::Black,
        notice_fg: Color::Black,
        notice_bg: Color::Yellow,
        candidate_1: Color::Cyan,
        candidate_2: Color::Magenta,
        candidate_3: Color::Yellow,
        candidate_4: Color::Blue,
    };

    /// For a light background: darker shades of the same meanings (256-colour palette).
    pub const LIGHT: Theme = Theme {
        dim: Color::Indexed(244),
        muted: Color::Indexed(240),
        key: Color::Indexed(25),
        stars: Color::Indexed(130),
        tag: Color::Indexed(30),
        info: Color::Indexed(30),
        edited: Color::Indexed(25),
        critique: Color::Indexed(124),
        error: Color::Indexed(160),
        ok: Color::Indexed(28),
        busy: Color::Indexed(130),
        code: Color::Indexed(94),
        system_prompt: Color::Indexed(25),
        user: Color::Indexed(28),
        assistant: Color::Indexed(90),
        system: Color::Indexed(25),
        tool: Color::Indexed(30),
        bar_fg: Color::Indexed(236),
        bar_bg: Color::Indexed(253),
        notice_fg: Color::Indexed(231),
        notice_bg: Color::Indexed(25),
        candidate_1: Color::Indexed(30),
        candidate_2: Color::Indexed(90),
        candidate_3: Color::Indexed(130),
        candidate_4: Color::Indexed(25),
    };

    /// A built-in theme by name.
    pub fn named(name: &str) -> Result<Theme, String> {
        match name {
            "dark" => Ok(Self::DARK),
            "light" => Ok(Self::LIGHT),
            other => Err(format!("theme '{other}' is not one of: dark, light")),
        }
    }

    /// The candidates' colours in order.
    pub fn candidates(&self) -> [Color; 4] {
        [
            self.candidate_1,
            self.candidate_2,
            self.candidate_3,
            self.candidate_4,
        ]
    }

    /// This theme with `theme.toml`'s text applied over it; errors name the line and key.
    pub fn with_overrides(mut self, text: &str) -> Result<Theme, String> {
        let lines = crate::config::toml_key_lines(text);
        let table = crate::config::toml_table(text)?;
        for (role, value) in &table {
            let line = lines
                .get(&(String::new(), role.clone()))
                .or_else(|| lines.get(&(role.clone(), String::new())))
                .copied()
                .unwrap_or(0);
            let Some(slot) = self.slot(role) else {
                return Err(format!(
                    "line {line}: unknown key '{role}' (known: {})",
                    ROLES.join(", ")
                ));
            };
            *slot = match value {
                toml::Value::String(s) => parse_color(s),
                toml::Value::Integer(i) => u8::try_from(*i).ok().map(Color::Indexed),
                _ => None,
            }
            .ok_or_else(|| {
                format!(
                    "line {line}: {role}: {value} is not a colour (a name like yellow or dark-gray, \
                     #rrggbb, or 0-255)"
                )
            })?;
        }
        Ok(self)
    }

    /// The built-in theme `name` with the file `path` applied over it when it exists; errors
    /// name the file, line and key.
    pub fn load(name: Option<&str>, path: &std::path::Path) -> Result<Theme, String> {
        let base = Self::named(name.unwrap_or("dark")).map_err(|e| format!("config.toml: {e}"))?;
        match std::fs::read_to_string(path) {
            Ok(text) => base
                .with_overrides(&text)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(base),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

/// A colour: ratatui's names (`dark-gray`, `lightblue`…), `#rrggbb`, or an index 0-255.
fn parse_color(s: &str) -> Option<Color> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Color::from_str(s).ok()
}

thread_local! {
    static CURRENT: Cell<Theme> = const { Cell::new(Theme::DARK) };
}

/// The theme this thread draws with.
pub fn get() -> Theme {
    CURRENT.with(Cell::get)
}

/// Draw with `t` from now on (on this thread).
pub fn set(t: Theme) {
    CURRENT.with(|c| c.set(t));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_name_the_line_and_key() {
        let t = Theme::LIGHT
            .with_overrides("# mine\nstars = \"yellow\"\ntag = \"#112233\"\ndim = 240\n")
            .unwrap();
        assert_eq!(t.stars, Color::Yellow);
        assert_eq!(t.tag, Color::Rgb(0x11, 0x22, 0x33));
        assert_eq!(t.dim, Color::Indexed(240));
        assert_eq!(t.user, Theme::LIGHT.user);
        let e = Theme::DARK
            .with_overrides("stars = \"yellow\"\n\nstar = \"red\"\n")
            .unwrap_err();
        assert!(
            e.starts_with("line 3: unknown key 'star' (known: dim,"),
            "{e}"
        );
        let e = Theme::DARK
            .with_overrides("\ntag = \"yelow\"\n")
            .unwrap_err();
        assert!(
            e.starts_with("line 2: tag: \"yelow\" is not a colour"),
            "{e}"
        );
        let e = Theme::DARK.with_overrides("tag = 300\n").unwrap_err();
        assert!(e.starts_with("line 1: tag: 300 is not a colour"), "{e}");
        let e = Theme::DARK.with_overrides("tag = \n").unwrap_err();
        assert!(e.starts_with("line 1:"), "{e}");
        assert!(Theme::named("solarized").is_err());
    }

    #[test]
    fn load_names_the_file_and_takes_the_config_theme() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("theme.toml");
        assert_eq!(Theme::load(Some("light"), &p).unwrap(), Theme::LIGHT);
        std::fs::write(&p, "key = \"nope\"\n").unwrap();
        let e = Theme::load(None, &p).unwrap_err();
        assert!(
            e.starts_with(&format!("{}: line 1: key:", p.display())),
            "{e}"
        );
        assert!(Theme::load(Some("pink"), &p)
            .unwrap_err()
            .starts_with("config.toml: theme 'pink'"));
    }
}
