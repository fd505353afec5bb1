//! The real studio in tmux: typed at like a user, its screen read back.
#![allow(dead_code)]

use super::Sandbox;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The studio running in a tmux session over a sandbox's files (database, data and
/// config directories), on the default model.
pub struct Tmux {
    pub session: String,
    pub sandbox: Sandbox,
}

impl Tmux {
    pub fn start(args: &str, config: &str) -> Self {
        Self::start_prepared(args, config, |_| {})
    }
    /// Starts the app after `prepare` has filled the database (by running `arbor`).
    pub fn start_prepared(
        args: &str,
        config: &str,
        prepare: impl FnOnce(&std::path::Path),
    ) -> Self {
        let sandbox = Sandbox::new();
        prepare(&sandbox.db());
        sandbox.config(config);
        Self::in_sandbox(sandbox, args)
    }
    /// Starts the app over a sandbox that is already set up.
    pub fn in_sandbox(sandbox: Sandbox, args: &str) -> Self {
        Self::in_sandbox_env(sandbox, "", args)
    }
    /// The same, with `env` (`NAME=value …`) in the app's environment.
    pub fn in_sandbox_env(sandbox: Sandbox, env: &str, args: &str) -> Self {
        let t = Self {
            session: format!("arbor-test-{}", std::process::id()),
            sandbox,
        };
        t.launch_env(env, args);
        t
    }
    /// The sandbox's folder.
    pub fn dir(&self) -> &std::path::Path {
        self.sandbox.dir.path()
    }
    /// Runs the app (again) in a new tmux session over the same files.
    pub fn launch(&self, args: &str) {
        self.launch_env("", args)
    }
    /// `launch` with `env` (`NAME=value …`) in the app's environment.
    pub fn launch_env(&self, env: &str, args: &str) {
        let model = super::default_model();
        let cmd = format!(
            "exec env {env} ARBOR_DB={db} ARBOR_MODEL={model} ARBOR_CONFIG_DIR={cfg} ARBOR_DATA_DIR={data} ARBOR_TRAINER_DIR={trainer} USER=tester {bin} --threads 1 {args}",
            db = self.sandbox.db().display(),
            data = self.sandbox.data_dir().display(),
            model = model.display(),
            cfg = self.dir().join("config").display(),
            trainer = super::trainer_dir().display(),
            bin = env!("CARGO_BIN_EXE_arbor"),
        );
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &self.session,
                "-x",
                "100",
                "-y",
                "30",
                &cmd,
            ])
            .status()
            .expect("tmux is installed");
        assert!(ok.success());
    }
    /// Quits the app with `q` and waits until its tmux session is gone.
    pub fn quit(&self) {
        self.keys(&["q"]);
        let start = Instant::now();
        while Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the app did not quit"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    pub fn db(&self) -> PathBuf {
        self.sandbox.db()
    }
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let st = Command::new("tmux")
                .args(["send-keys", "-t", &self.session, k])
                .status()
                .unwrap();
            assert!(st.success());
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    pub fn literal(&self, text: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "-l", text])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-t", &self.session, "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    pub fn pane_pid(&self) -> u32 {
        let out = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.session, "#{pane_pid}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
    /// `arbor ARGS` over the studio's files, its JSON output.
    pub fn arbor_json(&self, args: &[&str]) -> serde_json::Value {
        self.sandbox.json(args)
    }
    /// From the conversation list, opens the first conversation and waits for its answers.
    pub fn open_first(&self) {
        self.wait_for("the list", |s| s.contains("conversations ("));
        self.keys(&["Enter"]);
        self.wait_for("a conversation", |s| s.contains("assistant #"));
    }
    /// Waits for the model, then types `text` in the composer and sends it.
    pub fn send_first(&self, text: &str) {
        self.wait_for("the model to load", |s| s.contains("model's own"));
        self.send(text);
    }
    /// Types `text` and presses Enter.
    pub fn send(&self, text: &str) {
        self.literal(text);
        self.keys(&["Enter"]);
    }
}

/// An answer is on screen and nothing is generating any more.
pub fn answer_done(screen: &str) -> bool {
    screen.contains("assistant #") && !screen.contains("generating") && screen.contains("tok/s")
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .stderr(std::process::Stdio::null())
            .status();
    }
}
