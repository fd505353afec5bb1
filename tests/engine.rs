//! The embedded llama.cpp engine on the real default model (and Gemma 3 270M, whose
//! sliding-window attention is where prefix reuse goes wrong if `swa_full` is off).

mod common;

use arbor::domain::{Role, Sampling};
use arbor::engine::llama::{LlamaBackendImpl, LlamaOptions};
use arbor::engine::{Backend, ChatMessage, EngineEvent, GenRequest, Sink};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

fn options() -> LlamaOptions {
    let model = arbor::config::Paths::discover().default_model();
    assert!(model.exists(), "run scripts/setup.sh first");
    LlamaOptions {
        model,
        threads: 1,
        gpu_layers: 0,
        context: 2048,
        template: None,
        adapter: None,
    }
}

/// Collects events; `cancel_after` sets the flag once that many tokens arrived.
struct Collector {
    events: Arc<Mutex<Vec<EngineEvent>>>,
    sink: Sink,
}

fn collector(cancel: Option<(Arc<AtomicBool>, usize)>) -> Collector {
    let events: Arc<Mutex<Vec<EngineEvent>>> = Arc::default();
    let ev = events.clone();
    let sink: Sink = Arc::new(move |e| {
        let mut v = ev.lock().unwrap();
        v.push(e);
        if let Some((flag, n)) = &cancel {
            let tokens = v
                .iter()
                .filter(|e| matches!(e, EngineEvent::Token { .. }))
                .count();
            if tokens >= *n {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    Collector { events, sink }
}

fn request(messages: Vec<ChatMessage>, max_tokens: u32) -> GenRequest {
    GenRequest::new(1, messages, Sampling::greedy(max_tokens))
}

fn text_and_facts(events: &[EngineEvent]) -> (String, arbor::domain::GenerationFacts) {
    let mut text = String::new();
    let mut facts = None;
    for e in events {
        match e {
            EngineEvent::Token {
                seq: 0, text: t, ..
            } => text.push_str(t),
            EngineEvent::Done {
                seq: 0, facts: f, ..
            } => facts = Some(f.clone()),
            EngineEvent::Error { message, .. } => panic!("engine error: {message}"),
            _ => {}
        }
    }
    (text, facts.expect("a Done event"))
}

fn user(t: &str) -> ChatMessage {
    ChatMessage::new(Role::User, t)
}

#[test]
fn kv_reuse_gives_the_same_output_as_a_full_evaluation() {
    reuse_equals_full_evaluation(options());
}

#[test]
fn kv_reuse_on_gemma_sliding_window_gives_the_same_output() {
    let mut o = options();
    o.model = common::gemma_model();
    reuse_equals_full_evaluation(o);
}

fn reuse_equals_full_evaluation(options: LlamaOptions) {
    let options = || options.clone();
    let c = collector(None);
    let mut engine = LlamaBackendImpl::load(&options(), &c.sink).unwrap();
    let no_cancel = AtomicBool::new(false);
    let turn1 = vec![user("Name three colours.")];
    engine.generate(&request(turn1.clone(), 20), &no_cancel, &c.sink);
    let (answer1, _) = text_and_facts(&c.events.lock().unwrap());
    c.events.lock().unwrap().clear();

    let mut turn2 = turn1.clone();
    turn2.push(ChatMessage::new(Role::Assistant, answer1.clone()));
    turn2.push(user("Now three animals."));
    engine.generate(&request(turn2.clone(), 20), &no_cancel, &c.sink);
    let (reused_text, reused_facts) = text_and_facts(&c.events.lock().unwrap());
    assert!(
        reused_facts.reused_tokens > 10,
        "turn 2 should reuse turn 1's prefix: {reused_facts:?}"
    );
    assert!(reused_facts.reused_tokens < reused_facts.prompt_tokens);

    // A fresh engine evaluates turn 2 from scratch: same text, token for token.
    let c2 = collector(None);
    let mut fresh = LlamaBackendImpl::load(&options(), &c2.sink).unwrap();
    fresh.generate(&request(turn2, 20), &no_cancel, &c2.sink);
    let (fresh_text, fresh_facts) = text_and_facts(&c2.events.lock().unwrap());
    assert_eq!(fresh_facts.reused_tokens, 0);
    assert_eq!(reused_text, fresh_text);

    // A sibling branch off turn 1 (a different second question) reuses the shared prefix too.
    c.events.lock().unwrap().clear();
    let mut branch = turn1;
    branch.push(ChatMessage::new(Role::Assistant, answer1));
    branch.push(user("Now three fruits."));
    engine.generate(&request(branch, 8), &no_cancel, &c.sink);
    let (_, branch_facts) = text_and_facts(&c.events.lock().unwrap());
    assert!(branch_facts.reused_tokens > 10, "{branch_facts:?}");
}

#[test]
fn cancel_stops_after_the_current_token_and_keeps_the_text() {
    let flag = Arc::new(AtomicBool::new(false));
    let c = collector(Some((flag.clone(), 5)));
    let mut engine = LlamaBackendImpl::load(&options(), &c.sink).unwrap();
    engine.generate(
        &request(vec![user("Write a long story about a forest.")], 400),
        &flag,
        &c.sink,
    );
    let (text, facts) = text_and_facts(&c.events.lock().unwrap());
    assert_eq!(facts.stop_reason, "cancelled");
    assert!(
        facts.generated_tokens >= 5 && facts.generated_tokens <= 7,
        "{facts:?}"
    );
    assert!(!text.is_empty());
}

#[test]
fn streaming_never_splits_a_character() {
    let c = collector(None);
    let mut engine = LlamaBackendImpl::load(&options(), &c.sink).unwrap();
    let no_cancel = AtomicBool::new(false);
    let msgs = vec![user("Repeat exactly: 🌳🌲 日本語 中文 ü é ñ 🎉")];
    engine.generate(&request(msgs, 40), &no_cancel, &c.sink);
    let events = c.events.lock().unwrap();
    let pieces: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Token { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    let all: String = pieces.iter().map(|s| s.as_str()).collect();
    assert!(
        !all.contains('\u{FFFD}'),
        "a replacement character leaked: {all:?}"
    );
    assert!(
        !all.is_ascii(),
        "the model should echo some non-ASCII text: {all:?}"
    );
}

#[test]
fn k_candidates_share_the_prompt_and_sample_in_one_batch() {
    let c = collector(None);
    let mut engine = LlamaBackendImpl::load(&options(), &c.sink).unwrap();
    let no_cancel = AtomicBool::new(false);
    let msgs = vec![user("Give me a name for a cat.")];
    engine.generate(&request(msgs.clone(), 12), &no_cancel, &c.sink);
    let (greedy, _) = text_and_facts(&c.events.lock().unwrap());

    // Greedy: every candidate is the single greedy answer.
    let mut req = request(msgs.clone(), 12);
    req.k = 3;
    c.events.lock().unwrap().clear();
    engine.generate(&req, &no_cancel, &c.sink);
    let texts = |events: &[EngineEvent]| {
        let mut t = vec![String::new(); 3];
        let mut done = 0;
        for e in events {
            match e {
                EngineEvent::Token { seq, text, .. } => t[*seq as usize].push_str(text),
                EngineEvent::Done { .. } => done += 1,
                _ => {}
            }
        }
        assert_eq!(done, 3, "one Done per candidate");
        t
    };
    let t = texts(&c.events.lock().unwrap());
    assert!(t.iter().all(|x| *x == greedy), "{t:?} vs {greedy:?}");

    // Sampled: different seeds per candidate give different answers.
    req.sampling.temperature = 1.0;
    req.sampling.max_tokens = 24;
    c.events.lock().unwrap().clear();
    engine.generate(&req, &no_cancel, &c.sink);
    let t = texts(&c.events.lock().unwrap());
    assert!(
        t[0] != t[1] || t[1] != t[2],
        "three identical samples: {t:?}"
    );
}
