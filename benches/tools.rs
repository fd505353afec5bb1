//! `cargo bench --bench tools`: the share of tool calls that parse and validate against
//! the tools' JSON schemas on the default model, with llama.cpp grammar sampling and
//! without it, on the same prompts and seeds in one run (seed 003 asks for > 99%).
//!
//! Modes: `required` (the answer must be a call: a grammar from the start when on) and
//! `auto` (the model decides; when on, a lazy grammar takes over at `<tool_call>`).
//! A call "attempt" is any answer the parser finds a call or a broken call block in
//! (`<tool_call></tool_call>` named in prose is neither).

mod common;

use arbor::domain::ChatMessage;
use arbor::domain::ToolChoice;
use arbor::domain::{Role, Sampling};
use arbor::engine::llama::LlamaBackendImpl;
use arbor::engine::{Backend, EngineEvent, GenRequest};
use arbor::tools;
use arbor::tools::ToolSet;
use std::time::Instant;

const PROMPTS: &[&str] = &[
    "What is the weather in Paris?",
    "Is it cold in Oslo today? Use fahrenheit.",
    "Weather for Tokyo please",
    "Do I need an umbrella in London?",
    "How warm is it in Cairo right now, in celsius?",
    "What's the temperature in New York?",
    "How many players are in the players table?",
    "List the five oldest players.",
    "Which team scored the most goals at home in 2025?",
    "Count the games played in March.",
    "Show every player of Arsenal with their position.",
    "What is the average age of players per team?",
];

#[derive(Default)]
struct Tally {
    answers: usize,
    attempts: usize,
    valid: usize,
    seconds: f64,
}

fn main() {
    let seeds: u32 = std::env::var("ARBOR_BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let common::Setup { opts, events, sink } = common::setup();
    let (model, threads) = (opts.model.clone(), opts.threads);
    let mut engine = LlamaBackendImpl::load(&opts, &sink).unwrap();
    let preset = arbor::presets::find(&arbor::config::Paths::discover(), "tool-caller").unwrap();
    let tool_defs = preset.tools.clone().unwrap();
    let set = ToolSet::new(&tool_defs).unwrap();
    // ARBOR_BENCH_SHOW=1 prints every answer that tried a call and failed.
    let show = std::env::var_os("ARBOR_BENCH_SHOW").is_some();
    println!(
        "model {}  threads {threads}  {} prompts × {seeds} seeds, temperature 0.8, max 256 tokens",
        model.display(),
        PROMPTS.len()
    );

    let modes = [
        (ToolChoice::Required, true),
        (ToolChoice::Required, false),
        (ToolChoice::Auto, true),
        (ToolChoice::Auto, false),
    ];
    let mut tallies: Vec<Tally> = modes.iter().map(|_| Tally::default()).collect();
    for seed in 1..=seeds {
        for p in PROMPTS {
            for (i, (choice, constrain)) in modes.iter().enumerate() {
                let req = GenRequest {
                    tools: Some(tool_defs.clone()),
                    tool_choice: *choice,
                    constrain_tools: *constrain,
                    ..GenRequest::new(
                        1,
                        vec![
                            ChatMessage::new(Role::System, preset.system.clone()),
                            ChatMessage::new(Role::User, *p),
                        ],
                        Sampling {
                            temperature: 0.8,
                            seed,
                            max_tokens: 256,
                            ..Sampling::default()
                        },
                    )
                };
                let t0 = Instant::now();
                engine.generate(&req, &sink);
                let secs = t0.elapsed().as_secs_f64();
                let text: String = events
                    .lock()
                    .unwrap()
                    .drain(..)
                    .filter_map(|e| match e {
                        EngineEvent::Token { text, .. } => Some(text),
                        EngineEvent::Error { message, .. } => panic!("{message}"),
                        _ => None,
                    })
                    .collect();
                let parsed = tools::parse(&text, Some(&tool_defs));
                let t = &mut tallies[i];
                t.answers += 1;
                t.seconds += secs;
                let broken = !parsed.errors.is_empty();
                if !parsed.calls.is_empty() || broken {
                    t.attempts += 1;
                    if parsed.errors.is_empty()
                        && !parsed.calls.is_empty()
                        && parsed
                            .calls
                            .iter()
                            .all(|c| set.check_call(&c.name, &c.arguments).is_ok())
                    {
                        t.valid += 1;
                    } else if show {
                        println!("--- not valid ({choice:?}, grammar {constrain}, seed {seed}): {p}\n{text}\n{:?}", parsed.errors);
                    }
                }
            }
        }
    }
    println!(
        "{:<10} {:<8} {:>8} {:>9} {:>7} {:>17} {:>17} {:>8}",
        "choice",
        "grammar",
        "answers",
        "attempts",
        "valid",
        "valid/attempts",
        "valid/answers",
        "s/answer"
    );
    for ((choice, constrain), t) in modes.iter().zip(&tallies) {
        let pct = |n: usize, d: usize| {
            if d == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", 100.0 * n as f64 / d as f64)
            }
        };
        println!(
            "{:<10} {:<8} {:>8} {:>9} {:>7} {:>17} {:>17} {:>8.2}",
            format!("{choice:?}").to_lowercase(),
            if *constrain { "on" } else { "off" },
            t.answers,
            t.attempts,
            t.valid,
            pct(t.valid, t.attempts),
            pct(t.valid, t.answers),
            t.seconds / t.answers as f64
        );
    }
}
