//! What both front ends (the CLI and the studio) stand on: the environment a command
//! runs in (paths, config, the database, the model and how to load it), starting the
//! engine, and the exit type that carries a process exit code. `cli` and `tui` depend on
//! this module and never on each other.

use crate::config::{Config, Paths};
use crate::engine::llama::{LlamaBackendImpl, LlamaOptions};
use crate::engine::{Backend, Engine, Sink};
pub use crate::models::same_file;
use crate::store::Store;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// What the command line (or a test) sets over the config: the global flags.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub db: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub server: Option<String>,
    pub server_model: Option<String>,
    pub template: Option<String>,
    pub adapter: Option<String>,
    pub adapter_scale: f32,
    pub threads: Option<u32>,
}

/// An error with the process exit code it should produce.
#[derive(Debug)]
pub struct Exit(pub i32, pub String);
impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}
impl std::error::Error for Exit {}

/// Everything a command needs to know about where things are.
pub struct Env {
    pub paths: Paths,
    pub config: Config,
    pub db: PathBuf,
    pub model: PathBuf,
    /// Why the model given by name (`--model`, `ARBOR_MODEL`, `model` in config) names no
    /// single model (reported when a command needs the model).
    pub model_problem: Option<String>,
    pub template: Option<String>,
    pub threads: u32,
    /// Set when the chat goes through an OpenAI-compatible server.
    pub server: Option<crate::engine::http::HttpOptions>,
    /// `--adapter` as given (a registered name or a file) and its scale.
    pub adapter: Option<(String, f32)>,
}

/// Which engine a command talks to.
pub enum EngineChoice {
    Llama(LlamaOptions),
    Http(crate::engine::http::HttpOptions),
}

impl Env {
    pub fn new(cli: &Overrides) -> Result<Self> {
        let paths = Paths::discover();
        let config = Config::load(&paths.config_file())?;
        Self::with_config(cli, paths, config)
    }

    /// The environment with `config` (already loaded, or the defaults when `doctor`
    /// reports a broken config.toml).
    pub fn with_config(cli: &Overrides, paths: Paths, config: Config) -> Result<Self> {
        let db = cli.db.clone().unwrap_or_else(|| paths.db());
        let given = cli.model.clone().or_else(|| config.model.clone());
        let (model, model_problem) = match given {
            Some(g) => match resolve_model(&g, &paths, &config) {
                Ok(p) => (p, None),
                Err(e) => (g, Some(e)),
            },
            None => (paths.default_model(), None),
        };
        let server = cli
            .server
            .clone()
            .or_else(|| config.server_url.clone())
            .map(|url| {
                let key_env = config
                    .server_api_key_env
                    .clone()
                    .unwrap_or_else(|| "OPENAI_API_KEY".into());
                crate::engine::http::HttpOptions {
                    url,
                    model: cli
                        .server_model
                        .clone()
                        .or_else(|| config.server_model.clone()),
                    api_key: std::env::var(&key_env).ok().filter(|k| !k.is_empty()),
                }
            });
        // `--adapter NAME` alone chats on the model the adapter was trained on.
        let model = match (&cli.adapter, &cli.model) {
            (Some(a), None) => adapter_base(&db, a)
                .filter(|b| b.is_file())
                .unwrap_or(model),
            _ => model,
        };
        Ok(Self {
            server,
            adapter: cli.adapter.clone().map(|a| (a, cli.adapter_scale)),
            template: cli.template.clone().or_else(|| config.template.clone()),
            threads: cli.threads.unwrap_or_else(|| config.threads()),
            paths,
            config,
            db,
            model,
            model_problem,
        })
    }

    /// The model file: checked, or exit 2 saying what is wrong (a name that matches no
    /// model or several, a missing, non-GGUF or truncated file).
    pub fn check_model(&self) -> Result<crate::gguf::GgufInfo> {
        if let Some(p) = &self.model_problem {
            return Err(Exit(2, p.clone()).into());
        }
        check_model(&self.model, &self.paths)
    }

    /// The database, migrated if it is older (then a line on stderr says where the
    /// file as it was is kept).
    pub fn store(&self) -> Result<Store> {
        let s = Store::open(&self.db)?;
        if let Some((from, copy)) = s.migrated_from() {
            eprintln!(
                "arbor: {} upgraded from schema v{from} to v{}; the file as it was is kept as {}",
                self.db.display(),
                s.schema_version()?,
                copy.display()
            );
        }
        if let Some(days) = self.config.trash_days {
            let n = s.empty_trash(Some(i64::from(days) * 86_400_000))?;
            if n > 0 {
                eprintln!("arbor: emptied {n} trash entries older than {days} days (trash_days)");
            }
        }
        Ok(s)
    }

    /// Checks the model file and returns how to load it; a missing, non-GGUF or
    /// truncated file is exit code 2 with a message that says what to do.
    pub fn llama_options(&self) -> Result<LlamaOptions> {
        self.check_model()?;
        Ok(LlamaOptions {
            model: self.model.clone(),
            threads: self.threads,
            gpu_layers: self.config.gpu_layers,
            context: self.config.context,
            template: self.template.clone(),
            adapter: self.adapter_file()?,
            kv_cache: self.kv_cache(),
        })
    }

    /// Where turns' KV states go and the most bytes they may take (`None`: `kv_cache_mb = 0`).
    pub fn kv_cache(&self) -> Option<(PathBuf, u64)> {
        let mb = self
            .config
            .kv_cache_mb
            .unwrap_or(crate::engine::llama::kvstate::DEFAULT_LIMIT_MB);
        (mb > 0).then(|| (self.paths.kv_cache_dir(), mb * 1024 * 1024))
    }

    /// `--adapter` as a file: a path that exists, or a registered adapter's file.
    /// The adapter file and scale `--adapter` names, checked against the model before
    /// anything loads: an adapter trained on another model (or, for a file Arbor did not
    /// register, made for another architecture) is exit 2 naming both.
    pub fn adapter_file(&self) -> Result<Option<(PathBuf, f32)>> {
        let Some((name, scale)) = &self.adapter else {
            return Ok(None);
        };
        let as_path = PathBuf::from(name);
        let store = self.store()?;
        let (file, base) = if as_path.is_file() {
            let base = store
                .adapters()?
                .into_iter()
                .find(|a| same_file(&a.path, &as_path));
            (as_path, base.map(|a| (a.name, a.base_model)))
        } else {
            let row = store
                .adapter(name)
                .map_err(|e| Exit(2, format!("--adapter {name}: {e}")))?;
            (PathBuf::from(&row.path), Some((row.name, row.base_model)))
        };
        match base {
            Some((name, base)) if !same_model(Path::new(&base), &self.model) => {
                return Err(Exit(
                    2,
                    format!(
                        "adapter {name} was trained on {base}, not on the model given ({}): drop --model \
                         (and ARBOR_MODEL) to chat with it on its own model, or train one on this model",
                        self.model.display()
                    ),
                )
                .into())
            }
            Some(_) => {}
            None => {
                // A file from elsewhere: at least its architecture must be the model's.
                let arch = |p: &Path| {
                    crate::gguf::read(p)
                        .ok()
                        .and_then(|i| i.architecture().map(str::to_string))
                };
                if let (Some(a), Some(m)) = (arch(&file), arch(&self.model)) {
                    if a != m {
                        return Err(Exit(
                            2,
                            format!(
                                "adapter {} is for {a} models; {} is a {m} model",
                                file.display(),
                                self.model.display()
                            ),
                        )
                        .into());
                    }
                }
            }
        }
        Ok(Some((file, *scale)))
    }
}

impl Env {
    /// The embedded engine on the model, or the configured server.
    pub fn engine_choice(&self) -> Result<EngineChoice> {
        match &self.server {
            Some(h) => Ok(EngineChoice::Http(h.clone())),
            None => Ok(EngineChoice::Llama(self.llama_options()?)),
        }
    }
}

/// Where `arbor models` and `--model NAME` look.
pub fn model_roots(paths: &Paths, config: &Config) -> crate::models::Roots {
    crate::models::Roots::from_env(paths.models_dir(), config.model_dirs.clone())
}

/// `--model` as given: an existing file, or a name `arbor models` lists. A path that does
/// not exist is kept as it is (loading it then says the file is missing).
pub fn resolve_model(given: &Path, paths: &Paths, config: &Config) -> Result<PathBuf, String> {
    if given.is_file() {
        return Ok(given.to_path_buf());
    }
    let text = given.to_string_lossy();
    let named = text.starts_with("ollama:") || text.starts_with("hf:");
    match crate::models::resolve(&text, &model_roots(paths, config)) {
        Ok(p) => Ok(p),
        Err(crate::models::ResolveError::NotFound { .. }) if !named && text.contains('/') => {
            Ok(given.to_path_buf())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The model a registered adapter was trained on (`None`: not a registered name, or no
/// database yet).
fn adapter_base(db: &Path, adapter: &str) -> Option<PathBuf> {
    if Path::new(adapter).is_file() || !db.is_file() {
        return None;
    }
    let store = Store::open_again(db).ok()?;
    store
        .adapter(adapter)
        .ok()
        .map(|a| PathBuf::from(a.base_model))
}

/// Whether two paths hold the same model: the same file, or a copy of it (same size,
/// name and architecture in its GGUF header).
pub fn same_model(a: &Path, b: &Path) -> bool {
    if same_file(a, b) {
        return true;
    }
    let (Ok(x), Ok(y)) = (crate::gguf::read(a), crate::gguf::read(b)) else {
        return false;
    };
    x.file_size == y.file_size && x.name() == y.name() && x.architecture() == y.architecture()
}

/// Starts the engine worker for `choice` (the model loads, or the server is contacted,
/// on the worker thread).
pub fn spawn_engine(choice: EngineChoice, sink: Sink) -> Engine {
    match choice {
        EngineChoice::Llama(o) => spawn_llama(o, sink),
        EngineChoice::Http(h) => Engine::spawn(
            move |_| {
                crate::engine::http::HttpBackend::connect(&h)
                    .map(|b| Box::new(b) as Box<dyn Backend>)
            },
            sink,
        ),
    }
}

pub fn check_model(model: &Path, paths: &Paths) -> Result<crate::gguf::GgufInfo> {
    crate::gguf::check(model).map_err(|e| {
        let hint = match e {
            crate::gguf::GgufError::Missing { .. } if model == paths.default_model() => {
                "; run scripts/setup.sh to install the default model, or pass --model PATH"
            }
            _ => "",
        };
        Exit(2, format!("{e}{hint}")).into()
    })
}

/// Loads the llama.cpp backend on the engine worker thread.
pub fn spawn_llama(opts: LlamaOptions, sink: Sink) -> Engine {
    Engine::spawn(
        move |sink| LlamaBackendImpl::load(&opts, sink).map(|b| Box::new(b) as Box<dyn Backend>),
        sink,
    )
}

/// An engine's error as an exit: a chat template that fails or crosses its bounds is bad
/// input (2), anything else a failure while working (1).
pub fn engine_error(message: String, bad_input: bool) -> anyhow::Error {
    Exit(if bad_input { 2 } else { 1 }, message).into()
}

/// One rule for every command: 2 = bad input or usage (a missing id, a bad file, a value
/// out of range, a broken config or chat template, however deep it surfaced), 1 = a
/// failure while working.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    e.chain().find_map(classify).unwrap_or(1)
}

/// The exit code a typed error asks for, looking inside the modules' error enums (their
/// wrapped errors are transparent, so a plain source chain would skip them).
fn classify(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    use crate::chat::TurnError;
    use crate::dataset::DatasetError;
    use crate::eval::EvalError;
    use crate::store::StoreError;
    use crate::train::TrainError;
    let store = |s: &StoreError| match s {
        StoreError::NoConversation(_)
        | StoreError::Trashed(_)
        | StoreError::NoNode(_)
        | StoreError::NoEvalSet(_)
        | StoreError::NoEvalRun(_)
        | StoreError::Invalid(_)
        | StoreError::TooNew { .. } => 2,
        _ => 1,
    };
    if let Some(x) = e.downcast_ref::<Exit>() {
        return Some(x.0);
    }
    if let Some(s) = e.downcast_ref::<StoreError>() {
        return Some(store(s));
    }
    if e.is::<crate::config::ConfigError>() || e.is::<crate::engine::template::TemplateError>() {
        return Some(2);
    }
    if let Some(c) = e.downcast_ref::<crate::error::Contextual>() {
        return classify(&*c.source);
    }
    if let Some(t) = e.downcast_ref::<TurnError>() {
        return match t {
            TurnError::Store(s) => Some(store(s)),
            TurnError::Sampling(_) => Some(2),
        };
    }
    if let Some(d) = e.downcast_ref::<DatasetError>() {
        return match d {
            DatasetError::Store(s) => Some(store(s)),
            DatasetError::Template(_) => Some(2),
            DatasetError::Engine(e) if e.is_bad_input() => Some(2),
            DatasetError::Turn(t) => classify(t),
            DatasetError::Context(c) => classify(c),
            _ => None,
        };
    }
    if let Some(t) = e.downcast_ref::<TrainError>() {
        return match t {
            TrainError::Store(s) => Some(store(s)),
            TrainError::Template(_) | TrainError::Config(_) => Some(2),
            TrainError::Engine(e) if e.is_bad_input() => Some(2),
            TrainError::Dataset(d) => classify(d),
            TrainError::Context(c) => classify(c),
            _ => None,
        };
    }
    if let Some(v) = e.downcast_ref::<EvalError>() {
        return match v {
            EvalError::Store(s) => Some(store(s)),
            EvalError::Dataset(d) => classify(d),
            EvalError::Turn(t) => classify(t),
            EvalError::Context(c) => classify(c),
            _ => None,
        };
    }
    if let Some(crate::presets::PresetError::Store(s)) = e.downcast_ref() {
        return Some(store(s));
    }
    None
}
