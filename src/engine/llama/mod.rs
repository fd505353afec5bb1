//! The embedded llama.cpp backend (`llama-cpp-2`): one model and one context on the
//! worker thread, KV prefix reuse across turns and branches, k parallel candidates.

use super::template::ChatTemplate;
use super::EngineError;
use super::{
    Backend, EngineEvent, GenRequest, ModelInfo, OverflowPolicy, Sink, StopScan, Utf8Stream,
};
use crate::domain::{ChatMessage, ToolChoice};
use crate::domain::{GenerationFacts, Role, Sampling};
use crate::tools;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::session::LlamaStateSeqFlags;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::PathBuf;

use std::sync::OnceLock;
use std::time::Instant;

mod batch;
mod grammar;
pub mod kvstate;
mod tokenizer;
use grammar::*;
pub use tokenizer::*;

/// Most candidates one request may ask for (`--k`).
pub const MAX_SEQUENCES: u32 = 16;

#[derive(Debug, Clone)]
pub struct LlamaOptions {
    pub model: PathBuf,
    pub threads: u32,
    pub gpu_layers: u32,
    /// 0 = the model's training context, capped at 8192.
    pub context: u32,
    /// Built-in template name to use instead of (or where there is no) model template.
    pub template: Option<String>,
    pub adapter: Option<(PathBuf, f32)>,
    /// Where conversation turns' KV states are kept on disk and the most bytes they may
    /// take (`None`: not kept).
    pub kv_cache: Option<(PathBuf, u64)>,
}

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut b = LlamaBackend::init().map_err(|e| e.to_string())?;
            if std::env::var_os("ARBOR_LLAMA_LOG").is_none() {
                b.void_logs();
            }
            Ok(b)
        })
        .as_ref()
        .map_err(|e| EngineError::Failed(e.clone()))
}

/// Whether this build of llama.cpp can offload to a GPU.
pub fn supports_gpu_offload() -> bool {
    backend().map(|b| b.supports_gpu_offload()).unwrap_or(false)
}

pub struct LlamaBackendImpl {
    // Field order matters: the context borrows the model and must drop first.
    ctx: LlamaContext<'static>,
    adapter: Option<llama_cpp_2::model::LlamaLoraAdapter>,
    /// Whether the adapter is applied to the context now (a request may ask for the base).
    adapter_on: bool,
    model: Box<LlamaModel>,
    template: ChatTemplate,
    info: ModelInfo,
    adapter_facts: Option<(String, f32)>,
    /// Tokens currently in the KV cache of sequence 0, in order.
    cached: Vec<LlamaToken>,
    /// The most prompt tokens decoded in one batch for a conversation turn (see
    /// `block_size`); other requests use `n_batch`.
    block: usize,
    /// Whether the cache was built by conversation turns only, so that reusing it is bit
    /// for bit a fresh evaluation (a turn after an eval request starts clean).
    exact: bool,
    n_batch: u32,
    /// KV states on disk: with the adapter off and on (`None`: not kept).
    kv: [Option<kvstate::KvStore>; 2],
    /// The last state written to disk: milliseconds, bytes, tokens (for benchmarks).
    pub last_save: Option<(f64, u64, usize)>,
}

impl LlamaBackendImpl {
    /// Loads the model (reporting progress through `sink`) and makes a context.
    pub fn load(opts: &LlamaOptions, sink: &Sink) -> Result<Self, EngineError> {
        let info = crate::gguf::read(&opts.model).map_err(|e| e.to_string())?;
        if info.file_type() == "adapter" {
            return Err(format!(
                "{} is a LoRA adapter, not a model; attach it to its base model with --adapter",
                opts.model.display()
            )
            .into());
        }
        let backend = backend()?;
        let progress_sink = sink.clone();
        let mut last = -1.0f32;
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(opts.gpu_layers)
            .with_progress_callback(move |p| {
                if p - last >= 0.05 || p >= 1.0 {
                    last = p;
                    progress_sink(EngineEvent::Loading { progress: p });
                }
                true
            });
        let mut model = Box::new(
            LlamaModel::load_from_file(backend, &opts.model, &params).map_err(|e| {
                format!(
                    "{}: llama.cpp could not load the model: {e}",
                    opts.model.display()
                )
            })?,
        );
        let template = choose_template(&model, &info, opts.template.as_deref())?;

        let adapter =
            match &opts.adapter {
                Some((path, _)) => Some(model.lora_adapter_init(path).map_err(|e| {
                    format!("{}: could not load LoRA adapter: {e}", path.display())
                })?),
                None => None,
            };

        let train_ctx = model.n_ctx_train();
        let n_ctx = if opts.context == 0 {
            train_ctx.min(8192)
        } else {
            opts.context
        };
        let n_batch = 512u32.min(n_ctx);
        let threads = opts.threads.max(1) as i32;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(MAX_SEQUENCES)
            .with_kv_unified(true)
            .with_swa_full(true)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_no_perf(false);
        // SAFETY: the context borrows `model`, which is boxed (stable address) and owned
        // by the same struct; the context field is declared first so it drops first.
        let model_ref: &'static LlamaModel = unsafe { &*(model.as_ref() as *const LlamaModel) };
        let mut ctx = model_ref
            .new_context(backend, params)
            .map_err(|e| format!("could not create a llama.cpp context of {n_ctx} tokens: {e}"))?;
        let mut adapter = adapter;
        let adapter_facts = match (&mut adapter, &opts.adapter) {
            (Some(a), Some((path, scale))) => {
                ctx.lora_adapter_set(a, *scale)
                    .map_err(|e| format!("could not attach LoRA adapter: {e}"))?;
                Some((path.display().to_string(), *scale))
            }
            _ => None,
        };
        let block = block_size(opts.gpu_layers).min(n_batch as usize);
        let kv = match &opts.kv_cache {
            Some((root, limit)) => {
                let key = |adapter: Option<(&std::path::Path, f32)>| {
                    kvstate::KvStore::new(
                        root,
                        kvstate::KvKey::new(&opts.model, adapter, &template.name(), n_ctx, block),
                        *limit,
                    )
                };
                let tuned = opts.adapter.as_ref().and_then(|(p, s)| key(Some((p, *s))));
                let base = key(None);
                for store in [&base, &tuned].into_iter().flatten() {
                    store.remove_stale();
                }
                [base, tuned]
            }
            None => [None, None],
        };
        warm_up(&mut ctx, &model)?;
        let arch = info.architecture().unwrap_or("unknown").to_string();
        let info = ModelInfo {
            name: info.name(),
            path: opts.model.display().to_string(),
            architecture: arch,
            context: n_ctx,
            template: template.name(),
            threads: threads as u32,
        };
        Ok(Self {
            ctx,
            adapter_on: adapter.is_some(),
            adapter,
            model,
            template,
            info,
            adapter_facts,
            cached: Vec::new(),
            block,
            exact: true,
            n_batch,
            kv,
            last_save: None,
        })
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Tokenizes a rendered prompt the way llama.cpp's server does: special tokens parsed,
    /// BOS added only when the vocabulary wants one and the template did not write it.
    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        tokenize_with(&self.model, &self.template, text)
    }

    /// Renders and tokenizes, applying the overflow policy. Returns the prompt text,
    /// its tokens and how many messages were dropped.
    fn prepare(&self, req: &GenRequest) -> Result<(String, Vec<LlamaToken>, u32), EngineError> {
        let n_ctx = self.ctx.n_ctx() as usize;
        let k = req.k.clamp(1, MAX_SEQUENCES) as usize;
        let budget = req.sampling.max_tokens as usize * k;
        let (mut messages, tools) = self.prompt_messages(req);
        let mut dropped = 0u32;
        loop {
            let mut text = self.template.render(&messages, tools, true)?;
            text.push_str(self.forced_prefix(req).unwrap_or(""));
            let tokens = self.tokenize(&text);
            if tokens.len() + budget <= n_ctx {
                return Ok((text, tokens, dropped));
            }
            let first = usize::from(messages.first().is_some_and(|m| m.role == Role::System));
            let can_drop = req.overflow == OverflowPolicy::DropOldest && messages.len() > first + 1;
            if !can_drop {
                return Err(format!(
                    "context overflow: the prompt is {} tokens and up to {} more may be generated ({} × {} max tokens), \
                     but the context holds {n_ctx}; shorten the conversation, lower --max-tokens, raise `context` in config.toml, \
                     or drop old turns",
                    tokens.len(),
                    budget,
                    k,
                    req.sampling.max_tokens
                ).into());
            }
            // Drop the oldest turn: a user message and what answers it, up to the next user message.
            messages.remove(first);
            dropped += 1;
            while messages.len() > first + 1 && messages[first].role != Role::User {
                messages.remove(first);
                dropped += 1;
            }
        }
    }

    /// The messages and tools the template renders: a template that never mentions
    /// tools gets them described in the system prompt instead (see `tools`).
    fn prompt_messages<'a>(
        &self,
        req: &'a GenRequest,
    ) -> (Vec<ChatMessage>, Option<&'a serde_json::Value>) {
        match tools_of(req) {
            Some(t) if !tools::template_handles_tools(&self.template.text) => {
                (tools::with_tools_in_prompt(&req.messages, t), None)
            }
            t => (req.messages.clone(), t),
        }
    }

    /// How this model's prompt asks for tool calls.
    fn tool_syntax(&self) -> tools::ToolSyntax {
        if tools::template_handles_tools(&self.template.text) {
            tools::ToolSyntax::of_template(&self.template.text)
        } else {
            tools::ToolSyntax::Hermes
        }
    }

    /// A required call without the grammar: the answer is started with the call's
    /// opening (written into the prompt and the answer), the model writes the rest.
    fn forced_prefix(&self, req: &GenRequest) -> Option<&'static str> {
        (tools_of(req).is_some() && req.tool_choice == ToolChoice::Required && !req.constrain_tools)
            .then(|| match self.tool_syntax() {
                tools::ToolSyntax::Hermes => "<tool_call>\n",
                tools::ToolSyntax::Llama3 => "{\"name\": \"",
            })
    }

    /// The grammar that keeps tool calls valid: lazy (it starts at the call's opening
    /// text) unless a call is required. `None` when nothing is constrained.
    fn tool_grammar(&self, req: &GenRequest) -> Result<Option<ToolGrammar>, EngineError> {
        if let Some(schema) = &req.json_schema {
            let text = llama_cpp_2::json_schema_to_grammar(&schema.to_string())
                .map_err(|e| format!("could not turn the JSON schema into a grammar: {e}"))?;
            return Ok(Some(ToolGrammar {
                text,
                trigger: "",
                lazy: false,
            }));
        }
        let Some(t) = tools_of(req) else {
            return Ok(None);
        };
        if !req.constrain_tools || req.tool_choice == ToolChoice::None {
            return Ok(None);
        }
        let syntax = self.tool_syntax();
        let lazy = req.tool_choice != ToolChoice::Required;
        Ok(Some(ToolGrammar {
            text: tool_call_grammar(
                t,
                syntax,
                tools::grammar_max_string(req.sampling.max_tokens),
            )?,
            trigger: syntax.trigger(),
            lazy,
        }))
    }

    /// One sequence's grammar sampler (kept apart from the chain: see `Picker`).
    fn grammar_sampler(&self, g: &ToolGrammar) -> Result<LlamaSampler, EngineError> {
        let sampler = if g.lazy {
            LlamaSampler::grammar_lazy(&self.model, &g.text, "root", [g.trigger], &[])
        } else {
            LlamaSampler::grammar(&self.model, &g.text, "root")
        };
        Ok(sampler.map_err(|e| format!("llama.cpp rejected the grammar: {e}"))?)
    }

    fn sampler(&self, s: &Sampling, seq: u32) -> LlamaSampler {
        let mut chain = Vec::new();
        if s.repeat_penalty != 1.0 {
            chain.push(LlamaSampler::penalties(
                self.model.n_vocab(),
                64,
                s.repeat_penalty,
                0.0,
                0.0,
            ));
        }
        if s.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if s.top_k > 0 {
                chain.push(LlamaSampler::top_k(s.top_k));
            }
            if s.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(s.top_p, 1));
            }
            if s.min_p > 0.0 {
                chain.push(LlamaSampler::min_p(s.min_p, 1));
            }
            chain.push(LlamaSampler::temp(s.temperature));
            chain.push(LlamaSampler::dist(s.seed.wrapping_add(seq)));
        }
        LlamaSampler::chain_simple(chain)
    }

    /// Decodes `tokens` at positions `start..` of sequence 0 in batches of at most `size`
    /// tokens; logits for the last.
    fn decode_prompt(
        &mut self,
        tokens: &[LlamaToken],
        start: usize,
        size: usize,
    ) -> Result<(), EngineError> {
        let mut batch = LlamaBatch::new(size, 1);
        for (ci, chunk) in tokens.chunks(size).enumerate() {
            batch.clear();
            let last_chunk = (ci + 1) * size >= tokens.len();
            for (i, t) in chunk.iter().enumerate() {
                let pos = start + ci * size + i;
                let logits = last_chunk && i == chunk.len() - 1;
                batch
                    .add(*t, pos as i32, &[0], logits)
                    .map_err(|e| e.to_string())?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| format!("llama.cpp decode failed: {e}"))?;
            self.cached.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// Applies or removes the adapter for a request; the KV cache holds what the other
    /// setting computed, so it starts clean.
    fn use_adapter(&mut self, on: bool) -> Result<(), EngineError> {
        let (Some(a), Some((_, scale))) = (self.adapter.as_mut(), self.adapter_facts.as_ref())
        else {
            return Ok(());
        };
        if on == self.adapter_on {
            return Ok(());
        }
        if on {
            self.ctx
                .lora_adapter_set(a, *scale)
                .map_err(|e| format!("could not attach LoRA adapter: {e}"))?;
        } else {
            self.ctx
                .lora_adapter_remove(a)
                .map_err(|e| format!("could not detach LoRA adapter: {e}"))?;
        }
        self.adapter_on = on;
        self.ctx.clear_kv_cache();
        self.cached.clear();
        Ok(())
    }

    fn run(&mut self, req: &GenRequest, sink: &Sink) -> Result<(), EngineError> {
        let started = Instant::now();
        self.use_adapter(req.use_adapter)?;
        let (text, tokens, dropped) = self.prepare(req)?;
        sink(EngineEvent::Prompt {
            id: req.id,
            text,
            tokens: tokens.len() as u32,
            dropped_messages: dropped,
        });
        if tokens.is_empty() {
            return Err("the rendered prompt is empty".into());
        }
        let k = req.k.clamp(1, MAX_SEQUENCES);

        // Reuse the longest common prefix of what is cached; decode only the rest.
        let mut reuse = self
            .cached
            .iter()
            .zip(&tokens)
            .take_while(|(a, b)| a == b)
            .count();
        if reuse == tokens.len() {
            reuse -= 1; // the last prompt token must be decoded again for fresh logits
        }
        // A conversation turn decodes in small batches and reuses only what turns built.
        let batch_size = if req.persist {
            if !self.exact {
                reuse = 0;
            }
            self.block
        } else {
            self.n_batch as usize
        };
        for s in 1..MAX_SEQUENCES as i32 {
            let _ = self.ctx.kv_cache_seq_rm(s, None, None);
        }
        // Memory already holds all but the last token (which is always decoded): no state on
        // disk can do better, so the directory is not read.
        let from_disk = req.persist && reuse + 1 < tokens.len() && self.load_state(&tokens, reuse);
        if from_disk {
            reuse = kvstate::common_prefix(&token_ids(&self.cached), &token_ids(&tokens))
                .min(tokens.len() - 1);
        }
        if self
            .ctx
            .kv_cache_seq_rm(0, Some(reuse as u32), None)
            .is_err()
        {
            self.ctx.clear_kv_cache();
            reuse = 0;
        }
        self.cached.truncate(reuse);
        self.exact = req.persist && (self.exact || reuse == 0);
        self.decode_prompt(&tokens[reuse..], reuse, batch_size)?;
        for s in 1..k as i32 {
            self.ctx
                .kv_cache_seq_cp(0, s, None, None)
                .map_err(|e| e.to_string())?;
        }

        let vocab = self.model.vocab();
        if let Some(prefix) = self.forced_prefix(req) {
            for seq in 0..k {
                sink(EngineEvent::Token {
                    id: req.id,
                    seq,
                    text: prefix.to_string(),
                });
            }
        }
        let grammar = self.tool_grammar(req)?;
        let mut samplers: Vec<Picker> = (0..k)
            .map(|s| {
                Ok(Picker {
                    chain: self.sampler(&req.sampling, s),
                    grammar: grammar
                        .as_ref()
                        .map(|g| self.grammar_sampler(g))
                        .transpose()?,
                })
            })
            .collect::<Result<_, EngineError>>()?;
        let mut idx: Vec<i32> = vec![-1; k as usize]; // logits index per sequence
        let mut active: Vec<bool> = vec![true; k as usize];
        let mut streams: Vec<AnswerStream> = (0..k)
            .map(|_| AnswerStream::new(&req.sampling.stop))
            .collect();
        let mut first_token_at: Option<Instant> = None;
        let mut batch = LlamaBatch::new(k as usize, k as i32);
        let mut pos = tokens.len() as i32;
        let base_facts = GenerationFacts {
            model: self.info.name.clone(),
            adapter: self
                .adapter_facts
                .as_ref()
                .filter(|_| self.adapter_on)
                .map(|a| a.0.clone()),
            adapter_scale: self
                .adapter_facts
                .as_ref()
                .filter(|_| self.adapter_on)
                .map(|a| a.1),
            sampling: Some(req.sampling.clone()),
            prompt_tokens: tokens.len() as u32,
            reused_tokens: reuse as u32,
            reused_from_disk: from_disk,
            ..Default::default()
        };
        let finish = |seq: u32, generated: u32, reason: &str, first: Option<Instant>| {
            let (ttft, tps) = timing(started, first, generated);
            sink(EngineEvent::Done {
                id: req.id,
                seq,
                facts: GenerationFacts {
                    generated_tokens: generated,
                    ttft_ms: ttft,
                    tokens_per_s: tps,
                    stop_reason: reason.to_string(),
                    ..base_facts.clone()
                },
            });
        };

        loop {
            let mut next: Vec<(u32, LlamaToken)> = Vec::new();
            let cancelled = req.cancel.is_cancelled();
            for s in 0..k {
                let si = s as usize;
                if !active[si] {
                    continue;
                }
                let mut end = cancelled.then_some("cancelled");
                let mut token = LlamaToken(0);
                if end.is_none() {
                    token = samplers[si].pick(&self.ctx, idx[si]);
                    first_token_at.get_or_insert_with(Instant::now);
                    let send = |text: String| {
                        sink(EngineEvent::Token {
                            id: req.id,
                            seq: s,
                            text,
                        })
                    };
                    end = streams[si]
                        .take(token, &vocab, req.sampling.max_tokens, &send)
                        .or_else(|| (pos as u32 + 1 >= self.ctx.n_ctx()).then_some("context"));
                }
                match end {
                    Some(reason) => {
                        streams[si].end(reason, &|text| {
                            sink(EngineEvent::Token {
                                id: req.id,
                                seq: s,
                                text,
                            })
                        });
                        active[si] = false;
                        finish(s, streams[si].generated, reason, first_token_at);
                    }
                    None => next.push((s, token)),
                }
            }
            if next.is_empty() {
                break;
            }
            batch.clear();
            for (i, (s, t)) in next.iter().enumerate() {
                batch
                    .add(*t, pos, &[*s as i32], true)
                    .map_err(|e| e.to_string())?;
                idx[*s as usize] = i as i32;
                if *s == 0 {
                    self.cached.push(*t);
                }
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| format!("llama.cpp decode failed: {e}"))?;
            pos += 1;
        }
        for s in 1..k as i32 {
            let _ = self.ctx.kv_cache_seq_rm(s, None, None);
        }
        if req.persist {
            self.save_state();
        }
        Ok(())
    }

    /// The disk cache for the adapter's current setting.
    fn kv_store(&self) -> Option<&kvstate::KvStore> {
        self.kv[usize::from(self.adapter_on)].as_ref()
    }

    /// Loads the saved state sharing more than `better_than` leading tokens (what memory
    /// holds) with `prompt`; true when sequence 0 now holds it (and `cached` its tokens). A
    /// state llama.cpp refuses is removed and the sequence left empty.
    fn load_state(&mut self, prompt: &[LlamaToken], better_than: usize) -> bool {
        let Some(store) = self.kv_store().cloned() else {
            return false;
        };
        let Some(found) = store.best(&token_ids(prompt), better_than) else {
            return false;
        };
        let Some(state) = store.load(found) else {
            return false;
        };
        if !state.verify_head() {
            store.reject(&state);
            return false;
        }
        let _ = self.ctx.kv_cache_seq_rm(0, None, None);
        self.cached.clear();
        // The whole checksum is computed on another thread while llama.cpp reads the state
        // (its metadata, at the head, is checked already); a state that fails it is dropped
        // from the cache again before anything uses it.
        let ctx = &mut self.ctx;
        let (set, verified) = std::thread::scope(|scope| {
            let check = scope.spawn(|| state.verify());
            // SAFETY: the bytes are what `save_state` got from llama.cpp for a context of
            // the same model, adapter, template and size (the key); the file's sizes add up
            // and its head (the cells' metadata llama.cpp parses) is checked.
            let set = unsafe {
                ctx.state_seq_set_data_ext(&state.payload, 0, LlamaStateSeqFlags::empty())
            };
            (set, check.join().unwrap_or(false))
        });
        if !(set && verified) {
            store.reject(&state);
            let _ = self.ctx.kv_cache_seq_rm(0, None, None);
            return false;
        }
        store.used(&state);
        self.exact = true;
        self.cached = state.tokens.into_iter().map(LlamaToken).collect();
        true
    }

    /// Writes sequence 0's state and tokens to the disk cache. A failure (a full disk)
    /// only means the next process reads the history again.
    fn save_state(&mut self) {
        let Some(store) = self.kv_store().cloned() else {
            return;
        };
        if self.cached.is_empty() {
            return;
        }
        let started = Instant::now();
        let flags = LlamaStateSeqFlags::empty();
        let size = self.ctx.state_seq_get_size_ext(0, flags);
        let mut payload = vec![0u8; size];
        // SAFETY: `payload` holds the size llama.cpp just reported for this sequence.
        let n = unsafe {
            self.ctx
                .state_seq_get_data_ext(payload.as_mut_ptr(), 0, flags)
        };
        if n != size {
            return;
        }
        match store.save(&token_ids(&self.cached), &payload) {
            Ok(bytes) => {
                self.last_save = Some((
                    started.elapsed().as_secs_f64() * 1000.0,
                    bytes,
                    self.cached.len(),
                ))
            }
            Err(e) => {
                if std::env::var_os("ARBOR_LLAMA_LOG").is_some() {
                    eprintln!("arbor: could not save the KV state: {e}");
                }
            }
        }
    }
}

/// The most prompt tokens decoded in one batch for a conversation turn. On the CPU,
/// llama.cpp's flash attention switches to a tiled kernel for batches of 64 queries or more
/// (`GGML_FA_TILE_Q`), whose sums round differently from the one-query kernel generation
/// uses; a cache built from such batches and reused in the next turn can then answer
/// differently from a fresh evaluation of the same conversation. Batches of at most 63
/// keep every token on one kernel, so a reused prefix — from memory or from disk — holds
/// exactly what evaluating the conversation from scratch computes (tested at temperature 0,
/// with an edit in the middle too). The price is prompt speed deep into a long context
/// when a conversation is evaluated whole (docs/performance.md); eval runs and the judge,
/// which are not continued, decode in full batches. A GPU build offloading layers uses full
/// batches: there, reuse is as exact as llama.cpp's.
fn block_size(gpu_layers: u32) -> usize {
    if gpu_layers > 0 && supports_gpu_offload() {
        512
    } else {
        63
    }
}

/// One token decoded and forgotten, as llama.cpp's own tools do at start: the first decode
/// of a context pays for touching its buffers and starting its threads, which would
/// otherwise land on the first answer's time to first token.
fn warm_up(ctx: &mut LlamaContext<'static>, model: &LlamaModel) -> Result<(), EngineError> {
    let bos = model.vocab().bos();
    let token = if bos.0 >= 0 { bos } else { LlamaToken(0) };
    let mut batch = LlamaBatch::new(1, 1);
    batch.add(token, 0, &[0], true).map_err(|e| e.to_string())?;
    ctx.decode(&mut batch)
        .map_err(|e| format!("llama.cpp decode failed: {e}"))?;
    ctx.clear_kv_cache();
    Ok(())
}

fn token_ids(tokens: &[LlamaToken]) -> Vec<i32> {
    tokens.iter().map(|t| t.0).collect()
}

/// One answer being streamed: its UTF-8 decoder, stop-string scan and token count.
struct AnswerStream {
    utf8: Utf8Stream,
    stops: StopScan,
    generated: u32,
}

impl AnswerStream {
    fn new(stop: &[String]) -> Self {
        Self {
            utf8: Utf8Stream::default(),
            stops: StopScan::new(stop),
            generated: 0,
        }
    }

    /// Takes a sampled token: sends its text (what is complete and before any stop string)
    /// and says why the answer ends there — `eos`, `stop`, `length` — or `None`.
    fn take(
        &mut self,
        token: LlamaToken,
        vocab: &llama_cpp_2::vocab::LlamaVocab<'_>,
        max_tokens: u32,
        send: &dyn Fn(String),
    ) -> Option<&'static str> {
        if vocab.is_eog(token) {
            return Some("eos");
        }
        self.generated += 1;
        let piece = vocab.token_to_piece(token, false, None);
        let text = self.utf8.push(&piece);
        let (out, hit) = self.stops.push(&text);
        if !out.is_empty() {
            send(out);
        }
        if hit {
            Some("stop")
        } else if self.generated >= max_tokens {
            Some("length")
        } else {
            None
        }
    }

    /// The answer ends: text held back (an unfinished character, a possible stop string)
    /// goes out unless a stop string ended it.
    fn end(&mut self, reason: &str, send: &dyn Fn(String)) {
        if reason != "stop" {
            let rest = self.utf8.finish() + &self.stops.finish();
            if !rest.is_empty() {
                send(rest);
            }
        }
    }
}

/// Time to first token (ms) and tokens/s after it, for `generated` tokens.
fn timing(started: Instant, first: Option<Instant>, generated: u32) -> (f64, f64) {
    let ttft = first.map(|f| f.duration_since(started)).unwrap_or_default();
    let gen_time = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(0.0);
    let tps = if generated > 1 && gen_time > 0.0 {
        (generated - 1) as f64 / gen_time
    } else {
        0.0
    };
    (ttft.as_secs_f64() * 1000.0, tps)
}

impl Backend for LlamaBackendImpl {
    fn info(&self) -> ModelInfo {
        self.info.clone()
    }

    fn render(&mut self, req: &GenRequest) -> Result<(String, u32), EngineError> {
        let (text, tokens, _) = self.prepare(req)?;
        Ok((text, tokens.len() as u32))
    }

    fn generate(&mut self, req: &GenRequest, sink: &Sink) {
        if let Err(e) = self.run(req, sink) {
            // A failed decode may leave the cache out of step with `cached`: start clean.
            self.ctx.clear_kv_cache();
            self.cached.clear();
            sink(EngineEvent::error(req.id, &e));
        }
    }

    fn generate_batch(&mut self, reqs: &[GenRequest], sink: &Sink) {
        let mut done = vec![false; reqs.len()];
        if let Err(e) = self.run_batch(reqs, sink, &mut done) {
            self.ctx.clear_kv_cache();
            self.cached.clear();
            for (r, d) in reqs.iter().zip(&done) {
                if !d {
                    sink(EngineEvent::error(r.id, &e));
                }
            }
        }
    }
}

/// Checks a model path before loading: exists, is GGUF, is not truncated.
fn choose_template(
    model: &LlamaModel,
    info: &crate::gguf::GgufInfo,
    explicit: Option<&str>,
) -> Result<ChatTemplate, EngineError> {
    let vocab = model.vocab();
    let piece =
        |t: LlamaToken| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned();
    ChatTemplate::choose(
        explicit,
        info.chat_template(),
        info.architecture(),
        piece(vocab.bos()),
        piece(vocab.eos()),
    )
    .map_err(EngineError::from)
}
