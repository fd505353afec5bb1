//! `cargo bench --bench engine`: the embedded engine's figures, side by side in one run
//! (run on an idle machine; docs/performance.md has the numbers measured here):
//! - prompt and generation tokens/s vs llama.cpp's own `llama-bench` (pp128 / tg64), when
//!   scripts/build-llama-tools.sh has built it;
//! - a 12-turn conversation turn by turn: Arbor's TTFT vs llama-server (`cache_prompt`) vs
//!   `llama-bench -p NEW -d CACHED`, per turn;
//! - continuing a ~2,000-token conversation with its KV state from disk vs from memory vs
//!   evaluating everything again; save time and bytes per 1,000 tokens;
//! - wall time of k = 4 candidates vs one, and vs `llama-batched-bench`.

mod common;

use arbor::domain::ChatMessage;
use arbor::domain::{Role, Sampling};
use arbor::engine::llama::{LlamaBackendImpl, LlamaOptions};
use arbor::engine::{Backend, EngineEvent, GenRequest};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

fn facts_of(events: &Mutex<Vec<EngineEvent>>) -> Vec<arbor::domain::GenerationFacts> {
    let mut v = events.lock().unwrap();
    let out = v
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Done { facts, .. } => Some(facts.clone()),
            EngineEvent::Error { message, .. } => panic!("{message}"),
            _ => None,
        })
        .collect();
    v.clear();
    out
}

fn req(messages: Vec<ChatMessage>, max_tokens: u32, k: u32) -> GenRequest {
    GenRequest {
        k,
        ..GenRequest::new(1, messages, Sampling::greedy(max_tokens))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let common::Setup { opts, events, sink } = common::setup();
    let (model, threads) = (opts.model.clone(), opts.threads);
    let load = |_: ()| LlamaBackendImpl::load(&opts, &sink).unwrap();
    let mut engine = load(());
    println!("model {}  threads {threads}", model.display());

    // Warm-up.
    engine.generate(
        &req(vec![ChatMessage::new(Role::User, "Hello")], 16, 1),
        &sink,
    );
    facts_of(&events);

    // Prompt processing: ~128 new tokens on a fresh context, best of 3 (fresh engine each).
    let long =
        "The quick brown fox jumps over the lazy dog while the river runs to the sea. ".repeat(7);
    let mut pp = Vec::new();
    for _ in 0..3 {
        let mut e = load(());
        e.generate(
            &req(vec![ChatMessage::new(Role::User, long.clone())], 1, 1),
            &sink,
        );
        let f = &facts_of(&events)[0];
        pp.push(f.prompt_tokens as f64 / (f.ttft_ms / 1000.0));
    }
    // Generation: 64 tokens.
    let mut tg = Vec::new();
    for i in 0..3 {
        let mut r = req(
            vec![ChatMessage::new(
                Role::User,
                format!("Tell a story number {i}."),
            )],
            64,
            1,
        );
        r.sampling.stop.clear();
        engine.generate(&r, &sink);
        tg.push(facts_of(&events)[0].tokens_per_s);
    }
    let (pp, tg) = (median(pp), median(tg));
    println!("arbor        prompt {pp:>7.1} tok/s   generation {tg:>6.1} tok/s");
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/llama-tools/bin/llama-bench");
    if bench.exists() {
        let out = std::process::Command::new(&bench)
            .args([
                "-m",
                model.to_str().unwrap(),
                "-p",
                "128",
                "-n",
                "64",
                "-t",
                &threads.to_string(),
                "-o",
                "json",
                "-r",
                "3",
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let ts = |pred: &dyn Fn(&serde_json::Value) -> bool| {
            v.as_array()
                .and_then(|a| a.iter().find(|r| pred(r)))
                .and_then(|r| r["avg_ts"].as_f64())
                .unwrap_or(f64::NAN)
        };
        let bpp = ts(&|r| r["n_prompt"] == 128);
        let btg = ts(&|r| r["n_gen"] == 64);
        println!("llama-bench  prompt {bpp:>7.1} tok/s   generation {btg:>6.1} tok/s");
        println!(
            "ratio        prompt {:>7.2}×        generation {:>6.2}×   (target ≥ 0.95×)",
            pp / bpp,
            tg / btg
        );
    } else {
        println!("llama-bench  not built (scripts/build-llama-tools.sh)");
    }

    turn_by_turn(&opts, &sink, &events);
    continue_from_disk(&opts, &sink, &events);

    // k = 4 vs 1: wall time for 48 tokens each.
    let story = vec![ChatMessage::new(
        Role::User,
        "Write a short poem about trees.".to_string(),
    )];
    let time = |engine: &mut LlamaBackendImpl, k: u32| {
        let mut r = req(story.clone(), 48, k);
        r.sampling.temperature = 0.8;
        let t = Instant::now();
        engine.generate(&r, &sink);
        let _ = facts_of(&events);
        t.elapsed().as_secs_f64()
    };
    let one = median((0..3).map(|_| time(&mut engine, 1)).collect());
    let four = median((0..3).map(|_| time(&mut engine, 4)).collect());
    println!(
        "k candidates  k=1 {one:>5.2} s   k=4 {four:>5.2} s   ratio {:.2}×",
        four / one
    );
    // The same work in llama.cpp's own llama-batched-bench: one shared prompt of that many
    // tokens, 4 sequences, 48 tokens each.
    let mut r = req(story.clone(), 48, 4);
    r.sampling.temperature = 0.8;
    let (_, prompt_tokens) = engine.render(&r).unwrap();
    engine.generate(&r, &sink);
    let generated: Vec<u32> = facts_of(&events)
        .iter()
        .map(|f| f.generated_tokens)
        .collect();
    let bench = tool("llama-batched-bench");
    if bench.exists() {
        let out = std::process::Command::new(&bench)
            .args([
                "-m",
                model.to_str().unwrap(),
                "-c",
                "4096",
                "-t",
                &threads.to_string(),
            ])
            .args([
                "-npp",
                &prompt_tokens.to_string(),
                "-ntg",
                "48",
                "-npl",
                "4",
                "-pps",
            ])
            .args(["--output-format", "jsonl"])
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v["t"].as_f64())
            .unwrap_or(f64::NAN);
        println!(
            "k=4 vs llama-batched-bench (pp {prompt_tokens} shared, 4 × tg 48)  arbor {four:>5.2} s   llama-batched-bench {t:>5.2} s   ratio {:.2}× (target ≤ 1.05×; arbor's answers: {generated:?} tokens)",
            four / t
        );
    } else {
        println!("llama-batched-bench not built (scripts/build-llama-tools.sh)");
    }
}

/// One turn of one round: Arbor's TTFT, llama-server's, llama-bench's (ms); Arbor's prompt
/// and new tokens; the server's new tokens.
type Turn = (f64, f64, f64, u32, u32, u64);

/// `-m MODEL -t THREADS`: llama.cpp's tools on the same model and threads as the engine.
fn model_args(opts: &LlamaOptions) -> [String; 4] {
    [
        "-m".into(),
        opts.model.display().to_string(),
        "-t".into(),
        opts.threads.to_string(),
    ]
}

fn tool(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/llama-tools/bin")
        .join(name)
}

/// A 12-turn conversation answered turn by turn by Arbor (one engine, the cache reused as in
/// the studio), by llama-server with `cache_prompt`, and the physical limit: `llama-bench -p
/// NEW -d CACHED`, the new tokens of each turn at the depth already cached. The history uses
/// fixed answers, so every contender sees the same prompts.
fn turn_by_turn(opts: &LlamaOptions, sink: &arbor::engine::Sink, events: &Mutex<Vec<EngineEvent>>) {
    let turns: Vec<(String, String)> = (0..12)
        .map(|t| {
            (
                format!("Question {t}: what is {t} times {t}, and what is special about that number? Answer briefly."),
                format!("{t} times {t} is {}. It is a perfect square, the square of {t}; squares grow quickly, and the next one is {}.", t * t, (t + 1) * (t + 1)),
            )
        })
        .collect();
    let messages = |t: usize| {
        let mut m = Vec::new();
        for (q, a) in &turns[..t] {
            m.push(ChatMessage::new(Role::User, q.clone()));
            m.push(ChatMessage::new(Role::Assistant, a.clone()));
        }
        m.push(ChatMessage::new(Role::User, turns[t].0.clone()));
        m
    };
    let server = tool("llama-server");
    let bench = tool("llama-bench");
    if !server.exists() || !bench.exists() {
        println!("llama-server / llama-bench not built (scripts/build-llama-tools.sh)");
        return;
    }
    // Three rounds; within a round the three contenders take each turn one after another,
    // so a slower minute of this shared machine slows all three alike. Medians per turn.
    const ROUNDS: usize = 3;
    let n = turns.len();
    let mut rows: Vec<Vec<Turn>> = vec![Vec::new(); n];
    for _ in 0..ROUNDS {
        let mut engine = LlamaBackendImpl::load(opts, sink).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(&server)
            .args(model_args(opts))
            .args([
                "-c",
                "4096",
                "-np",
                "1",
                "--port",
                &port.to_string(),
                "--no-webui",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(&format!("{url}/health")).call().is_err() {
            assert!(
                started.elapsed().as_secs() < 60,
                "llama-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        for (t, row) in rows.iter_mut().enumerate() {
            let r = GenRequest {
                persist: true,
                ..req(messages(t), 8, 1)
            };
            engine.generate(&r, sink);
            let f = facts_of(events)[0].clone();
            // The server's TTFT as a client sees it (request sent → first token streamed),
            // like Arbor's (request started → first token: render, tokenize, decode).
            let body = serde_json::json!({
                "messages": messages(t).iter().map(|m| serde_json::json!({"role": m.role.as_str(), "content": m.content})).collect::<Vec<_>>(),
                "max_tokens": 8,
                "temperature": 0,
                "cache_prompt": true,
                "stream": true,
            });
            let sent = Instant::now();
            let resp = ureq::post(&format!("{url}/v1/chat/completions"))
                .header("Content-Type", "application/json")
                .send(body.to_string())
                .unwrap();
            let mut first = None;
            let (mut total, mut new) = (0u64, 0u64);
            use std::io::BufRead;
            for line in std::io::BufReader::new(resp.into_body().into_reader()).lines() {
                let Ok(line) = line else { break };
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                    continue;
                };
                if first.is_none() && v["choices"][0]["delta"]["content"].is_string() {
                    first = Some(sent.elapsed().as_secs_f64() * 1000.0);
                }
                if let Some(n) = v["timings"]["prompt_n"].as_u64() {
                    new = n;
                    total = n + v["timings"]["cache_n"].as_u64().unwrap_or(0);
                }
            }
            let client = first.unwrap_or(f64::NAN);
            let out = std::process::Command::new(&bench)
                .args(model_args(opts))
                .args([
                    "-p",
                    &new.to_string(),
                    "-n",
                    "0",
                    "-d",
                    &(total - new).to_string(),
                ])
                .args(["-r", "3", "-o", "json"])
                .output()
                .unwrap();
            let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let bms = b[0]["avg_ns"].as_f64().map_or(f64::NAN, |n| n / 1e6);
            row.push((
                f.ttft_ms,
                client,
                bms,
                f.prompt_tokens,
                f.prompt_tokens - f.reused_tokens,
                new,
            ));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "turn by turn (SmolLM2, {} threads, 8 greedy tokens per turn, median of {ROUNDS} interleaved rounds; TTFT in ms):",
        opts.threads
    );
    println!("turn  prompt  arbor new  arbor TTFT  server new  llama-server TTFT  llama-bench pp NEW @ d CACHED  arbor/server  arbor/bench");
    let (mut worst_server, mut worst_bench) = (0f64, 0f64);
    for (t, row) in rows.iter().enumerate() {
        let med = |k: usize| median(row.iter().map(|r| [r.0, r.1, r.2][k]).collect());
        let (a, sv, b) = (med(0), med(1), med(2));
        let (rs, rb) = (a / sv, a / b);
        if t > 0 {
            worst_server = worst_server.max(rs);
            worst_bench = worst_bench.max(rb);
        }
        println!(
            "{:>4}  {:>6}  {:>9}  {:>10.1}  {:>10}  {:>17.1}  {:>30.1}  {:>11.2}×  {:>10.2}×",
            t + 1,
            row[0].3,
            row[0].4,
            a,
            row[0].5,
            sv,
            b,
            rs,
            rb
        );
    }
    println!(
        "turns 2–12, worst: arbor/llama-server {worst_server:.2}× (target ≤ 1.0×)   arbor/llama-bench {worst_bench:.2}× (target ≤ 1.1×)"
    );
}

/// Continuing a conversation of ~2,000 tokens in a new process: the KV state read from
/// disk, against the same engine continuing from memory, and against evaluating everything.
fn continue_from_disk(
    opts: &LlamaOptions,
    sink: &arbor::engine::Sink,
    events: &Mutex<Vec<EngineEvent>>,
) {
    let paragraph = "The river carried the old boat past the mill, where the miller counted sacks of grain \
                     and argued with the merchants about the price of flour before the autumn fair. ";
    let mut history = Vec::new();
    for t in 0..8 {
        history.push(ChatMessage::new(
            Role::User,
            format!("Tell part {t} of the story."),
        ));
        history.push(ChatMessage::new(Role::Assistant, paragraph.repeat(6)));
    }
    history.push(ChatMessage::new(
        Role::User,
        "What happened at the fair?".to_string(),
    ));
    let (mut disk, mut memory, mut full, mut saves) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut prompt, mut new_tokens) = (0, 0);
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let with_cache = LlamaOptions {
            kv_cache: Some((dir.path().to_path_buf(), 4 << 30)),
            ..opts.clone()
        };
        let mut first = LlamaBackendImpl::load(&with_cache, sink).unwrap();
        let r = GenRequest {
            persist: true,
            ..req(history.clone(), 16, 1)
        };
        first.generate(&r, sink);
        let answer = text_of(events);
        saves.push(first.last_save.expect("a state was saved"));
        let mut next = history.clone();
        next.push(ChatMessage::new(Role::Assistant, answer));
        next.push(ChatMessage::new(Role::User, "And after that?".to_string()));
        let r2 = GenRequest {
            persist: true,
            ..req(next.clone(), 1, 1)
        };
        // The state on disk now covers what the first engine holds in memory: keep a copy
        // of the cache as it is, for the new engine below (the first engine's next turn
        // writes a longer state, which would give the new one less to do).
        let snapshot = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), snapshot.path());
        // The first engine continuing from memory.
        first.generate(&r2, sink);
        let mem = facts_of(events)[0].clone();
        assert!(!mem.reused_from_disk, "{mem:?}");
        memory.push(mem.ttft_ms);
        drop(first);
        // A new engine (as a new process) on the copy: the same turn, the state from disk.
        let from_copy = LlamaOptions {
            kv_cache: Some((snapshot.path().to_path_buf(), 4 << 30)),
            ..opts.clone()
        };
        let mut second = LlamaBackendImpl::load(&from_copy, sink).unwrap();
        second.generate(&r2, sink);
        let f = facts_of(events)[0].clone();
        assert!(f.reused_from_disk, "{f:?}");
        assert_eq!(
            f.reused_tokens, mem.reused_tokens,
            "the same work from memory and disk"
        );
        disk.push(f.ttft_ms);
        prompt = f.prompt_tokens;
        new_tokens = f.prompt_tokens - f.reused_tokens;
        drop(second);
        // Everything evaluated again (a conversation turn without a disk cache).
        let mut fresh = LlamaBackendImpl::load(opts, sink).unwrap();
        fresh.generate(&r2, sink);
        full.push(facts_of(events)[0].ttft_ms);
    }
    let (d, m, f) = (median(disk), median(memory), median(full));
    let (save_ms, bytes, tokens) = saves[saves.len() / 2];
    println!(
        "continue a {prompt}-token conversation ({new_tokens} new tokens)  from disk {d:>6.1} ms   in memory {m:>6.1} ms   everything again {f:>7.1} ms   disk/memory {:.2}× (target ≤ 1.3×)   {:.1}× faster than everything again (target ≥ 5×)",
        d / m,
        f / d
    );
    println!(
        "saving a state  {:.1} ms and {:.1} MB per 1,000 tokens ({tokens} tokens: {save_ms:.1} ms, {:.1} MB)",
        save_ms * 1000.0 / tokens as f64,
        bytes as f64 / 1e6 * 1000.0 / tokens as f64,
        bytes as f64 / 1e6
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn text_of(events: &Mutex<Vec<EngineEvent>>) -> String {
    let mut v = events.lock().unwrap();
    let text = v
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Token { seq: 0, text, .. } => Some(text.clone()),
            EngineEvent::Error { message, .. } => panic!("{message}"),
            _ => None,
        })
        .collect();
    v.clear();
    text
}
