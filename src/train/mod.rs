//! Training jobs: recipes as data, the snapshot a job trains on, the Python
//! environments the built-in recipes run in, and the supervisor (`supervise`) that runs
//! the trainer, turns its progress into metrics and its adapter into a GGUF LoRA.

mod prepare;
mod supervise;

pub use prepare::{prepare, JobRequest, Prepared};

pub use supervise::{
    cancel, log_tail, parse_progress, reconcile, spawn_supervisor, supervise, tail, ProgressFormat,
    ProgressLine,
};

use crate::config::{Paths, RecipeDef, TrainConfig};
use crate::error::Context as _;

crate::module_error! {
    /// What preparing, supervising and cancelling a training job fail with.
    TrainError {
        Dataset(crate::dataset::DatasetError),
        Template(crate::engine::template::TemplateError),
        Config(crate::config::ConfigError),
        Engine(crate::engine::EngineError),
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const BUILTIN_RECIPES: &str = include_str!("../../assets/trainer/recipes.toml");
/// Scripts written into each job's directory (the job keeps the exact code it ran).
pub const SCRIPTS: &[(&str, &str)] = &[
    (
        "train_peft.py",
        include_str!("../../assets/trainer/train_peft.py"),
    ),
    (
        "train_mlx.py",
        include_str!("../../assets/trainer/train_mlx.py"),
    ),
    (
        "convert_lora.py",
        include_str!("../../assets/trainer/convert_lora.py"),
    ),
];

/// The built-in recipes and the user's (`[train.recipes.NAME]`), by name. `command` is
/// not among them: it is made from `--command` for one job.
pub fn recipes(config: &TrainConfig) -> Result<BTreeMap<String, RecipeDef>> {
    let mut all: BTreeMap<String, RecipeDef> =
        toml::from_str(BUILTIN_RECIPES).context("assets/trainer/recipes.toml")?;
    for (name, def) in &config.recipes {
        all.insert(name.clone(), def.clone());
    }
    Ok(all)
}

/// A Python environment a recipe runs in, made on first use and reused.
pub struct PyEnv {
    pub name: &'static str,
    pub packages: &'static [&'static str],
    /// What the first use costs, shown while it installs.
    pub size: &'static str,
}

pub const ENVIRONMENTS: &[PyEnv] = &[
    PyEnv {
        name: "peft",
        packages: &[
            "torch==2.15.0",
            "transformers==5.23.0",
            "peft==0.21.0",
            "gguf==0.19.0",
            "safetensors==0.8.0",
            "numpy",
        ],
        size: "PyPI's torch for Linux is the CUDA build: about 3 GB to download, 5.6 GB installed",
    },
    PyEnv {
        name: "mlx",
        packages: &[
            "mlx-lm==0.32.2",
            "torch==2.15.0",
            "transformers==5.23.0",
            "gguf==0.19.0",
            "safetensors==0.8.0",
            "numpy",
        ],
        size: "mlx-lm with torch and transformers (to read the GGUF base once)",
    },
    PyEnv {
        name: "convert",
        packages: &["gguf==0.19.0", "safetensors==0.8.0", "numpy"],
        size: "gguf, safetensors and numpy: about 30 MB",
    },
];

pub fn environment(name: &str) -> Result<&'static PyEnv> {
    ENVIRONMENTS.iter().find(|e| e.name == name).ok_or_else(|| {
        TrainError::Msg(format!(
            "unknown trainer environment {name:?} (peft, mlx, convert)"
        ))
    })
}

/// Where the environments live: `ARBOR_TRAINER_DIR`, `[train] env_dir`, or `<data>/trainer`.
pub fn env_root(paths: &Paths, config: &TrainConfig) -> PathBuf {
    std::env::var_os("ARBOR_TRAINER_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| config.env_dir.clone())
        .unwrap_or_else(|| paths.data_dir.join("trainer"))
}

impl PyEnv {
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(self.name)
    }
    pub fn python(&self, root: &Path) -> PathBuf {
        self.dir(root).join("bin").join("python")
    }
    fn marker(&self, root: &Path) -> PathBuf {
        self.dir(root).join(".arbor-complete")
    }
    /// Made, with the packages this Arbor asks for.
    pub fn ready(&self, root: &Path) -> bool {
        std::fs::read_to_string(self.marker(root))
            .is_ok_and(|m| m.trim() == self.packages.join(" "))
    }

    /// Makes the environment if it is not ready: a venv from `python`, then pip, with
    /// their output appended to `log`. One maker at a time (a lock file); a half-made
    /// environment is made again.
    /// `on_spawn` gets each installer process's pid (it leads its own process group, so
    /// cancelling a job stops an install too).
    pub fn ensure(
        &self,
        root: &Path,
        python: &str,
        log: &Path,
        on_spawn: &mut dyn FnMut(u32),
    ) -> Result<PathBuf> {
        if self.ready(root) {
            return Ok(self.python(root));
        }
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let lock = std::fs::File::create(root.join(format!("{}.lock", self.name)))?;
        lock.lock().context("locking the trainer environment")?;
        if self.ready(root) {
            return Ok(self.python(root));
        }
        let dir = self.dir(root);
        let _ = std::fs::remove_dir_all(&dir);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut say = out.try_clone()?;
        writeln!(
            say,
            "arbor: making the {} environment in {} ({})",
            self.name,
            dir.display(),
            self.size
        )?;
        let mut run = |cmd: &mut std::process::Command, what: &str| -> Result<()> {
            use std::os::unix::process::CommandExt;
            let mut child = cmd
                .stdin(std::process::Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out.try_clone()?)
                .process_group(0)
                .spawn()
                .with_context(|| format!("could not run {what}"))?;
            on_spawn(child.id());
            let status = child.wait()?;
            if !status.success() {
                crate::fail!("{what} failed ({status}); see the job log");
            }
            Ok(())
        };
        run(
            std::process::Command::new(python)
                .arg("-m")
                .arg("venv")
                .arg(&dir),
            &format!("{python} -m venv"),
        )?;
        run(
            std::process::Command::new(self.python(root))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--progress-bar",
                    "off",
                ])
                .args(self.packages),
            "pip install",
        )?;
        std::fs::write(self.marker(root), self.packages.join(" "))?;
        Ok(self.python(root))
    }
}

/// Hyper-parameters, written to the job's `params.json` (the `peft` and `mlx` scripts
/// read it) and stored with the job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainParams {
    /// Optimizer steps; `None`: `epochs` over the examples.
    pub steps: Option<u32>,
    pub epochs: f64,
    pub rank: u32,
    pub alpha: f64,
    pub dropout: f64,
    pub lr: f64,
    pub max_seq_len: u32,
    pub batch_size: u32,
    pub seed: u64,
    pub targets: Vec<String>,
    pub warmup_steps: u32,
    /// CPU threads for the trainer (0: its own choice).
    pub threads: u32,
    /// The adapter's name (default `job-<id>`).
    pub name: Option<String>,
    /// An eval set answered by base vs the new adapter when the job succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_set: Option<String>,
}

impl Default for TrainParams {
    /// The seed fine-tune's settings (LoRA r=16, α=32, dropout 0.05 on all seven
    /// projections), 3 epochs at 2e-4.
    fn default() -> Self {
        Self {
            steps: None,
            epochs: 3.0,
            rank: 16,
            alpha: 32.0,
            dropout: 0.05,
            lr: 2e-4,
            max_seq_len: 2048,
            batch_size: 4,
            seed: 0,
            targets: [
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ]
            .map(String::from)
            .to_vec(),
            warmup_steps: 0,
            threads: 0,
            name: None,
            eval_set: None,
        }
    }
}

/// The placeholders a recipe's argv may use.
pub const PLACEHOLDERS: &[&str] = &[
    "python",
    "job",
    "params",
    "out",
    "model",
    "data",
    "train",
    "valid",
    "steps",
    "epochs",
    "rank",
    "alpha",
    "dropout",
    "lr",
    "max_seq_len",
    "batch_size",
    "seed",
];

/// Checks every placeholder of `argv` is known (before a job is made of it).
pub fn check_argv(argv: &[String]) -> Result<()> {
    let vars: BTreeMap<&str, String> = PLACEHOLDERS.iter().map(|k| (*k, String::new())).collect();
    for a in argv {
        expand(a, &vars)?;
    }
    Ok(())
}

/// Replaces `{name}` placeholders inside one argument; an unknown one is an error
/// (a typo must not reach the trainer as literal text).
pub fn expand(arg: &str, vars: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if after[..close]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && close > 0 =>
            {
                let key = &after[..close];
                match vars.get(key) {
                    Some(v) => out.push_str(v),
                    None => crate::fail!(
                        "unknown placeholder {{{key}}} in {arg:?} (known: {})",
                        vars.keys()
                            .map(|k| format!("{{{k}}}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The files of a job's directory.
pub struct JobFiles {
    pub dir: PathBuf,
}

impl JobFiles {
    pub fn new(paths: &Paths, id: i64) -> Self {
        Self {
            dir: paths.jobs_dir().join(id.to_string()),
        }
    }
    /// The files of the job directory recorded on a job's row.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("train.log")
    }
    pub fn params(&self) -> PathBuf {
        self.dir.join("params.json")
    }
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }
    pub fn adapter(&self) -> PathBuf {
        self.dir.join("adapter.gguf")
    }
    pub fn modelfile(&self) -> PathBuf {
        self.dir.join("Modelfile")
    }
    /// The recipe the job runs (argv template and progress format), as it was at start.
    pub fn recipe(&self) -> PathBuf {
        self.dir.join("recipe.json")
    }
}

/// Writes `text` to `path` through a temporary file.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The Ollama `Modelfile` for a base model and its adapter.
pub fn modelfile(base: &Path, adapter: &Path) -> String {
    format!(
        "# Serve the tuned model with Ollama:  ollama create NAME -f {}\nFROM {}\nADAPTER {}\n",
        adapter.with_file_name("Modelfile").display(),
        base.display(),
        adapter.display()
    )
}

/// Where a job stands, from its metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    pub step: i64,
    pub total: Option<i64>,
    pub loss: Option<f64>,
    pub eval_loss: Option<f64>,
    pub tokens_per_s: Option<f64>,
    /// Seconds left at the pace of the steps so far (running jobs only).
    pub eta_s: Option<f64>,
}

pub fn progress(job: &crate::store::Job, metrics: &[crate::store::JobMetric]) -> Progress {
    let last = metrics
        .iter()
        .rev()
        .find(|m| m.loss.is_some() || m.total.is_some());
    let mut p = Progress {
        step: last.map(|m| m.step).unwrap_or(0),
        total: metrics.iter().rev().find_map(|m| m.total),
        loss: last.and_then(|m| m.loss),
        eval_loss: metrics.iter().rev().find_map(|m| m.eval_loss),
        tokens_per_s: last.and_then(|m| m.tokens_per_s),
        eta_s: None,
    };
    if job.status.is_live() {
        if let (Some(first), Some(last), Some(total)) = (metrics.first(), last, p.total) {
            if last.step > first.step {
                let per_step =
                    (last.at - first.at) as f64 / 1000.0 / (last.step - first.step) as f64;
                p.eta_s = Some(per_step * (total - last.step).max(0) as f64);
            }
        }
    }
    p
}

/// `42s`, `3m05s`, `1h02m`.
pub fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_inside_arguments_and_unknown_ones_fail() {
        let vars: BTreeMap<&str, String> =
            [("data", "/d.jsonl".to_string()), ("out", "/o".to_string())].into();
        assert_eq!(expand("--data={data}", &vars).unwrap(), "--data=/d.jsonl");
        assert!(expand("{out}/x {json}", &BTreeMap::new()).is_err());
        assert_eq!(expand("{\"a\": 1}", &vars).unwrap(), "{\"a\": 1}");
        let err = expand("{dta}", &vars).unwrap_err().to_string();
        assert!(err.contains("{dta}") && err.contains("{data}"), "{err}");
    }

    #[test]
    fn builtin_recipes_parse_and_name_their_environments() {
        let all = recipes(&TrainConfig::default()).unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["mlx", "peft"]);
        for def in all.values() {
            environment(def.environment.as_deref().unwrap()).unwrap();
            assert_eq!(def.progress, "json");
        }
    }
}
