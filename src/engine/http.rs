//! The OpenAI-compatible backend: the same engine interface over HTTP with SSE streaming
//! (llama-server, Ollama, vLLM, or any `/v1/chat/completions` server). The server
//! applies its own chat template, so `--show-prompt` needs the embedded engine.

use super::{Backend, EngineError, EngineEvent, GenRequest, ModelInfo, Sink};
use crate::domain::GenerationFacts;
use crate::domain::ToolChoice;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};

use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// Base URL, e.g. `http://127.0.0.1:8080` (with or without `/v1`).
    pub url: String,
    /// Model name to request; `None`: the first the server lists.
    pub model: Option<String>,
    /// Bearer token, read from the environment variable the user named.
    pub api_key: Option<String>,
}

pub struct HttpBackend {
    agent: ureq::Agent,
    base: String,
    model: String,
    api_key: Option<String>,
}

fn v1(url: &str) -> String {
    let u = url.trim_end_matches('/');
    if u.ends_with("/v1") {
        u.to_string()
    } else {
        format!("{u}/v1")
    }
}

impl HttpBackend {
    /// Connects: lists the server's models, checks the requested one (or takes the first).
    pub fn connect(opts: &HttpOptions) -> Result<Self, EngineError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        let base = v1(&opts.url);
        let mut req = agent.get(format!("{base}/models"));
        if let Some(k) = &opts.api_key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        let mut resp = req
            .call()
            .map_err(|e| format!("cannot reach the server at {base}: {e}"))?;
        let status = resp.status();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{base}/models answered {status}: {}", body.trim()).into());
        }
        let listed: Vec<String> = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["data"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        let model = match &opts.model {
            Some(m) => m.clone(),
            None => listed.first().cloned().ok_or_else(|| {
                format!("{base}/models lists no model; name one with --server-model")
            })?,
        };
        Ok(Self {
            agent,
            base,
            model,
            api_key: opts.api_key.clone(),
        })
    }

    fn stream_one(
        &self,
        req: &GenRequest,
        seq: u32,
        sink: &Sink,
    ) -> Result<GenerationFacts, EngineError> {
        let s = &req.sampling;
        let mut body = json!({
            "model": self.model,
            "messages": req.messages
                .iter()
                .map(|m| super::template::message_json(m, true))
                .collect::<Vec<_>>(),
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "seed": s.seed.wrapping_add(seq),
            // Extensions llama-server and vLLM read; others ignore them.
            "top_k": s.top_k,
            "min_p": s.min_p,
            "repeat_penalty": s.repeat_penalty,
        });
        if !s.stop.is_empty() {
            body["stop"] = json!(s.stop);
        }
        if let Some(t) = req
            .tools
            .as_ref()
            .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
        {
            body["tools"] = t.clone();
            body["tool_choice"] = match req.tool_choice {
                ToolChoice::Required => "required",
                ToolChoice::None => "none",
                _ => "auto",
            }
            .into();
        }
        if let Some(schema) = &req.json_schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": "answer", "strict": true, "schema": schema},
            });
        }
        let url = format!("{}/chat/completions", self.base);
        let mut r = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(k) = &self.api_key {
            r = r.header("Authorization", format!("Bearer {k}"));
        }
        let start = Instant::now();
        let resp = r
            .send(body.to_string())
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.into_body().read_to_string().unwrap_or_default();
            return Err(format!("{url} answered {status}: {}", text.trim()).into());
        }
        let reader = BufReader::new(resp.into_body().into_reader());
        let mut facts = GenerationFacts {
            model: self.model.clone(),
            sampling: Some(s.clone()),
            stop_reason: "eos".into(),
            ..Default::default()
        };
        let mut first: Option<Instant> = None;
        let mut pieces = 0u32;
        // Streamed tool calls, by index: (name, argument text).
        let mut calls: Vec<(String, String)> = Vec::new();
        for line in reader.lines() {
            if req.cancel.is_cancelled() {
                facts.stop_reason = "cancelled".into();
                break;
            }
            let line = line.map_err(|e| format!("reading the stream from {url}: {e}"))?;
            let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                continue;
            };
            if data == "[DONE]" {
                break;
            }
            let v: Value = serde_json::from_str(data)
                .map_err(|e| format!("{url} sent an event that is not JSON ({e}): {data}"))?;
            if let Some(err) = v.get("error") {
                return Err(format!("{url}: {err}").into());
            }
            if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                facts.prompt_tokens = u["prompt_tokens"].as_u64().unwrap_or(0) as u32;
                facts.generated_tokens = u["completion_tokens"].as_u64().unwrap_or(0) as u32;
            }
            let Some(choice) = v["choices"].get(0) else {
                continue;
            };
            if let Some(text) = choice["delta"]["content"]
                .as_str()
                .filter(|t| !t.is_empty())
            {
                first.get_or_insert_with(Instant::now);
                pieces += 1;
                sink(EngineEvent::Token {
                    id: req.id,
                    seq,
                    text: text.to_string(),
                });
            }
            for d in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                first.get_or_insert_with(Instant::now);
                let i = d["index"].as_u64().unwrap_or(calls.len() as u64) as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, Default::default());
                }
                if let Some(n) = d["function"]["name"].as_str() {
                    calls[i].0.push_str(n);
                }
                if let Some(a) = d["function"]["arguments"].as_str() {
                    calls[i].1.push_str(a);
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                facts.stop_reason = match reason {
                    "stop" => "eos",
                    "length" => "length",
                    other => other,
                }
                .to_string();
            }
        }
        // The server's structured calls become `<tool_call>` blocks in the text, read back
        // into structure like any model's calls (so one parser serves every backend).
        for (name, args) in calls.iter().filter(|c| !c.0.is_empty()) {
            let args = if args.trim().is_empty() {
                "{}"
            } else {
                args.as_str()
            };
            sink(EngineEvent::Token {
                id: req.id,
                seq,
                text: format!(
                    "\n<tool_call>\n{{\"name\": {}, \"arguments\": {args}}}\n</tool_call>",
                    Value::from(name.as_str())
                ),
            });
        }
        let end = Instant::now();
        if facts.generated_tokens == 0 {
            facts.generated_tokens = pieces;
        }
        if let Some(f) = first {
            facts.ttft_ms = (f - start).as_secs_f64() * 1000.0;
            let gen = (end - f).as_secs_f64();
            if gen > 0.0 && facts.generated_tokens > 1 {
                facts.tokens_per_s = (facts.generated_tokens - 1) as f64 / gen;
            }
        }
        Ok(facts)
    }
}

impl Backend for HttpBackend {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            name: self.model.clone(),
            path: self.base.clone(),
            architecture: "remote".into(),
            context: 0,
            template: "the server's".into(),
            threads: 0,
        }
    }

    fn render(&mut self, _req: &GenRequest) -> Result<(String, u32), EngineError> {
        Err("an OpenAI-compatible server applies its own chat template; --show-prompt needs the embedded engine (--model)".into())
    }

    fn generate(&mut self, req: &GenRequest, sink: &Sink) {
        // k candidates: one request each, seeds seed, seed+1, … (servers differ on `n`).
        for seq in 0..req.k.max(1) {
            match self.stream_one(req, seq, sink) {
                Ok(facts) => sink(EngineEvent::Done {
                    id: req.id,
                    seq,
                    facts,
                }),
                Err(e) => {
                    sink(EngineEvent::error(req.id, &e));
                    return;
                }
            }
        }
    }
}
