//! A job before it runs: its directory, the snapshot of the data it trains on (made by
//! the dataset exporter, or a copy of `--data`), the token files of the `tokens` recipes,
//! `params.json` and `recipe.json`.

use super::{write_atomic, JobFiles, TrainParams};
use crate::config::{Paths, RecipeDef};
use crate::dataset::export::{self, ExportOptions};
use crate::dataset::{import, Format};
use crate::domain::ChatMessage;
use crate::domain::Role;
use crate::engine::llama::Tokenizer;
use crate::error::Context as _;
use crate::store::{NewJob, Store};
use crate::train::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `arbor train` (or the studio) asks for.
pub struct JobRequest {
    pub recipe_name: String,
    pub recipe: RecipeDef,
    /// A dataset file (or mlx-lm directory) instead of an export of the database.
    pub data: Option<PathBuf>,
    /// The export filters, when the data comes from the database.
    pub export: ExportOptions,
    pub model: PathBuf,
    /// Chat template override (`--template`), as the engine would use it.
    pub template: Option<String>,
    pub params: TrainParams,
    /// Where the environments live (for the transformers copy of the base model).
    pub env_root: PathBuf,
}

/// What preparing found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Prepared {
    pub id: i64,
    pub train: usize,
    pub valid: usize,
    /// Examples cut to `max_seq_len` tokens.
    pub truncated: usize,
    /// Examples with nothing left to train on (no trained answer, or cut away).
    pub skipped: usize,
}

/// Makes the job: a queued row, its directory and files. Nothing is left behind when
/// this fails (the row and the directory are removed).
pub fn prepare(store: &Store, paths: &Paths, req: &JobRequest) -> Result<Prepared> {
    let id = store.create_job(&NewJob {
        recipe: req.recipe_name.clone(),
        base_model: req.model.display().to_string(),
        data_path: String::new(),
        params: serde_json::to_value(&req.params)?,
    })?;
    let files = JobFiles::new(paths, id);
    match fill(store, &files, req, id) {
        Ok(p) => Ok(p),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&files.dir);
            let _ = store.delete_job(id);
            Err(e)
        }
    }
}

fn fill(store: &Store, files: &JobFiles, req: &JobRequest, id: i64) -> Result<Prepared> {
    let _ = std::fs::remove_dir_all(&files.dir);
    std::fs::create_dir_all(&files.dir)
        .with_context(|| format!("creating {}", files.dir.display()))?;
    let kind = req.recipe.data.as_deref().unwrap_or("openai");
    // 1. The snapshot.
    let data = match &req.data {
        Some(src) => copy_snapshot(src, &files.dir)?,
        None => {
            let mut opts = req.export.clone();
            opts.format = if kind == "mlx" {
                Format::Mlx
            } else {
                Format::Openai
            };
            let out = if export::is_directory_output(&opts) {
                files.dir.join("data")
            } else {
                files.dir.join("data.jsonl")
            };
            let report = export::write(store, &opts, None, &out, &mut |_, _| {})?;
            if report.total() == 0 {
                crate::fail!(
                    "no examples to train on: the filters left nothing (try `arbor export --dry-run` \
                     with the same filters, or lower --min-rating)"
                );
            }
            out
        }
    };
    // 2. What the recipe reads.
    let mut prepared = Prepared {
        id,
        ..Prepared::default()
    };
    let mut params = serde_json::to_value(&req.params)?;
    let set = |params: &mut serde_json::Value, k: &str, v: &Path| {
        params[k] = serde_json::Value::String(v.display().to_string());
    };
    set(&mut params, "model", &req.model);
    set(&mut params, "out", &files.out());
    set(&mut params, "data", &data);
    set(&mut params, "hf_cache", &req.env_root.join("hf-cache"));
    // The engine's template (the model's own or the built-in it falls back to), for recipes
    // that render the chat themselves (mlx).
    let tok = Tokenizer::load(&req.model, req.template.as_deref())?;
    params["chat_template"] = serde_json::Value::String(tok.template().text.clone());
    match kind {
        "tokens" => {
            let (train, valid) =
                tokenize(&data, &tok, req.params.max_seq_len, files, &mut prepared)?;
            set(&mut params, "train", &train);
            match valid {
                Some(v) => set(&mut params, "valid", &v),
                None => params["valid"] = serde_json::Value::Null,
            }
        }
        "mlx" | "openai" => {
            let parsed = import::read(&data, None)?;
            if let Some(p) = parsed.problems.first() {
                crate::fail!("{p}");
            }
            for (file, _, _) in &parsed.records {
                if file.file_name().is_some_and(|n| n == "valid.jsonl") {
                    prepared.valid += 1;
                } else {
                    prepared.train += 1;
                }
            }
        }
        other => crate::fail!(
            "recipe {}: unknown data kind {other:?} (openai, mlx, tokens)",
            req.recipe_name
        ),
    }
    if prepared.train == 0 {
        crate::fail!("no examples to train on in {}", data.display());
    }
    write_atomic(&files.params(), &serde_json::to_string_pretty(&params)?)?;
    write_atomic(&files.recipe(), &serde_json::to_string_pretty(&req.recipe)?)?;
    for (name, text) in super::SCRIPTS {
        std::fs::write(files.dir.join(name), text)?;
    }
    store.set_job_prepared(
        id,
        &files.dir.display().to_string(),
        &data.display().to_string(),
        (prepared.train + prepared.valid) as i64,
    )?;
    Ok(prepared)
}

/// Copies `--data` (a file, or an mlx-lm directory) into the job's directory.
fn copy_snapshot(src: &Path, dir: &Path) -> Result<PathBuf> {
    if src.is_dir() {
        let dest = dir.join("data");
        std::fs::create_dir_all(&dest)?;
        for f in import::files_of(src)? {
            let name = f.file_name().context("a data file without a name")?;
            std::fs::copy(&f, dest.join(name))
                .with_context(|| format!("copying {}", f.display()))?;
        }
        Ok(dest)
    } else {
        let dest = dir.join("data.jsonl");
        std::fs::copy(src, &dest).with_context(|| format!("reading {}", src.display()))?;
        Ok(dest)
    }
}

/// Every example of the snapshot as token ids and labels (-100 where the loss does not
/// count), through the engine's tokenizer and chat template.
fn tokenize(
    data: &Path,
    tok: &Tokenizer,
    max_len: u32,
    files: &JobFiles,
    prepared: &mut Prepared,
) -> Result<(PathBuf, Option<PathBuf>)> {
    let parsed = import::read(data, None)?;
    if let Some(p) = parsed.problems.first() {
        crate::fail!("{p} ({} bad records in all)", parsed.problems.len());
    }
    if parsed.format.is_preference() {
        crate::fail!(
            "{}: {} holds preference pairs; the LoRA recipes train on conversations (openai, sharegpt, mlx…)",
            data.display(),
            parsed.format.name()
        );
    }
    let train_path = files.dir.join("train.tokens.jsonl");
    let valid_path = files.dir.join("valid.tokens.jsonl");
    let mut train = std::io::BufWriter::new(std::fs::File::create(&train_path)?);
    let mut valid = std::io::BufWriter::new(std::fs::File::create(&valid_path)?);
    for (file, line, rec) in &parsed.records {
        let is_valid = file.file_name().is_some_and(|n| n == "valid.jsonl");
        if file.file_name().is_some_and(|n| n == "test.jsonl") {
            continue;
        }
        for path in rec.paths() {
            let mut msgs = Vec::new();
            let mut trained = Vec::new();
            if !rec.system.is_empty() {
                msgs.push(ChatMessage::new(Role::System, rec.system.clone()));
                trained.push(false);
            }
            for m in &path {
                msgs.push(ChatMessage::from(*m));
                trained.push(m.role == Role::Assistant && m.weight != Some(0) && !m.negative);
            }
            let (mut ids, mut mask) = tok
                .training_tokens(&msgs, rec.tools.as_ref(), &trained)
                .map_err(|e| {
                    crate::train::TrainError::Msg(format!("{}:{line}: {e}", file.display()))
                })?;
            if ids.len() > max_len as usize {
                ids.truncate(max_len as usize);
                mask.truncate(max_len as usize);
                prepared.truncated += 1;
            }
            if !mask.iter().any(|m| *m) {
                prepared.skipped += 1;
                continue;
            }
            let ids: Vec<i32> = ids.iter().map(|t| t.0).collect();
            let labels: Vec<i32> = ids
                .iter()
                .zip(&mask)
                .map(|(t, m)| if *m { *t } else { -100 })
                .collect();
            let line = serde_json::json!({"input_ids": ids, "labels": labels});
            if is_valid {
                writeln!(valid, "{line}")?;
                prepared.valid += 1;
            } else {
                writeln!(train, "{line}")?;
                prepared.train += 1;
            }
        }
    }
    train.flush()?;
    valid.flush()?;
    let valid = (prepared.valid > 0).then_some(valid_path);
    Ok((train_path, valid))
}
