//! The models you already have: GGUF files in Arbor's models directory, Ollama's store,
//! LM Studio's, the Hugging Face cache, llama.cpp's cache and the directories in
//! `model_dirs`. Files are used where they are, never copied. A split GGUF
//! (`NAME-00001-of-00003.gguf` …) is one model, loaded through its first part.

use std::path::{Path, PathBuf};

/// One model found on this machine.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Found {
    /// What `--model` accepts: `ollama:NAME:TAG`, `hf:ORG/REPO/FILE`, or the file name.
    pub name: String,
    /// Where it was found: `arbor`, `ollama`, `lmstudio`, `huggingface`, `llama.cpp`,
    /// `model_dirs`.
    pub source: &'static str,
    /// The file to load (a split model's first part).
    pub path: PathBuf,
    /// Bytes, all parts together.
    pub size: u64,
    /// Parts of a split model (1 otherwise).
    pub parts: u32,
    /// Parts a split model lacks (it cannot load).
    pub missing_parts: Vec<u32>,
}

impl Found {
    /// A file as a model of its own (one given by path).
    pub fn file(path: &Path, source: &'static str) -> Self {
        Self {
            name: path.display().to_string(),
            source,
            path: path.to_path_buf(),
            size: std::fs::metadata(path).map_or(0, |m| m.len()),
            parts: 1,
            missing_parts: Vec::new(),
        }
    }
}

/// One line on a found model: architecture, size, context, chat template — or why it
/// cannot load; and whether it can.
pub fn describe(f: &Found) -> (String, bool) {
    if !f.missing_parts.is_empty() {
        return (
            format!("missing part(s) {:?} of {}", f.missing_parts, f.parts),
            false,
        );
    }
    match crate::gguf::check(&f.path) {
        Ok(i) if i.file_type() == "adapter" => ("a LoRA adapter, not a model".into(), false),
        Ok(i) => {
            let parts = if f.parts > 1 {
                format!(" in {} parts", f.parts)
            } else {
                String::new()
            };
            (
                format!(
                    "{} · {:.1} MB{parts} · ctx {} · template {}",
                    i.architecture().unwrap_or("?"),
                    f.size as f64 / 1e6,
                    i.context_length().map_or("?".into(), |c| c.to_string()),
                    if i.chat_template().is_some() {
                        "yes"
                    } else {
                        "built-in"
                    }
                ),
                true,
            )
        }
        Err(e) => (e.to_string(), false),
    }
}

/// Where to look: the environment and the home directory are passed in so tests (and
/// `arbor doctor`) see exactly what a command sees.
pub struct Roots {
    pub arbor_models: PathBuf,
    pub model_dirs: Vec<PathBuf>,
    pub home: Option<PathBuf>,
    pub env: EnvLookup,
}

/// Reads an environment variable as a path (`None`: unset or empty).
pub type EnvLookup = Box<dyn Fn(&str) -> Option<PathBuf>>;

impl Roots {
    /// This process's environment and home directory.
    pub fn from_env(arbor_models: PathBuf, model_dirs: Vec<PathBuf>) -> Self {
        Self {
            arbor_models,
            model_dirs,
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            env: Box::new(|k| {
                std::env::var_os(k)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            }),
        }
    }

    fn home(&self, rel: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(rel))
    }

    fn ollama(&self) -> Option<PathBuf> {
        (self.env)("OLLAMA_MODELS").or_else(|| self.home(".ollama/models"))
    }

    fn hf_hub(&self) -> Option<PathBuf> {
        (self.env)("HF_HUB_CACHE")
            .or_else(|| (self.env)("HF_HOME").map(|h| h.join("hub")))
            .or_else(|| self.home(".cache/huggingface/hub"))
    }

    fn llama_cache(&self) -> Option<PathBuf> {
        (self.env)("LLAMA_CACHE").or_else(|| self.home(".cache/llama.cpp"))
    }

    fn lmstudio(&self) -> Vec<PathBuf> {
        [".lmstudio/models", ".cache/lm-studio/models"]
            .iter()
            .filter_map(|r| self.home(r))
            .collect()
    }

    /// Every place searched, with its source, for messages.
    pub fn searched(&self) -> Vec<(&'static str, PathBuf)> {
        let mut v = vec![("arbor", self.arbor_models.clone())];
        v.extend(self.ollama().map(|p| ("ollama", p)));
        v.extend(self.lmstudio().into_iter().map(|p| ("lmstudio", p)));
        v.extend(self.hf_hub().map(|p| ("huggingface", p)));
        v.extend(self.llama_cache().map(|p| ("llama.cpp", p)));
        v.extend(self.model_dirs.iter().map(|p| ("model_dirs", p.clone())));
        v
    }
}

/// Every model under `roots`, in the order of `Roots::searched`, each file once.
pub fn discover(roots: &Roots) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    let mut add = |mut found: Vec<Found>| {
        found.sort_by(|a, b| a.name.cmp(&b.name));
        for f in found {
            if !out.iter().any(|o| same_file(&o.path, &f.path)) {
                out.push(f);
            }
        }
    };
    add(gguf_files(&roots.arbor_models, 1, "arbor", |p| {
        file_name(p)
    }));
    if let Some(o) = roots.ollama() {
        add(ollama(&o));
    }
    for d in roots.lmstudio() {
        add(gguf_files(&d, 4, "lmstudio", file_name));
    }
    if let Some(h) = roots.hf_hub() {
        add(huggingface(&h));
    }
    if let Some(l) = roots.llama_cache() {
        add(gguf_files(&l, 1, "llama.cpp", file_name));
    }
    for d in &roots.model_dirs {
        add(gguf_files(d, 6, "model_dirs", file_name));
    }
    out
}

/// `discover`, with the files in `given` (a model given by path, the one a session started
/// on) listed first, as source `given`, where no store holds them.
pub fn discover_with(roots: &Roots, given: &[&Path]) -> Vec<Found> {
    let mut found = discover(roots);
    for g in given.iter().rev() {
        if g.is_file() && !found.iter().any(|f| same_file(&f.path, g)) {
            found.insert(0, Found::file(g, "given"));
        }
    }
    found
}

/// Whether two paths name one file (links and relative paths resolved).
pub fn same_file(a: impl AsRef<Path>, b: impl AsRef<Path>) -> bool {
    let (a, b) = (a.as_ref(), b.as_ref());
    a == b
        || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// Why a name does not give one model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResolveError {
    #[error("no model named {name} (not a file, and not a name `arbor models` lists; searched {searched})")]
    NotFound { name: String, searched: String },
    #[error("{name} matches {} models; give one of these names (or a path): {}", .matches.len(), .matches.join(", "))]
    Ambiguous { name: String, matches: Vec<String> },
    #[error("{name} is a split model missing part(s) {missing:?} of {parts} beside {path}")]
    MissingParts {
        name: String,
        path: PathBuf,
        parts: u32,
        missing: Vec<u32>,
    },
}

/// The file `name` means: an existing path as it is, else a model `discover` found by its
/// name (`ollama:NAME` means tag `latest`; `.gguf` may be left off a file name).
pub fn resolve(name: &str, roots: &Roots) -> Result<PathBuf, ResolveError> {
    let as_path = Path::new(name);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    let found = discover(roots);
    let wanted = |f: &Found| {
        f.name == name
            || f.name.strip_suffix(".gguf") == Some(name)
            || (name.starts_with("ollama:")
                && name.matches(':').count() == 1
                && f.name == format!("{name}:latest"))
            || (f.source == "huggingface" && f.name.rsplit('/').next() == Some(name))
    };
    let matches: Vec<&Found> = found.iter().filter(|f| wanted(f)).collect();
    match matches.as_slice() {
        [] => Err(ResolveError::NotFound {
            name: name.to_string(),
            searched: roots
                .searched()
                .iter()
                .map(|(s, p)| format!("{s} {}", p.display()))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        [one] if !one.missing_parts.is_empty() => Err(ResolveError::MissingParts {
            name: name.to_string(),
            path: one.path.clone(),
            parts: one.parts,
            missing: one.missing_parts.clone(),
        }),
        [one] => Ok(one.path.clone()),
        many => Err(ResolveError::Ambiguous {
            name: name.to_string(),
            matches: many
                .iter()
                .map(|f| format!("{} [{}]", unique_name(f), f.source))
                .collect(),
        }),
    }
}

/// A name that picks `f` alone: an `ollama:`/`hf:` name, else its path.
fn unique_name(f: &Found) -> String {
    if f.name.contains(':') {
        f.name.clone()
    } else {
        f.path.display().to_string()
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `NAME-00002-of-00005.gguf` → ("NAME", 2, 5).
pub fn split_part(file: &str) -> Option<(&str, u32, u32)> {
    let stem = file.strip_suffix(".gguf")?;
    let (rest, total) = stem.rsplit_once("-of-")?;
    let (prefix, part) = rest.rsplit_once('-')?;
    let ok = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(part) || !ok(total) {
        return None;
    }
    let (part, total) = (part.parse().ok()?, total.parse().ok()?);
    (part >= 1 && part <= total).then_some((prefix, part, total))
}

/// `*.gguf` under `dir` (to `depth` levels), split parts folded into their first part;
/// vision projectors (`mmproj*`) and LoRA adapters are not chat models and are left out.
fn gguf_files(
    dir: &Path,
    depth: usize,
    source: &'static str,
    name: impl Fn(&Path) -> String,
) -> Vec<Found> {
    let mut files = Vec::new();
    walk(dir, depth, &mut files);
    fold(files, source, name)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let fname = e.file_name().to_string_lossy().into_owned();
        if fname.starts_with('.') {
            continue;
        }
        // Follows symlinks (the Hugging Face cache's snapshots are links into blobs/).
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if depth > 1 {
                walk(&p, depth - 1, out);
            }
        } else if fname.ends_with(".gguf") && !fname.starts_with("mmproj") {
            out.push(p);
        }
    }
}

fn fold(files: Vec<PathBuf>, source: &'static str, name: impl Fn(&Path) -> String) -> Vec<Found> {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut out = Vec::new();
    for p in &files {
        let fname = file_name(p);
        match split_part(&fname) {
            Some((_, n, _)) if n > 1 => {} // folded into part 1
            Some((prefix, 1, total)) => {
                let part_path =
                    |n: u32| p.with_file_name(format!("{prefix}-{n:05}-of-{total:05}.gguf"));
                let missing: Vec<u32> = (2..=total).filter(|n| !part_path(*n).is_file()).collect();
                out.push(Found {
                    name: name(p),
                    source,
                    path: p.clone(),
                    size: (1..=total).map(|n| size(&part_path(n))).sum(),
                    parts: total,
                    missing_parts: missing,
                });
            }
            _ => {
                if crate::gguf::read(p).is_ok_and(|i| i.file_type() == "adapter") {
                    continue;
                }
                out.push(Found {
                    name: name(p),
                    source,
                    path: p.clone(),
                    size: size(p),
                    parts: 1,
                    missing_parts: Vec::new(),
                });
            }
        }
    }
    out
}

/// Ollama: `manifests/HOST/NAMESPACE/MODEL/TAG` (JSON) → the layer of media type
/// `application/vnd.ollama.image.model` → `blobs/sha256-HEX`. Named `ollama:MODEL:TAG`
/// (`ollama:NAMESPACE/MODEL:TAG` outside `library`, `ollama:HOST/…` off the default host).
fn ollama(root: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    let manifests = root.join("manifests");
    let mut files = Vec::new();
    walk_all(&manifests, 4, &mut files);
    for m in files {
        let Ok(rel) = m.strip_prefix(&manifests) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let [host, ns, model, tag] = parts.as_slice() else {
            continue;
        };
        let Some(digest) = std::fs::read_to_string(&m)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v["layers"].as_array()?.iter().find_map(|l| {
                    (l["mediaType"] == "application/vnd.ollama.image.model")
                        .then(|| l["digest"].as_str().map(str::to_string))
                        .flatten()
                })
            })
        else {
            continue;
        };
        let blob = root.join("blobs").join(digest.replace(':', "-"));
        let Ok(meta) = std::fs::metadata(&blob) else {
            continue;
        };
        let name = match (host.as_str(), ns.as_str()) {
            ("registry.ollama.ai", "library") => format!("ollama:{model}:{tag}"),
            ("registry.ollama.ai", _) => format!("ollama:{ns}/{model}:{tag}"),
            _ => format!("ollama:{host}/{ns}/{model}:{tag}"),
        };
        out.push(Found {
            name,
            source: "ollama",
            path: blob,
            size: meta.len(),
            parts: 1,
            missing_parts: Vec::new(),
        });
    }
    out
}

/// Every file under `dir` (to `depth` levels).
fn walk_all(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() && depth > 1 => walk_all(&p, depth - 1, out),
            Ok(m) if m.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// The Hugging Face hub cache: `models--ORG--REPO/snapshots/REVISION/…/*.gguf`, named
/// `hf:ORG/REPO/FILE`; of several revisions, the newest snapshot.
fn huggingface(hub: &Path) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    let Ok(rd) = std::fs::read_dir(hub) else {
        return out;
    };
    for e in rd.flatten() {
        let dir = e.file_name().to_string_lossy().into_owned();
        let Some(repo) = dir.strip_prefix("models--") else {
            continue;
        };
        let repo = repo.replacen("--", "/", 1);
        let Ok(snaps) = std::fs::read_dir(e.path().join("snapshots")) else {
            continue;
        };
        let mut snaps: Vec<(std::time::SystemTime, PathBuf)> = snaps
            .flatten()
            .map(|s| {
                let t = s
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (t, s.path())
            })
            .collect();
        snaps.sort();
        for (_, snap) in snaps.iter().rev() {
            let found = gguf_files(snap, 4, "huggingface", |p| {
                let rel = p.strip_prefix(snap).unwrap_or(p);
                format!("hf:{repo}/{}", rel.display())
            });
            for f in found {
                if !out.iter().any(|o| o.name == f.name) {
                    out.push(f);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(dir: &Path) -> Roots {
        let d = dir.to_path_buf();
        Roots {
            arbor_models: dir.join("arbor"),
            model_dirs: vec![dir.join("mine")],
            home: Some(dir.join("home")),
            env: Box::new(move |k| match k {
                "OLLAMA_MODELS" => Some(d.join("ollama")),
                "HF_HUB_CACHE" => Some(d.join("hf")),
                _ => None,
            }),
        }
    }

    fn write(p: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    #[test]
    fn split_names_are_read_exactly() {
        assert_eq!(
            split_part("qwen-7b-q4-00001-of-00003.gguf"),
            Some(("qwen-7b-q4", 1, 3))
        );
        assert_eq!(split_part("a-00004-of-00003.gguf"), None);
        assert_eq!(split_part("a-1-of-3.gguf"), None);
        assert_eq!(split_part("model.gguf"), None);
    }

    #[test]
    fn every_store_is_found_splits_are_one_model_names_resolve() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(&d.join("arbor/a.gguf"), b"GGUF");
        write(&d.join("mine/deep/er/b.gguf"), b"GGUF");
        write(&d.join("mine/mmproj-b.gguf"), b"GGUF");
        for n in 1..=3 {
            write(
                &d.join(format!("mine/big-{n:05}-of-00003.gguf")),
                &vec![0; 10 * n as usize],
            );
        }
        write(&d.join("mine/half-00001-of-00002.gguf"), b"GGUF");
        // Ollama: manifest → blob.
        write(&d.join("ollama/blobs/sha256-abc"), b"GGUF blob");
        write(
            &d.join("ollama/manifests/registry.ollama.ai/library/qwen2.5/0.5b"),
            br#"{"layers":[{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:zzz"},
                          {"mediaType":"application/vnd.ollama.image.model","digest":"sha256:abc"}]}"#,
        );
        write(
            &d.join("ollama/manifests/registry.ollama.ai/someone/tiny/latest"),
            br#"{"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:abc"}]}"#,
        );
        // Hugging Face: snapshot links into blobs.
        write(&d.join("hf/models--Org--Repo-GGUF/blobs/123"), b"GGUF hf");
        let snap = d.join("hf/models--Org--Repo-GGUF/snapshots/rev1");
        std::fs::create_dir_all(&snap).unwrap();
        std::os::unix::fs::symlink("../../blobs/123", snap.join("a.gguf")).unwrap();
        // LM Studio under the home directory.
        write(&d.join("home/.lmstudio/models/pub/repo/c.gguf"), b"GGUF");

        let r = roots(d);
        let found = discover(&r);
        let names: Vec<(&str, &str)> = found.iter().map(|f| (f.source, f.name.as_str())).collect();
        assert_eq!(
            names,
            vec![
                ("arbor", "a.gguf"),
                ("ollama", "ollama:qwen2.5:0.5b"),
                ("lmstudio", "c.gguf"),
                ("huggingface", "hf:Org/Repo-GGUF/a.gguf"),
                ("model_dirs", "b.gguf"),
                ("model_dirs", "big-00001-of-00003.gguf"),
                ("model_dirs", "half-00001-of-00002.gguf"),
            ],
            "the second Ollama name is the same blob, listed once"
        );
        let big = found.iter().find(|f| f.name.starts_with("big")).unwrap();
        assert_eq!((big.parts, big.size), (3, 60));
        assert_eq!(
            resolve("ollama:qwen2.5:0.5b", &r).unwrap(),
            d.join("ollama/blobs/sha256-abc")
        );
        assert_eq!(resolve("b", &r).unwrap(), d.join("mine/deep/er/b.gguf"));
        assert_eq!(
            resolve("big-00001-of-00003.gguf", &r).unwrap(),
            d.join("mine/big-00001-of-00003.gguf")
        );
        assert!(matches!(
            resolve("half-00001-of-00002", &r),
            Err(ResolveError::MissingParts { missing, .. }) if missing == vec![2]
        ));
        // a.gguf is both Arbor's and the Hugging Face file's name.
        let e = resolve("a.gguf", &r).unwrap_err();
        assert!(
            matches!(&e, ResolveError::Ambiguous { matches, .. } if matches.len() == 2),
            "{e}"
        );
        assert!(e.to_string().contains("hf:Org/Repo-GGUF/a.gguf"), "{e}");
        let e = resolve("nothing", &r).unwrap_err();
        assert!(e.to_string().contains("searched arbor"), "{e}");
    }
}
