//! `arbor doctor`: what is installed, what is broken, and what to do about it.

use super::*;
use crate::app::{Env, Exit};
use anyhow::Result;
use std::path::PathBuf;

/// How many of the model's layers go to the GPU: llama.cpp offloads `gpu_layers` of the
/// blocks plus the output layer (`block_count + 1` in all).
fn offload(env: &Env, info: &crate::gguf::GgufInfo) -> String {
    let asked = env.config.gpu_layers;
    let total = info.block_count().map(|b| b + 1);
    let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
    if !crate::engine::llama::supports_gpu_offload() {
        return if asked > 0 {
            format!(
                "none: gpu_layers = {asked}, but this build has no GPU backend (build with \
                 --features cuda, metal or vulkan; see docs/performance.md)"
            )
        } else {
            format!("none: 0{of} layers (a CPU build; gpu_layers = 0)")
        };
    }
    let on_gpu = total.map_or(i64::from(asked), |t| t.min(i64::from(asked)));
    format!("{on_gpu}{of} layers on the GPU (gpu_layers = {asked})")
}

pub(super) fn doctor(env: &Env, config_problem: Option<String>) -> Result<i32> {
    let mut problems = Vec::new();
    println!("arbor {}", env!("CARGO_PKG_VERSION"));
    println!("  llama.cpp        llama-cpp-2 0.1.160 (embedded)");
    println!("  sqlite           {}", rusqlite::version());
    let mut features = vec!["cpu"];
    if cfg!(feature = "cuda") {
        features.push("cuda");
    }
    if cfg!(feature = "metal") {
        features.push("metal");
    }
    if cfg!(feature = "vulkan") {
        features.push("vulkan");
    }
    println!(
        "  build features   {} (GPU offload {})",
        features.join(", "),
        if crate::engine::llama::supports_gpu_offload() {
            "available"
        } else {
            "not available"
        }
    );
    println!("paths");
    println!("  config           {}", env.paths.config_file().display());
    println!("  data             {}", env.paths.data_dir.display());
    println!("  database         {}", env.db.display());
    println!("  models           {}", env.paths.models_dir().display());
    println!("  rater            {}", env.config.rater());
    println!("  threads          {}", env.threads);
    println!("  KV cache         {}", super::cache::describe(env));
    println!("configuration");
    match config_problem {
        None if env.paths.config_file().exists() => println!("  config.toml      ok"),
        None => println!("  config.toml      none (defaults)"),
        Some(e) => {
            println!("  config.toml      BROKEN: {e}");
            problems.push(e);
        }
    }
    let keymap = env.paths.keymap_file();
    match crate::tui::keymap::Keymap::load(&keymap) {
        Ok(_) if keymap.exists() => println!("  keymap.toml      ok"),
        Ok(_) => println!("  keymap.toml      none (default keys)"),
        Err(e) => {
            println!("  keymap.toml      BROKEN: {e}");
            problems.push(e);
        }
    }
    let theme = env.paths.theme_file();
    let name = env.config.theme.as_deref().unwrap_or("dark");
    match crate::tui::theme::Theme::load(Some(name), &theme) {
        Ok(_) if theme.exists() => println!("  theme            {name}, with theme.toml over it"),
        Ok(_) => println!("  theme            {name}"),
        Err(e) => {
            println!("  theme            BROKEN: {e}");
            problems.push(e);
        }
    }
    if let Some(t) = env.template.as_deref() {
        if let Err(e) = crate::engine::template::check_builtin_name(t) {
            println!("  template         BROKEN: {e}");
            problems.push(format!("--template {t}: {e}"));
        }
    }
    if env.adapter.is_some() {
        match env.adapter_file() {
            Ok(Some((p, scale))) => println!(
                "  adapter          {} ×{scale}, on {}",
                p.display(),
                env.model.display()
            ),
            Ok(None) => {}
            Err(e) => {
                let e = format!("{e:#}");
                println!("  adapter          BROKEN: {e}");
                problems.push(e);
            }
        }
    }
    println!("model");
    match env.check_model() {
        Ok(info) => {
            println!("  name             {}", info.name());
            println!("  file             {}", env.model.display());
            println!(
                "  architecture     {}",
                info.architecture().unwrap_or("unknown")
            );
            println!("  size             {:.1} MB", info.file_size as f64 / 1e6);
            println!("  GPU offload      {}", offload(env, &info));
            println!(
                "  context length   {}",
                info.context_length()
                    .map(|c| c.to_string())
                    .unwrap_or("unknown".into())
            );
            let sha = PathBuf::from(format!("{}.sha256", env.model.display()));
            if let Ok(rec) = std::fs::read_to_string(&sha) {
                println!(
                    "  sha256 (setup)   {}",
                    rec.split_whitespace().next().unwrap_or("")
                );
            }
            match (info.chat_template(), env.template.as_deref()) {
                (_, Some(t)) => println!("  chat template    built-in {t} (chosen)"),
                (Some(_), None) => println!("  chat template    yes, in the model's metadata"),
                (None, None) => match info
                    .architecture()
                    .and_then(crate::engine::template::builtin_for_architecture)
                {
                    Some(b) => println!(
                        "  chat template    none in the model; using built-in {b} for its architecture"
                    ),
                    None => {
                        println!("  chat template    none in the model, and no built-in fits");
                        problems.push(
                            "the model has no chat template: pass --template chatml|gemma|llama3"
                                .to_string(),
                        );
                    }
                },
            }
        }
        Err(e) => {
            println!("  MISSING          {e}");
            problems.push(e.to_string());
        }
    }
    println!("database");
    match env.store() {
        Ok(store) => {
            let c = {
                // An import still running is not counted yet.
                let _visible = store.visible_only(true)?;
                store.counts()?
            };
            println!(
                "  schema version   {} (current {})",
                store.schema_version()?,
                crate::store::SCHEMA_VERSION
            );
            println!(
                "  rows             {} conversations, {} messages, {} ratings, {} tags, {} jobs, {} adapters",
                c.conversations, c.nodes, c.ratings, c.tags, c.jobs, c.adapters
            );
        }
        Err(e) => {
            println!("  ERROR            {e:#}");
            problems.push(format!("{e:#}"));
        }
    }
    println!("training recipes");
    for (name, verdict) in train::doctor_lines(env) {
        println!("  {name:<16} {verdict}");
    }
    if problems.is_empty() {
        println!("\nall good");
        Ok(0)
    } else {
        println!();
        for p in &problems {
            eprintln!("problem: {p}");
        }
        Err(Exit(2, format!("{} problem(s) found", problems.len())).into())
    }
}
