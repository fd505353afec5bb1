//! The OpenAI-compatible backend against a real OpenAI-compatible server on loopback:
//! llama.cpp's own `llama-server` (built by scripts/build-llama-tools.sh) serving the
//! default model.

mod common;
use arbor::domain::ChatMessage;
use arbor::domain::{Role, Sampling};
use arbor::engine::http::{HttpBackend, HttpOptions};
use arbor::engine::{Backend, Cancel, EngineEvent, GenRequest, Sink};
use common::*;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Self {
        let bin = repo().join("target/llama-tools/bin/llama-server");
        assert!(
            bin.exists(),
            "{} is missing: scripts/test.sh builds it (scripts/build-llama-tools.sh)",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["-m", default_model().to_str().unwrap()])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-t", "1", "-c", "2048", "--jinja", "-np", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        loop {
            let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && HttpBackend::connect(&HttpOptions {
                    url: url.clone(),
                    model: None,
                    api_key: None,
                })
                .is_ok();
            if ok {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "llama-server did not start"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        Self { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ask_streams_stores_and_continues_through_the_server() {
    let server = Server::start();
    let s = Sandbox::new();
    let ask = |args: &[&str]| -> serde_json::Value {
        let mut a = vec![
            "--server",
            server.url.as_str(),
            "ask",
            "--json",
            "--max-tokens",
            "16",
        ];
        a.extend_from_slice(args);
        s.json(&a)
    };
    let v = ask(&["--temperature", "0", "Name three colours."]);
    let ans = &v["answers"][0];
    assert!(!ans["content"].as_str().unwrap().trim().is_empty(), "{v}");
    let facts = &ans["facts"];
    assert!(facts["generated_tokens"].as_u64().unwrap() > 0, "{v}");
    assert!(
        facts["prompt_tokens"].as_u64().unwrap() > 5,
        "usage reported by the server: {v}"
    );
    assert!(facts["ttft_ms"].as_f64().unwrap() > 0.0);
    let conv = v["conversation_id"].as_i64().unwrap().to_string();

    // Continue the conversation; the stored path is what the server saw.
    let v2 = ask(&["--conversation", &conv, "Now three animals."]);
    let shown = s.json(&["sessions", "show", &conv, "--json"]);
    let nodes = shown["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes[3]["node"]["content"], v2["answers"][0]["content"]);
    assert_eq!(nodes[3]["node"]["status"], "complete");

    // k candidates: one request each, different seeds.
    let v3 = ask(&["--k", "2", "--temperature", "1.0", "Say something."]);
    assert_eq!(v3["answers"].as_array().unwrap().len(), 2, "{v3}");

    // The server renders its own template: --show-prompt says why it cannot.
    let out = s.run(&["--server", &server.url, "ask", "--show-prompt", "hi"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("applies its own chat template"));
}

#[test]
fn cancel_stops_the_stream_and_keeps_the_text() {
    let server = Server::start();
    let mut backend = HttpBackend::connect(&HttpOptions {
        url: server.url.clone(),
        model: None,
        api_key: None,
    })
    .unwrap();
    let cancel = Cancel::default();
    let events: Arc<Mutex<Vec<EngineEvent>>> = Arc::default();
    let (ev, flag) = (events.clone(), cancel.clone());
    let sink: Sink = Arc::new(move |e| {
        let mut v = ev.lock().unwrap();
        v.push(e);
        if v.iter()
            .filter(|e| matches!(e, EngineEvent::Token { .. }))
            .count()
            >= 4
        {
            flag.cancel();
        }
    });
    let req = GenRequest::new(
        7,
        vec![ChatMessage::new(
            Role::User,
            "Write a long story about a forest.",
        )],
        Sampling {
            max_tokens: 300,
            ..Sampling::default()
        },
    );
    let req = GenRequest { cancel, ..req };
    backend.generate(&req, &sink);
    let events = events.lock().unwrap();
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Token { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let done = events.iter().find_map(|e| match e {
        EngineEvent::Done { facts, .. } => Some(facts.clone()),
        _ => None,
    });
    let facts = done.expect("a Done event");
    assert_eq!(facts.stop_reason, "cancelled");
    assert!(!text.is_empty());
    assert!(facts.generated_tokens < 300);
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let s = Sandbox::new();
    let out = s.run(&["--server", "http://127.0.0.1:9", "ask", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the server at http://127.0.0.1:9/v1"),
        "{err}"
    );
}

#[test]
fn a_judge_through_the_server_is_held_to_its_json() {
    let server = Server::start();
    let s = Sandbox::new();
    import_sessions(&s);
    let v = s.json(&["--server", &server.url, "judge", "--limit", "3", "--json"]);
    assert_eq!(v["rater"], "judge:server", "{v:#}");
    assert_eq!(v["scored"], 3, "{v:#}");
    assert_eq!(v["failed"], serde_json::json!([]), "{v:#}");
    let n = count(
        &s.db(),
        "SELECT count(*) FROM ratings WHERE rater = 'judge:server' AND stars BETWEEN 1 AND 5",
    );
    assert_eq!(n, 3);
}
