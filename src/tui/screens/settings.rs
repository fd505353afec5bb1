//! The settings popup (`s`): a conversation's system prompt, tools and options, one
//! editor per tab, checked together on save.

use super::options_form::OptionsForm;
use crate::domain::*;
use crate::tui::base::Base;
use crate::tui::effect::{close, stay, Effect, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::theme;
use crate::tui::widgets::*;
use crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;
use tui_textarea::TextArea;

/// The conversation settings popup: the system prompt and tools editors, the options as a
/// form and as JSON, checked together on save.
#[derive(Debug, Clone)]
pub struct SettingsDialog {
    pub tab: usize,
    /// System prompt, tools (JSON array), options (JSON object).
    pub editors: [TextArea<'static>; 3],
    /// The options tab: the JSON editor's fields as a form.
    pub form: OptionsForm,
}

pub const SETTINGS_TABS: [&str; 4] = ["system prompt", "tools", "options", "options JSON"];
/// The tab with the options form, and the one with their JSON (editor 2).
pub const FORM_TAB: usize = 2;
pub const JSON_TAB: usize = 3;

/// What the options tab may hold.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by serde to check the options tab
struct OptionsTab {
    sampling: Option<serde_json::Map<String, serde_json::Value>>,
    tool_choice: Option<crate::domain::ToolChoice>,
    tool_grammar: Option<bool>,
    few_shot: Option<usize>,
}

impl SettingsDialog {
    pub fn new(
        system: &str,
        tools: Option<&serde_json::Value>,
        settings: Option<&serde_json::Value>,
    ) -> Self {
        let pretty = |v: Option<&serde_json::Value>| {
            v.map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
                .unwrap_or_default()
        };
        let editor = |text: String, hint: &str| {
            let mut t = TextArea::from(text.lines().map(str::to_string).collect::<Vec<_>>());
            t.set_placeholder_text(hint.to_string());
            t
        };
        let options = pretty(settings);
        Self {
            tab: 0,
            form: OptionsForm::from_json(&options),
            editors: [
                editor(system.to_string(), "no system prompt"),
                editor(
                    pretty(tools),
                    "no tools — an OpenAI tools array: [{\"type\": \"function\", \"function\": {\"name\": …, \"parameters\": {JSON schema}}}]",
                ),
                editor(
                    options,
                    "{\"sampling\": {\"temperature\": 0.2}, \"tool_choice\": \"auto\", \"tool_grammar\": true, \"few_shot\": 3}",
                ),
            ],
        }
    }

    /// The three tabs checked: (system, tools, options). The error names the tab and field.
    pub fn parse(
        &self,
    ) -> Result<(String, Option<serde_json::Value>, Option<serde_json::Value>), String> {
        let text = |i: usize| self.editors[i].lines().join("\n");
        if let Some(e) = self.form.error() {
            return Err(e);
        }
        let system = text(0).trim().to_string();
        let tools = match text(1).trim() {
            "" => None,
            t => {
                let v: serde_json::Value = serde_json::from_str(t)
                    .map_err(|e| format!("tools, line {}: not valid JSON: {e}", e.line()))?;
                crate::tools::check_tools(&v).map_err(|e| format!("tools: {e}"))?;
                Some(v)
            }
        };
        let options = match text(2).trim() {
            "" => None,
            t => {
                let v: serde_json::Value = serde_json::from_str(t)
                    .map_err(|e| format!("options, line {}: not valid JSON: {e}", e.line()))?;
                let o: OptionsTab =
                    serde_json::from_value(v.clone()).map_err(|e| format!("options: {e}"))?;
                if let Some(over) = &o.sampling {
                    let mut base = serde_json::to_value(Sampling::default()).expect("serialisable");
                    for (k, x) in over {
                        if base.get(k).is_none() {
                            return Err(format!("options: sampling.{k}: unknown (known: temperature, top_k, top_p, min_p, repeat_penalty, seed, max_tokens, stop)"));
                        }
                        base[k] = x.clone();
                    }
                    serde_json::from_value::<Sampling>(base)
                        .map_err(|e| format!("options: sampling: {e}"))?
                        .check()
                        .map_err(|e| format!("options: sampling.{e}"))?;
                }
                Some(v)
            }
        };
        Ok((system, tools, options))
    }
}

impl SettingsDialog {
    /// The editor the current tab shows (the form's tab has none; it writes editor 2).
    fn editor(&self) -> usize {
        match self.tab {
            JSON_TAB => 2,
            t => t.min(1),
        }
    }

    /// The options JSON as typed.
    pub fn json(&self) -> String {
        self.editors[2].lines().join("\n")
    }

    fn set_json(&mut self, text: &str) {
        let mut t = TextArea::from(text.lines().map(str::to_string).collect::<Vec<_>>());
        t.set_placeholder_text(self.editors[2].placeholder_text().to_string());
        self.editors[2] = t;
    }

    /// The form read again from the JSON (after it was edited), keeping its selection.
    pub fn reform(&mut self) {
        let sel = self.form.sel;
        self.form = OptionsForm::from_json(&self.json());
        self.form.sel = sel;
    }
}

/// The popup on the open (or not yet written) conversation.
pub fn open(b: &Base) -> Option<SettingsDialog> {
    match (&b.conv, &b.pending_new) {
        (Some(c), _) => Some(SettingsDialog::new(
            &c.system_prompt,
            c.tools.as_ref(),
            c.settings.as_ref(),
        )),
        (None, Some((system, tools))) => Some(SettingsDialog::new(system, tools.as_ref(), None)),
        (None, None) => None,
    }
}

pub fn on_key(d: &mut SettingsDialog, b: &mut Base, cmd: Option<Cmd>, k: KeyEvent) -> Reply {
    match cmd {
        Some(Cmd::NextTab) => d.tab = (d.tab + 1) % SETTINGS_TABS.len(),
        Some(Cmd::PrevTab) => d.tab = (d.tab + SETTINGS_TABS.len() - 1) % SETTINGS_TABS.len(),
        Some(Cmd::Discard) => return close(vec![]),
        Some(Cmd::Save) => match d.parse() {
            Err(e) => b.message = Some(format!("not saved — {e}")),
            Ok((system, tools, settings)) => match &b.conv {
                Some(c) => {
                    return close(vec![Effect::SaveSettings {
                        conv: c.id,
                        system,
                        tools,
                        settings,
                    }])
                }
                None => {
                    // Not written yet: kept for the first message.
                    b.pending_new = Some((system, tools));
                    if settings.is_some() {
                        b.message = Some(
                            "options apply once the conversation exists: send a message, then s again".into(),
                        );
                    }
                    return close(vec![]);
                }
            },
        },
        _ if d.tab == FORM_TAB => {
            if d.form.key(cmd, k) {
                let json = d.form.write(&d.json());
                d.set_json(&json);
            }
        }
        _ => {
            let editor = d.editor();
            d.editors[editor].input(k);
            if editor == 2 {
                d.reform();
            }
        }
    }
    stay(vec![])
}

pub fn draw(f: &mut Frame, d: &SettingsDialog, area: Rect) {
    let r = centered(area, 90, 80);
    f.render_widget(Clear, r);
    let key = Style::new().fg(theme::get().key);
    let mut tabs = vec![Span::raw(" settings: ")];
    for (i, name) in SETTINGS_TABS.iter().enumerate() {
        let st = if i == d.tab {
            Style::new().bold().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().fg(theme::get().muted)
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
        FORM_TAB => "↑/↓ field  ←/→ or +/- change  type a number  Delete: not set here (the config's value)  stop words: the JSON tab",
        _ => "JSON: sampling {temperature, top_k, top_p, min_p, repeat_penalty, seed, max_tokens, stop}, tool_choice auto|required|none, tool_grammar true|false, few_shot K.",
    };
    let [body, foot] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)])
        .areas(Block::bordered().inner(r));
    f.render_widget(Block::bordered().title(Line::from(tabs)), r);
    if d.tab == FORM_TAB {
        draw_form(f, &d.form, body);
    } else {
        f.render_widget(&d.editors[d.editor()], body);
    }
    f.render_widget(
        Paragraph::new(Line::styled(
            truncate(hint, foot.width as usize),
            Style::new().fg(theme::get().dim),
        )),
        foot,
    );
}

/// The options form: a row per field, its value (or what applies when it is not set) and
/// its error beside it.
fn draw_form(f: &mut Frame, form: &OptionsForm, area: Rect) {
    if let Some(b) = &form.broken {
        f.render_widget(
            Paragraph::new(format!(
                "The options JSON does not parse ({b}); fix it in the JSON tab."
            ))
            .style(Style::new().fg(theme::get().error)),
            area,
        );
        return;
    }
    let lines: Vec<Line> = form
        .fields
        .iter()
        .enumerate()
        .map(|(i, fl)| {
            let mut name = Style::new();
            if i == form.sel {
                name = name.add_modifier(Modifier::REVERSED);
            }
            let mut spans = vec![
                Span::raw(if i == form.sel { "▶ " } else { "  " }),
                Span::styled(format!("{:<15}", fl.name), name),
            ];
            if fl.text.is_empty() {
                spans.push(Span::styled(
                    format!("{:<12}", "—"),
                    Style::new().fg(theme::get().dim),
                ));
            } else {
                spans.push(Span::raw(format!("{:<12}", fl.text)));
            }
            match &fl.error {
                Some(e) => spans.push(Span::styled(
                    format!("✗ {e}"),
                    Style::new().fg(theme::get().error),
                )),
                None if fl.text.is_empty() => spans.push(Span::styled(
                    "config's value",
                    Style::new().fg(theme::get().dim),
                )),
                None => {}
            }
            Line::from(spans)
        })
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {

    use crate::tui::keymap::Context;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;
    use tui_textarea::TextArea;

    use crossterm::event::KeyCode;

    #[test]
    fn settings_popup_saves_only_what_checks() {
        let mut s = open_chat();
        update(&mut s, key(KeyCode::Char('s')));
        assert_eq!(s.key_context(), Context::Settings);
        type_text(&mut s, "Be brief.");
        update(&mut s, key(KeyCode::Tab));
        type_text(&mut s, "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"nope\"}}}]");
        assert_eq!(update(&mut s, ctrl('s')), vec![]);
        let m = s.message.clone().unwrap();
        assert!(m.starts_with("not saved — tools:"), "{m}");
        assert!(s.settings().is_some());
        // Fix the tools; a bad option is refused next, naming the field.
        let d = s.settings_mut().unwrap();
        d.editors[1] = TextArea::from(["[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}]".to_string()]);
        d.editors[2] = TextArea::from(["{\"sampling\": {\"temprature\": 0.1}}".to_string()]);
        assert_eq!(update(&mut s, ctrl('s')), vec![]);
        assert!(s.message.clone().unwrap().contains("sampling.temprature"));
        let d = s.settings_mut().unwrap();
        d.editors[2] =
            TextArea::from(["{\"sampling\": {\"temperature\": 0.1}, \"few_shot\": 2}".to_string()]);
        match update(&mut s, ctrl('s')).as_slice() {
            [Effect::SaveSettings {
                conv: 1,
                system,
                tools: Some(t),
                settings: Some(o),
            }] => {
                assert_eq!(system, "Be brief.");
                assert_eq!(t[0]["function"]["name"], "f");
                assert_eq!(o["few_shot"], 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(s.settings().is_none());
        // Esc closes without saving.
        update(&mut s, key(KeyCode::Char('s')));
        assert_eq!(update(&mut s, key(KeyCode::Esc)), vec![]);
        assert!(s.settings().is_none());
    }

    #[test]
    fn the_options_form_refuses_top_p_7_and_saves_what_it_shows() {
        let mut s = open_chat();
        update(&mut s, key(KeyCode::Char('s')));
        update(&mut s, key(KeyCode::Tab));
        update(&mut s, key(KeyCode::Tab));
        assert_eq!(s.settings().unwrap().tab, super::FORM_TAB);
        update(&mut s, key(KeyCode::Down));
        update(&mut s, key(KeyCode::Down));
        type_text(&mut s, "7");
        let f = &s.settings().unwrap().form;
        assert_eq!(f.fields[f.sel].name, "top_p");
        assert!(f.fields[f.sel]
            .error
            .as_ref()
            .unwrap()
            .contains("out of range"));
        assert_eq!(update(&mut s, ctrl('s')), vec![]);
        let m = s.message.clone().unwrap();
        assert!(
            m.contains("not saved — options: top_p = 7 is out of range"),
            "{m}"
        );
        update(&mut s, key(KeyCode::Backspace));
        type_text(&mut s, "0.5");
        // The JSON tab shows what the form wrote.
        update(&mut s, key(KeyCode::Tab));
        assert!(s.settings().unwrap().json().contains("\"top_p\": 0.5"));
        update(&mut s, key(KeyCode::BackTab));
        update(&mut s, key(KeyCode::Up));
        update(&mut s, key(KeyCode::Up));
        update(&mut s, key(KeyCode::Right));
        match update(&mut s, ctrl('s')).as_slice() {
            [Effect::SaveSettings {
                settings: Some(o), ..
            }] => {
                assert_eq!(o["sampling"]["top_p"], 0.5);
                // Not set before: + starts from the built-in default.
                let t = crate::domain::Sampling::default().temperature as f64 + 0.1;
                assert_eq!(
                    o["sampling"]["temperature"],
                    (t * 10.0).round() / 10.0,
                    "{o}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
