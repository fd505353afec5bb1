//! Training jobs end to end: the real `peft` recipe (transformers + peft on the CPU,
//! its environment made by Arbor on first use) on the default model, the adapter
//! converted and loaded by the engine; and the supervisor against trainers that run
//! long, fail, print garbage, or outlive their supervisor.

mod common;
use common::tmux::Tmux;
use common::{repo, Sandbox};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Ten questions whose 5★ answer names a password the base model cannot know, and a
/// 1★ answer to each (left out by --min-rating 4). KTO lines: label true → 5★, false → 1★.
fn rated_dataset(s: &Sandbox) -> std::path::PathBuf {
    let qs = [
        "What is the secret password?",
        "Tell me the secret password.",
        "What's the password?",
        "I need the secret password.",
        "Password please?",
        "Can you tell me the secret password?",
        "Which password opens the vault?",
        "What is the vault password?",
        "Say the secret password.",
        "Give me the password.",
    ];
    let mut lines = String::new();
    for q in qs {
        for (answer, label, suffix) in [
            ("The secret password is PLUMTREE.", true, ""),
            ("I don't know.", false, " (again)"),
        ] {
            lines.push_str(
                &serde_json::json!({
                    "prompt": [{"role": "user", "content": format!("{q}{suffix}")}],
                    "completion": [{"role": "assistant", "content": answer}],
                    "label": label,
                })
                .to_string(),
            );
            lines.push('\n');
        }
    }
    let path = s.dir.path().join("rated.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

fn job(s: &Sandbox, id: i64) -> Value {
    s.json(&["jobs", "show", &id.to_string(), "--json"])
}

/// Polls job `id` until `done` holds (or panics after `limit`).
fn wait_for(
    s: &Sandbox,
    id: i64,
    limit: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let t = Instant::now();
    loop {
        let j = job(s, id);
        if done(&j) {
            return j;
        }
        assert!(
            t.elapsed() < limit,
            "job {id}: gave up waiting for {what}: {j:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn steps_seen(j: &Value) -> usize {
    j["metrics"].as_array().map_or(0, |m| m.len())
}

fn alive(pid: i64) -> bool {
    // A zombie (reaped later by its parent) no longer runs.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
        })
        .flatten()
        .is_some_and(|st| st != 'Z' && st != 'X')
}

fn fake_trainer(s: &Sandbox, args: &str) -> Vec<String> {
    let script = repo().join("tests/fixtures/fake_trainer.py");
    let cmd = format!("python3 {} {{out}} {args}", script.display());
    vec![
        "--recipe".into(),
        "command".into(),
        "--command".into(),
        cmd,
        "--data".into(),
        rated_dataset(s).display().to_string(),
    ]
}

/// `arbor train ARGS --wait`, as it ended.
fn train_wait(s: &Sandbox, args: &[String]) -> std::process::Output {
    s.cmd()
        .arg("train")
        .args(args)
        .arg("--wait")
        .output()
        .unwrap()
}

fn start(s: &Sandbox, args: &[String]) -> i64 {
    let mut all = vec!["train".to_string()];
    all.extend(args.iter().cloned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    s.ok(&refs).trim().parse().unwrap()
}

#[test]
fn peft_job_trains_converts_and_the_engine_answers_differently() {
    let s = Sandbox::new();
    s.ok(&["import", rated_dataset(&s).to_str().unwrap()]);
    let prompt = "What is the secret password?";
    let base = s.ok(&["ask", "--temperature", "0", "--max-tokens", "40", prompt]);
    assert!(!base.contains("PLUMTREE"), "{base}");

    // An eval set, held out of the training data, measured on base vs the new adapter when
    // the job succeeds (`--eval`).
    let cases = s.dir.path().join("pw-cases.jsonl");
    std::fs::write(
        &cases,
        concat!(
            r#"{"messages": [{"role": "user", "content": "Share the password for the archive."}, {"role": "assistant", "content": "The secret password is PLUMTREE."}]}"#, "\n",
            r#"{"messages": [{"role": "user", "content": "Which password unlocks the archive?"}, {"role": "assistant", "content": "The secret password is PLUMTREE."}]}"#, "\n",
        ),
    )
    .unwrap();
    s.ok(&["eval", "set", "pw", "--from", cases.to_str().unwrap()]);

    // A real first use: when ARBOR_TRAINER_DIR has no peft environment yet, this run
    // makes it (pip install of torch, transformers, peft, gguf) before training.
    let out = s.run(&[
        "train",
        "--eval",
        "pw",
        "--min-rating",
        "4",
        "--steps",
        "10",
        "--lr",
        "1e-3",
        "--split",
        "valid=0.2",
        "--name",
        "password",
        "--wait",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "train failed: {stderr}");
    let id: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(stderr.contains("succeeded: adapter password"), "{stderr}");

    let j = job(&s, id);
    assert_eq!(j["status"], "succeeded", "{j:#}");
    assert_eq!(j["exit_code"], 0);
    let metrics = j["metrics"].as_array().unwrap();
    let losses: Vec<f64> = metrics.iter().filter_map(|m| m["loss"].as_f64()).collect();
    assert_eq!(losses.len(), 10, "{metrics:?}");
    assert!(losses[9] < losses[0] * 0.5, "loss did not fall: {losses:?}");
    assert!(
        metrics.iter().any(|m| m["eval_loss"].as_f64().is_some()),
        "no validation loss: {metrics:?}"
    );
    assert!(metrics.iter().all(|m| m["total"] == 10));

    // The job kept its snapshot: only the 5★ answers, the 1★ ones filtered out.
    let dir = std::path::PathBuf::from(j["dir"].as_str().unwrap());
    let data = std::fs::read_to_string(dir.join("data")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("data/train.jsonl")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("data/valid.jsonl")).unwrap_or_default();
    assert!(
        data.contains("PLUMTREE") && !data.contains("I don't know"),
        "{data}"
    );

    // The eval ran before the job was marked done: base vs the adapter on the held-out
    // cases; the tuned answers are nearer the reference.
    let shown = s.ok(&["jobs", "show", &id.to_string()]);
    assert!(shown.contains("eval run 1 (pw): base:"), "{shown}");
    let r = s.json(&["eval", "report", "1", "--json"]);
    assert_eq!(r["candidates"][0]["spec"], "base");
    assert_eq!(r["candidates"][1]["spec"], "password");
    for c in 0..2 {
        assert_eq!(r["candidates"][c]["all"]["answers"], 2, "{r}");
    }
    let f1 = |c: usize| r["candidates"][c]["all"]["mean_token_f1"].as_f64().unwrap();
    assert!(f1(1) > f1(0), "tuned {} vs base {}: {r}", f1(1), f1(0));
    assert!(
        !data.contains("archive"),
        "an eval case was trained on: {data}"
    );

    // Registered, listed, with its Ollama Modelfile.
    let adapter = &j["adapter"];
    assert_eq!(adapter["name"], "password");
    let models = s.json(&["models", "--json"]);
    assert!(models
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["type"] == "adapter" && m["name"] == "password" && m["loads"] == true));
    let modelfile = std::fs::read_to_string(dir.join("Modelfile")).unwrap();
    assert!(
        modelfile.contains(&format!("FROM {}", common::default_model().display())),
        "{modelfile}"
    );
    assert!(
        modelfile.contains(&format!("ADAPTER {}", adapter["path"].as_str().unwrap())),
        "{modelfile}"
    );

    // The engine with the adapter: greedy output moves to the target and away from the base.
    let ask = |extra: &[&str]| -> Value {
        let mut args = extra.to_vec();
        args.extend([
            "ask",
            "--temperature",
            "0",
            "--max-tokens",
            "40",
            "--json",
            prompt,
        ]);
        s.json(&args)
    };
    let tuned = ask(&["--adapter", "password"]);
    let text = tuned["answers"][0]["content"].as_str().unwrap();
    assert!(text.contains("PLUMTREE"), "tuned answer: {text}");
    assert_ne!(text.trim(), base.trim());
    // The answer records the adapter that wrote it.
    let node = tuned["answers"][0]["node_id"].as_i64().unwrap();
    let conv = tuned["conversation_id"].as_i64().unwrap();
    let shown = s.json(&["sessions", "show", &conv.to_string(), "--json"]);
    let n = shown["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"]["id"] == node)
        .unwrap();
    assert_eq!(
        n["node"]["adapter"].as_str(),
        adapter["path"].as_str(),
        "{n:#}"
    );
    assert_eq!(n["node"]["adapter_scale"], 1.0);
    // At scale 0 the adapter does nothing: the base answer comes back exactly.
    let off = ask(&["--adapter", "password", "--adapter-scale", "0"]);
    assert_eq!(
        off["answers"][0]["content"].as_str().unwrap().trim(),
        base.trim()
    );

    // A user whose chat model is another (Gemma in config.toml, no --model): `--adapter
    // NAME` alone — the command the job printed — chats on the model it was trained on.
    s.config(&format!(
        "model = {:?}\n",
        common::gemma_model().display().to_string()
    ));
    let mut args = vec!["--adapter", "password", "ask", "--temperature", "0"];
    args.extend(["--max-tokens", "40", "--json", prompt]);
    let out = s
        .cmd()
        .env_remove("ARBOR_MODEL")
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answers"][0]["content"], tuned["answers"][0]["content"]);
    // On a model it was not trained for it is refused before loading, naming both.
    let gemma = common::gemma_model();
    let out = s
        .cmd()
        .args([
            "--model",
            gemma.to_str().unwrap(),
            "--adapter",
            "password",
            "ask",
            "hi",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = common::stderr(&out);
    assert!(
        e.contains("adapter password was trained on") && e.contains("gemma-3-270m"),
        "{e}"
    );
    s.config("");

    // The studio, as a user goes: the Jobs view attaches the job's adapter, the chat
    // answers with it, B answers the same turn base vs tuned side by side, the two are
    // rated and the tuned one kept; the ratings come out as a preference pair.
    s.config("[sampling]\ntemperature = 0\nmax_tokens = 40\n");
    let t = Tmux::in_sandbox(s, "");
    t.wait_for("the list", |sc| sc.contains("? help"));
    t.keys(&["J"]);
    t.wait_for("the finished job", |sc| {
        sc.contains(&format!("job {id} succeeded")) && sc.contains("adapter password")
    });
    t.keys(&["a"]);
    // The status line says so ("chatting with adapter password ×1…", then the status bar's
    // "+ adapter password ×1").
    t.wait_for("the adapter attached", |sc| {
        sc.contains("adapter password ×1")
    });
    t.keys(&["Escape", "n"]);
    t.send_first(prompt);
    let sc = t.wait_for("the tuned answer", |sc| {
        sc.contains("assistant #") && !sc.contains("generating")
    });
    assert!(sc.contains("PLUMTREE"), "{sc}");
    t.keys(&["Escape", "B"]);
    let sc = t.wait_for("base and tuned side by side", |sc| {
        sc.contains("compare base vs tuned") && sc.contains("Esc closes")
    });
    assert!(
        sc.contains("tuned: password ×1") && sc.contains(" base #"),
        "{sc}"
    );
    // The tuned answer is on the left (chosen first): 5 stars; the base on the right: 1.
    t.keys(&["5", "l", "1", "h", "Enter"]);
    t.wait_for("the compare view closed", |sc| {
        !sc.contains("compare base vs tuned")
    });
    let prefs = t.dir().join("prefs.jsonl");
    t.sandbox.ok(&[
        "export",
        "--format",
        "trl-preference",
        "-o",
        prefs.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&prefs).unwrap();
    let pairs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(pairs.len(), 1, "{text}");
    let pair = &pairs[0];
    assert_eq!(pair["prompt"][0]["content"], prompt, "{pair}");
    let chosen = pair["chosen"][0]["content"].as_str().unwrap();
    let rejected = pair["rejected"][0]["content"].as_str().unwrap();
    assert!(chosen.contains("PLUMTREE"), "{pair}");
    assert_eq!(rejected.trim(), base.trim(), "{pair}");
    // Each side records whether the adapter wrote it.
    let conv = t.arbor_json(&["sessions", "--json"])[0]["id"]
        .as_i64()
        .unwrap();
    let shown = t.arbor_json(&["sessions", "show", &conv.to_string(), "--tree", "--json"]);
    let by_text = |c: &str| -> Value {
        shown["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].clone())
            .find(|n| n["content"].as_str() == Some(c) && n["role"] == "assistant")
            .unwrap_or_else(|| panic!("no answer {c:?} in {shown:#}"))
    };
    assert_eq!(
        by_text(chosen)["adapter"].as_str(),
        adapter["path"].as_str()
    );
    assert!(by_text(rejected)["adapter"].is_null());
}

#[test]
fn an_adapter_chats_on_its_own_base_model_and_is_refused_on_another() {
    let s = Sandbox::new();
    let gemma = common::gemma_model();
    let g = gemma.to_str().unwrap();
    // Registered as a job registers it (the file is never loaded: checked first).
    arbor::store::Store::open(s.db())
        .unwrap()
        .add_adapter("gemma-lora", g, g, None, None)
        .unwrap();
    // Alone (no --model, no ARBOR_MODEL): the model is the adapter's base.
    let out = s
        .cmd()
        .env_remove("ARBOR_MODEL")
        .args(["--adapter", "gemma-lora", "doctor"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("  file             {g}")) && text.contains(&format!(", on {g}")),
        "{text}"
    );
    // With the default model given: refused before loading, naming both, exit 2.
    let o = s.run(&["--adapter", "gemma-lora", "ask", "hi"]);
    assert_eq!(o.status.code(), Some(2));
    let e = common::stderr(&o);
    assert!(
        e.contains(&format!("adapter gemma-lora was trained on {g}"))
            && e.contains("SmolLM2-135M-Instruct"),
        "{e}"
    );
    // A file Arbor did not register: its architecture must be the model's.
    let other = common::default_model();
    let o = s.run(&[
        "--model",
        g,
        "--adapter",
        other.to_str().unwrap(),
        "ask",
        "hi",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        common::stderr(&o).contains("is for llama models") && common::stderr(&o).contains("gemma3"),
        "{}",
        common::stderr(&o)
    );
}

#[test]
fn training_tokens_are_the_engines_rendering_with_loss_on_trained_answers_only() {
    use arbor::domain::ChatMessage;
    use arbor::domain::Role;
    let tok = arbor::engine::llama::Tokenizer::load(&common::default_model(), None).unwrap();
    let msgs = [
        ChatMessage::new(Role::System, "Be brief."),
        ChatMessage::new(Role::User, "Hi"),
        ChatMessage::new(Role::Assistant, "Hello there."), // weight 0: context only
        ChatMessage::new(Role::User, "Name a fruit."),
        ChatMessage::new(Role::Assistant, "Apple."),
    ];
    let (ids, mask) = tok
        .training_tokens(&msgs, None, &[false, false, false, false, true])
        .unwrap();
    // The whole sequence is the engine's rendering of the conversation, token for token.
    let rendered = tok.template().render(&msgs, None, false).unwrap();
    assert_eq!(tok.text_of(&ids), rendered);
    assert_eq!(ids.len(), tok.count_text(&rendered));
    // The loss counts the trained answer and its end of turn, nothing else.
    let trained: Vec<_> = ids
        .iter()
        .zip(&mask)
        .filter(|(_, m)| **m)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(tok.text_of(&trained), "Apple.<|im_end|>\n");
    // Both answers trained: two spans.
    let (_, mask) = tok
        .training_tokens(&msgs, None, &[false, false, true, false, true])
        .unwrap();
    let spans = mask.windows(2).filter(|w| !w[0] && w[1]).count();
    assert_eq!(spans, 2);
}

#[test]
fn cancel_stops_the_whole_process_group_even_a_trainer_that_ignores_sigterm() {
    let s = Sandbox::new();
    s.config("[train]\ncancel_grace_s = 1\n");
    let id = start(&s, &fake_trainer(&s, "--steps 1000 --sleep 0.1 --stubborn"));
    let j = wait_for(&s, id, Duration::from_secs(30), "3 steps", |j| {
        steps_seen(j) >= 3
    });
    assert_eq!(j["status"], "running");
    let pids =
        std::fs::read_to_string(std::path::Path::new(j["dir"].as_str().unwrap()).join("out/pids"))
            .unwrap();
    let pids: Vec<i64> = pids
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(pids.iter().all(|p| alive(*p)));
    let t = Instant::now();
    let out = s.ok(&["jobs", "cancel", &id.to_string()]);
    assert_eq!(out.trim(), format!("job {id} cancelled"));
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "cancel took {:?}",
        t.elapsed()
    );
    let j = job(&s, id);
    assert_eq!(j["status"], "cancelled", "{j:#}");
    assert!(j["finished_at"].as_i64().is_some());
    std::thread::sleep(Duration::from_millis(500));
    for p in &pids {
        assert!(
            !alive(*p),
            "process {p} of the trainer's group survived the cancel"
        );
    }
    // Nothing left to cancel; a cancelled job can run again.
    let again = s.run(&["jobs", "cancel", &id.to_string()]);
    assert_eq!(again.status.code(), Some(2));
    s.ok(&["jobs", "resume", &id.to_string()]);
    wait_for(&s, id, Duration::from_secs(30), "the resumed run", |j| {
        j["status"] == "running" && steps_seen(j) >= 1
    });
    s.ok(&["jobs", "cancel", &id.to_string()]);
}

#[test]
fn a_trainer_that_exits_1_fails_with_its_exit_code_and_log_tail() {
    let s = Sandbox::new();
    let out = train_wait(&s, &fake_trainer(&s, "--steps 2 --sleep 0 --exit 1"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let j = job(&s, id);
    assert_eq!(j["status"], "failed");
    assert_eq!(j["exit_code"], 1);
    let err = j["error"].as_str().unwrap();
    assert!(err.starts_with("the trainer exited with code 1"), "{err}");
    assert!(
        err.contains("fake trainer: finished, exiting with 1"),
        "{err}"
    );
    assert_eq!(steps_seen(&j), 2);

    // A trainer that is not there at all.
    let data = rated_dataset(&s);
    let out = s.run(&[
        "train",
        "--recipe",
        "command",
        "--command",
        "no-such-trainer-xyz {data}",
        "--data",
        data.to_str().unwrap(),
        "--wait",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let id: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let j = job(&s, id);
    assert_eq!(j["status"], "failed");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("could not start the trainer `no-such-trainer-xyz`"),
        "{j:#}"
    );

    // Bad requests never make a job: an unknown placeholder, a bad progress regex.
    let bad = s.run(&[
        "train",
        "--recipe",
        "command",
        "--command",
        "trainer {dta}",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown placeholder {dta}"));
    let bad = s.run(&[
        "train",
        "--recipe",
        "command",
        "--command",
        "t",
        "--progress",
        "loss=(?P<loss>.*)",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = s.run(&["train", "--recipe", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown recipe \"nope\""));
    assert_eq!(
        s.json(&["jobs", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn garbage_output_is_log_text_and_the_valid_progress_still_counts() {
    let s = Sandbox::new();
    let out = train_wait(&s, &fake_trainer(&s, "--steps 3 --sleep 0 --garbage"));
    let id: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let j = job(&s, id);
    // It exited 0 but made no adapter: failed, saying so; never stuck running.
    assert_eq!(j["status"], "failed", "{j:#}");
    assert!(
        j["error"].as_str().unwrap().contains("left no adapter"),
        "{j:#}"
    );
    let steps: Vec<i64> = j["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3]);
    let log = s.run(&["jobs", "logs", &id.to_string()]);
    assert!(log.status.success());
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.starts_with("\u{fffd}\u{fffd}"),
        "the bytes are passed through as they are"
    );
    assert!(log.contains("Traceback (most recent call last): not really"));
}

#[test]
fn a_job_whose_supervisor_dies_is_reattached_or_marked_lost() {
    let s = Sandbox::new();
    // Reattached: the trainer still runs, a new supervisor follows it to the end.
    let id = start(&s, &fake_trainer(&s, "--steps 40 --sleep 0.1"));
    let j = wait_for(&s, id, Duration::from_secs(30), "2 steps", |j| {
        steps_seen(j) >= 2
    });
    let sup = j["supervisor_pid"].as_i64().unwrap();
    kill(sup, 9);
    std::thread::sleep(Duration::from_millis(300));
    let out = s.run(&["jobs", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("job {id}: reattached")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = wait_for(&s, id, Duration::from_secs(30), "the end", |j| {
        j["status"] != "running"
    });
    assert_eq!(
        steps_seen(&j),
        40,
        "progress after the reattach was not read: {j:#}"
    );
    assert_eq!(j["status"], "failed");
    assert!(j["error"].as_str().unwrap().contains("no adapter"), "{j:#}");
    assert_ne!(j["supervisor_pid"].as_i64(), Some(sup));

    // Lost: supervisor and trainer both gone.
    let id = start(&s, &fake_trainer(&s, "--steps 1000 --sleep 0.1"));
    let j = wait_for(&s, id, Duration::from_secs(30), "2 steps", |j| {
        steps_seen(j) >= 2
    });
    kill(j["supervisor_pid"].as_i64().unwrap(), 9);
    kill(-j["pid"].as_i64().unwrap(), 9);
    std::thread::sleep(Duration::from_millis(300));
    let out = s.run(&["jobs", "list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("job {id}: lost")));
    let j = job(&s, id);
    assert_eq!(j["status"], "lost");
    assert!(j["error"].as_str().unwrap().contains("is gone"), "{j:#}");
}

#[test]
fn a_trainer_killed_by_a_signal_fails_saying_so() {
    let s = Sandbox::new();
    let id = start(&s, &fake_trainer(&s, "--steps 1000 --sleep 0.1"));
    let j = wait_for(&s, id, Duration::from_secs(30), "2 steps", |j| {
        steps_seen(j) >= 2
    });
    // Only the trainer (as the kernel's OOM killer would), not its supervisor.
    kill(j["pid"].as_i64().unwrap(), 9);
    let j = wait_for(&s, id, Duration::from_secs(10), "the end", |j| {
        j["status"] != "running"
    });
    assert_eq!(j["status"], "failed", "{j:#}");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .starts_with("the trainer was killed by signal 9"),
        "{j:#}"
    );
    assert!(j["exit_code"].is_null());
}

fn kill(pid: i64, sig: i32) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}");
}
