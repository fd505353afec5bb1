//! `arbor merge OTHER.db [--dry-run] [--json]`: another curator's work brought in.

use super::*;

pub(super) fn merge(env: &Env, other: &std::path::Path, dry_run: bool, json: bool) -> Result<i32> {
    let store = env.store()?;
    let r = store.merge_from(other, dry_run)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    println!(
        "{} {} into {}: {} conversations, {} messages, {} ratings, {} tags, {} preferences{}",
        if dry_run { "would merge" } else { "merged" },
        other.display(),
        env.db.display(),
        r.conversations,
        r.messages,
        r.ratings,
        r.tags,
        r.preferences,
        if dry_run {
            " (nothing written: --dry-run)"
        } else {
            ""
        }
    );
    if !r.conflicts.is_empty() {
        println!(
            "{} conflicts (one rater, one answer, different stars; the newer rating is kept):",
            r.conflicts.len()
        );
        let stars = |s: Option<u8>| s.map_or("none".to_string(), |s| format!("{s}★"));
        for c in &r.conflicts {
            println!(
                "  message {} by {}: here {}, there {} → {}",
                c.node,
                c.rater,
                stars(c.here),
                stars(c.there),
                stars(c.kept)
            );
        }
    }
    Ok(0)
}
