//! `cargo bench --bench engine`: the embedded engine's figures, side by side in one run
//! (run on an idle machine; docs/performance.md has the numbers measured here):
//! - prompt and generation tokens/s vs llama.cpp's own `llama-bench` (pp128 / tg64), when
//!   scripts/build-llama-tools.sh has built it;
//! - TTFT of turn N of a long conversation with prefix reuse, vs decoding its new tokens
//!   alone, vs no reuse (a fresh context);
//! - wall time of k = 4 candidates vs one.

mod common;

use arbor::domain::ChatMessage;
use arbor::domain::{Role, Sampling};
use arbor::engine::llama::LlamaBackendImpl;
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

    // TTFT of turn N of a long conversation.
    let mut msgs = Vec::new();
    for turn in 0..10 {
        msgs.push(ChatMessage::new(
            Role::User,
            format!("Question {turn}: what is {turn} plus {turn}? Explain briefly."),
        ));
        engine.generate(&req(msgs.clone(), 24, 1), &sink);
        let _ = facts_of(&events);
        msgs.push(ChatMessage::new(
            Role::Assistant,
            format!("{turn} plus {turn} is {}.", 2 * turn),
        ));
    }
    msgs.push(ChatMessage::new(
        Role::User,
        "Last question: what is 11 plus 11? Explain briefly.".to_string(),
    ));
    engine.generate(&req(msgs[..msgs.len() - 2].to_vec(), 1, 1), &sink); // cache = all but the last turn
    let _ = facts_of(&events);
    engine.generate(&req(msgs.clone(), 1, 1), &sink);
    let reuse = facts_of(&events)[0].clone();
    let new_tokens = reuse.prompt_tokens - reuse.reused_tokens;
    let mut fresh = load(());
    fresh.generate(&req(msgs.clone(), 1, 1), &sink);
    let full = facts_of(&events)[0].clone();
    // The new tokens alone: a fresh context with a prompt of about that many tokens.
    let words = "alpha beta gamma delta epsilon zeta eta theta iota kappa ".repeat(8);
    let mut alone_ms = f64::NAN;
    for n in (4..80).step_by(2) {
        let text: String = words.split(' ').take(n).collect::<Vec<_>>().join(" ");
        let mut e = load(());
        e.generate(&req(vec![ChatMessage::new(Role::User, text)], 1, 1), &sink);
        let f = facts_of(&events)[0].clone();
        if f.prompt_tokens >= new_tokens {
            alone_ms = f.ttft_ms;
            break;
        }
    }
    println!(
        "turn 11 TTFT  with reuse {:>6.1} ms ({} of {} tokens reused)   new tokens alone {:>6.1} ms   no reuse {:>6.1} ms   reuse/alone {:.2}× (target ≤ 1.15×)",
        reuse.ttft_ms, reuse.reused_tokens, reuse.prompt_tokens, alone_ms, full.ttft_ms, reuse.ttft_ms / alone_ms
    );

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
        "k candidates  k=1 {one:>5.2} s   k=4 {four:>5.2} s   ratio {:.2}× (target ≤ 1.8×)",
        four / one
    );
}
