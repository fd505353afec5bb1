//! `arbor cache`: conversations' KV states on disk (see docs/performance.md).

use crate::app::Env;
use crate::engine::llama::kvstate;
use anyhow::{Context as _, Result};

#[derive(clap::Subcommand, Debug)]
pub enum CacheAction {
    /// Where the KV states are, how many, how large, and the limit (the default)
    Info,
    /// Delete every saved KV state (the next turn of each conversation reads it again)
    Clear,
}

pub(super) fn cache(env: &Env, action: Option<CacheAction>) -> Result<i32> {
    let dir = env.paths.kv_cache_dir();
    match action.unwrap_or(CacheAction::Info) {
        CacheAction::Info => {
            println!("{}", describe(env));
            Ok(0)
        }
        CacheAction::Clear => {
            let (files, bytes) =
                kvstate::clear(&dir).with_context(|| format!("clearing {}", dir.display()))?;
            println!(
                "removed {files} KV states ({}) from {}",
                mb(bytes),
                dir.display()
            );
            Ok(0)
        }
    }
}

/// "N states, X MB of LIMIT, in DIR" (or "off").
pub(super) fn describe(env: &Env) -> String {
    let dir = env.paths.kv_cache_dir();
    let (files, bytes) = kvstate::usage(&dir);
    match env.kv_cache() {
        Some((_, limit)) => format!(
            "{files} states, {} of {} (kv_cache_mb), in {}",
            mb(bytes),
            mb(limit),
            dir.display()
        ),
        None => format!(
            "off (kv_cache_mb = 0); {files} states, {} left in {}",
            mb(bytes),
            dir.display()
        ),
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}
