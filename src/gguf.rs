//! A small reader of GGUF metadata: enough to describe a model (`arbor doctor`,
//! `arbor models`), find its chat template, and reject a file that is not GGUF or is
//! truncated with a clear message before llama.cpp ever sees it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("model file {} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a GGUF file (it starts with {magic:?}, a GGUF model starts with \"GGUF\")"
    )]
    NotGguf { path: PathBuf, magic: String },
    #[error("{path}: unsupported GGUF version {version} (supported: 2, 3)")]
    Version { path: PathBuf, version: u32 },
    #[error("{path}: truncated GGUF: {what}")]
    Truncated { path: PathBuf, what: String },
    #[error("{path}: malformed GGUF metadata: {what}")]
    Malformed { path: PathBuf, what: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// Arrays are summarised: element count, and the values when they are few and scalar.
    Array(u64, Vec<Value>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GgufInfo {
    pub path: PathBuf,
    pub version: u32,
    pub file_size: u64,
    pub tensor_count: u64,
    pub metadata: BTreeMap<String, Value>,
}

impl GgufInfo {
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.metadata.get(key).and_then(Value::as_int)
    }
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }
    /// The model's name from its metadata, else the file name.
    pub fn name(&self) -> String {
        self.get_str("general.name")
            .map(str::to_string)
            .unwrap_or_else(|| {
                self.path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
    }
    pub fn context_length(&self) -> Option<i64> {
        let arch = self.architecture()?;
        self.get_int(&format!("{arch}.context_length"))
    }
    /// Transformer blocks (`{arch}.block_count`).
    pub fn block_count(&self) -> Option<i64> {
        let arch = self.architecture()?;
        self.get_int(&format!("{arch}.block_count"))
    }
    pub fn chat_template(&self) -> Option<&str> {
        self.get_str("tokenizer.chat_template")
    }
    /// `adapter` for LoRA adapters, `model` (or absent) for models.
    pub fn file_type(&self) -> &str {
        self.get_str("general.type").unwrap_or("model")
    }
}

struct Reader<'a, R> {
    r: R,
    path: &'a Path,
    pos: u64,
}

impl<R: Read + Seek> Reader<'_, R> {
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        if n > 1 << 30 {
            return Err(GgufError::Malformed {
                path: self.path.into(),
                what: format!("{what} claims {n} bytes"),
            });
        }
        let mut buf = vec![0; n as usize];
        self.r.read_exact(&mut buf).map_err(|e| self.eof(e, what))?;
        self.pos += n;
        Ok(buf)
    }
    fn eof(&self, e: std::io::Error, what: &str) -> GgufError {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            GgufError::Truncated {
                path: self.path.into(),
                what: format!("file ends inside the header while reading {what}"),
            }
        } else {
            GgufError::Io {
                path: self.path.into(),
                source: e,
            }
        }
    }
    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes(8, what)?.try_into().unwrap()))
    }
    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let n = self.u64(what)?;
        let b = self.bytes(n, what)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    fn skip(&mut self, n: u64, what: &str) -> Result<(), GgufError> {
        let mut take = (&mut self.r).take(n);
        let copied =
            std::io::copy(&mut take, &mut std::io::sink()).map_err(|e| self.eof(e, what))?;
        if copied < n {
            return Err(GgufError::Truncated {
                path: self.path.into(),
                what: format!("file ends inside the header while reading {what}"),
            });
        }
        self.pos += n;
        Ok(())
    }
    fn value(&mut self, ty: u32, key: &str, keep: bool) -> Result<Value, GgufError> {
        let scalar = |b: Vec<u8>| b;
        Ok(match ty {
            0 => Value::Int(scalar(self.bytes(1, key)?)[0] as i64),
            1 => Value::Int(scalar(self.bytes(1, key)?)[0] as i8 as i64),
            2 => Value::Int(u16::from_le_bytes(self.bytes(2, key)?.try_into().unwrap()) as i64),
            3 => Value::Int(i16::from_le_bytes(self.bytes(2, key)?.try_into().unwrap()) as i64),
            4 => Value::Int(self.u32(key)? as i64),
            5 => Value::Int(self.u32(key)? as i32 as i64),
            6 => Value::Float(f32::from_le_bytes(self.bytes(4, key)?.try_into().unwrap()) as f64),
            7 => Value::Bool(self.bytes(1, key)?[0] != 0),
            8 => {
                if keep {
                    Value::Str(self.string(key)?)
                } else {
                    let n = self.u64(key)?;
                    self.skip(n, key)?;
                    Value::Str(String::new())
                }
            }
            9 => {
                let elem = self.u32(key)?;
                let n = self.u64(key)?;
                let keep_items = n <= 16 && elem != 9;
                let mut items = Vec::new();
                let fixed = match elem {
                    0 | 1 | 7 => Some(1),
                    2 | 3 => Some(2),
                    4..=6 => Some(4),
                    10..=12 => Some(8),
                    _ => None,
                };
                match (fixed, keep_items) {
                    (Some(sz), false) => self.skip(sz * n, key)?,
                    _ => {
                        for _ in 0..n {
                            let v = self.value(elem, key, keep_items)?;
                            if keep_items {
                                items.push(v);
                            }
                        }
                    }
                }
                Value::Array(n, items)
            }
            10 => Value::Int(self.u64(key)? as i64),
            11 => Value::Int(self.u64(key)? as i64),
            12 => Value::Float(f64::from_le_bytes(self.bytes(8, key)?.try_into().unwrap())),
            other => {
                return Err(GgufError::Malformed {
                    path: self.path.into(),
                    what: format!("key '{key}' has unknown value type {other}"),
                })
            }
        })
    }
}

/// (elements per block, bytes per block) of the ggml tensor types whose size we know.
fn type_size(ty: u32) -> Option<(u64, u64)> {
    Some(match ty {
        0 => (1, 4),
        1 => (1, 2),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        9 => (32, 36),
        10 => (256, 84),
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        24 => (1, 1),
        25 => (1, 2),
        26 => (1, 4),
        27 | 28 => (1, 8),
        30 => (1, 2),
        _ => return None,
    })
}

/// Reads the metadata and tensor table of a GGUF file and checks that the file is
/// long enough to hold every tensor.
/// Checks that `path` is a readable GGUF model and reads its metadata (the one check
/// behind `--model`, the tokenizer and `doctor`).
pub fn check(path: &Path) -> Result<GgufInfo, GgufError> {
    if !path.exists() {
        return Err(GgufError::Missing {
            path: path.to_path_buf(),
        });
    }
    read(path)
}

pub fn read(path: impl AsRef<Path>) -> Result<GgufInfo, GgufError> {
    let path = path.as_ref();
    let io = |source| GgufError::Io {
        path: path.into(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let file_size = file.metadata().map_err(io)?.len();
    let mut r = Reader {
        r: BufReader::with_capacity(1 << 16, file),
        path,
        pos: 0,
    };
    let mut magic = [0u8; 4];
    let n = r.r.read(&mut magic).map_err(io)?;
    if n < 4 || &magic != b"GGUF" {
        return Err(GgufError::NotGguf {
            path: path.into(),
            magic: String::from_utf8_lossy(&magic[..n]).into_owned(),
        });
    }
    r.pos = 4;
    let version = r.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version {
            path: path.into(),
            version,
        });
    }
    let tensor_count = r.u64("tensor count")?;
    let kv_count = r.u64("metadata count")?;
    let mut metadata = BTreeMap::new();
    for i in 0..kv_count {
        let key = r.string(&format!("metadata key #{i}"))?;
        let ty = r.u32(&key)?;
        let v = r.value(ty, &key, true)?;
        metadata.insert(key, v);
    }
    let alignment = match metadata.get("general.alignment") {
        Some(Value::Int(a)) if *a > 0 => *a as u64,
        _ => 32,
    };
    let mut needed = 0u64;
    for i in 0..tensor_count {
        let name = r.string(&format!("tensor #{i} name"))?;
        let dims = r.u32(&name)?;
        let mut elems = 1u64;
        for _ in 0..dims {
            elems = elems.saturating_mul(r.u64(&name)?);
        }
        let ty = r.u32(&name)?;
        let offset = r.u64(&name)?;
        let size = type_size(ty).map(|(bs, ts)| elems / bs * ts).unwrap_or(0);
        needed = needed.max(offset.saturating_add(size));
    }
    let data_start = r.pos.div_ceil(alignment) * alignment;
    if data_start + needed > file_size {
        return Err(GgufError::Truncated {
            path: path.into(),
            what: format!(
                "its tensors need {} bytes but the file has {file_size}",
                data_start + needed
            ),
        });
    }
    Ok(GgufInfo {
        path: path.into(),
        version,
        file_size,
        tensor_count,
        metadata,
    })
}
