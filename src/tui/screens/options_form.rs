//! The settings popup's options tab as a form: sampling numbers, tool choice, the tool
//! grammar switch and the few-shot count, each checked as it changes with the error beside
//! it. The JSON tab stays for what the form does not show (`stop`); the form reads the JSON
//! when it is shown and writes every change back into it, so the two never disagree.

use crate::domain::Sampling;
use crate::tui::keymap::Cmd;
use crossterm::event::{KeyCode, KeyEvent};
use serde_json::{json, Map, Value};

/// What a field holds and how it changes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A sampling number; `step` for +/-.
    Float(f64),
    Int(i64),
    /// One of these words (the empty word: not set here).
    Choice(&'static [&'static str]),
}

/// One row of the form. An empty `text` means the conversation does not set it (the
/// config's value applies).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: &'static str,
    kind: Kind,
    pub text: String,
    pub error: Option<String>,
}

const SAMPLING: [&str; 7] = [
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "seed",
    "max_tokens",
];

/// The form: its fields, the selected one, and (when the JSON tab does not parse) why it
/// cannot be shown.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionsForm {
    pub fields: Vec<Field>,
    pub sel: usize,
    pub broken: Option<String>,
}

fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        text: String::new(),
        error: None,
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "on".into(),
        Value::Bool(false) => "off".into(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl OptionsForm {
    /// The form showing the options JSON `text` (empty: nothing set).
    pub fn from_json(text: &str) -> Self {
        let mut fields = vec![
            field("temperature", Kind::Float(0.1)),
            field("top_k", Kind::Int(5)),
            field("top_p", Kind::Float(0.05)),
            field("min_p", Kind::Float(0.01)),
            field("repeat_penalty", Kind::Float(0.05)),
            field("seed", Kind::Int(1)),
            field("max_tokens", Kind::Int(64)),
            field(
                "tool_choice",
                Kind::Choice(&["", "auto", "required", "none"]),
            ),
            field("tool_grammar", Kind::Choice(&["", "on", "off"])),
            field("few_shot", Kind::Int(1)),
        ];
        let parsed: Result<Value, String> = match text.trim() {
            "" => Ok(json!({})),
            t => serde_json::from_str(t)
                .map_err(|e| format!("line {}: not valid JSON: {e}", e.line())),
        };
        let v = match parsed {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Self {
                    fields,
                    sel: 0,
                    broken: Some("the options are not a JSON object".into()),
                }
            }
            Err(e) => {
                return Self {
                    fields,
                    sel: 0,
                    broken: Some(e),
                }
            }
        };
        for f in &mut fields {
            let value = if SAMPLING.contains(&f.name) {
                v.get("sampling").and_then(|s| s.get(f.name))
            } else {
                v.get(f.name)
            };
            f.text = value.map(text_of).unwrap_or_default();
            f.error = check(f);
        }
        Self {
            fields,
            sel: 0,
            broken: None,
        }
    }

    /// The first field's error, as Save reports it.
    pub fn error(&self) -> Option<String> {
        if let Some(b) = &self.broken {
            return Some(format!("options: {b}"));
        }
        self.fields
            .iter()
            .find_map(|f| f.error.as_ref().map(|e| format!("options: {e}")))
    }

    /// A key on the form (its command, else the key typed); `true` when a value changed
    /// (the JSON is then written again).
    pub fn key(&mut self, cmd: Option<Cmd>, k: KeyEvent) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let n = self.fields.len();
        let f = &mut self.fields[self.sel];
        match cmd {
            Some(Cmd::Up) => {
                self.sel = (self.sel + n - 1) % n;
                return false;
            }
            Some(Cmd::Down) => {
                self.sel = (self.sel + 1) % n;
                return false;
            }
            Some(Cmd::Increase) => return step(f, 1),
            Some(Cmd::Decrease) => return step(f, -1),
            Some(Cmd::ClearValue) => {
                f.text.clear();
                f.error = None;
                return true;
            }
            _ => {}
        }
        match k.code {
            KeyCode::Backspace if !matches!(f.kind, Kind::Choice(_)) => {
                f.text.pop();
                f.error = check(f);
                return true;
            }
            KeyCode::Char(c @ ('0'..='9' | '.')) if !matches!(f.kind, Kind::Choice(_)) => {
                f.text.push(c);
                f.error = check(f);
                return true;
            }
            _ => {}
        }
        false
    }

    /// Writes the fields into the options JSON `text` (other keys, e.g. `stop`, kept);
    /// a field whose text is not a value yet is left as it was there.
    pub fn write(&self, text: &str) -> String {
        let mut v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| json!({}));
        if !v.is_object() {
            v = json!({});
        }
        let obj = v.as_object_mut().expect("an object");
        let mut sampling: Map<String, Value> = obj
            .get("sampling")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for f in &self.fields {
            let target = if SAMPLING.contains(&f.name) {
                &mut sampling
            } else {
                &mut *obj
            };
            if f.text.is_empty() {
                target.remove(f.name);
            } else if let Some(val) = value(f) {
                target.insert(f.name.to_string(), val);
            }
        }
        if sampling.is_empty() {
            obj.remove("sampling");
        } else {
            obj.insert("sampling".into(), Value::Object(sampling));
        }
        if obj.is_empty() {
            String::new()
        } else {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
    }
}

/// The JSON value of a field's text, if it is one.
fn value(f: &Field) -> Option<Value> {
    match f.kind {
        Kind::Float(_) => f.text.parse::<f64>().ok().map(|x| json!(x)),
        Kind::Int(_) => f.text.parse::<u64>().ok().map(|x| json!(x)),
        Kind::Choice(_) => Some(match f.text.as_str() {
            "on" => json!(true),
            "off" => json!(false),
            w => json!(w),
        }),
    }
}

/// A field's error: not a number, or out of its range (the ranges `Sampling::check` holds).
fn check(f: &Field) -> Option<String> {
    if f.text.is_empty() {
        return None;
    }
    let Some(v) = value(f) else {
        return Some(format!("{}: “{}” is not a number", f.name, f.text));
    };
    if !SAMPLING.contains(&f.name) {
        return None;
    }
    let mut s = serde_json::to_value(Sampling::default()).expect("serialisable");
    s[f.name] = v;
    match serde_json::from_value::<Sampling>(s) {
        Err(_) => Some(format!("{}: {} is out of range", f.name, f.text)),
        Ok(s) => s.check_field().err().map(|(_, m)| m),
    }
}

/// +/- on a field: a number moves by its step (from its default when not set), a choice
/// cycles.
fn step(f: &mut Field, dir: i64) -> bool {
    match f.kind {
        Kind::Choice(words) => {
            let i = words.iter().position(|w| *w == f.text).unwrap_or(0) as i64;
            let n = words.len() as i64;
            f.text = words[((i + dir).rem_euclid(n)) as usize].to_string();
        }
        Kind::Float(by) => {
            let start = f
                .text
                .parse::<f64>()
                .ok()
                .or_else(|| default(f.name))
                .unwrap_or(0.0);
            let x = ((start + by * dir as f64) / by).round() * by;
            f.text = trim_float(x.max(0.0));
        }
        Kind::Int(by) => {
            let start = f
                .text
                .parse::<i64>()
                .ok()
                .or_else(|| default(f.name).map(|d| d as i64))
                .unwrap_or(0);
            f.text = (start + by * dir).max(0).to_string();
        }
    }
    f.error = check(f);
    true
}

/// The built-in default of a sampling field (where +/- starts when it is not set).
fn default(name: &str) -> Option<f64> {
    serde_json::to_value(Sampling::default())
        .ok()?
        .get(name)?
        .as_f64()
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn press(f: &mut OptionsForm, c: KeyCode) -> bool {
        let k = KeyEvent::new(c, KeyModifiers::NONE);
        let cmd =
            crate::tui::keymap::Keymap::default().lookup(crate::tui::keymap::Context::Settings, &k);
        f.key(cmd, k)
    }

    fn select(f: &mut OptionsForm, name: &str) {
        while f.fields[f.sel].name != name {
            press(f, KeyCode::Down);
        }
    }

    #[test]
    fn top_p_seven_is_refused_beside_the_field_and_fixed_by_typing() {
        let mut f = OptionsForm::from_json("");
        select(&mut f, "top_p");
        press(&mut f, KeyCode::Char('7'));
        let e = f.fields[f.sel].error.clone().unwrap();
        assert!(e.contains("top_p = 7 is out of range (0 to 1)"), "{e}");
        assert!(f.error().unwrap().contains("top_p"));
        press(&mut f, KeyCode::Backspace);
        for c in "0.9".chars() {
            press(&mut f, KeyCode::Char(c));
        }
        assert_eq!(f.fields[f.sel].error, None);
        assert_eq!(f.error(), None);
        let text = f.write("");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, json!({"sampling": {"top_p": 0.9}}));
    }

    #[test]
    fn plus_minus_step_numbers_and_cycle_choices_keeping_other_keys() {
        let mut f = OptionsForm::from_json(
            r#"{"sampling": {"temperature": 0.5, "stop": ["END"]}, "tool_choice": "auto"}"#,
        );
        assert_eq!(f.fields[0].text, "0.5");
        press(&mut f, KeyCode::Char('+'));
        assert_eq!(f.fields[0].text, "0.6");
        press(&mut f, KeyCode::Left);
        press(&mut f, KeyCode::Left);
        assert_eq!(f.fields[0].text, "0.4");
        select(&mut f, "tool_choice");
        press(&mut f, KeyCode::Right);
        assert_eq!(f.fields[f.sel].text, "required");
        select(&mut f, "tool_grammar");
        press(&mut f, KeyCode::Right);
        press(&mut f, KeyCode::Right);
        assert_eq!(f.fields[f.sel].text, "off");
        select(&mut f, "max_tokens");
        press(&mut f, KeyCode::Char('+'));
        assert_eq!(
            f.fields[f.sel].text,
            (Sampling::default().max_tokens + 64).to_string()
        );
        press(&mut f, KeyCode::Delete);
        let v: Value = serde_json::from_str(&f.write(
            r#"{"sampling": {"temperature": 0.5, "stop": ["END"]}, "tool_choice": "auto"}"#,
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"sampling": {"temperature": 0.4, "stop": ["END"]},
                   "tool_choice": "required", "tool_grammar": false})
        );
    }

    #[test]
    fn json_that_does_not_parse_leaves_the_form_closed_with_the_reason() {
        let mut f = OptionsForm::from_json("{\"sampling\": ");
        assert!(f.broken.as_ref().unwrap().contains("line 1"));
        assert!(!press(&mut f, KeyCode::Char('1')));
        assert!(f.error().unwrap().starts_with("options: line 1"));
        let f = OptionsForm::from_json(r#"{"few_shot": 2, "sampling": {"top_k": -1}}"#);
        assert_eq!(f.fields[9].text, "2");
        assert!(f.fields[1].error.is_some(), "{:?}", f.fields[1]);
    }
}
