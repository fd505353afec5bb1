//! Tool calling and few-shot on the real default model through the real `arbor` binary:
//! grammar-constrained calls, results given by the user, multi-step and parallel chains,
//! exports of them that `arbor validate` passes, and few-shot from rated answers.

mod common;

use arbor::tools::ToolSet;
use common::{repo, Sandbox};
use serde_json::Value;

fn preset_tools() -> Value {
    let p = arbor::presets::find(&arbor::config::Paths::discover(), "tool-caller").unwrap();
    p.tools.unwrap()
}

/// `ask --json` and its stderr.
fn ask(s: &Sandbox, args: &[&str]) -> (Value, String) {
    // Greedy and short unless the test says otherwise.
    let mut a = vec!["ask", "--json"];
    for (flag, default) in [("--temperature", "0"), ("--max-tokens", "96")] {
        if !args.contains(&flag) {
            a.extend([flag, default]);
        }
    }
    a.extend_from_slice(args);
    let out = s.run(&a);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "arbor {a:?}: {err}");
    (serde_json::from_slice(&out.stdout).unwrap(), err)
}

fn path_of(s: &Sandbox, conv: &str) -> Vec<Value> {
    s.json(&["sessions", "show", conv, "--json"])["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].clone())
        .collect()
}

#[test]
fn required_calls_are_structured_and_valid_against_the_schema() {
    let s = Sandbox::new();
    let tools = ToolSet::new(&preset_tools()).unwrap();
    for (i, q) in [
        "What is the weather in Paris?",
        "How many players are in the players table?",
        "Is it raining in Tokyo right now, in fahrenheit?",
    ]
    .iter()
    .enumerate()
    {
        let seed = (i + 1).to_string();
        let (v, _) = ask(
            &s,
            &[
                "--preset",
                "tool-caller",
                "--tool-choice",
                "required",
                "--temperature",
                "0.9",
                "--seed",
                &seed,
                q,
            ],
        );
        let answer = &v["answers"][0];
        let calls = answer["tool_calls"].as_array().unwrap();
        assert!(!calls.is_empty(), "no call for {q}: {v:#}");
        for c in calls {
            let name = c["name"].as_str().unwrap();
            assert!(
                tools.check_call(name, &c["arguments"]).is_ok(),
                "{c} does not validate"
            );
            assert!(c["id"].as_str().unwrap().starts_with("call_"));
        }
        // Stored as structure on the node, not as raw text.
        let conv = v["conversation_id"].to_string();
        let path = path_of(&s, &conv);
        let node = path.last().unwrap();
        assert_eq!(&node["tool_calls"], &answer["tool_calls"]);
        assert!(
            !node["content"].as_str().unwrap().contains("<tool_call>"),
            "{node:#}"
        );
    }
}

#[test]
fn a_multi_step_tool_chain_runs_to_an_answer_and_exports_clean() {
    let s = Sandbox::new();
    let (v, err) = ask(
        &s,
        &[
            "--preset",
            "tool-caller",
            "--tool-choice",
            "required",
            "What is the weather in Paris?",
        ],
    );
    assert_eq!(v["answers"][0]["tool_calls"].as_array().unwrap().len(), 1);
    let conv = v["conversation_id"].to_string();
    // Not in --json mode the hint tells how to answer; here the JSON carries the call.
    assert!(!err.contains("error"), "{err}");
    // call → result → call (forced) → result → answer.
    let (v2, _) = ask(
        &s,
        &[
            "--conversation",
            &conv,
            "--tool-result",
            "{\"temp_c\": 14, \"sky\": \"cloudy\"}",
            "--tool-choice",
            "required",
        ],
    );
    assert!(!v2["answers"][0]["tool_calls"]
        .as_array()
        .unwrap()
        .is_empty());
    let (v3, _) = ask(
        &s,
        &[
            "--conversation",
            &conv,
            "--tool-result",
            "{\"rows\": 3}",
            "--tool-choice",
            "none",
        ],
    );
    assert!(v3["answers"][0]["tool_calls"]
        .as_array()
        .unwrap()
        .is_empty());
    let path = path_of(&s, &conv);
    let roles: Vec<&str> = path.iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "tool",
            "assistant",
            "tool",
            "assistant"
        ]
    );
    // Each result is linked to the call it answers.
    assert_eq!(path[2]["tool_call_id"], path[1]["tool_calls"][0]["id"]);
    assert_eq!(path[4]["tool_call_id"], path[3]["tool_calls"][0]["id"]);
    // Nothing waits any more.
    let out = s.run(&["ask", "--conversation", &conv, "--tool-result", "late"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tool call waits"));

    for n in path.iter().filter(|n| n["role"] == "assistant") {
        s.ok(&["rate", &n["id"].to_string(), "5"]);
    }
    let dir = s.dir.path();
    for (format, target) in [
        ("openai", dir.join("chain.jsonl")),
        ("sharegpt", dir.join("chain-sharegpt.jsonl")),
        ("mlx", dir.join("chain-mlx")),
    ] {
        let t = target.to_str().unwrap();
        s.ok(&["export", "--format", format, "--min-rating", "4", "-o", t]);
        let out = s.run(&["validate", "--format", format, t]);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "validate {format}: {report}");
        assert!(report.contains("no errors"), "{format}: {report}");
        assert!(report.contains("multi-step 1"), "{format}: {report}");
    }
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("chain.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let msgs = line["messages"].as_array().unwrap();
    let calls: Vec<&Value> = msgs.iter().filter(|m| m["tool_calls"].is_array()).collect();
    assert_eq!(calls.len(), 2, "{line:#}");
    // OpenAI wants arguments as a JSON string.
    assert!(calls[0]["tool_calls"][0]["function"]["arguments"].is_string());
}

#[test]
fn parallel_calls_wait_for_every_result_before_the_model_answers() {
    let s = Sandbox::new();
    let file = s.dir.path().join("parallel.jsonl");
    let line = serde_json::json!({
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_p", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                {"id": "call_r", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}
            ]}
        ],
        "tools": preset_tools(),
    });
    std::fs::write(&file, format!("{line}\n")).unwrap();
    s.ok(&["import", file.to_str().unwrap()]);
    let out = s.run(&[
        "ask",
        "--conversation",
        "1",
        "--tool-result",
        "x",
        "--call-id",
        "call_nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("call_p, call_r"), "{err}");
    // Rome first: stored, and the model waits for Paris.
    let out = s.run(&[
        "ask",
        "--conversation",
        "1",
        "--tool-result",
        "{\"temp_c\": 21}",
        "--call-id",
        "call_r",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("still waiting for: get_weather(city=Paris) [call_p]"),
        "{err}"
    );
    assert_eq!(path_of(&s, "1").len(), 3);
    let (v, _) = ask(
        &s,
        &["--conversation", "1", "--tool-result", "{\"temp_c\": 14}"],
    );
    assert_eq!(v["answers"][0]["facts"]["stop_reason"], "eos");
    let path = path_of(&s, "1");
    let ids: Vec<&Value> = path.iter().map(|n| &n["tool_call_id"]).collect();
    assert_eq!(ids[2], "call_r");
    assert_eq!(ids[3], "call_p");
    assert_eq!(path[4]["role"], "assistant");
    assert_eq!(path[4]["status"], "complete");
}

#[test]
fn few_shot_puts_your_best_rated_answers_in_the_prompt_and_records_them() {
    let s = Sandbox::new();
    let file = repo().join("sessions/clarification-sql.jsonl");
    s.ok(&["import", file.to_str().unwrap()]);
    let out = s.run(&[
        "ask",
        "--few-shot",
        "2",
        "--show-prompt",
        "Find the players of Arsenal",
    ]);
    assert!(out.status.success());
    let prompt = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(prompt.contains("Examples of good answers"), "{prompt}");
    // The most similar exchange (shares "players") with its 5★ answer…
    assert!(
        prompt.contains("User: Find information about players"),
        "{prompt}"
    );
    assert!(prompt.contains("Which information do you need"), "{prompt}");
    // …never a 2★ one.
    assert!(!prompt.contains("SELECT * FROM players;"), "{prompt}");
    assert!(err.contains("[few-shot: 2 of your 4+★ answers"), "{err}");

    let (v, _) = ask(
        &s,
        &[
            "--few-shot",
            "2",
            "--max-tokens",
            "8",
            "Find the players of Arsenal",
        ],
    );
    let used = v["answers"][0]["few_shot"].as_array().unwrap().clone();
    assert_eq!(used.len(), 2);
    let conv = v["conversation_id"].to_string();
    let node = path_of(&s, &conv).pop().unwrap();
    assert_eq!(node["few_shot"].as_array().unwrap(), &used);
    // Without the option nothing is added.
    let out = s.run(&["ask", "--show-prompt", "Find the players of Arsenal"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Examples of good answers"));
}

#[test]
fn bad_tool_definitions_are_refused_naming_the_file_and_field() {
    let s = Sandbox::new();
    s.ok(&[
        "import",
        repo().join("sessions/tool-calling.jsonl").to_str().unwrap(),
    ]);
    let bad = s.dir.path().join("bad-tools.json");
    std::fs::write(
        &bad,
        r#"[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "nonsense"}}}}}]"#,
    )
    .unwrap();
    let before = s.json(&["sessions", "show", "1", "--json"])["conversation"]["tools"].clone();
    let out = s.run(&["sessions", "set", "1", "--tools", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-tools.json") && err.contains("tools[0].function.parameters"),
        "{err}"
    );
    // Nothing saved.
    assert_eq!(
        s.json(&["sessions", "show", "1", "--json"])["conversation"]["tools"],
        before
    );
    std::fs::write(&bad, "[{\"type\": \"function\",\n oops}]").unwrap();
    let out = s.run(&["ask", "--tools", bad.to_str().unwrap(), "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-tools.json:2: not valid JSON"), "{err}");
    // A good file is saved, with the turn settings.
    let good = s.dir.path().join("tools.json");
    std::fs::write(&good, preset_tools().to_string()).unwrap();
    let out = s.ok(&[
        "sessions",
        "set",
        "1",
        "--tools",
        good.to_str().unwrap(),
        "--tool-choice",
        "required",
        "--tool-grammar",
        "off",
        "--few-shot",
        "3",
    ]);
    assert!(
        out.contains(
            "tools: get_weather, run_sql · tool choice Required · grammar off · few-shot 3"
        ),
        "{out}"
    );
}
