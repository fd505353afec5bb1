//! Chat templates: the GGUF's own `tokenizer.chat_template` rendered with minijinja
//! the way Hugging Face renders it (trim/lstrip blocks, `raise_exception`, `tojson`,
//! python string methods), sandboxed with a fuel limit because a template is
//! untrusted input. Models without a template use a named built-in, never a silent guess.

use crate::domain::{python_json, ChatMessage};
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use serde::Serialize;

pub const BUILTINS: &[(&str, &str)] = &[
    (
        "chatml",
        include_str!("../../assets/templates/chatml.jinja"),
    ),
    ("gemma", include_str!("../../assets/templates/gemma.jinja")),
    (
        "llama3",
        include_str!("../../assets/templates/llama3.jinja"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown chat template '{0}' (built-ins: chatml, gemma, llama3)")]
    Unknown(String),
    #[error("the model has no chat template in its metadata and none was chosen; pass --template chatml|gemma|llama3 or set `template` in config.toml")]
    Missing,
    #[error("chat template {name}: {message}")]
    Render { name: String, message: String },
}

/// Where a template came from, shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TemplateSource {
    /// `tokenizer.chat_template` of the GGUF.
    Model,
    /// A built-in, named, chosen because the model has none.
    Builtin(String),
    /// A user's template file (e.g. for `export --format text`).
    File(String),
}

#[derive(Debug, Clone)]
pub struct ChatTemplate {
    pub source: TemplateSource,
    pub text: String,
    pub bos_token: String,
    pub eos_token: String,
}

/// `Ok` when `name` is a built-in template's name; `Err` lists them.
pub fn check_builtin_name(name: &str) -> Result<(), String> {
    if BUILTINS.iter().any(|(n, _)| *n == name) {
        Ok(())
    } else {
        Err(format!(
            "unknown built-in template '{name}' (built-ins: {})",
            BUILTINS.iter().map(|b| b.0).collect::<Vec<_>>().join(", ")
        ))
    }
}

/// Built-in chosen for an architecture when a model has no template.
pub fn builtin_for_architecture(arch: &str) -> Option<&'static str> {
    match arch {
        a if a.starts_with("gemma") => Some("gemma"),
        a if a.starts_with("llama") => Some("llama3"),
        "qwen2" | "qwen3" | "qwen2moe" | "qwen3moe" => Some("chatml"),
        _ => None,
    }
}

impl ChatTemplate {
    /// Picks the template: an explicit choice wins (a built-in name), then the model's
    /// own, then the built-in for the architecture. Errors rather than guessing.
    pub fn choose(
        explicit: Option<&str>,
        model_template: Option<&str>,
        architecture: Option<&str>,
        bos_token: String,
        eos_token: String,
    ) -> Result<Self, TemplateError> {
        let (source, text) = if let Some(name) = explicit {
            let text = BUILTINS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
            (TemplateSource::Builtin(name.to_string()), text)
        } else if let Some(t) = model_template {
            (TemplateSource::Model, t.to_string())
        } else if let Some(name) = architecture.and_then(builtin_for_architecture) {
            let text = BUILTINS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string())
                .expect("built-in exists");
            (TemplateSource::Builtin(name.to_string()), text)
        } else {
            return Err(TemplateError::Missing);
        };
        Ok(Self {
            source,
            text,
            bos_token,
            eos_token,
        })
    }

    pub fn name(&self) -> String {
        match &self.source {
            TemplateSource::Model => "model's own".to_string(),
            TemplateSource::Builtin(n) => format!("built-in {n}"),
            TemplateSource::File(f) => f.clone(),
        }
    }

    /// Renders `messages` (and `tools`, an OpenAI tools array) exactly as Hugging Face's
    /// `apply_chat_template(..., tokenize=False)` does. A template from a model file or a
    /// user's file is untrusted: it renders in the sandbox (bounded memory and output);
    /// Arbor's own built-ins render here.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let messages: Vec<serde_json::Value> = messages.iter().map(hf_message).collect();
        let ctx = serde_json::json!({
            "messages": messages,
            "tools": tools,
            "add_generation_prompt": add_generation_prompt,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        });
        let err = |message: String| TemplateError::Render {
            name: self.name(),
            message,
        };
        if matches!(self.source, TemplateSource::Builtin(_)) {
            let mut out = super::sandbox::Limited(Vec::new());
            render_text(&self.text, ctx, &mut out).map_err(err)?;
            return Ok(String::from_utf8_lossy(&out.0).into_owned());
        }
        super::sandbox::render(&self.text, ctx, render_text).map_err(|e| match e {
            super::sandbox::SandboxError::Template(m) | super::sandbox::SandboxError::Limit(m) => {
                err(m)
            }
        })
    }
}

/// Renders a template's text with `ctx` into `out`, the way Hugging Face does: trim and
/// lstrip blocks, `raise_exception`, `strftime_now`, python-style `tojson` and string
/// methods, and a fuel limit against endless loops.
fn render_text(
    text: &str,
    ctx: serde_json::Value,
    out: &mut dyn std::io::Write,
) -> Result<(), String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_fuel(Some(5_000_000));
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<Value, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", |fmt: String| -> String {
        let now = time::OffsetDateTime::now_utc();
        // The formats templates use: "%d %b %Y" and "%Y-%m-%d".
        fmt.replace("%Y", &now.year().to_string())
            .replace("%m", &format!("{:02}", u8::from(now.month())))
            .replace("%d", &format!("{:02}", now.day()))
            .replace("%b", &format!("{:.3}", now.month().to_string()))
    });
    // HF's tojson: json.dumps with ensure_ascii=False and `, ` / `: ` separators.
    env.add_filter("tojson", |v: Value| -> Result<String, JinjaError> {
        let json: serde_json::Value = serde_json::to_value(&v)
            .map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))?;
        Ok(python_json(&json))
    });
    env.add_template("chat", text).map_err(|e| describe(&e))?;
    let tmpl = env.get_template("chat").map_err(|e| describe(&e))?;
    tmpl.render_captured_to(ctx, out).map(|_| ()).map_err(|e| {
        if e.kind() == ErrorKind::WriteFailure {
            format!(
                "stopped: its output is longer than the limit of {} MiB",
                super::sandbox::OUTPUT_LIMIT >> 20
            )
        } else {
            describe(&e)
        }
    })
}

fn describe(e: &JinjaError) -> String {
    let mut s = e.to_string();
    if let Some(line) = e.line() {
        s = format!("line {line}: {s}");
    }
    s
}

/// A message as HF templates expect it: tool calls as `{type, function: {name, arguments}}`
/// with arguments as an object (templates call `tojson` on them).
fn hf_message(m: &ChatMessage) -> serde_json::Value {
    message_json(m, false)
}

/// A message in the OpenAI chat shape (`role`, `content`, `tool_calls`, `tool_call_id`),
/// tool-call arguments as JSON text (the API) or as an object (HF templates).
pub fn message_json(m: &ChatMessage, arguments_as_text: bool) -> serde_json::Value {
    let mut v = serde_json::json!({ "role": m.role.as_str(), "content": m.content });
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| {
                let arguments = if arguments_as_text {
                    c.arguments.to_string().into()
                } else {
                    c.arguments.clone()
                };
                serde_json::json!({
                    "id": c.id,
                    "type": "function",
                    "function": { "name": c.name, "arguments": arguments },
                })
            })
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = id.clone().into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn chatml() -> ChatTemplate {
        ChatTemplate::choose(Some("chatml"), None, None, String::new(), String::new()).unwrap()
    }

    #[test]
    fn chatml_renders_system_user_and_generation_prompt() {
        let msgs = [
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "Hi"),
        ];
        assert_eq!(
            chatml().render(&msgs, None, true).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn missing_template_is_an_error_not_a_guess() {
        let e = ChatTemplate::choose(None, None, Some("mystery"), "".into(), "".into());
        assert!(matches!(e, Err(TemplateError::Missing)));
        let t =
            ChatTemplate::choose(None, None, Some("gemma3"), "<bos>".into(), "".into()).unwrap();
        assert_eq!(t.source, TemplateSource::Builtin("gemma".into()));
    }

    #[test]
    fn raise_exception_surfaces_as_error() {
        let t = ChatTemplate::choose(Some("gemma"), None, None, "<bos>".into(), "".into()).unwrap();
        let msgs = [ChatMessage::new(Role::Assistant, "first")];
        let e = t.render(&msgs, None, true).unwrap_err().to_string();
        assert!(e.contains("alternate"), "{e}");
    }

    #[test]
    fn tojson_matches_python_separators() {
        let v = serde_json::json!({"a": [1, "é"], "b": {"c": null}});
        assert_eq!(python_json(&v), r#"{"a": [1, "é"], "b": {"c": null}}"#);
    }

    #[test]
    fn runaway_template_is_stopped_by_fuel() {
        let t = ChatTemplate {
            source: TemplateSource::Model,
            text:
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
                    .into(),
            bos_token: String::new(),
            eos_token: String::new(),
        };
        assert!(t.render(&[], None, false).is_err());
    }

    fn untrusted(text: &str) -> ChatTemplate {
        ChatTemplate {
            source: TemplateSource::File("evil.jinja".into()),
            text: text.into(),
            bos_token: String::new(),
            eos_token: String::new(),
        }
    }

    #[test]
    fn templates_that_grow_without_bound_are_stopped_not_the_process() {
        let doubling = |op: &str, start: &str| {
            let mut t = format!("{{% set ns = namespace(a={start}) %}}");
            for _ in 0..64 {
                t.push_str(&format!("{{% set ns.a = ns.a {op} ns.a %}}"));
            }
            t.push_str("{{ ns.a | length }}");
            t
        };
        for text in [
            doubling("~", "'x'"),
            doubling("+", "[1, 2]"),
            "{{ 'x' * 100000000 }}{{ 'x' * 100000000 }}".to_string(),
            "{% for i in range(100) %}{{ 'y' * 10000000 }}{% endfor %}".to_string(),
        ] {
            let e = untrusted(&text)
                .render(&[], None, false)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("chat template evil.jinja: stopped: "), "{e}");
            assert!(e.contains("MiB"), "{e}");
        }
        // The sandbox serves the next render as before.
        let ok = untrusted("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}")
            .render(&[ChatMessage::new(Role::User, "hi")], None, false)
            .unwrap();
        assert_eq!(ok, "user:hi;");
        // A template's own error is its error, through the sandbox too.
        let e = untrusted("{{ raise_exception('no tools here') }}")
            .render(&[], None, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no tools here"), "{e}");
    }
}
