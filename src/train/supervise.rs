//! The supervisor: a detached Arbor process (`arbor jobs supervise ID`, its own process
//! group) that runs a job's trainer as a child in a process group of its own, reads the
//! trainer's log as it grows into job metrics, and when the trainer ends records how:
//! cancelled, failed (exit code and log tail) or, after converting and loading the
//! adapter, succeeded. Closing the studio does not touch it; `reconcile` gives a job
//! whose supervisor died a new one (the trainer still runs) or marks it lost.

use super::{env_root, environment, expand, modelfile, write_atomic, JobFiles, ENVIRONMENTS};
use crate::config::{Config, Paths, RecipeDef};
use crate::domain::now_ms;
use crate::error::Context as _;
use crate::os::process_alive;
use crate::store::{JobMetric, JobStatus, Store};
use crate::train::Result;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a recipe reports progress.
pub enum ProgressFormat {
    /// One JSON object per line: `{"event": "step" | "eval" | "phase" | "done", …}`.
    Json,
    /// Named groups `step`, `total`, `loss`, `eval_loss`, `lr` in any line.
    Regex(regex::Regex),
}

impl ProgressFormat {
    pub fn parse(spec: &str) -> Result<Self> {
        if spec.is_empty() || spec == "json" {
            return Ok(Self::Json);
        }
        let re = regex::Regex::new(spec)
            .map_err(|e| crate::train::TrainError::Msg(format!("progress regex: {e}")))?;
        if !re.capture_names().flatten().any(|n| n == "step") {
            crate::fail!("progress regex {spec:?} has no (?P<step>…) group");
        }
        Ok(Self::Regex(re))
    }
}

/// What one line of a trainer's output says.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressLine {
    Metric(JobMetric),
    Phase(String),
    Done,
    /// Anything else: log text.
    Text,
}

pub fn parse_progress(fmt: &ProgressFormat, line: &str, at: i64) -> ProgressLine {
    let num = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_f64());
    match fmt {
        ProgressFormat::Json => {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
                return ProgressLine::Text;
            };
            match v.get("event").and_then(|e| e.as_str()) {
                Some("step") | Some("eval") => match v.get("step").and_then(|s| s.as_i64()) {
                    Some(step) => ProgressLine::Metric(JobMetric {
                        step,
                        total: v.get("total").and_then(|t| t.as_i64()),
                        loss: num(v.get("loss")).filter(|l| l.is_finite()),
                        eval_loss: num(v.get("eval_loss")).filter(|l| l.is_finite()),
                        lr: num(v.get("lr")),
                        tokens_per_s: num(v.get("tokens_per_s")),
                        at,
                    }),
                    None => ProgressLine::Text,
                },
                Some("phase") => match v.get("phase").and_then(|p| p.as_str()) {
                    Some(p) => ProgressLine::Phase(p.to_string()),
                    None => ProgressLine::Text,
                },
                Some("done") => ProgressLine::Done,
                _ => ProgressLine::Text,
            }
        }
        ProgressFormat::Regex(re) => {
            let Some(c) = re.captures(line) else {
                return ProgressLine::Text;
            };
            let get = |n: &str| c.name(n).and_then(|m| m.as_str().parse::<f64>().ok());
            match get("step") {
                Some(step) => ProgressLine::Metric(JobMetric {
                    step: step as i64,
                    total: get("total").map(|t| t as i64),
                    loss: get("loss").filter(|l| l.is_finite()),
                    eval_loss: get("eval_loss").filter(|l| l.is_finite()),
                    lr: get("lr"),
                    tokens_per_s: get("tokens_per_s"),
                    at,
                }),
                None => ProgressLine::Text,
            }
        }
    }
}

/// Starts `arbor jobs supervise ID` detached: its own process group (a Ctrl-C in the
/// terminal that started it does not reach it), no terminal, output to the job directory.
pub fn spawn_supervisor(db: &Path, dir: &Path, id: i64, reattach: bool) -> Result<Child> {
    let exe = std::env::current_exe().context("finding the arbor executable")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("supervisor.log"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--db")
        .arg(db)
        .args(["jobs", "supervise", &id.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    if reattach {
        cmd.arg("--reattach");
    }
    Ok(cmd.spawn().context("starting the job supervisor")?)
}

/// The last `n` lines of a job's log that are not progress events.
pub fn log_tail(log: &Path, n: usize) -> String {
    tail(log, n, false)
}

/// The last `n` non-empty lines of a job's log, progress events among them when `events`.
pub fn tail(log: &Path, n: usize, events: bool) -> String {
    let Ok(bytes) = std::fs::read(log) else {
        return String::new();
    };
    let text =
        String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(64 * 1024)..]).into_owned();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && (events || !l.trim_start().starts_with("{\"event\"")))
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The trainer being watched: our child, or (reattached) a pid.
enum Watched {
    Child(Child),
    Pid(u32),
}

/// How the trainer ended.
enum Ending {
    Exited(std::process::ExitStatus),
    /// Reattached: not our child, so its exit status is unknown.
    Unknown,
}

/// Runs job `id` to its end (the body of `arbor jobs supervise`).
pub fn supervise(
    store: &Store,
    paths: &Paths,
    config: &Config,
    id: i64,
    reattach: bool,
) -> Result<()> {
    let job = store.job(id)?;
    if !job.status.is_live() {
        return Ok(());
    }
    if reattach {
        store.reattach_job(id, std::process::id())?;
    } else {
        store.start_job(id, std::process::id())?;
    }
    let files = match &job.dir {
        Some(d) => JobFiles {
            dir: PathBuf::from(d),
        },
        None => JobFiles::new(paths, id),
    };
    if let Err(e) = run(store, paths, config, id, &files, reattach) {
        let tail = log_tail(&files.log(), 15);
        let msg = if tail.is_empty() {
            format!("{e:#}")
        } else {
            format!("{e:#}\n{tail}")
        };
        // A cancel that came while the job was being set up is a cancel.
        let status = if store.job(id)?.cancel_requested {
            JobStatus::Cancelled
        } else {
            JobStatus::Failed
        };
        store.finish_job(id, status, None, Some(&msg))?;
    }
    Ok(())
}

fn run(
    store: &Store,
    paths: &Paths,
    config: &Config,
    id: i64,
    files: &JobFiles,
    reattach: bool,
) -> Result<()> {
    let job = store.job(id)?;
    let recipe: RecipeDef = serde_json::from_str(
        &std::fs::read_to_string(files.recipe())
            .with_context(|| format!("reading {}", files.recipe().display()))?,
    )
    .context("recipe.json")?;
    let fmt = ProgressFormat::parse(&recipe.progress)?;
    let root = env_root(paths, &config.train);
    let python = config
        .train
        .python
        .clone()
        .unwrap_or_else(|| "python3".into());
    let mut env_python = None;
    let (mut watched, mut offset) = if reattach {
        let pid = job.pid.context("the job has no trainer to reattach to")?;
        (Watched::Pid(pid), job.log_offset)
    } else {
        if let Some(name) = &recipe.environment {
            let env = environment(name)?;
            if !env.ready(&root) {
                store.set_job_phase(
                    id,
                    &format!(
                        "installing the {name} environment (first use; {})",
                        env.size
                    ),
                )?;
            }
            env_python = Some(env.ensure(&root, &python, &files.log(), &mut |pid| {
                let _ = store.set_job_pid(id, pid);
            })?);
        }
        if store.job(id)?.cancel_requested {
            crate::fail!("cancelled before the trainer started");
        }
        let params: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(files.params())?)
                .context("params.json")?;
        let mut vars: BTreeMap<&str, String> = BTreeMap::new();
        vars.insert(
            "python",
            env_python
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or(python.clone()),
        );
        vars.insert("job", files.dir.display().to_string());
        vars.insert("params", files.params().display().to_string());
        vars.insert("out", files.out().display().to_string());
        vars.insert("model", job.base_model.clone());
        vars.insert("data", job.data_path.clone());
        // The rest come from params.json (hyper-parameters, token files).
        for k in super::PLACEHOLDERS {
            if vars.contains_key(k) {
                continue;
            }
            let v = match &params[*k] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            vars.insert(k, v);
        }
        let argv: Vec<String> = recipe
            .argv
            .iter()
            .map(|a| expand(a, &vars))
            .collect::<Result<_>>()?;
        let Some((prog, args)) = argv.split_first() else {
            crate::fail!("the recipe's argv is empty");
        };
        std::fs::create_dir_all(files.out())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(files.log())?;
        let start = log.metadata()?.len();
        let child = Command::new(prog)
            .args(args)
            .current_dir(&files.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("PYTHONUNBUFFERED", "1")
            .env("HF_HUB_OFFLINE", "1")
            .env("TQDM_DISABLE", "1")
            .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            .env("TRANSFORMERS_VERBOSITY", "error")
            .env("TOKENIZERS_PARALLELISM", "false")
            .process_group(0)
            .spawn()
            .map_err(|e| {
                crate::train::TrainError::Msg(format!("could not start the trainer `{prog}`: {e}"))
            })?;
        store.set_job_pid(id, child.id())?;
        store.set_job_phase(id, "running")?;
        (Watched::Child(child), start)
    };

    // Follow the log until the trainer ends.
    let mut saw_done = false;
    let ending = loop {
        let ended = match &mut watched {
            Watched::Child(c) => c.try_wait()?.map(Ending::Exited),
            Watched::Pid(p) => (!process_alive(*p, None)).then_some(Ending::Unknown),
        };
        saw_done |= follow(store, id, &fmt, &files.log(), &mut offset)?;
        if let Some(e) = ended {
            break e;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let job = store.job(id)?;
    if job.cancel_requested {
        let code = match &ending {
            Ending::Exited(s) => s.code(),
            Ending::Unknown => None,
        };
        store.finish_job(id, JobStatus::Cancelled, code, Some("cancelled"))?;
        return Ok(());
    }
    let code = match ending {
        Ending::Exited(s) if s.success() => Some(0),
        Ending::Exited(s) => {
            let how = match (s.code(), s.signal()) {
                (Some(c), _) => format!("the trainer exited with code {c}"),
                (None, Some(sig)) => format!("the trainer was killed by signal {sig}"),
                _ => format!("the trainer ended: {s}"),
            };
            let tail = log_tail(&files.log(), 15);
            store.finish_job(
                id,
                JobStatus::Failed,
                s.code(),
                Some(format!("{how}\n{tail}").trim_end()),
            )?;
            return Ok(());
        }
        Ending::Unknown => None,
    };
    if !files.out().join("adapter_config.json").exists() {
        if code.is_none() && !saw_done {
            crate::fail!("the trainer ended while no Arbor process watched it, and left no adapter (exit code unknown)");
        }
        crate::fail!(
            "the trainer exited 0 but left no adapter in {}",
            files.out().display()
        );
    }
    finish_adapter(
        store,
        id,
        files,
        &job,
        env_python.as_deref(),
        &root,
        &python,
        code,
    )
}

/// Reads what the log gained since `offset` (whole lines only) into metrics and the
/// phase. Returns whether a `done` event was among them.
fn follow(
    store: &Store,
    id: i64,
    fmt: &ProgressFormat,
    log: &Path,
    offset: &mut u64,
) -> Result<bool> {
    let Ok(mut f) = std::fs::File::open(log) else {
        return Ok(false);
    };
    f.seek(SeekFrom::Start(*offset))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let Some(last_nl) = buf.iter().rposition(|b| *b == b'\n') else {
        return Ok(false);
    };
    let mut metrics: Vec<JobMetric> = Vec::new();
    let mut phase = None;
    let mut done = false;
    let now = now_ms();
    for line in buf[..last_nl].split(|b| *b == b'\n') {
        match parse_progress(fmt, &String::from_utf8_lossy(line), now) {
            ProgressLine::Metric(m) => match metrics.iter_mut().find(|x| x.step == m.step) {
                Some(x) => {
                    x.total = m.total.or(x.total);
                    x.loss = m.loss.or(x.loss);
                    x.eval_loss = m.eval_loss.or(x.eval_loss);
                    x.lr = m.lr.or(x.lr);
                    x.tokens_per_s = m.tokens_per_s.or(x.tokens_per_s);
                }
                None => metrics.push(m),
            },
            ProgressLine::Phase(p) => phase = Some(p),
            ProgressLine::Done => done = true,
            ProgressLine::Text => {}
        }
    }
    *offset += last_nl as u64 + 1;
    store.add_job_progress(id, &metrics, phase.as_deref(), *offset)?;
    Ok(done)
}

/// Converts the trainer's adapter to a GGUF LoRA, checks llama.cpp loads it on the base,
/// registers it and writes the Ollama Modelfile.
#[allow(clippy::too_many_arguments)]
fn finish_adapter(
    store: &Store,
    id: i64,
    files: &JobFiles,
    job: &crate::store::Job,
    env_python: Option<&Path>,
    root: &Path,
    python: &str,
    code: Option<i32>,
) -> Result<()> {
    store.set_job_phase(id, "converting the adapter to GGUF")?;
    // The recipe's own environment has gguf; a `command` recipe gets the small one.
    let conv_python = match env_python {
        Some(p) => p.to_path_buf(),
        None => {
            let ready = ENVIRONMENTS
                .iter()
                .find(|e| e.name != "convert" && e.ready(root));
            match ready {
                Some(e) => e.python(root),
                None => environment("convert")?.ensure(root, python, &files.log(), &mut |_| {})?,
            }
        }
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(files.log())?;
    let adapter = files.adapter();
    let status = Command::new(&conv_python)
        .arg(files.dir.join("convert_lora.py"))
        .arg(files.out())
        .arg(&job.base_model)
        .arg(&adapter)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("running convert_lora.py")?;
    if !status.success() {
        crate::fail!("converting the adapter to GGUF failed ({status})");
    }
    store.set_job_phase(id, "checking that llama.cpp loads the adapter")?;
    let opts = crate::engine::llama::LlamaOptions {
        model: PathBuf::from(&job.base_model),
        threads: 1,
        gpu_layers: 0,
        context: 256,
        template: None,
        adapter: Some((adapter.clone(), 1.0)),
        kv_cache: None,
    };
    let sink: crate::engine::Sink = std::sync::Arc::new(|_| {});
    crate::engine::llama::LlamaBackendImpl::load(&opts, &sink).map_err(|e| {
        crate::train::TrainError::Msg(format!(
            "llama.cpp could not load the converted adapter: {e}"
        ))
    })?;
    let metrics = store.job_metrics(id)?;
    let losses: Vec<f64> = metrics.iter().filter_map(|m| m.loss).collect();
    let summary = serde_json::json!({
        "steps": metrics.last().map(|m| m.step),
        "first_loss": losses.first(),
        "last_loss": losses.last(),
        "eval_loss": metrics.iter().rev().find_map(|m| m.eval_loss),
        "examples": job.examples,
    });
    let name = job.params["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("job-{id}"));
    store.add_adapter(
        &name,
        &adapter.display().to_string(),
        &job.base_model,
        Some(id),
        Some(&summary),
    )?;
    write_atomic(
        &files.modelfile(),
        &modelfile(Path::new(&job.base_model), &adapter),
    )?;
    if let Some(set) = job.params["eval_set"].as_str() {
        store.set_job_phase(id, &format!("eval: base vs {name} on eval set {set}"))?;
        // An eval that fails is written to the log; the adapter is made all the same.
        if let Err(e) = run_job_eval(store, id, job, set, &name, &files.log()) {
            let _ = append_log(
                &files.log(),
                &format!("arbor: the eval of {set} failed: {e:#}\n"),
            );
        }
    }
    store.finish_job(id, JobStatus::Succeeded, code, None)?;
    Ok(())
}

/// `arbor train --eval SET`: the set answered by the base model and the new adapter, as
/// `arbor eval run` does it (a child process of this supervisor, its output in the log).
fn run_job_eval(
    store: &Store,
    id: i64,
    job: &crate::store::Job,
    set: &str,
    adapter: &str,
    log: &Path,
) -> Result<()> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let exe = std::env::current_exe().context("finding the arbor executable")?;
    let status = Command::new(exe)
        .arg("--db")
        .arg(store.path())
        .arg("--model")
        .arg(&job.base_model)
        .args([
            "eval",
            "run",
            set,
            "--candidate",
            "base",
            "--candidate",
            adapter,
        ])
        .arg("--for-job")
        .arg(id.to_string())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .context("running arbor eval run")?;
    if !status.success() {
        crate::fail!("arbor eval run exited with {status}");
    }
    Ok(())
}

fn append_log(log: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?
        .write_all(text.as_bytes())
}

/// Cancels a job: SIGTERM to the trainer's process group, SIGKILL after `grace`; the
/// job ends cancelled (recorded by its supervisor, or here when there is none).
pub fn cancel(store: &Store, id: i64, grace: Duration) -> Result<JobStatus> {
    let job = store.job(id)?;
    if !job.status.is_live() {
        crate::fail!("job {id} is not running (it {})", job.status);
    }
    store.request_cancel(id)?;
    if let Some(pid) = job.pid.filter(|p| process_alive(*p, None)) {
        let group = -(pid as i32);
        crate::os::signal(group, libc::SIGTERM);
        let t = Instant::now();
        while process_alive(pid, None) && t.elapsed() < grace {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Whatever of the group is left (the leader, or children it left behind).
        crate::os::signal(group, libc::SIGKILL);
    }
    // The supervisor records the end; give it a moment, then record it ourselves.
    let t = Instant::now();
    loop {
        let j = store.job(id)?;
        if !j.status.is_live() {
            return Ok(j.status);
        }
        let supervised = j
            .supervisor_pid
            .is_some_and(|p| process_alive(p, Some("arbor")));
        if !supervised || t.elapsed() > Duration::from_secs(10) {
            store.finish_job(id, JobStatus::Cancelled, None, Some("cancelled"))?;
            return Ok(JobStatus::Cancelled);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Live jobs whose supervisor is gone: a new supervisor when the trainer still runs,
/// else lost. Returns (job, what happened) for each.
pub fn reconcile(store: &Store, db: &Path) -> Result<Vec<(i64, &'static str)>> {
    let mut out = Vec::new();
    for job in store.jobs()?.into_iter().filter(|j| j.status.is_live()) {
        if job
            .supervisor_pid
            .is_some_and(|p| process_alive(p, Some("arbor")))
        {
            continue;
        }
        if job.supervisor_pid.is_none() && now_ms() - job.created_at < 30_000 {
            continue; // its supervisor is starting
        }
        let dir = job.dir.as_deref().map(PathBuf::from);
        if let (Some(pid), Some(dir)) = (job.pid, &dir) {
            if process_alive(pid, None) {
                let mut child = spawn_supervisor(db, dir, job.id, true)?;
                store.reattach_job(job.id, child.id())?;
                std::thread::spawn(move || child.wait());
                out.push((job.id, "reattached"));
                continue;
            }
        }
        let tail = dir
            .map(|d| log_tail(&JobFiles::at(d).log(), 10))
            .unwrap_or_default();
        let msg = format!(
            "lost: its supervisor (pid {}) is gone and the trainer is not running\n{tail}",
            job.supervisor_pid
                .map(|p| p.to_string())
                .unwrap_or_else(|| "none".into())
        );
        store.finish_job(job.id, JobStatus::Lost, None, Some(msg.trim_end()))?;
        out.push((job.id, "lost"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_progress_lines_become_metrics_and_phases() {
        let f = ProgressFormat::Json;
        let m = parse_progress(
            &f,
            r#"{"event":"step","step":3,"total":10,"loss":4.25,"lr":0.001,"tokens_per_s":812.5}"#,
            7,
        );
        assert_eq!(
            m,
            ProgressLine::Metric(JobMetric {
                step: 3,
                total: Some(10),
                loss: Some(4.25),
                eval_loss: None,
                lr: Some(0.001),
                tokens_per_s: Some(812.5),
                at: 7
            })
        );
        assert_eq!(
            parse_progress(&f, r#"{"event":"phase","phase":"training"}"#, 0),
            ProgressLine::Phase("training".into())
        );
        assert_eq!(
            parse_progress(&f, r#"{"event":"done"}"#, 0),
            ProgressLine::Done
        );
        for garbage in [
            "",
            "Traceback (most recent call last):",
            "{\"event\":\"step\"}",
            "{not json",
            "\u{fffd}\u{fffd}",
        ] {
            assert_eq!(
                parse_progress(&f, garbage, 0),
                ProgressLine::Text,
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn regex_progress_reads_named_groups() {
        let f = ProgressFormat::parse(r"step (?P<step>\d+)/(?P<total>\d+) loss=(?P<loss>[0-9.]+)")
            .unwrap();
        match parse_progress(&f, "[train] step 4/20 loss=1.5 lr=3e-4", 0) {
            ProgressLine::Metric(m) => {
                assert_eq!((m.step, m.total, m.loss), (4, Some(20), Some(1.5)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_progress(&f, "loading", 0), ProgressLine::Text);
        assert!(ProgressFormat::parse("loss=(?P<loss>.*)").is_err());
        assert!(ProgressFormat::parse("(unclosed").is_err());
    }
}
