//! `arbor backup [PATH]`: a consistent copy of the database through SQLite's online
//! backup API, safe while the studio, an import or a training job writes.

use super::*;

pub(super) fn backup(env: &Env, path: Option<PathBuf>) -> Result<i32> {
    let store = env.store()?;
    let path = match path {
        Some(p) => p,
        None => {
            let now = time::OffsetDateTime::now_utc();
            let stamp = now
                .format(&time::macros::format_description!(
                    "[year][month][day]-[hour][minute][second]"
                ))
                .unwrap_or_default();
            env.paths.backups_dir().join(format!("arbor-{stamp}.db"))
        }
    };
    if path.exists() {
        return Err(Exit(
            2,
            format!(
                "{}: exists; give another path (a backup never overwrites)",
                path.display()
            ),
        )
        .into());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Exit(1, format!("{}: {e}", dir.display())))?;
    }
    store.backup_to(&path)?;
    let copy = crate::store::Store::open_again(&path)?;
    let counts = copy.counts()?;
    println!(
        "backed up {} to {} ({} conversations, {} messages)",
        env.db.display(),
        path.display(),
        counts.conversations,
        counts.nodes
    );
    Ok(0)
}
