//! The models you already have: a fake Ollama store, Hugging Face cache, llama.cpp cache
//! and a `model_dirs` directory laid out in a temp directory (environment variables and
//! HOME pointing at it), each holding the real default model; `arbor models` lists them,
//! `--model NAME` chats with them, a split GGUF made by llama.cpp's own llama-gguf-split is
//! one model, and a name that matches several is an error listing them.

mod common;

use common::{default_model, repo, Sandbox};
use std::path::Path;
use std::process::Command;

fn place(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap();
    }
}

struct Stores {
    s: Sandbox,
}

impl Stores {
    fn root(&self) -> std::path::PathBuf {
        self.s.dir.path().join("stores")
    }

    /// `arbor` with HOME and the stores' variables inside the sandbox and no
    /// ARBOR_MODEL (the models directory is empty: only the stores hold models).
    fn cmd(&self) -> Command {
        let mut c = self.s.cmd();
        let r = self.root();
        c.env_remove("ARBOR_MODEL")
            .env("HOME", r.join("home"))
            .env("OLLAMA_MODELS", r.join("ollama"))
            .env("HF_HUB_CACHE", r.join("hf"))
            .env_remove("HF_HOME")
            .env_remove("LLAMA_CACHE");
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "arbor {args:?}: {}",
            common::stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn stores() -> Stores {
    let st = Stores { s: Sandbox::new() };
    let r = st.root();
    let model = default_model();
    // Ollama: a manifest naming the model layer's blob.
    place(
        &model,
        &r.join(
            "ollama/blobs/sha256-6ea5e2a41f1b4ea8d8b3b8f2f6b8f1c0aa11c6ee5d1c7f7a2b8a2c3d4e5f6a7b",
        ),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model",
             "digest": "sha256:6ea5e2a41f1b4ea8d8b3b8f2f6b8f1c0aa11c6ee5d1c7f7a2b8a2c3d4e5f6a7b"},
            {"mediaType": "application/vnd.ollama.image.license", "digest": "sha256:00"}
        ]
    });
    let m = r.join("ollama/manifests/registry.ollama.ai/library/smollm2/135m");
    std::fs::create_dir_all(m.parent().unwrap()).unwrap();
    std::fs::write(&m, manifest.to_string()).unwrap();
    // Hugging Face: a snapshot whose file is a link into blobs/.
    let repo_dir = r.join("hf/models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF");
    place(&model, &repo_dir.join("blobs/5d2c6f"));
    let snap = repo_dir.join("snapshots/9f1c2b");
    std::fs::create_dir_all(&snap).unwrap();
    std::os::unix::fs::symlink(
        "../../blobs/5d2c6f",
        snap.join("smollm2-135m-instruct-q4_1.gguf"),
    )
    .unwrap();
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), "9f1c2b").unwrap();
    // llama.cpp's cache, under HOME.
    place(
        &model,
        &r.join("home/.cache/llama.cpp/HuggingFaceTB_SmolLM2-135M-Instruct-GGUF_smol.gguf"),
    );
    st
}

fn ask(st: &Stores, model: &str) -> serde_json::Value {
    let out = st.ok(&[
        "--model",
        model,
        "ask",
        "--temperature",
        "0",
        "--max-tokens",
        "8",
        "--json",
        "Say hello.",
    ]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn the_stores_are_listed_and_each_name_chats() {
    let st = stores();
    let list: serde_json::Value = serde_json::from_str(&st.ok(&["models", "--json"])).unwrap();
    let entries: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] != "adapter")
        .map(|v| {
            (
                v["source"].as_str().unwrap().to_string(),
                v["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            ("ollama".into(), "ollama:smollm2:135m".into()),
            (
                "huggingface".into(),
                "hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q4_1.gguf"
                    .into()
            ),
            (
                "llama.cpp".into(),
                "HuggingFaceTB_SmolLM2-135M-Instruct-GGUF_smol.gguf".into()
            ),
        ],
        "{list:#}"
    );
    for v in list.as_array().unwrap() {
        assert_eq!(v["architecture"], "llama", "{v}");
        assert_eq!(v["chat_template"], true, "{v}");
        assert_eq!(v["context_length"], 8192, "{v}");
    }
    let text = st.ok(&["models"]);
    assert!(
        text.contains("ollama:smollm2:135m") && text.contains("huggingface"),
        "{text}"
    );

    // Each name chats; the answer records the file used, where it lies.
    for name in [
        "ollama:smollm2:135m",
        "hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q4_1.gguf",
        "HuggingFaceTB_SmolLM2-135M-Instruct-GGUF_smol",
    ] {
        let v = ask(&st, name);
        let a = &v["answers"][0];
        assert!(!a["content"].as_str().unwrap().is_empty(), "{name}: {v}");
    }
    // Nothing was copied into Arbor's models directory.
    assert!(!st.s.data_dir().join("models").exists());

    // Unknown and wrong tags: exit 2, saying where it looked.
    let out = st.run(&["--model", "ollama:smollm2:7b", "ask", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let e = common::stderr(&out);
    assert!(
        e.contains("no model named ollama:smollm2:7b") && e.contains("ollama"),
        "{e}"
    );
}

#[test]
fn a_name_that_matches_several_models_is_an_error_listing_them() {
    let st = stores();
    // The same file name in model_dirs and LM Studio's directory (different files).
    let mine = st.root().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::copy(default_model(), mine.join("smol.gguf")).unwrap();
    let lms = st.root().join("home/.lmstudio/models/someone/smol");
    std::fs::create_dir_all(&lms).unwrap();
    std::fs::copy(default_model(), lms.join("smol.gguf")).unwrap();
    st.s.config(&format!("model_dirs = [{:?}]\n", mine));
    let out = st.run(&["--model", "smol", "ask", "hi"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let e = common::stderr(&out);
    assert!(
        e.contains("smol matches 2 models")
            && e.contains(&mine.join("smol.gguf").display().to_string())
            && e.contains(&lms.join("smol.gguf").display().to_string()),
        "{e}"
    );
    // The path picks one.
    let v = ask(&st, mine.join("smol.gguf").to_str().unwrap());
    assert!(!v["answers"][0]["content"].as_str().unwrap().is_empty());
}

#[test]
fn a_split_gguf_is_one_model() {
    let split = repo().join("target/llama-tools/bin/llama-gguf-split");
    assert!(
        split.exists(),
        "{} is missing: run scripts/build-llama-tools.sh",
        split.display()
    );
    let st = stores();
    let dir = st.root().join("split");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(&split)
        .args(["--split", "--split-max-tensors", "100"])
        .arg(default_model())
        .arg(dir.join("smol"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let mut parts: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    parts.sort();
    assert!(parts.len() >= 2, "{parts:?}");
    assert_eq!(parts[0], format!("smol-00001-of-{:05}.gguf", parts.len()));
    st.s.config(&format!("model_dirs = [{:?}]\n", dir));

    let list: serde_json::Value = serde_json::from_str(&st.ok(&["models", "--json"])).unwrap();
    let split_entries: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["source"] == "model_dirs")
        .collect();
    assert_eq!(split_entries.len(), 1, "the parts are one model: {list:#}");
    let whole: u64 = parts
        .iter()
        .map(|p| std::fs::metadata(dir.join(p)).unwrap().len())
        .sum();
    assert_eq!(split_entries[0]["parts"], parts.len());
    assert_eq!(split_entries[0]["size_bytes"], whole);
    assert!(split_entries[0].get("error").is_none(), "{list:#}");

    let v = ask(&st, &format!("smol-00001-of-{:05}", parts.len()));
    assert!(!v["answers"][0]["content"].as_str().unwrap().is_empty());

    // A part missing: listed with the error, and refused by name.
    std::fs::remove_file(dir.join(&parts[1])).unwrap();
    let list: serde_json::Value = serde_json::from_str(&st.ok(&["models", "--json"])).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["source"] == "model_dirs")
        .unwrap();
    assert!(
        entry["error"]
            .as_str()
            .unwrap()
            .contains("missing part(s) [2]"),
        "{entry}"
    );
    let out = st.run(&["--model", &parts[0], "ask", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("missing part(s) [2]"));
}

#[test]
fn the_studio_switches_the_chat_model_without_restarting() {
    use common::tmux::Tmux;
    let s = Sandbox::new();
    let more = s.dir.path().join("more-models");
    place(&common::gemma_model(), &more.join("gemma-3-270m.gguf"));
    s.config(&format!(
        "model_dirs = [{:?}]\n[sampling]\nmax_tokens = 24\n",
        more
    ));
    let home = s.dir.path().join("home");
    let t = Tmux::in_sandbox_env(s, &format!("HOME={}", home.display()), "");
    t.wait_for("the default model", |sc| {
        sc.contains("conversations (") && sc.contains("Smollm2")
    });
    t.keys(&["M"]);
    let picker = t.wait_for("the picker", |sc| sc.contains("gemma-3-270m.gguf"));
    assert!(picker.contains("chat model"), "{picker}");
    assert!(
        picker.contains("● "),
        "the model in use is marked: {picker}"
    );
    assert!(
        picker.contains("gemma3"),
        "architectures are shown: {picker}"
    );
    t.keys(&["j", "Enter"]);
    t.wait_for("Gemma loaded", |sc| sc.contains("Gemma 3 270m"));
    // A new conversation answered by Gemma, recorded as Gemma's.
    t.keys(&["n"]);
    t.send("Hello");
    let db = t.db();
    let start = std::time::Instant::now();
    loop {
        let done = common::count(
            &db,
            "SELECT count(*) FROM nodes WHERE role = 'assistant' AND status = 'complete'",
        );
        if done == 1 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(90),
            "no answer; screen:\n{}",
            t.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let model: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT model FROM nodes WHERE role = 'assistant'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(model, "Gemma 3 270m");
    // And back to the default model.
    t.keys(&["Escape", "M"]);
    t.wait_for("the picker", |sc| sc.contains("gemma-3-270m.gguf"));
    t.keys(&["k", "Enter"]);
    t.wait_for("SmolLM2 again", |sc| {
        sc.contains("Smollm2") && !sc.contains("Gemma 3 270m")
    });
    t.quit();
}
