//! Shared by the model benchmarks: the model to run (`ARBOR_MODEL`, else the default one)
//! with llama.cpp options, and a sink that collects engine events.

use arbor::engine::llama::LlamaOptions;
use arbor::engine::{EngineEvent, Sink};
use std::sync::{Arc, Mutex};

pub struct Setup {
    pub opts: LlamaOptions,
    pub events: Arc<Mutex<Vec<EngineEvent>>>,
    pub sink: Sink,
}

pub fn setup() -> Setup {
    let model = std::env::var_os("ARBOR_MODEL")
        .map(Into::into)
        .unwrap_or_else(|| arbor::config::Paths::discover().default_model());
    let opts = LlamaOptions {
        model,
        threads: arbor::config::physical_cores(),
        gpu_layers: 0,
        context: 4096,
        template: None,
        adapter: None,
        kv_cache: None,
    };
    let events: Arc<Mutex<Vec<EngineEvent>>> = Arc::default();
    let ev = events.clone();
    let sink: Sink = Arc::new(move |e| ev.lock().unwrap().push(e));
    Setup { opts, events, sink }
}
