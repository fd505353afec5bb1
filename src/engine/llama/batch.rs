//! Independent requests decoded together (eval runs): prompts packed into shared
//! batches, then one token per live sequence per step.

use crate::domain::GenerationFacts;
use crate::engine::{EngineError, EngineEvent, GenRequest, Sink};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use super::*;
use std::time::Instant;

impl LlamaBackendImpl {
    /// Independent one-answer requests decoded together: request i in sequence i, the
    /// prompts' tokens packed into shared batches, then one token per live sequence per
    /// step. Requests are taken in groups whose prompts and answers fit the context
    /// together (at most [`MAX_SEQUENCES`] a group). `done[i]` is set once request i has
    /// ended with `Done` or `Error`.
    pub(super) fn run_batch(
        &mut self,
        reqs: &[GenRequest],
        sink: &Sink,
        done: &mut [bool],
    ) -> Result<(), EngineError> {
        let n_ctx = self.ctx.n_ctx() as usize;
        // Prompts first: a request that cannot be rendered or does not fit ends here.
        let mut prepared: Vec<(usize, Vec<LlamaToken>)> = Vec::new();
        for (i, req) in reqs.iter().enumerate() {
            match self.prepare(req) {
                Ok((text, tokens, dropped)) if !tokens.is_empty() => {
                    sink(EngineEvent::Prompt {
                        id: req.id,
                        text,
                        tokens: tokens.len() as u32,
                        dropped_messages: dropped,
                    });
                    prepared.push((i, tokens));
                }
                Ok(_) => {
                    sink(EngineEvent::error(
                        req.id,
                        &"the rendered prompt is empty".into(),
                    ));
                    done[i] = true;
                }
                Err(e) => {
                    sink(EngineEvent::error(req.id, &e));
                    done[i] = true;
                }
            }
        }
        let mut start = 0;
        while start < prepared.len() {
            let mut end = start;
            let mut cells = 0usize;
            while end < prepared.len() && end - start < MAX_SEQUENCES as usize {
                let (i, t) = &prepared[end];
                let need = t.len() + reqs[*i].sampling.max_tokens as usize;
                if end > start && cells + need > n_ctx {
                    break;
                }
                cells += need;
                end += 1;
            }
            self.run_group(reqs, &prepared[start..end], sink, done)?;
            start = end;
        }
        Ok(())
    }

    fn run_group(
        &mut self,
        reqs: &[GenRequest],
        group: &[(usize, Vec<LlamaToken>)],
        sink: &Sink,
        done: &mut [bool],
    ) -> Result<(), EngineError> {
        let started = Instant::now();
        self.use_adapter(reqs[group[0].0].use_adapter)?;
        // A batch shares nothing with what the cache held.
        self.ctx.clear_kv_cache();
        self.cached.clear();
        let n = group.len();
        let n_batch = self.n_batch as usize;
        // Every prompt token but each prompt's last, packed into shared batches; then one
        // batch of the last tokens, whose logits start each answer.
        let mut batch = LlamaBatch::new(n_batch.max(n), n as i32);
        let mut filled = 0;
        for (s, (_, tokens)) in group.iter().enumerate() {
            for (p, t) in tokens[..tokens.len() - 1].iter().enumerate() {
                if filled == n_batch {
                    self.ctx
                        .decode(&mut batch)
                        .map_err(|e| format!("llama.cpp decode failed: {e}"))?;
                    batch.clear();
                    filled = 0;
                }
                batch
                    .add(*t, p as i32, &[s as i32], false)
                    .map_err(|e| e.to_string())?;
                filled += 1;
            }
        }
        if filled > 0 {
            self.ctx
                .decode(&mut batch)
                .map_err(|e| format!("llama.cpp decode failed: {e}"))?;
        }
        batch.clear();
        let mut idx: Vec<i32> = vec![-1; n];
        let mut pos: Vec<i32> = Vec::with_capacity(n);
        for (s, (_, tokens)) in group.iter().enumerate() {
            let last = tokens.len() - 1;
            batch
                .add(tokens[last], last as i32, &[s as i32], true)
                .map_err(|e| e.to_string())?;
            idx[s] = s as i32;
            pos.push(tokens.len() as i32);
        }
        self.ctx
            .decode(&mut batch)
            .map_err(|e| format!("llama.cpp decode failed: {e}"))?;

        let vocab = self.model.vocab();
        let mut samplers: Vec<Picker> = Vec::with_capacity(n);
        for (i, _) in group {
            let req = &reqs[*i];
            if let Some(prefix) = self.forced_prefix(req) {
                sink(EngineEvent::Token {
                    id: req.id,
                    seq: 0,
                    text: prefix.to_string(),
                });
            }
            let grammar = self.tool_grammar(req)?;
            samplers.push(Picker {
                chain: self.sampler(&req.sampling, 0),
                grammar: grammar
                    .as_ref()
                    .map(|g| self.grammar_sampler(g))
                    .transpose()?,
            });
        }
        let mut active = vec![true; n];
        let mut streams: Vec<AnswerStream> = group
            .iter()
            .map(|(i, _)| AnswerStream::new(&reqs[*i].sampling.stop))
            .collect();
        let mut first: Vec<Option<Instant>> = vec![None; n];
        let adapter = self
            .adapter_facts
            .as_ref()
            .filter(|_| self.adapter_on)
            .cloned();
        loop {
            let mut next: Vec<(usize, LlamaToken)> = Vec::new();
            for s in 0..n {
                if !active[s] {
                    continue;
                }
                let (i, tokens) = &group[s];
                let req = &reqs[*i];
                let mut end = req.cancel.is_cancelled().then_some("cancelled");
                let mut token = LlamaToken(0);
                let send = |text: String| {
                    sink(EngineEvent::Token {
                        id: req.id,
                        seq: 0,
                        text,
                    })
                };
                if end.is_none() {
                    token = samplers[s].pick(&self.ctx, idx[s]);
                    first[s].get_or_insert_with(Instant::now);
                    end = streams[s].take(token, &vocab, req.sampling.max_tokens, &send);
                }
                if let Some(reason) = end {
                    streams[s].end(reason, &send);
                    active[s] = false;
                    let (ttft, tps) = timing(started, first[s], streams[s].generated);
                    sink(EngineEvent::Done {
                        id: req.id,
                        seq: 0,
                        facts: GenerationFacts {
                            model: self.info.name.clone(),
                            adapter: adapter.as_ref().map(|a| a.0.clone()),
                            adapter_scale: adapter.as_ref().map(|a| a.1),
                            sampling: Some(req.sampling.clone()),
                            prompt_tokens: tokens.len() as u32,
                            reused_tokens: 0,
                            reused_from_disk: false,
                            generated_tokens: streams[s].generated,
                            ttft_ms: ttft,
                            tokens_per_s: tps,
                            stop_reason: reason.to_string(),
                        },
                    });
                    done[*i] = true;
                } else {
                    next.push((s, token));
                }
            }
            if next.is_empty() {
                break;
            }
            batch.clear();
            for (b, (s, t)) in next.iter().enumerate() {
                batch
                    .add(*t, pos[*s], &[*s as i32], true)
                    .map_err(|e| e.to_string())?;
                idx[*s] = b as i32;
                pos[*s] += 1;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| format!("llama.cpp decode failed: {e}"))?;
        }
        self.ctx.clear_kv_cache();
        Ok(())
    }
}
