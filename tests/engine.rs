//! The embedded llama.cpp engine on the real default model (and Gemma 3 270M, whose
//! sliding-window attention is where prefix reuse goes wrong if `swa_full` is off).

mod common;

use arbor::domain::ChatMessage;
use arbor::domain::{Role, Sampling};
use arbor::engine::llama::{LlamaBackendImpl, LlamaOptions};
use arbor::engine::{Backend, Cancel, EngineEvent, GenRequest, Sink};
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
        kv_cache: None,
    }
}

/// Collects events; `cancel_after` sets the flag once that many tokens arrived.
struct Collector {
    events: Arc<Mutex<Vec<EngineEvent>>>,
    sink: Sink,
}

fn collector(cancel: Option<(Cancel, usize)>) -> Collector {
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
                flag.cancel();
            }
        }
    });
    Collector { events, sink }
}

/// A conversation turn, as the chat sends it (`persist`: small exact batches; no disk
/// cache is configured here).
fn request(messages: Vec<ChatMessage>, max_tokens: u32) -> GenRequest {
    GenRequest {
        persist: true,
        ..GenRequest::new(1, messages, Sampling::greedy(max_tokens))
    }
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
    let turn1 = vec![user("Write three sentences about the history of Rome.")];
    engine.generate(&request(turn1.clone(), 24), &c.sink);
    let (answer1, _) = text_and_facts(&c.events.lock().unwrap());
    c.events.lock().unwrap().clear();

    let mut turn2 = turn1.clone();
    turn2.push(ChatMessage::new(Role::Assistant, answer1.clone()));
    turn2.push(user("And Greece?"));
    engine.generate(&request(turn2.clone(), 24), &c.sink);
    let (reused_text, reused_facts) = text_and_facts(&c.events.lock().unwrap());
    assert!(
        reused_facts.reused_tokens > 10,
        "turn 2 should reuse turn 1's prefix: {reused_facts:?}"
    );
    assert!(reused_facts.reused_tokens < reused_facts.prompt_tokens);

    // A fresh engine evaluates turn 2 from scratch: same text, token for token.
    let c2 = collector(None);
    let mut fresh = LlamaBackendImpl::load(&options(), &c2.sink).unwrap();
    fresh.generate(&request(turn2, 24), &c2.sink);
    let (fresh_text, fresh_facts) = text_and_facts(&c2.events.lock().unwrap());
    assert_eq!(fresh_facts.reused_tokens, 0);
    assert_eq!(reused_text, fresh_text);

    // A sibling branch off turn 1 (a different second question) reuses the shared prefix too.
    c.events.lock().unwrap().clear();
    let mut branch = turn1;
    branch.push(ChatMessage::new(Role::Assistant, answer1));
    branch.push(user("Now three fruits."));
    engine.generate(&request(branch, 8), &c.sink);
    let (_, branch_facts) = text_and_facts(&c.events.lock().unwrap());
    assert!(branch_facts.reused_tokens > 10, "{branch_facts:?}");
}

/// Three turns on one engine (each reusing the last), each turn's answer compared with a
/// fresh engine evaluating the same conversation from scratch: prompts long enough to
/// need several batches, answers long enough for greedy decoding to show any difference
/// in the numbers (see `block_size` in src/engine/llama/mod.rs).
#[test]
fn reuse_over_several_turns_equals_fresh_evaluation_turn_by_turn() {
    let c = collector(None);
    let mut engine = LlamaBackendImpl::load(&options(), &c.sink).unwrap();
    let mut msgs = vec![ChatMessage::new(
        Role::System,
        "You are a patient history teacher. You answer in full sentences, with dates where you \
         know them, and you never invent facts. Keep every answer under five sentences.",
    )];
    for q in [
        "Who built the pyramids of Giza?",
        "How long did that take?",
        "What tools did they use?",
    ] {
        msgs.push(user(q));
        c.events.lock().unwrap().clear();
        engine.generate(&request(msgs.clone(), 40), &c.sink);
        let (reused_text, facts) = text_and_facts(&c.events.lock().unwrap());
        let c2 = collector(None);
        let mut fresh = LlamaBackendImpl::load(&options(), &c2.sink).unwrap();
        fresh.generate(&request(msgs.clone(), 40), &c2.sink);
        let (fresh_text, _) = text_and_facts(&c2.events.lock().unwrap());
        assert_eq!(reused_text, fresh_text, "{q}: {facts:?}");
        msgs.push(ChatMessage::new(Role::Assistant, reused_text));
    }
}

/// An eval or judge request (not a conversation turn) decodes in full batches; a turn after
/// it does not reuse that cache, so turns stay equal to a fresh evaluation.
#[test]
fn a_turn_after_an_eval_request_does_not_reuse_its_cache() {
    let c = collector(None);
    let mut engine = LlamaBackendImpl::load(&options(), &c.sink).unwrap();
    let turn = vec![user("Name three colours.")];
    let eval = GenRequest {
        persist: false,
        ..request(turn.clone(), 4)
    };
    engine.generate(&eval, &c.sink);
    c.events.lock().unwrap().clear();
    engine.generate(&request(turn.clone(), 4), &c.sink);
    let (_, after_eval) = text_and_facts(&c.events.lock().unwrap());
    assert_eq!(after_eval.reused_tokens, 0, "{after_eval:?}");
    c.events.lock().unwrap().clear();
    engine.generate(&request(turn, 4), &c.sink);
    let (_, after_turn) = text_and_facts(&c.events.lock().unwrap());
    assert!(after_turn.reused_tokens > 5, "{after_turn:?}");
}

#[test]
fn cancel_stops_after_the_current_token_and_keeps_the_text() {
    let flag = Cancel::default();
    let c = collector(Some((flag.clone(), 5)));
    let mut engine = LlamaBackendImpl::load(&options(), &c.sink).unwrap();
    engine.generate(
        &GenRequest {
            cancel: flag,
            ..request(vec![user("Write a long story about a forest.")], 400)
        },
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
    let msgs = vec![user("Repeat exactly: 🌳🌲 日本語 中文 ü é ñ 🎉")];
    engine.generate(&request(msgs, 40), &c.sink);
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
    let msgs = vec![user("Give me a name for a cat.")];
    engine.generate(&request(msgs.clone(), 12), &c.sink);
    let (greedy, _) = text_and_facts(&c.events.lock().unwrap());

    // Greedy: every candidate is the single greedy answer.
    let mut req = request(msgs.clone(), 12);
    req.k = 3;
    c.events.lock().unwrap().clear();
    engine.generate(&req, &c.sink);
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
    engine.generate(&req, &c.sink);
    let t = texts(&c.events.lock().unwrap());
    assert!(
        t[0] != t[1] || t[1] != t[2],
        "three identical samples: {t:?}"
    );
}

/// The studio's effect runner on the real engine: `Effect::Cancel` during a group of
/// requests stops every one of them, the one streaming and the ones still queued, and
/// each answer is kept as interrupted with what it had.
fn group_cancel(effect: impl FnOnce(arbor::domain::NodeId) -> arbor::tui::state::Effect, n: usize) {
    use arbor::domain::{NewNode, Status};
    use arbor::tui::state::{Effect, State};
    let dir = tempfile::tempdir().unwrap();
    let store = arbor::store::Store::open(dir.path().join("a.db")).unwrap();
    let conv = store.create_conversation("t", "", None).unwrap();
    let user = store
        .append_child(
            conv.id,
            None,
            &NewNode::user("Write a very long story about a forest."),
        )
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let sink: Sink = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let engine = arbor::app::spawn_llama(options(), sink);
    let mut config = arbor::config::Config::default();
    config.sampling.max_tokens = 300;
    let mut rt = arbor::tui::Runtime::new(store, engine, "me".into(), config);
    // Base vs tuned needs an adapter attached; without a file loaded both answer as the base.
    rt.adapter = Some(("label".into(), 1.0));
    let state = State::new(String::new(), "me".into());
    let actions = rt.perform(effect(user.id), &state);
    let nodes: Vec<arbor::domain::NodeId> = actions
        .iter()
        .find_map(|a| match a {
            arbor::tui::state::Action::CompareStarted { nodes, .. } => Some(nodes.clone()),
            _ => None,
        })
        .expect("the candidates started");
    assert_eq!(nodes.len(), n);
    let mut done = Vec::new();
    let mut tokens = 0;
    let mut cancelled = false;
    while done.len() < n {
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the engine answers");
        rt.record(&e).unwrap();
        match e {
            EngineEvent::Token { .. } => {
                tokens += 1;
                if tokens == 3 && !cancelled {
                    rt.perform(Effect::Cancel, &state);
                    cancelled = true;
                }
            }
            EngineEvent::Done { facts, .. } => done.push(facts),
            EngineEvent::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    assert!(cancelled);
    for f in &done {
        assert_eq!(f.stop_reason, "cancelled", "{done:?}");
        assert!(f.generated_tokens < 20, "{done:?}");
    }
    for id in nodes {
        assert_eq!(rt.store.node(id).unwrap().status, Status::Interrupted);
    }
}

#[test]
fn cancel_stops_every_request_of_base_vs_tuned() {
    group_cancel(
        |parent| arbor::tui::state::Effect::CompareAdapter { parent },
        2,
    );
}

#[test]
fn cancel_stops_every_candidate_of_compare() {
    group_cancel(
        |parent| arbor::tui::state::Effect::RegenerateK { parent, k: 3 },
        3,
    );
}
