//! `arbor models`: the default model, the models directory and registered adapters.

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
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(env.paths.models_dir()) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "gguf") {
                paths.push(p);
            }
        }
    }
    paths.sort();
    if env.model.exists() && !paths.contains(&env.model) {
        paths.insert(0, env.model.clone());
    }
    let mut list = Vec::new();
    for p in &paths {
        match describe_model(p) {
            Ok(v) => list.push(v),
            Err(e) => list
                .push(serde_json::json!({"path": p.display().to_string(), "error": e.to_string()})),
        }
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
            "no models in {} — run scripts/setup.sh, or pass --model PATH",
            env.paths.models_dir().display()
        );
    }
    for (v, p) in list.iter().zip(&paths) {
        let mark = if *p == env.model { "*" } else { " " };
        if let Some(e) = v.get("error") {
            println!("{mark} {}  ERROR {}", p.display(), e.as_str().unwrap_or(""));
            continue;
        }
        println!(
            "{mark} {:<28} {:<9} {:<8} {:>7.1} MB  ctx {:<6} template {:<4} {}",
            v["name"].as_str().unwrap_or(""),
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
