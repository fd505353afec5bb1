//! `arbor train` and `arbor jobs`: training jobs from the command line.

use super::{datasets::FilterArgs, Env, Exit};
use crate::config::RecipeDef;
use crate::dataset::export::ExportOptions;
use crate::dataset::Format;
use crate::store::{Job, JobStatus, Store};
use crate::train::{self, JobFiles, JobRequest, TrainParams};
use anyhow::{Context, Result};
use std::io::{IsTerminal, Read, Seek, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// peft (default), mlx, command, or one of yours from config.toml ([train.recipes.NAME])
    #[arg(long, default_value = "peft")]
    pub recipe: String,
    /// The trainer for `--recipe command`, as you would type it (split into arguments,
    /// never run through a shell); placeholders {data} {model} {out} {params} {job}…
    #[arg(long, value_name = "ARGV")]
    pub command: Option<String>,
    /// How `--recipe command` reports progress: `json` (Arbor's events) or a regex with
    /// named groups step, total, loss (eval_loss, lr optional)
    #[arg(long, value_name = "json|REGEX")]
    pub progress: Option<String>,
    /// What `{data}` is for `--recipe command`: openai (default) or mlx
    #[arg(long, value_name = "KIND")]
    pub data_format: Option<String>,
    /// Train on this dataset file (any format `arbor import` reads) instead of the database
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Base model: a GGUF path or a name `arbor models` lists [default: the model Arbor chats with]
    #[arg(long, value_name = "GGUF|NAME")]
    pub model: Option<PathBuf>,
    /// Optimizer steps [default: --epochs over the examples]
    #[arg(long)]
    pub steps: Option<u32>,
    #[arg(long, default_value_t = 3.0)]
    pub epochs: f64,
    /// LoRA rank
    #[arg(long, default_value_t = 16)]
    pub rank: u32,
    /// LoRA alpha
    #[arg(long, default_value_t = 32.0)]
    pub alpha: f64,
    #[arg(long, default_value_t = 0.05)]
    pub dropout: f64,
    /// Learning rate
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Examples longer than this many tokens are cut
    #[arg(long, default_value_t = 2048)]
    pub max_seq_len: u32,
    #[arg(long, default_value_t = 4)]
    pub batch_size: u32,
    /// Name of the adapter it makes [default: job-<id>]
    #[arg(long)]
    pub name: Option<String>,
    /// Follow the job to its end with a progress bar (Ctrl-C stops following, not the job)
    #[arg(long)]
    pub wait: bool,
    /// When the job succeeds, run this eval set on base vs the new adapter (`arbor eval`);
    /// the Jobs view and `arbor jobs show` give its summary
    #[arg(long, value_name = "SET")]
    pub eval: Option<String>,
    #[command(flatten)]
    pub filters: FilterArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum JobsAction {
    /// Every job, newest first (the default)
    List {
        #[arg(long)]
        json: bool,
    },
    /// One job: status, progress, losses, adapter, files
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// A job's log; --follow keeps printing until the job ends
    Logs {
        id: i64,
        #[arg(long, short)]
        follow: bool,
    },
    /// Stop a job: SIGTERM to the trainer's process group, SIGKILL after a grace period
    Cancel { id: i64 },
    /// Run a failed, cancelled or lost job again (same snapshot and parameters, from step 0)
    Resume {
        id: i64,
        #[arg(long)]
        wait: bool,
    },
    /// (internal) supervise a job: started by `arbor train`
    #[command(hide = true)]
    Supervise {
        id: i64,
        #[arg(long)]
        reattach: bool,
    },
}

/// The recipe `arbor train` asked for, as data.
pub fn recipe_for(env: &Env, a: &TrainArgs) -> Result<RecipeDef> {
    let bad = |m: String| -> anyhow::Error { Exit(2, m).into() };
    if a.recipe == "command" {
        let line = a.command.as_deref().ok_or_else(|| {
            bad("--recipe command needs --command 'trainer args… {data} {out}'".into())
        })?;
        let argv = shell_words::split(line).map_err(|e| bad(format!("--command: {e}")))?;
        if argv.is_empty() {
            return Err(bad("--command is empty".into()));
        }
        train::check_argv(&argv).map_err(|e| bad(format!("--command: {e}")))?;
        let progress = a.progress.clone().unwrap_or_else(|| "json".into());
        train::ProgressFormat::parse(&progress).map_err(|e| bad(format!("--progress: {e}")))?;
        let data = a.data_format.clone().unwrap_or_else(|| "openai".into());
        if !["openai", "mlx"].contains(&data.as_str()) {
            return Err(bad(format!("--data-format {data}: openai or mlx")));
        }
        return Ok(RecipeDef {
            description: "your command".into(),
            argv,
            progress,
            environment: None,
            data: Some(data),
        });
    }
    if a.command.is_some() || a.progress.is_some() {
        return Err(bad(
            "--command and --progress go with --recipe command".into()
        ));
    }
    let all = train::recipes(&env.config.train)?;
    let def = all.get(&a.recipe).cloned().ok_or_else(|| {
        bad(format!(
            "unknown recipe {:?}; known: {}, command",
            a.recipe,
            all.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    train::check_argv(&def.argv).map_err(|e| bad(format!("recipe {}: {e}", a.recipe)))?;
    train::ProgressFormat::parse(&def.progress)
        .map_err(|e| bad(format!("recipe {}: {e}", a.recipe)))?;
    Ok(def)
}

pub fn train(env: &Env, a: TrainArgs) -> Result<i32> {
    let recipe = recipe_for(env, &a)?;
    let model = match &a.model {
        Some(m) => crate::app::resolve_model(m, &env.paths, &env.config)
            .map_err(|e| Exit(2, format!("train --model {}: {e}", m.display())))?,
        None => {
            env.check_model()?;
            env.model.clone()
        }
    };
    super::check_model(&model, &env.paths)?;
    if let Some(d) = &a.data {
        if !d.exists() {
            return Err(Exit(2, format!("--data {}: no such file", d.display())).into());
        }
    }
    let store = env.store()?;
    if let Some(set) = &a.eval {
        store.eval_set(set)?;
    }
    let mut export = ExportOptions::new(Format::Openai);
    export.threads = env.threads as usize;
    let seed = a.filters.seed;
    a.filters.clone().apply(&mut export)?;
    let params = TrainParams {
        steps: a.steps,
        epochs: a.epochs,
        rank: a.rank,
        alpha: a.alpha,
        dropout: a.dropout,
        lr: a.lr,
        max_seq_len: a.max_seq_len,
        batch_size: a.batch_size.max(1),
        seed,
        threads: env.threads,
        name: a.name.clone(),
        eval_set: a.eval.clone(),
        ..TrainParams::default()
    };
    let req = JobRequest {
        recipe_name: a.recipe.clone(),
        recipe,
        data: a.data.clone(),
        export,
        model,
        template: env.template.clone(),
        params,
        env_root: train::env_root(&env.paths, &env.config.train),
    };
    let p = train::prepare(&store, &env.paths, &req).map_err(|e| Exit(2, format!("{e:#}")))?;
    let job = store.job(p.id)?;
    start_supervisor(env, &store, &job)?;
    eprintln!(
        "job {} started: {} on {}, {} training and {} validation examples{}{}",
        p.id,
        a.recipe,
        job.base_model,
        p.train,
        p.valid,
        if p.truncated > 0 {
            format!(", {} cut to {} tokens", p.truncated, a.max_seq_len)
        } else {
            String::new()
        },
        if p.skipped > 0 {
            format!(", {} with nothing to train on left out", p.skipped)
        } else {
            String::new()
        }
    );
    println!("{}", p.id);
    if a.wait {
        return wait(&store, p.id);
    }
    eprintln!(
        "follow it: arbor jobs logs {} --follow   (or `J` in the studio)",
        p.id
    );
    Ok(0)
}

/// Starts the job's supervisor and records its pid at once (so no one takes the job
/// for lost before it has started).
fn start_supervisor(env: &Env, store: &Store, job: &Job) -> Result<()> {
    let dir = PathBuf::from(job.dir.as_deref().context("job without a directory")?);
    let child = train::spawn_supervisor(&env.db, &dir, job.id, false)?;
    store.reattach_job(job.id, child.id())?;
    // Not waited for: this process exits and the supervisor carries on (adopted by init).
    drop(child);
    Ok(())
}

/// Follows a job to its end: a progress bar on a terminal, a line per step elsewhere.
/// Exit code 0 when it succeeded, 1 otherwise.
pub fn wait(store: &Store, id: i64) -> Result<i32> {
    let tty = std::io::stderr().is_terminal();
    let mut last_step = -1;
    let mut last_phase = String::new();
    loop {
        let job = store.job(id)?;
        let metrics = store.job_metrics(id)?;
        let line = progress_line(&job, &metrics);
        if let Some(m) = metrics.last() {
            if m.step != last_step && !tty {
                eprintln!("{line}");
            }
            last_step = m.step;
        }
        let phase = job.phase.clone().unwrap_or_default();
        if phase != last_phase && !tty && !phase.is_empty() {
            eprintln!("job {id}: {phase}");
        }
        last_phase = phase;
        if tty {
            eprint!("\r\x1b[2K{line}");
        }
        if !job.status.is_live() {
            if tty {
                eprintln!();
            }
            return report_end(store, &job);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn report_end(store: &Store, job: &Job) -> Result<i32> {
    match job.status {
        JobStatus::Succeeded => {
            if let Some(a) = store.adapter_of_job(job.id)? {
                eprintln!("job {} succeeded: adapter {} at {}", job.id, a.name, a.path);
                eprintln!("chat with it: arbor --adapter {} ", a.name);
            }
            Ok(0)
        }
        s => {
            eprintln!("job {} {s}: {}", job.id, job.error.as_deref().unwrap_or(""));
            Ok(1)
        }
    }
}

/// `[#####-----] step 3/10  loss 4.250  eval 3.900  812 tok/s  ETA 12s  phase`
pub fn progress_line(job: &Job, metrics: &[crate::store::JobMetric]) -> String {
    let p = train::progress(job, metrics);
    let mut s = format!(
        "job {} {} {}",
        job.id,
        job.status,
        super::text_bar(
            p.step.max(0) as usize,
            p.total.unwrap_or(0).max(0) as usize,
            20
        )
    );
    if let Some(t) = p.total {
        s.push_str(&format!(" step {}/{t}", p.step));
    }
    if let Some(l) = p.loss {
        s.push_str(&format!("  loss {l:.3}"));
    }
    if let Some(l) = p.eval_loss {
        s.push_str(&format!("  eval {l:.3}"));
    }
    if let Some(t) = p.tokens_per_s {
        s.push_str(&format!("  {t:.0} tok/s"));
    }
    if let Some(e) = p.eta_s {
        s.push_str(&format!("  ETA {}", train::fmt_duration(e)));
    }
    if let Some(ph) = &job.phase {
        s.push_str(&format!("  {ph}"));
    }
    s
}

pub fn jobs(env: &Env, action: Option<JobsAction>) -> Result<i32> {
    let store = env.store()?;
    if let Some(JobsAction::Supervise { id, reattach }) = action {
        train::supervise(&store, &env.paths, &env.config, id, reattach)?;
        return Ok(0);
    }
    for (id, what) in train::reconcile(&store, &env.db)? {
        eprintln!("job {id}: {what}");
    }
    match action.unwrap_or(JobsAction::List { json: false }) {
        JobsAction::List { json } => {
            let jobs = store.jobs()?;
            if json {
                let mut out = Vec::new();
                for j in &jobs {
                    let mut v = serde_json::to_value(j)?;
                    v["progress"] =
                        serde_json::to_value(train::progress(j, &store.job_metrics(j.id)?))?;
                    out.push(v);
                }
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(0);
            }
            if jobs.is_empty() {
                println!("no training jobs yet; start one with `arbor train --min-rating 4`");
            }
            for j in &jobs {
                let m = store.job_metrics(j.id)?;
                let p = train::progress(j, &m);
                println!(
                    "{:>4}  {:<9}  {:<8}  {:>9}  loss {:<7}  {}",
                    j.id,
                    j.status.as_str(),
                    j.recipe,
                    match p.total {
                        Some(t) => format!("{}/{t}", p.step),
                        None => "-".into(),
                    },
                    p.loss.map(|l| format!("{l:.3}")).unwrap_or("-".into()),
                    std::path::Path::new(&j.base_model)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default()
                );
            }
            Ok(0)
        }
        JobsAction::Show { id, json } => {
            let j = store.job(id)?;
            let m = store.job_metrics(id)?;
            let adapter = store.adapter_of_job(id)?;
            let files = JobFiles::new(&env.paths, id);
            if json {
                let mut v = serde_json::to_value(&j)?;
                v["metrics"] = serde_json::to_value(&m)?;
                v["adapter"] = serde_json::to_value(&adapter)?;
                v["log"] = files.log().display().to_string().into();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            println!("{}", progress_line(&j, &m));
            println!("recipe      {}", j.recipe);
            println!("base model  {}", j.base_model);
            println!(
                "data        {} ({} examples)",
                j.data_path,
                j.examples.unwrap_or(0)
            );
            println!("params      {}", j.params);
            if let Some(d) = &j.dir {
                println!("directory   {d}");
            }
            println!("log         {}", files.log().display());
            let losses: Vec<f64> = m.iter().filter_map(|x| x.loss).collect();
            if let (Some(a), Some(b)) = (losses.first(), losses.last()) {
                println!("loss        {a:.4} → {b:.4} over {} steps", losses.len());
            }
            if let Some(e) = m.iter().rev().find_map(|x| x.eval_loss) {
                println!("eval loss   {e:.4}");
            }
            if let Some(c) = j.exit_code {
                println!("exit code   {c}");
            }
            if let Some(a) = &adapter {
                println!("adapter     {} ({})", a.name, a.path);
                println!("modelfile   {}", files.modelfile().display());
            }
            if let Some(e) = &j.error {
                println!("error       {e}");
            }
            if let Some(run) = store.job_eval_run(j.id)? {
                let r = crate::eval::report::report(&store, run, None)?;
                println!("eval        {}", r.summary_line());
                println!("            (arbor eval report {run} for the whole report)");
            }
            Ok(0)
        }
        JobsAction::Logs { id, follow } => {
            let j = store.job(id)?;
            let log = JobFiles::new(&env.paths, id).log();
            let log = j.dir.as_ref().map(|d| JobFiles::at(d).log()).unwrap_or(log);
            let mut offset = 0u64;
            let mut out = std::io::stdout();
            loop {
                if let Ok(mut f) = std::fs::File::open(&log) {
                    f.seek(std::io::SeekFrom::Start(offset))?;
                    let mut buf = Vec::new();
                    f.read_to_end(&mut buf)?;
                    offset += buf.len() as u64;
                    out.write_all(&buf)?;
                    out.flush()?;
                }
                if !follow || !store.job(id)?.status.is_live() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            if follow {
                let j = store.job(id)?;
                eprintln!("job {id} {}", j.status);
            }
            Ok(0)
        }
        JobsAction::Cancel { id } => {
            let grace = Duration::from_secs(env.config.train.cancel_grace_s.unwrap_or(10));
            let status = train::cancel(&store, id, grace).map_err(|e| Exit(2, e.to_string()))?;
            println!("job {id} {status}");
            Ok(0)
        }
        JobsAction::Resume { id, wait: w } => {
            let j = store.job(id)?;
            if j.status.is_live() || j.status == JobStatus::Succeeded {
                return Err(Exit(
                    2,
                    format!(
                        "job {id} {}: only a failed, cancelled or lost job can be resumed",
                        j.status
                    ),
                )
                .into());
            }
            store.requeue_job(id)?;
            start_supervisor(env, &store, &store.job(id)?)?;
            eprintln!("job {id} queued again (from step 0, same snapshot and parameters)");
            if w {
                return wait(&store, id);
            }
            Ok(0)
        }
        JobsAction::Supervise { .. } => unreachable!("handled above"),
    }
}

/// `arbor doctor`'s training section: which recipes can run here, and why not.
pub fn doctor_lines(env: &Env) -> Vec<(String, String)> {
    let root = train::env_root(&env.paths, &env.config.train);
    let python = env
        .config
        .train
        .python
        .clone()
        .unwrap_or_else(|| "python3".into());
    let has_python = std::process::Command::new(&python)
        .args(["-c", "import venv"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut out = Vec::new();
    let Ok(all) = train::recipes(&env.config.train) else {
        return vec![(
            "recipes".into(),
            "config.toml [train.recipes] does not parse".into(),
        )];
    };
    for (name, def) in &all {
        let verdict = match (name.as_str(), def.environment.as_deref()) {
            ("mlx", _) if !(cfg!(target_os = "macos") && cfg!(target_arch = "aarch64")) => {
                "not here: mlx-lm needs Apple Silicon (macOS on arm64); use peft".to_string()
            }
            (_, Some(e)) => match train::environment(e) {
                Ok(env_) if env_.ready(&root) => format!("ready ({})", env_.dir(&root).display()),
                Ok(env_) if has_python => format!(
                    "can run: its environment is made on first use in {} ({})",
                    env_.dir(&root).display(),
                    env_.size
                ),
                Ok(_) => format!("cannot run: {python} with the venv module is needed"),
                Err(e) => format!("cannot run: {e}"),
            },
            (_, None) => match def.argv.first() {
                Some(p) if which(p) => "ready".into(),
                Some(p) => format!("cannot run: {p} is not on PATH"),
                None => "cannot run: empty argv".into(),
            },
        };
        out.push((name.clone(), verdict));
    }
    out.push((
        "command".into(),
        "ready: any trainer you name with --command (axolotl, LLaMA-Factory, torchrun…)".into(),
    ));
    let gpu = which("nvidia-smi");
    out.push((
        "device".into(),
        if gpu {
            "NVIDIA GPU found: peft trains on CUDA".into()
        } else {
            "no NVIDIA GPU: peft trains on the CPU in fp32 (small models)".into()
        },
    ));
    out
}

fn which(prog: &str) -> bool {
    if prog.contains('/') || prog.starts_with('{') {
        return prog.starts_with('{') || std::path::Path::new(prog).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}
