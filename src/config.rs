//! Paths (XDG, through `directories`) and the user's `config.toml`.

use crate::domain::Sampling;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the default model that `scripts/setup.sh` installs.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

#[derive(Debug, Clone)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl Paths {
    /// XDG directories for Arbor; `ARBOR_DATA_DIR` / `ARBOR_CONFIG_DIR` override them
    /// (tests and setup use these to stay out of the user's home).
    pub fn discover() -> Self {
        let dirs = directories::ProjectDirs::from("", "", "arbor");
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let data_dir = env("ARBOR_DATA_DIR")
            .or_else(|| dirs.as_ref().map(|d| d.data_dir().to_path_buf()))
            .unwrap_or_else(|| PathBuf::from(".arbor"));
        let config_dir = env("ARBOR_CONFIG_DIR")
            .or_else(|| dirs.as_ref().map(|d| d.config_dir().to_path_buf()))
            .unwrap_or_else(|| data_dir.clone());
        Self {
            config_dir,
            data_dir,
        }
    }
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }
    /// Colour overrides over the built-in theme (`tui::theme`).
    pub fn theme_file(&self) -> PathBuf {
        self.config_dir.join("theme.toml")
    }
    pub fn keymap_file(&self) -> PathBuf {
        self.config_dir.join("keymap.toml")
    }
    pub fn db(&self) -> PathBuf {
        self.data_dir.join("arbor.db")
    }
    pub fn models_dir(&self) -> PathBuf {
        self.data_dir.join("models")
    }
    pub fn exports_dir(&self) -> PathBuf {
        self.data_dir.join("exports")
    }
    pub fn backups_dir(&self) -> PathBuf {
        self.data_dir.join("backups")
    }
    pub fn jobs_dir(&self) -> PathBuf {
        self.data_dir.join("jobs")
    }
    /// Conversations' KV states on disk (`arbor cache clear` empties it).
    pub fn kv_cache_dir(&self) -> PathBuf {
        self.data_dir.join("kv-cache")
    }
    pub fn default_model(&self) -> PathBuf {
        self.models_dir().join(DEFAULT_MODEL_FILE)
    }
}

/// `config.toml`. Every field is optional; missing ones take the defaults below.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Model used when none is given (`--model` / `ARBOR_MODEL` win over this).
    pub model: Option<PathBuf>,
    /// Your name on ratings; default: the OS user.
    pub rater: Option<String>,
    /// CPU threads for llama.cpp; default: physical cores.
    pub threads: Option<u32>,
    /// Layers offloaded to the GPU (needs a `cuda`/`metal`/`vulkan` build).
    pub gpu_layers: u32,
    /// Context size in tokens; 0 = the model's training context, capped at 8192.
    pub context: u32,
    /// Most megabytes of conversations' KV states kept on disk so a new process continues
    /// a conversation without re-reading it (default 2048; 0 = keep none). Least recently
    /// used go first.
    pub kv_cache_mb: Option<u64>,
    /// More directories searched for `*.gguf` models (`arbor models`, `--model NAME`).
    pub model_dirs: Vec<PathBuf>,
    /// Chat template to use when the model has none (`chatml`, `gemma`, `llama3`).
    pub template: Option<String>,
    /// Default sampling parameters.
    pub sampling: Sampling,
    /// An OpenAI-compatible server to chat through instead of the embedded engine
    /// (llama-server, Ollama, vLLM), e.g. `http://127.0.0.1:8080`.
    pub server_url: Option<String>,
    /// The model to ask that server for (default: the first it lists).
    pub server_model: Option<String>,
    /// Environment variable holding the server's API key (default `OPENAI_API_KEY`).
    pub server_api_key_env: Option<String>,
    /// Constrain tool calls to the tools' JSON schemas with a grammar (default true).
    pub tool_grammar: Option<bool>,
    /// `auto` (default), `required` (answers to user messages are tool calls) or `none`.
    pub tool_choice: crate::domain::ToolChoice,
    /// Few-shot from your own best: put this many similar 4+-star examples from the
    /// database into the system prompt (default 0: off).
    pub few_shot: usize,
    /// Delete what has been in the trash this many days for good, whenever Arbor opens
    /// the database (default: never; `arbor trash empty` does it by hand).
    pub trash_days: Option<u32>,
    /// The studio's colours: `dark` (default) or `light`; `theme.toml` beside this file
    /// may override single colours.
    pub theme: Option<String>,
    /// Training jobs (`arbor train`): environments, interpreter, your own recipes.
    pub train: TrainConfig,
}

/// `[train]` in config.toml.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Where the trainers' Python environments are made (default: `<data dir>/trainer`;
    /// `ARBOR_TRAINER_DIR` wins).
    pub env_dir: Option<PathBuf>,
    /// The Python that creates them (default `python3`).
    pub python: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when a job is cancelled (default 10).
    pub cancel_grace_s: Option<u64>,
    /// Your own recipes, `[train.recipes.NAME]`, beside the built-in `peft` and `mlx`.
    pub recipes: std::collections::BTreeMap<String, RecipeDef>,
}

/// A recipe as data: an argv template and how its progress reads. Never a shell string.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecipeDef {
    pub description: String,
    /// Program and arguments; `{data}`, `{model}`, `{out}` and the other placeholders of
    /// docs/training.md are replaced inside each argument.
    pub argv: Vec<String>,
    /// `json` (one JSON object per line, Arbor's events) or a regex with named groups
    /// `step`, `total`, `loss` (and optionally `eval_loss`, `lr`).
    pub progress: String,
    /// The Python environment Arbor makes for it on first use: `peft`, `mlx` or none.
    pub environment: Option<String>,
    /// What `{data}` is: `openai` (JSON Lines, the default), `mlx` (a directory of
    /// train/valid.jsonl), or `tokens` (Arbor-tokenized ids and loss masks).
    pub data: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// Reads `path`; a missing file is the defaults, a bad one an error naming the
    /// line and field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let mut line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            // An unknown key is reported at its table; point at the key itself.
            if let Some(key) = e
                .message()
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                let from = line.unwrap_or(1);
                if let Some(&l) = toml_key_lines(text)
                    .iter()
                    .filter(|((_, k), &l)| k == key && l >= from)
                    .map(|(_, l)| l)
                    .min()
                {
                    line = Some(l);
                }
            }
            // A type error names the value, not the key: add the key of that line.
            let key = line
                .and_then(|l| text.lines().nth(l - 1))
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim().trim_matches('"').to_string())
                .filter(|k| !k.is_empty() && !e.message().contains(k.as_str()));
            let message = match key {
                Some(k) => format!("{k}: {}", e.message()),
                None => e.message().to_string(),
            };
            parse_error(path, line, message)
        })?;
        config.check().map_err(|(section, key, message)| {
            let line = toml_key_lines(text)
                .get(&(section.to_string(), key.to_string()))
                .copied();
            parse_error(path, line, message)
        })?;
        Ok(config)
    }

    /// Values in range; `Err((section, key, message))`.
    fn check(&self) -> Result<(), (&'static str, &'static str, String)> {
        if let Err((key, m)) = self.sampling.check_field() {
            return Err(("sampling", key, format!("sampling.{m}")));
        }
        if self.threads == Some(0) {
            return Err((
                "",
                "threads",
                "threads = 0 is out of range (at least 1)".into(),
            ));
        }
        if let Some(t) = &self.template {
            crate::engine::template::check_builtin_name(t)
                .map_err(|m| ("", "template", format!("template: {m}")))?;
        }
        Ok(())
    }

    pub fn rater(&self) -> String {
        self.rater.clone().unwrap_or_else(os_user)
    }

    pub fn threads(&self) -> u32 {
        self.threads.unwrap_or_else(physical_cores)
    }
}

/// A config error at `line` (when known) of `path`.
fn parse_error(path: &Path, line: Option<usize>, message: String) -> ConfigError {
    ConfigError::Parse {
        path: path.into(),
        message: match line {
            Some(l) => format!("line {l}: {message}"),
            None => message,
        },
    }
}

/// The 1-based line of every key of a TOML text, from the parser's own spans: a top-level
/// key as `("", key)`, a table's header as `(table, "")` and its keys as `(table, key)`.
/// (A key named in a comment, or at the start of another key, is not mistaken for it.)
/// A TOML text as a table; a syntax error says `line N: …`.
pub fn toml_table(text: &str) -> Result<toml::Table, String> {
    text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        format!("line {line}: {}", e.message())
    })
}

pub fn toml_key_lines(text: &str) -> std::collections::HashMap<(String, String), usize> {
    let line_at = |pos: usize| text[..pos.min(text.len())].matches('\n').count() + 1;
    let mut lines = std::collections::HashMap::new();
    let Ok(doc) = toml::de::DeTable::parse(text) else {
        return lines;
    };
    for (key, value) in doc.get_ref().iter() {
        let name = key.get_ref().to_string();
        match value.get_ref().as_table() {
            Some(t) => {
                lines.insert((name.clone(), String::new()), line_at(key.span().start));
                for (k, _) in t.iter() {
                    lines.insert(
                        (name.clone(), k.get_ref().to_string()),
                        line_at(k.span().start),
                    );
                }
            }
            None => {
                lines.insert((String::new(), name), line_at(key.span().start));
            }
        }
    }
    lines
}

pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "me".to_string())
}

/// Physical cores from /proc/cpuinfo where available, else the logical count.
pub fn physical_cores() -> u32 {
    let logical = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::BTreeSet::new();
    let (mut phys, mut core) = (None, None);
    for line in info.lines() {
        let mut kv = line.splitn(2, ':').map(str::trim);
        match (kv.next(), kv.next()) {
            (Some("physical id"), Some(v)) => phys = Some(v.to_string()),
            (Some("core id"), Some(v)) => core = Some(v.to_string()),
            (Some(""), None) | (None, _) => {}
            _ => {}
        }
        if line.trim().is_empty() {
            if let (Some(p), Some(c)) = (phys.take(), core.take()) {
                cores.insert((p, c));
            }
        }
    }
    if let (Some(p), Some(c)) = (phys, core) {
        cores.insert((p, c));
    }
    if cores.is_empty() {
        logical
    } else {
        (cores.len() as u32).min(logical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_config_names_line_and_field() {
        let err = Config::parse(Path::new("c.toml"), "gpu_layers = 1\nthreads = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml: line 2"), "{err}");
        let err = Config::parse(Path::new("c.toml"), "colour = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn unknown_keys_and_values_out_of_range_name_file_line_and_key() {
        let err = |text: &str| {
            Config::parse(Path::new("c.toml"), text)
                .unwrap_err()
                .to_string()
        };
        let e = err("threads = 2\n[sampling]\ntemprature = 0.3\n");
        assert!(e.starts_with("c.toml: line 3"), "{e}");
        assert!(e.contains("temprature"), "{e}");
        let e = err("[sampling]\ntop_k = 3\ntemperature = -5\n");
        assert_eq!(
            e,
            "c.toml: line 3: sampling.temperature = -5 is out of range (0 to 10)"
        );
        let e = err("[sampling]\ntop_p = 7\n");
        assert!(e.starts_with("c.toml: line 2: sampling.top_p = 7"), "{e}");
        let e = err("\n\nthreads = 0\n");
        assert!(e.starts_with("c.toml: line 3: threads = 0"), "{e}");
        let e = err("template = \"chatm\"\n");
        assert!(
            e.starts_with("c.toml: line 1: template: unknown built-in template 'chatm'"),
            "{e}"
        );
        let e = err("[sampling]\nmax_tokens = 0\n");
        assert!(e.contains("line 2: sampling.max_tokens = 0"), "{e}");
        let e = err("[sampling]\nmax_tokens = \"x\"\n");
        assert!(e.contains("line 2") && e.contains("max_tokens"), "{e}");
    }

    #[test]
    fn sampling_defaults_fill_missing_fields() {
        let c = Config::parse(Path::new("c.toml"), "[sampling]\ntemperature = 0.0\n").unwrap();
        assert_eq!(c.sampling.temperature, 0.0);
        assert_eq!(c.sampling.top_k, Sampling::default().top_k);
    }
}
