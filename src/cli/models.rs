//! `arbor models`: the models on this machine (Arbor's directory, Ollama, LM Studio, the
//! Hugging Face and llama.cpp caches, `model_dirs`) and registered adapters.

use crate::app::Env;
use anyhow::Result;
use std::path::{Path, PathBuf};

pub(super) fn describe_model(path: &Path) -> Result<serde_json::Value> {
    let info = crate::gguf::read(path)?;
    Ok(serde_json::json!({
        "name": info.name(),
        "path": path.display().to_string(),
        "type": info.file_type(),
        "architecture": info.architecture(),
        "size_bytes": info.file_size,
        "context_length": info.context_length(),
        "chat_template": info.chat_template().is_some(),
    }))
}

pub(super) fn models(env: &Env, json: bool) -> Result<i32> {
    let roots = crate::app::model_roots(&env.paths, &env.config);
    // The model in use, when it is a file found nowhere else (a path given by hand).
    let found = crate::models::discover_with(&roots, &[&env.model]);
    let paths: Vec<PathBuf> = found.iter().map(|f| f.path.clone()).collect();
    let mut list = Vec::new();
    for f in &found {
        let mut v = match describe_model(&f.path) {
            Ok(v) => v,
            Err(e) => {
                serde_json::json!({"path": f.path.display().to_string(), "error": e.to_string()})
            }
        };
        v["name"] = f.name.clone().into();
        v["source"] = f.source.into();
        v["size_bytes"] = f.size.into();
        v["parts"] = f.parts.into();
        v["in_use"] = crate::models::same_file(&f.path, &env.model).into();
        if !f.missing_parts.is_empty() {
            v["error"] = format!(
                "split model missing part(s) {:?} of {}",
                f.missing_parts, f.parts
            )
            .into();
        }
        list.push(v);
    }
    let adapters = env.store()?.adapters()?;
    if json {
        for a in &adapters {
            let mut v = serde_json::to_value(a)?;
            v["type"] = "adapter".into();
            v["loads"] = Path::new(&a.path).is_file().into();
            list.push(v);
        }
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if list.is_empty() {
        println!(
            "no models found — run scripts/setup.sh, pass --model PATH, or list directories in \
             `model_dirs` (config.toml). Searched:"
        );
        for (source, p) in roots.searched() {
            println!("  {source:<12} {}", p.display());
        }
    }
    for (v, p) in list.iter().zip(&paths) {
        let mark = if v["in_use"] == true { "*" } else { " " };
        let name = v["name"].as_str().unwrap_or("");
        let source = v["source"].as_str().unwrap_or("");
        if let Some(e) = v.get("error") {
            println!(
                "{mark} {name:<34} {source:<11} ERROR {}  {}",
                e.as_str().unwrap_or(""),
                p.display()
            );
            continue;
        }
        let parts = match v["parts"].as_u64() {
            Some(n) if n > 1 => format!(" ({n} parts)"),
            _ => String::new(),
        };
        println!(
            "{mark} {name:<34} {source:<11} {:<9} {:<8} {:>8.1} MB{parts}  ctx {:<6} template {:<3}  {}",
            v["type"].as_str().unwrap_or(""),
            v["architecture"].as_str().unwrap_or(""),
            v["size_bytes"].as_u64().unwrap_or(0) as f64 / 1e6,
            v["context_length"]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or("?".into()),
            if v["chat_template"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            p.display()
        );
    }
    if !adapters.is_empty() {
        println!("\nadapters (chat with one: arbor --adapter NAME)");
    }
    for a in &adapters {
        let loss = a
            .metrics
            .as_ref()
            .and_then(|m| Some((m["first_loss"].as_f64()?, m["last_loss"].as_f64()?)))
            .map(|(f, l)| format!("loss {f:.2}→{l:.2}"))
            .unwrap_or_default();
        println!(
            "  {:<20} job {:<4} on {:<32} {:<18} {}{}",
            a.name,
            a.job_id.map(|j| j.to_string()).unwrap_or("-".into()),
            Path::new(&a.base_model)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            loss,
            a.path,
            if Path::new(&a.path).is_file() {
                ""
            } else {
                "  (file missing)"
            }
        );
    }
    Ok(0)
}
