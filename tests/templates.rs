//! Chat templates against Hugging Face transformers, byte for byte (fixtures made by
//! tests/fixtures/templates/make_fixtures.py), and the no-template path on the real
//! Gemma 3 270M model.

mod common;
use arbor::domain::ChatMessage;
use arbor::domain::{Role, ToolCall};
use arbor::engine::llama::Tokenizer;
use arbor::engine::ChatTemplate;
use common::*;
use serde_json::Value;

fn messages(v: &Value) -> Vec<ChatMessage> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role: Role = m["role"].as_str().unwrap().parse().unwrap();
            let mut c = ChatMessage::new(role, m["content"].as_str().unwrap_or_default());
            c.tool_calls = m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| ToolCall {
                    id: t["id"].as_str().unwrap_or_default().to_string(),
                    name: t["function"]["name"].as_str().unwrap().to_string(),
                    arguments: t["function"]["arguments"].clone(),
                })
                .collect();
            c.tool_call_id = m["tool_call_id"].as_str().map(str::to_string);
            c
        })
        .collect()
}

#[test]
fn templates_render_exactly_what_transformers_renders() {
    let fixtures: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/templates/hf_rendered.json")).unwrap(),
    )
    .unwrap();
    let model = Tokenizer::load(&default_model(), None).unwrap();
    let mut checked = 0;
    for case in fixtures["cases"].as_array().unwrap() {
        let name = case["template"].as_str().unwrap();
        let template = if name == "model" {
            model.template().clone()
        } else {
            ChatTemplate::choose(
                Some(name),
                None,
                None,
                case["bos_token"].as_str().unwrap().to_string(),
                case["eos_token"].as_str().unwrap().to_string(),
            )
            .unwrap()
        };
        let tools = (!case["tools"].is_null()).then(|| case["tools"].clone());
        let got = template.render(
            &messages(&case["messages"]),
            tools.as_ref(),
            case["add_generation_prompt"].as_bool().unwrap(),
        );
        let what = format!(
            "{} with template {name} (generation prompt {})",
            case["conversation"], case["add_generation_prompt"]
        );
        match case["expected"].as_str() {
            Some(expected) => assert_eq!(got.unwrap(), expected, "{what}"),
            None => assert!(
                got.is_err(),
                "{what}: transformers refused ({}), Arbor rendered",
                case["error"]
            ),
        }
        checked += 1;
    }
    assert_eq!(checked, 32);
}

#[test]
fn gemma_without_a_template_says_so_and_uses_the_gemma_builtin() {
    let s = Sandbox::new();
    let gemma = gemma_model();
    let g = gemma.to_str().unwrap();
    let out = s.ok(&["--model", g, "doctor"]);
    assert!(out.contains("architecture     gemma3"), "{out}");
    assert!(
        out.contains(
            "chat template    none in the model; using built-in gemma for its architecture"
        ),
        "{out}"
    );

    let out = s
        .cmd()
        .args([
            "--model",
            g,
            "ask",
            "--show-prompt",
            "--system",
            "Be brief.",
            "Hi",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
    // The user's choice wins over the architecture's built-in.
    let out = s.ok(&[
        "--model",
        g,
        "--template",
        "chatml",
        "ask",
        "--show-prompt",
        "Hi",
    ]);
    assert_eq!(
        out,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );

    // It generates through the built-in: a real answer, stored with its facts.
    let v = s.json(&[
        "--model",
        g,
        "ask",
        "--max-tokens",
        "12",
        "--temperature",
        "0",
        "--json",
        "The capital of France is",
    ]);
    let ans = &v["answers"][0];
    assert!(!ans["content"].as_str().unwrap().trim().is_empty(), "{v}");
    assert!(
        ans["facts"]["generated_tokens"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(
        ans["facts"]["model"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("gemma"),
        "{v}"
    );
}
