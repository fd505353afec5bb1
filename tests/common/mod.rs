//! Shared by the integration tests: a sandbox (temp dir, database, config dir) and the
//! real `arbor` binary run inside it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn default_model() -> PathBuf {
    let m = arbor::config::Paths::discover().default_model();
    assert!(
        m.exists(),
        "the default model is missing at {}: run scripts/setup.sh",
        m.display()
    );
    m
}

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("arbor.db")
    }
    /// Arbor's data directory in the sandbox (exports, training jobs).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    /// Writes the sandbox's config.toml.
    pub fn config(&self, toml: &str) {
        let dir = self.dir.path().join("config");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), toml).unwrap();
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_arbor"));
        c.env("ARBOR_DB", self.db())
            .env("ARBOR_MODEL", default_model())
            .env("ARBOR_CONFIG_DIR", self.dir.path().join("config"))
            .env("ARBOR_DATA_DIR", self.data_dir())
            .env("ARBOR_TRAINER_DIR", trainer_dir())
            .env("USER", "tester")
            .arg("--threads")
            .arg("1");
        c
    }
    /// `arbor ARGS` started in the background, its output discarded.
    pub fn spawn_quiet(&self, args: &[&str]) -> std::process::Child {
        self.cmd()
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "arbor {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
    /// `arbor export -o FILE --json` with `extra`: the report and the file's lines.
    pub fn export_json(&self, extra: &[&str]) -> (serde_json::Value, Vec<serde_json::Value>) {
        let f = self.dir.path().join("export.jsonl");
        let mut args = vec!["export", "-o", f.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let report = self.json(&args);
        (report, json_lines(&f))
    }
}

/// Where the trainers' Python environments live for tests: made once by the first
/// training test (Arbor's own first-use path) and reused (`ARBOR_TRAINER_DIR`, set by
/// scripts/test.sh; else target/trainer-envs).
pub fn trainer_dir() -> PathBuf {
    std::env::var_os("ARBOR_TRAINER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/trainer-envs"))
}

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python with the real dataset consumers (datasets, TRL, mlx-lm, jsonschema) that
/// scripts/test.sh installs into target/py-consumers.
pub fn consumer_python() -> PathBuf {
    let p = std::env::var_os("ARBOR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/py-consumers/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: scripts/test.sh creates it (the Python consumers of the exports)",
        p.display()
    );
    p
}

/// Gemma 3 270M (no chat template in its GGUF), fetched by scripts/test.sh.
pub fn gemma_model() -> PathBuf {
    let p = std::env::var_os("ARBOR_TEST_GEMMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/test-models/gemma-3-270m-q4_k_m.gguf"));
    assert!(
        p.exists(),
        "{} is missing: scripts/test.sh fetches the Gemma 3 270M test model",
        p.display()
    );
    p
}
/// A command's standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON lines of a file.
pub fn json_lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Kills `child` (with SIGKILL) as soon as `ready` holds, asserting it was still running
/// then and that it got there within `limit`.
pub fn kill_when(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
    ready: impl Fn() -> bool,
) {
    let t = std::time::Instant::now();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "it ended before {what}"
        );
        assert!(t.elapsed() < limit, "no {what} within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Imports the sample sessions (`sessions/`: 9 rated, tagged conversations).
pub fn import_sessions(s: &Sandbox) {
    for f in [
        "clarification-sql.jsonl",
        "tool-calling.jsonl",
        "tool_calls.log",
    ] {
        s.ok(&["import", repo().join("sessions").join(f).to_str().unwrap()]);
    }
}

pub mod tmux;

/// An OpenAI chat JSONL file of `n` conversations of 10 messages.
pub fn big_file(s: &Sandbox, n: usize) -> PathBuf {
    let p = s.dir.path().join(format!("big-{n}.jsonl"));
    let out = Command::new("python3")
        .arg(repo().join("scripts/bench/make_import.py"))
        .arg(&p)
        .arg(n.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    p
}

pub fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}
