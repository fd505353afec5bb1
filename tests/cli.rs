//! The real `arbor` binary on the real default model and real SQLite files.
//! Needs the default model that `scripts/setup.sh` installs.

mod common;
use common::*;
use std::path::Path;

#[test]
fn doctor_reports_the_default_model() {
    let s = Sandbox::new();
    let out = s.ok(&["doctor"]);
    assert!(out.contains("architecture     llama"), "{out}");
    assert!(out.contains("chat template    yes"), "{out}");
    assert!(out.contains("context length   8192"), "{out}");
    let v = format!("schema version   {}", arbor::store::SCHEMA_VERSION);
    assert!(out.contains(&v), "{out}");
    // SmolLM2 has 30 blocks (+ the output layer); this build has no GPU backend.
    assert!(
        out.contains("GPU offload      none: 0 of 31 layers (a CPU build; gpu_layers = 0)"),
        "{out}"
    );
    s.config("gpu_layers = 99\n");
    let out = s.ok(&["doctor"]);
    assert!(
        out.contains("GPU offload      none: gpu_layers = 99, but this build has no GPU backend"),
        "{out}"
    );
    let missing = s
        .cmd()
        .env("ARBOR_MODEL", "/nonexistent.gguf")
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

#[test]
fn bad_model_files_are_clear_errors_with_exit_2() {
    let s = Sandbox::new();
    let not_gguf = s.dir.path().join("notes.gguf");
    std::fs::write(&not_gguf, "hello, I am text").unwrap();
    let out = s.run(&["--model", not_gguf.to_str().unwrap(), "ask", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a GGUF file") && err.contains("notes.gguf"),
        "{err}"
    );

    let truncated = s.dir.path().join("half.gguf");
    let bytes = std::fs::read(default_model()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = s.run(&["--model", truncated.to_str().unwrap(), "ask", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated GGUF"), "{err}");
    // Nothing was written for a request that could not run.
    assert!(!s.db().exists() || s.ok(&["sessions"]).contains("no conversations"));
}

#[test]
fn ask_streams_stores_and_continues_a_conversation() {
    let s = Sandbox::new();
    let first = s.json(&[
        "ask",
        "Name a primary colour.",
        "--temperature",
        "0",
        "--max-tokens",
        "24",
        "--json",
    ]);
    let conv = first["conversation_id"].as_i64().unwrap();
    let answer = &first["answers"][0];
    let text = answer["content"].as_str().unwrap();
    assert!(!text.trim().is_empty());
    assert!(answer["facts"]["generated_tokens"].as_u64().unwrap() > 0);
    assert_eq!(answer["facts"]["model"], "Smollm2 135M 8k Lc100K Mix1 Ep2");

    let second = s.json(&[
        "ask",
        "--conversation",
        &conv.to_string(),
        "Another one?",
        "--temperature",
        "0",
        "--max-tokens",
        "16",
        "--json",
    ]);
    assert_eq!(second["conversation_id"].as_i64().unwrap(), conv);

    let shown = s.json(&["sessions", "show", &conv.to_string(), "--json"]);
    let nodes = shown["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    let roles: Vec<_> = nodes
        .iter()
        .map(|n| n["node"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(nodes[1]["node"]["content"].as_str().unwrap(), text);
    assert_eq!(nodes[1]["node"]["status"], "complete");
    assert_eq!(nodes[1]["node"]["origin"], "generated");
    // The second prompt contained the first exchange.
    assert!(
        nodes[3]["node"]["prompt_tokens"].as_i64().unwrap()
            > nodes[1]["node"]["prompt_tokens"].as_i64().unwrap()
    );

    // Rate through the CLI and see it in the listing.
    let a = nodes[1]["node"]["id"].as_i64().unwrap().to_string();
    s.ok(&["rate", &a, "5", "--critique", "good", "--tag", "colour"]);
    let list = s.json(&["sessions", "--json"]);
    assert_eq!(list[0]["rated"], 1);
    assert_eq!(list[0]["tags"][0], "colour");
    let found = s.json(&["sessions", "--search", "primary", "--json"]);
    assert_eq!(found[0]["conversation_id"].as_i64().unwrap(), conv);
}

#[test]
fn ask_k_makes_k_sibling_candidates() {
    let s = Sandbox::new();
    let out = s.json(&[
        "ask",
        "Say something about trees.",
        "--k",
        "3",
        "--max-tokens",
        "12",
        "--temperature",
        "1.0",
        "--json",
    ]);
    let answers = out["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 3);
    let conv = out["conversation_id"].as_i64().unwrap().to_string();
    let tree = s.json(&["sessions", "show", &conv, "--tree", "--json"]);
    let assistants: Vec<_> = tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["node"]["role"] == "assistant")
        .collect();
    assert_eq!(assistants.len(), 3);
    let user_id = out["user_node_id"].as_i64().unwrap();
    assert!(assistants
        .iter()
        .all(|n| n["node"]["parent_id"].as_i64() == Some(user_id)));
    // Different seeds per sequence: not all three identical.
    let texts: std::collections::BTreeSet<_> = answers
        .iter()
        .map(|a| a["content"].as_str().unwrap().to_string())
        .collect();
    assert!(texts.len() > 1, "{texts:?}");
}

#[test]
fn show_prompt_prints_the_exact_chatml_prompt() {
    let s = Sandbox::new();
    let out = s
        .cmd()
        .args(["ask", "--system", "Be brief.", "Hi", "--show-prompt"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let prompt = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens]"));
    assert!(!s.db().exists() || s.ok(&["sessions"]).contains("no conversations"));
}

#[test]
fn context_overflow_is_a_clear_error() {
    let s = Sandbox::new();
    let cfg = s.dir.path().join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.toml"), "context = 64\n").unwrap();
    let long = "tell me about trees ".repeat(200);
    let out = s.run(&["ask", &long, "--max-tokens", "8"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("context overflow") && err.contains("the context holds"),
        "{err}"
    );
    // The user's message is kept; the failed answer is marked as an error, not lost.
    let shown = s.json(&["sessions", "show", "1", "--json"]);
    assert_eq!(shown["nodes"][0]["node"]["role"], "user");
    assert_eq!(shown["nodes"][1]["node"]["status"], "error");
}

#[test]
fn bad_config_names_file_and_line() {
    let s = Sandbox::new();
    let cfg = s.dir.path().join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.toml"), "threads = 2\ncontext = \"big\"\n").unwrap();
    // doctor reports it among its problems (exit 2, bad input) instead of stopping.
    let out = s.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml: line 2: context:"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("all good"));
    // Any other command stops at it, with the same exit code.
    let out = s.run(&["sessions"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn completions_and_models() {
    let s = Sandbox::new();
    let out = s.ok(&["completions", "bash"]);
    assert!(out.contains("_arbor") && out.contains("doctor"));
    let models = s.json(&["models", "--json"]);
    let m = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| Path::new(m["path"].as_str().unwrap()) == default_model())
        .expect("default model listed");
    assert_eq!(m["architecture"], "llama");
    assert_eq!(m["chat_template"], true);
}

#[test]
fn a_conversation_keeps_its_own_sampling_over_the_config() {
    let s = Sandbox::new();
    let v = s.json(&["ask", "--json", "--max-tokens", "4", "Hello"]);
    let conv = v["conversation_id"].to_string();
    let out = s.ok(&[
        "sessions",
        "set",
        &conv,
        "--temperature",
        "0",
        "--max-tokens",
        "6",
        "--title",
        "Greetings",
    ]);
    assert!(
        out.contains("conversation") && out.contains("Greetings"),
        "{out}"
    );
    assert!(
        out.contains("\"max_tokens\":6") && out.contains("\"temperature\":0.0"),
        "{out}"
    );
    // ask --conversation uses the conversation's settings…
    let v = s.json(&[
        "ask",
        "--json",
        "--conversation",
        &conv,
        "Tell me a long story.",
    ]);
    let sampling = &v["answers"][0]["facts"]["sampling"];
    assert_eq!(sampling["max_tokens"], 6, "{v}");
    assert_eq!(sampling["temperature"], 0.0, "{v}");
    assert!(
        v["answers"][0]["facts"]["generated_tokens"]
            .as_u64()
            .unwrap()
            <= 6
    );
    // …and a flag still wins for one message.
    let v = s.json(&[
        "ask",
        "--json",
        "--conversation",
        &conv,
        "--max-tokens",
        "3",
        "Again.",
    ]);
    assert_eq!(v["answers"][0]["facts"]["sampling"]["max_tokens"], 3);
    assert_eq!(v["answers"][0]["facts"]["sampling"]["temperature"], 0.0);
    // Clearing goes back to the config's defaults.
    let out = s.ok(&["sessions", "set", &conv, "--clear-sampling"]);
    assert!(out.contains("\"max_tokens\":512"), "{out}");
}

#[test]
fn opening_the_database_elsewhere_leaves_a_live_answer_streaming() {
    let s = Sandbox::new();
    // A real `arbor ask` writing a long answer…
    let mut ask = s
        .cmd()
        .args([
            "ask",
            "--max-tokens",
            "3000",
            "--temperature",
            "0.8",
            "Write a very long story about a forest, with many chapters.",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // …while other commands open the same file.
    let start = std::time::Instant::now();
    let answer = loop {
        assert!(
            start.elapsed().as_secs() < 60,
            "no streaming answer appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        let out = s.run(&["sessions", "show", "1", "--json"]);
        if !out.status.success() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let a = v["nodes"][1]["node"].clone();
        if a["content"].as_str().is_some_and(|c| c.len() > 40) {
            break a;
        }
    };
    assert_eq!(answer["status"], "streaming", "{answer:#}");
    // Once its writer is gone (kill -9), the next open marks it interrupted, text kept.
    ask.kill().unwrap();
    ask.wait().unwrap();
    let v = s.json(&["sessions", "show", "1", "--json"]);
    let a = &v["nodes"][1]["node"];
    assert_eq!(a["status"], "interrupted");
    assert!(a["content"].as_str().unwrap().len() > 40);
}
