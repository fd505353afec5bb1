//! KV state on disk: after an answer, the state of sequence 0 (the conversation's KV cache)
//! is written under the data directory so that a new process — `arbor ask --conversation
//! N`, a reopened studio, a switch back to another conversation — decodes only the tokens
//! after the longest saved prefix instead of the whole history.
//!
//! A state can never be applied to the wrong prompt: its directory is named by a hash of
//! everything that shapes the cache (model file, adapter and scale, template, context size,
//! prompt batch size, llama.cpp version), the file repeats that key and holds the exact tokens it covers, and
//! CRC-32s of tokens and payload are checked: of the head (tokens and the cells' metadata
//! llama.cpp parses) before llama.cpp sees a byte, of the whole while it reads the KV data
//! (a failure drops the sequence again before anything uses it). A file that fails any
//! check is removed and ignored — never an error, never a wrong answer.
//!
//! File: `ARBORKV1`, u32 LE header length, header JSON, tokens (u32 LE each), payload
//! (`llama_state_seq_get_data` of sequence 0). Written to a temporary file and renamed.
//! Bounded: least recently used (file mtime, touched on use) evicted past the limit.

use sha2::{Digest, Sha256};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const MAGIC: &[u8; 8] = b"ARBORKV1";
/// What the payload's layout depends on besides the key's files: the llama.cpp build.
const FORMAT: &str = "llama-cpp-2 0.1.160, f16 cache";
const EXT: &str = "kv";
const TMP_PREFIX: &str = ".tmp-";

/// Default size limit of the whole cache (`kv_cache_mb` in config.toml).
pub const DEFAULT_LIMIT_MB: u64 = 2048;

/// What a state depends on. Two engines with equal keys may share states.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KvKey {
    pub model: FileId,
    pub adapter: Option<(FileId, f32)>,
    pub template: String,
    pub context: u32,
    /// The prompt batch block (llama/mod.rs `block_size`): states made with another are
    /// not bit for bit what this engine computes.
    pub block: usize,
    pub format: String,
}

/// A file as it is now: canonical path, size and modification time (a model replaced in
/// place gets another key).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub path: String,
    pub size: u64,
    pub modified_ns: u128,
}

impl FileId {
    pub fn of(path: &Path) -> Self {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let meta = std::fs::metadata(&canonical).ok();
        Self {
            path: canonical.display().to_string(),
            size: meta.as_ref().map_or(0, |m| m.len()),
            modified_ns: meta
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos()),
        }
    }
}

impl KvKey {
    pub fn new(
        model: &Path,
        adapter: Option<(&Path, f32)>,
        template: &str,
        context: u32,
        block: usize,
    ) -> Self {
        Self {
            model: FileId::of(model),
            adapter: adapter.map(|(p, s)| (FileId::of(p), s)),
            template: template.to_string(),
            context,
            block,
            format: FORMAT.to_string(),
        }
    }

    fn dir_name(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        hex(&Sha256::digest(json.as_bytes())[..8])
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    key: KvKey,
    tokens: usize,
    payload: usize,
    crc32: String,
    /// Of the tokens and the payload's first `HEAD` bytes (llama.cpp's cell metadata lies
    /// there): checked before llama.cpp parses a byte.
    head_crc32: String,
}

/// The leading payload bytes the head checksum covers.
const HEAD: usize = 1 << 20;

/// The states of one key, in `root/<hash of key>/`.
#[derive(Debug, Clone)]
pub struct KvStore {
    root: PathBuf,
    dir: PathBuf,
    key: KvKey,
    limit: u64,
}

/// A saved state that shares `common` leading tokens with a prompt (its header and tokens
/// already read: `load` reads only the payload).
pub struct Candidate {
    pub path: PathBuf,
    pub common: usize,
    header: Header,
    tokens: Vec<i32>,
}

/// A state read back (its checksum checked by `verify`).
pub struct Loaded {
    pub path: PathBuf,
    pub tokens: Vec<i32>,
    pub payload: Vec<u8>,
    crc32: String,
    head_crc32: String,
}

impl Loaded {
    /// Whether the tokens and the start of the payload (where llama.cpp reads the cells'
    /// positions and sequences) are what was written; quick, checked before loading.
    pub fn verify_head(&self) -> bool {
        checksum(&token_bytes(&self.tokens), head(&self.payload)) == self.head_crc32
    }

    /// Whether tokens and payload are what was written (CRC-32). The engine runs this
    /// beside llama.cpp reading the payload, and drops the state if it fails.
    pub fn verify(&self) -> bool {
        checksum(&token_bytes(&self.tokens), &self.payload) == self.crc32
    }
}

impl KvStore {
    /// `limit_bytes` = 0 turns the cache off (`None`).
    pub fn new(root: &Path, key: KvKey, limit_bytes: u64) -> Option<Self> {
        (limit_bytes > 0).then(|| Self {
            dir: root.join(key.dir_name()),
            root: root.to_path_buf(),
            key,
            limit: limit_bytes,
        })
    }

    /// Removes the states made for an earlier version of this key's model or adapter file
    /// (the same path, now another size or modification time): they can never match again.
    /// Called once when an engine loads.
    pub fn remove_stale(&self) {
        let Ok(dirs) = std::fs::read_dir(&self.root) else {
            return;
        };
        let stale = |k: &KvKey| {
            let changed = |a: &FileId, b: &FileId| a.path == b.path && a != b;
            changed(&k.model, &self.key.model)
                || matches!((&k.adapter, &self.key.adapter), (Some((a, _)), Some((b, _))) if changed(a, b))
        };
        for d in dirs.flatten() {
            let dir = d.path();
            if dir == self.dir {
                continue;
            }
            let first = std::fs::read_dir(&dir).ok().and_then(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == EXT))
            });
            if let Some((header, _)) = first.and_then(|f| read_head(&f)) {
                if stale(&header.key) {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
    }

    /// The saved state sharing the most leading tokens with `prompt` (at least
    /// `better_than + 1`). Files that are not valid states of this key are removed.
    pub fn best(&self, prompt: &[i32], better_than: usize) -> Option<Candidate> {
        let mut best: Option<Candidate> = None;
        for path in self.files() {
            let Some((header, tokens)) = self.read_head(&path) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let common = common_prefix(&tokens, prompt);
            if common > better_than && best.as_ref().is_none_or(|b| common > b.common) {
                best = Some(Candidate {
                    path,
                    common,
                    header,
                    tokens,
                });
            }
        }
        best
    }

    /// Reads a candidate's payload; one that cannot be read whole is removed (`None`). The
    /// caller checks it with `Loaded::verify`, then marks it `used` or `reject`s it.
    pub fn load(&self, c: Candidate) -> Option<Loaded> {
        let payload = read_payload(&c.path, c.header.payload);
        if payload.is_none() {
            let _ = std::fs::remove_file(&c.path);
        }
        Some(Loaded {
            path: c.path,
            tokens: c.tokens,
            payload: payload?,
            crc32: c.header.crc32,
            head_crc32: c.header.head_crc32,
        })
    }

    /// A state that served: the least recently used go first.
    pub fn used(&self, state: &Loaded) {
        touch(&state.path);
    }

    /// A state that failed its checks: removed.
    pub fn reject(&self, state: &Loaded) {
        let _ = std::fs::remove_file(&state.path);
    }

    /// Writes the state of `tokens`; states whose tokens are a prefix of these are
    /// removed (this one covers them), then the least recently used go until the whole
    /// cache fits its limit. Returns the bytes written.
    pub fn save(&self, tokens: &[i32], payload: &[u8]) -> std::io::Result<u64> {
        std::fs::create_dir_all(&self.dir)?;
        let token_bytes = token_bytes(tokens);
        let header = Header {
            key: self.key.clone(),
            tokens: tokens.len(),
            payload: payload.len(),
            crc32: checksum(&token_bytes, payload),
            head_crc32: checksum(&token_bytes, head(payload)),
        };
        let header = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        let name = format!("{}.{EXT}", hex(&Sha256::digest(&token_bytes)[..12]));
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(&self.dir)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            w.write_all(MAGIC)?;
            w.write_all(&(header.len() as u32).to_le_bytes())?;
            w.write_all(&header)?;
            w.write_all(&token_bytes)?;
            w.write_all(payload)?;
            w.flush()?;
        }
        let target = self.dir.join(&name);
        tmp.persist(&target).map_err(|e| e.error)?;
        for path in self.files() {
            if path == target {
                continue;
            }
            if let Some((_, t)) = self.read_head(&path) {
                if t.len() <= tokens.len() && common_prefix(&t, tokens) == t.len() {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        evict(&self.root, self.limit);
        Ok(std::fs::metadata(&target).map_or(0, |m| m.len()))
    }

    fn files(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                // A write that never finished (a killed process): litter after a minute.
                if age(&p).is_some_and(|a| a > 60.0) {
                    let _ = std::fs::remove_file(&p);
                }
            } else if p.extension().is_some_and(|x| x == EXT) {
                out.push(p);
            }
        }
        out
    }

    /// The header and tokens, when the file is a state of this key whose sizes add up.
    fn read_head(&self, path: &Path) -> Option<(Header, Vec<i32>)> {
        read_head(path).filter(|(h, _)| h.key == self.key)
    }
}

/// The last `len` bytes of a state file (its payload).
fn read_payload(path: &Path, len: usize) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    f.seek(std::io::SeekFrom::Start(size.checked_sub(len as u64)?))
        .ok()?;
    let mut payload = vec![0u8; len];
    f.read_exact(&mut payload).ok()?;
    Some(payload)
}

/// The header and tokens of a state file whose sizes add up (of any key).
fn read_head(path: &Path) -> Option<(Header, Vec<i32>)> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic).ok()?;
    if &magic != MAGIC {
        return None;
    }
    let mut n = [0u8; 4];
    f.read_exact(&mut n).ok()?;
    let n = u32::from_le_bytes(n) as u64;
    if n > 1 << 20 || 12 + n > len {
        return None;
    }
    let mut h = vec![0u8; n as usize];
    f.read_exact(&mut h).ok()?;
    let header: Header = serde_json::from_slice(&h).ok()?;
    if 12 + n + header.tokens as u64 * 4 + header.payload as u64 != len {
        return None;
    }
    let mut t = vec![0u8; header.tokens * 4];
    f.read_exact(&mut t).ok()?;
    let tokens = t
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some((header, tokens))
}

/// Removes the least recently used states under `root` until the rest fit in `limit`.
fn evict(root: &Path, limit: u64) {
    let mut files = state_files(root);
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort_by_key(|f| f.2);
    for (path, size, _) in files {
        if total <= limit {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= size;
        }
    }
}

/// (path, bytes, last used) of every state under `root`.
fn state_files(root: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(root) else {
        return out;
    };
    for d in dirs.flatten() {
        let Ok(rd) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    out.push((p, m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
                }
            }
        }
    }
    out
}

/// Files and bytes of the whole cache (for `arbor doctor`).
pub fn usage(root: &Path) -> (usize, u64) {
    let files = state_files(root);
    (files.len(), files.iter().map(|f| f.1).sum())
}

/// Removes every state (`arbor cache clear`); returns the files and bytes removed.
pub fn clear(root: &Path) -> std::io::Result<(usize, u64)> {
    let before = usage(root);
    match std::fs::remove_dir_all(root) {
        Ok(()) => Ok(before),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((0, 0)),
        Err(e) => Err(e),
    }
}

fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn age(path: &Path) -> Option<f64> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(SystemTime::now().duration_since(m).ok()?.as_secs_f64())
}

pub fn common_prefix(a: &[i32], b: &[i32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn token_bytes(tokens: &[i32]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.to_le_bytes()).collect()
}

/// CRC-32 (SIMD, several GB/s: a 2,000-token state checks in milliseconds) of tokens and
/// payload, with their lengths.
fn checksum(tokens: &[u8], payload: &[u8]) -> String {
    let mut h = crc32fast::Hasher::new();
    h.update(&(tokens.len() as u64).to_le_bytes());
    h.update(tokens);
    h.update(&(payload.len() as u64).to_le_bytes());
    h.update(payload);
    format!("{:08x}", h.finalize())
}

fn head(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(HEAD)]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ctx: u32) -> KvKey {
        KvKey {
            model: FileId {
                path: "/m.gguf".into(),
                size: 1,
                modified_ns: 2,
            },
            adapter: None,
            template: "chatml".into(),
            context: ctx,
            block: 16,
            format: FORMAT.into(),
        }
    }

    #[test]
    fn the_longest_matching_state_is_found_and_read_back_exactly() {
        let root = tempfile::tempdir().unwrap();
        let s = KvStore::new(root.path(), key(2048), 1 << 30).unwrap();
        s.save(&[1, 2, 3, 4], b"four").unwrap();
        s.save(&[1, 2, 9], b"nine").unwrap();
        let c = s.best(&[1, 2, 3, 4, 5], 0).unwrap();
        assert_eq!(c.common, 4);
        let l = s.load(c).unwrap();
        assert!(l.verify_head() && l.verify());
        assert_eq!(l.tokens, vec![1, 2, 3, 4]);
        assert_eq!(l.payload, b"four");
        // Nothing better than what is already in memory: no candidate.
        assert!(s.best(&[1, 2, 3, 4, 5], 4).is_none());
        // A longer state of the same prefix replaces the shorter one.
        s.save(&[1, 2, 3, 4, 5, 6], b"six").unwrap();
        assert_eq!(s.files().len(), 2);
    }

    #[test]
    fn corrupt_truncated_and_foreign_states_are_removed_never_used() {
        let root = tempfile::tempdir().unwrap();
        let s = KvStore::new(root.path(), key(2048), 1 << 30).unwrap();
        s.save(&[1, 2, 3], b"payload").unwrap();
        let path = s.best(&[1, 2, 3], 0).unwrap().path.clone();
        // A flipped payload byte: the checksum catches it.
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let l = s.load(s.best(&[1, 2, 3], 0).unwrap()).unwrap();
        assert!(!l.verify(), "the checksum catches a flipped byte");
        assert!(!l.verify_head(), "in the head too");
        s.reject(&l);
        assert!(!path.exists(), "a corrupt state is removed");
        // Truncated: the sizes do not add up.
        s.save(&[1, 2, 3], b"payload").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        assert!(s.best(&[1, 2, 3], 0).is_none());
        assert!(!path.exists());
        // Garbage and another key's file in this directory.
        std::fs::write(s.dir.join("junk.kv"), b"not a state").unwrap();
        let other = KvStore {
            dir: s.dir.clone(),
            ..KvStore::new(root.path(), key(4096), 1 << 30).unwrap()
        };
        other.save(&[1, 2, 3], b"other").unwrap();
        assert!(s.best(&[1, 2, 3], 0).is_none());
        assert!(s.files().is_empty(), "{:?}", s.files());
    }

    #[test]
    fn least_recently_used_states_go_past_the_limit() {
        let root = tempfile::tempdir().unwrap();
        let s = KvStore::new(root.path(), key(2048), 1 << 30).unwrap();
        let payload = vec![7u8; 1000];
        s.save(&[1], &payload).unwrap();
        s.save(&[2], &payload).unwrap();
        let first = s.best(&[1], 0).unwrap();
        // Make [2] the oldest by using [1].
        let old = SystemTime::now() - std::time::Duration::from_secs(100);
        let f = std::fs::File::options()
            .append(true)
            .open(s.best(&[2], 0).unwrap().path)
            .unwrap();
        f.set_modified(old).unwrap();
        let l = s.load(first).unwrap();
        s.used(&l);
        let one = usage(root.path()).1 / 2;
        let small = KvStore {
            limit: one * 2 + 10,
            ..s.clone()
        };
        small.save(&[3], &payload).unwrap();
        assert_eq!(usage(root.path()).0, 2);
        assert!(small.best(&[2], 0).is_none(), "[2] was least recently used");
        assert!(small.best(&[1], 0).is_some());
        assert!(small.best(&[3], 0).is_some());
        assert_eq!(clear(root.path()).unwrap().0, 2);
        assert_eq!(usage(root.path()), (0, 0));
    }

    #[test]
    fn a_write_a_killed_process_left_is_removed_after_a_minute() {
        let root = tempfile::tempdir().unwrap();
        let s = KvStore::new(root.path(), key(2048), 1 << 30).unwrap();
        s.save(&[1], b"x").unwrap();
        let old = s.dir.join(".tmp-killed");
        let new = s.dir.join(".tmp-writing");
        std::fs::write(&old, b"half").unwrap();
        std::fs::write(&new, b"half").unwrap();
        std::fs::File::options()
            .append(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - std::time::Duration::from_secs(120))
            .unwrap();
        assert!(s.best(&[1], 0).is_some());
        assert!(!old.exists(), "litter from a killed write is removed");
        assert!(new.exists(), "a write in progress elsewhere is left alone");
    }

    #[test]
    fn states_of_an_earlier_version_of_the_model_file_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let old = KvStore::new(root.path(), key(2048), 1 << 30).unwrap();
        old.save(&[1, 2], b"old model").unwrap();
        let mut changed = key(2048);
        changed.model.modified_ns += 1;
        let other_model = KvKey {
            model: FileId {
                path: "/other.gguf".into(),
                size: 1,
                modified_ns: 2,
            },
            ..key(2048)
        };
        let other = KvStore::new(root.path(), other_model, 1 << 30).unwrap();
        other.save(&[1, 2], b"other model").unwrap();
        let another_context = KvKey {
            context: 4096,
            ..changed.clone()
        };
        let another_context = KvStore::new(root.path(), another_context, 1 << 30).unwrap();
        another_context
            .save(&[1, 2], b"the new file, another context")
            .unwrap();
        let now = KvStore::new(root.path(), changed, 1 << 30).unwrap();
        now.remove_stale();
        assert!(
            !old.dir.exists(),
            "the model file changed: its states can never match"
        );
        assert!(other.dir.exists() && another_context.dir.exists());
    }

    #[test]
    fn a_limit_of_zero_turns_the_cache_off() {
        assert!(KvStore::new(Path::new("/nonexistent"), key(1), 0).is_none());
    }
}
