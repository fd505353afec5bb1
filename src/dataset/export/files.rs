//! Where an export goes: default file names, the temp file renamed into place, split
//! directories, `dataset_info.json`, removing what a dead export left behind.

use super::*;
use crate::dataset::Result;
use crate::dataset::{Format, Split};
use crate::engine::llama::Tokenizer;
use crate::error::Context as _;
use crate::store::Store;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where an export's files go: one file, or a directory of split files.
pub fn is_directory_output(opts: &ExportOptions) -> bool {
    opts.format.is_directory() || !opts.split.is_none()
}

/// Where an export goes when no path is given: `<dir>/<format>-<UTC time>`, a `.jsonl`
/// file or (mlx, split) a directory.
pub fn default_output(dir: &Path, opts: &ExportOptions) -> PathBuf {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_default();
    let name = format!("{}-{stamp}", opts.format.name());
    if is_directory_output(opts) {
        dir.join(name)
    } else {
        dir.join(format!("{name}.jsonl"))
    }
}

/// Writes an export to `path` (a file, or a directory for `mlx` and split exports),
/// each file under a temporary name first, renamed when complete.
pub fn write(
    store: &Store,
    opts: &ExportOptions,
    tok: Option<&Tokenizer>,
    path: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    let dir_output = is_directory_output(opts);
    if !dir_output && path.is_dir() {
        crate::fail!(
            "{}: is a directory, but {} writes one file; give a file name",
            path.display(),
            opts.format
        );
    }
    let dir = if dir_output {
        path.to_path_buf()
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    let created = !dir.exists();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    remove_dead_temp_files(&dir);
    let final_path = |s: Split| -> PathBuf {
        if dir_output {
            dir.join(format!("{}.jsonl", s.name()))
        } else {
            path.to_path_buf()
        }
    };
    let tmp_path = |s: Split| -> PathBuf {
        let f = final_path(s);
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        f.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
    };
    let mut writers: BTreeMap<Split, std::io::BufWriter<std::fs::File>> = BTreeMap::new();
    let mut report = None;
    let result = (|| -> Result<()> {
        let mut sink = |s: Split, line: &str| -> Result<()> {
            let w = match writers.entry(s) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let tmp = tmp_path(s);
                    let f = std::fs::File::create(&tmp)
                        .with_context(|| format!("creating {}", tmp.display()))?;
                    e.insert(std::io::BufWriter::new(f))
                }
            };
            Ok(w.write_all(line.as_bytes())
                .and_then(|_| w.write_all(b"\n"))
                .with_context(|| format!("writing {}", tmp_path(s).display()))?)
        };
        let mut r = run(store, opts, tok, &mut sink, progress)?;
        if !dir_output && writers.is_empty() {
            // An empty export still leaves the file, so scripts find what they asked for.
            let tmp = tmp_path(Split::Train);
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            writers.insert(Split::Train, std::io::BufWriter::new(f));
        }
        for (s, w) in std::mem::take(&mut writers) {
            let tmp = tmp_path(s);
            let f = w
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all().map(|_| f))
                .with_context(|| format!("writing {}", tmp.display()))?;
            drop(f);
            let fin = final_path(s);
            std::fs::rename(&tmp, &fin)
                .with_context(|| format!("renaming {} to {}", tmp.display(), fin.display()))?;
            r.files.push(fin);
        }
        report = Some(r);
        Ok(())
    })();
    if let Err(e) = result {
        // Nothing half-written stays: our temporary files, and a directory we made.
        for s in Split::ALL {
            let _ = std::fs::remove_file(tmp_path(s));
        }
        if created {
            if let Some(r) = &report {
                for f in &r.files {
                    let _ = std::fs::remove_file(f);
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
        return Err(e);
    }
    let mut report = report.expect("set when the export succeeded");
    if dir_output {
        // Stale split files of an earlier export into the same directory would mix in.
        for s in Split::ALL {
            let f = final_path(s);
            if !report.files.contains(&f) && f.exists() {
                std::fs::remove_file(&f)?;
            }
        }
    }
    if opts.format == Format::Mlx && !report.files.iter().any(|f| f.ends_with("valid.jsonl")) {
        report.notes.push(
            "no valid.jsonl: mlx_lm.lora needs a validation set; add --split valid=0.1".into(),
        );
    }
    if matches!(opts.format, Format::Sharegpt | Format::Alpaca) && !report.files.is_empty() {
        let info = write_dataset_info(opts, path, &dir, &report.files)?;
        report.notes.push(format!(
            "dataset_info.json entry written: {}",
            info.display()
        ));
    }
    Ok(report)
}

/// Removes the temporary files (`.NAME.tmp-PID`) that exports killed before they could
/// finish left in `dir`; a file of a process that still runs is left alone.
pub fn remove_dead_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp-"))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !crate::os::process_alive(pid, None) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// LLaMA-Factory's `dataset_info.json` beside the data: one entry per file, merged into
/// an existing file (other entries kept).
pub(super) fn write_dataset_info(
    opts: &ExportOptions,
    path: &Path,
    dir: &Path,
    files: &[PathBuf],
) -> Result<PathBuf> {
    let info_path = dir.join("dataset_info.json");
    let mut info: Map<String, Value> = if info_path.exists() {
        let text = std::fs::read_to_string(&info_path)?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a JSON object; not touching it",
                info_path.display()
            )
        })?
    } else {
        Map::new()
    };
    let base = opts.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "arbor".into())
    });
    for f in files {
        let file_name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let name = if is_directory_output(opts) {
            format!("{base}_{}", file_name.trim_end_matches(".jsonl"))
        } else {
            base.clone()
        };
        let entry = if opts.format == Format::Sharegpt {
            json!({
                "file_name": file_name,
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
                "tags": {
                    "role_tag": "from", "content_tag": "value",
                    "user_tag": "human", "assistant_tag": "gpt",
                    "observation_tag": "observation", "function_tag": "function_call",
                    "system_tag": "system"
                }
            })
        } else {
            json!({
                "file_name": file_name,
                "formatting": "alpaca",
                "columns": {"prompt": "instruction", "query": "input", "response": "output",
                            "system": "system", "history": "history"}
            })
        };
        info.insert(name, entry);
    }
    let tmp = dir.join(format!(".dataset_info.json.tmp-{}", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&Value::Object(info))? + "\n",
    )?;
    std::fs::rename(&tmp, &info_path)?;
    Ok(info_path)
}
