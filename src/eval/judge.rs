//! An LLM judge: scores answers 1–5 with a rubric, through the same engine and batching as
//! eval runs, its output held to `{"score": 1-5, "reason": "…"}` by a grammar. Scores are
//! stored as ratings of the rater `judge:<model>` with the reason as the critique, so they
//! sit beside the people's ratings without ever counting as theirs (`store::JUDGE_PREFIX`).
//! `calibrate` measures how far the judge agrees with a person: Spearman's ρ, exact and
//! within-one agreement, quadratic-weighted Cohen's κ and the confusion matrix.

use super::{EvalError, Result};
use crate::domain::*;
use crate::engine::{EngineEvent, GenRequest};
use crate::store::Store;
use std::collections::HashMap;
use std::path::Path;

/// The built-in rubrics: a general one and one per preset.
pub const RUBRICS: &[(&str, &str)] = &[
    ("general", include_str!("../../assets/rubrics/general.txt")),
    (
        "clarifying",
        include_str!("../../assets/rubrics/clarifying.txt"),
    ),
    ("sql", include_str!("../../assets/rubrics/sql.txt")),
    (
        "tool-caller",
        include_str!("../../assets/rubrics/tool-caller.txt"),
    ),
];

/// What a rubric may use; `{answer}` it must.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("system", "the conversation's system prompt"),
    ("tools", "the conversation's tools (JSON), or \"none\""),
    (
        "conversation",
        "the messages before the answer, one `role: text` block each",
    ),
    ("question", "the last user message before the answer"),
    ("answer", "the answer being judged, tool calls as JSON"),
];

/// A rubric: its name (a built-in's, or the file it came from) and text.
#[derive(Debug, Clone, PartialEq)]
pub struct Rubric {
    pub name: String,
    pub text: String,
}

impl Rubric {
    /// A built-in by name, or a file; either is checked.
    pub fn load(spec: &str) -> Result<Rubric> {
        if let Some((name, text)) = RUBRICS.iter().find(|(n, _)| *n == spec) {
            return Ok(Rubric {
                name: name.to_string(),
                text: text.to_string(),
            });
        }
        let path = Path::new(spec);
        if !path.exists() {
            return Err(bad(format!(
                "--rubric {spec}: neither a built-in rubric ({}) nor a file",
                RUBRICS.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        check(&text).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        Ok(Rubric {
            name: path.display().to_string(),
            text,
        })
    }

    /// The built-in that fits a conversation: `tool-caller` when it has tools, else
    /// `general`.
    pub fn for_conversation(conv: &Conversation) -> Rubric {
        let name = if conv
            .tools
            .as_ref()
            .is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()))
        {
            "tool-caller"
        } else {
            "general"
        };
        Rubric::load(name).expect("a built-in")
    }

    /// The rubric with the answer's context filled in.
    pub fn render(&self, conv: &Conversation, path: &[Node]) -> String {
        let (answer, before) = path.split_last().expect("a path ends at the answer");
        let question = before
            .iter()
            .rev()
            .find(|n| n.role == Role::User)
            .map(|n| n.content.clone())
            .unwrap_or_default();
        let conversation = before
            .iter()
            .map(|n| format!("{}: {}", n.role.as_str(), shown(n)))
            .collect::<Vec<_>>()
            .join("\n\n");
        let tools = conv
            .tools
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "none".into());
        let mut out = self.text.clone();
        for (key, value) in [
            ("system", conv.system_prompt.as_str()),
            ("tools", tools.as_str()),
            ("conversation", conversation.as_str()),
            ("question", question.as_str()),
            ("answer", shown(answer).as_str()),
        ] {
            out = out.replace(&format!("{{{key}}}"), value);
        }
        out
    }
}

/// A message as the judge reads it: its text, then its tool calls as JSON.
fn shown(n: &Node) -> String {
    let mut s = n.content.clone();
    for c in &n.tool_calls {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&serde_json::json!({"name": c.name, "arguments": c.arguments}).to_string());
    }
    s
}

/// Bad input (a rubric, a judge name): exit code 2.
fn bad(m: String) -> EvalError {
    crate::store::StoreError::Invalid(m).into()
}

/// A rubric's text: `{answer}` present, every `{word}` one of [`PLACEHOLDERS`]; the error
/// names the line.
pub fn check(text: &str) -> Result<(), String> {
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find('{') {
            let tail = &rest[start + 1..];
            let word: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty()
                && tail[word.len()..].starts_with('}')
                && !PLACEHOLDERS.iter().any(|(p, _)| *p == word)
            {
                {
                    return Err(format!(
                        "line {}: unknown placeholder {{{word}}} (known: {})",
                        i + 1,
                        PLACEHOLDERS
                            .iter()
                            .map(|(p, _)| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            rest = tail;
        }
    }
    if !text.contains("{answer}") {
        return Err(
            "the rubric has no {answer} placeholder: the judge would never see the answer".into(),
        );
    }
    Ok(())
}

/// The JSON the judge must write.
pub fn verdict_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
            "reason": {"type": "string", "maxLength": 300}
        },
        "required": ["score", "reason"],
        "additionalProperties": false
    })
}

/// Reads a verdict; `Err` says why it is not one.
pub fn parse_verdict(text: &str) -> Result<(u8, String), String> {
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("not JSON ({e}): {text:?}"))?;
    let score = v["score"]
        .as_u64()
        .filter(|s| (1..=5).contains(s))
        .ok_or_else(|| format!("no score 1-5 in {text:?}"))?;
    let reason = v["reason"].as_str().unwrap_or("").trim().to_string();
    Ok((score as u8, reason))
}

/// What to judge and how.
pub struct JudgeJob<'a> {
    pub store: &'a Store,
    /// The answers to score.
    pub answers: &'a [NodeId],
    /// `None`: the built-in that fits each conversation.
    pub rubric: Option<&'a Rubric>,
    /// `judge:<model>`.
    pub rater: &'a str,
    pub batch: usize,
}

/// How a judge run went.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct JudgeSummary {
    pub rater: String,
    pub scored: usize,
    /// Answers the judge could not score, with why.
    pub failed: Vec<(NodeId, String)>,
    /// How many of each score, 1 to 5.
    pub scores: [usize; 5],
}

/// The answers the selection's turns hold: every complete assistant message of each turn
/// (the answers to the user message, and after tool results the answers that follow them,
/// up to the next user message), in turn order.
pub fn answers_of(store: &Store, cases: &[crate::store::NewCase]) -> Result<Vec<NodeId>> {
    let mut out = Vec::new();
    for c in cases {
        let mut todo = vec![c.user_node_id];
        while let Some(parent) = todo.pop() {
            let kids = store.children(c.conversation_id, Some(parent))?;
            for n in kids.iter().rev() {
                match n.role {
                    Role::User => {}
                    Role::Assistant if n.status == Status::Complete => {
                        out.push(n.id);
                        todo.push(n.id);
                    }
                    _ => todo.push(n.id),
                }
            }
        }
    }
    // Depth-first from each turn; the queue and the judge go oldest first.
    let mut seen = std::collections::HashSet::new();
    out.retain(|id| seen.insert(*id));
    Ok(out)
}

/// Scores every answer through `engine` (loaded and ready), `batch` at a time decoding
/// together. Each score is committed as it comes, so an interrupted run keeps what it
/// scored; a rerun replaces the judge's earlier score of an answer. `scored` is called after
/// each answer.
pub fn judge(
    job: &JudgeJob,
    engine: &crate::engine::Engine,
    events: &std::sync::mpsc::Receiver<EngineEvent>,
    scored: &mut dyn FnMut(usize),
) -> Result<JudgeSummary> {
    let mut summary = JudgeSummary {
        rater: job.rater.to_string(),
        ..Default::default()
    };
    let mut sampling = Sampling::greedy(160);
    sampling.repeat_penalty = 1.0;
    let mut done = 0;
    for chunk in job.answers.chunks(job.batch.max(1)) {
        let mut reqs = Vec::with_capacity(chunk.len());
        let mut texts: HashMap<u64, String> = HashMap::new();
        for &answer in chunk {
            let path = job.store.path_to_root(answer)?;
            let conv = job.store.conversation(path[0].conversation_id)?;
            let rubric = match job.rubric {
                Some(r) => r.clone(),
                None => Rubric::for_conversation(&conv),
            };
            let messages = vec![
                ChatMessage::new(
                    Role::System,
                    "You grade answers strictly and reply with JSON only.",
                ),
                ChatMessage::new(Role::User, rubric.render(&conv, &path)),
            ];
            let id = answer as u64;
            texts.insert(id, String::new());
            reqs.push(GenRequest {
                json_schema: Some(verdict_schema()),
                ..GenRequest::new(id, messages, sampling.clone())
            });
        }
        if reqs.len() == 1 {
            engine.generate(reqs.pop().expect("one"));
        } else {
            engine.generate_batch(reqs);
        }
        let mut open = texts.len();
        while open > 0 {
            let Ok(e) = events.recv() else {
                crate::fail!("the engine stopped");
            };
            match e {
                EngineEvent::Token { id, text, .. } => {
                    if let Some(t) = texts.get_mut(&id) {
                        t.push_str(&text);
                    }
                }
                EngineEvent::Done { id, .. } => {
                    let Some(text) = texts.remove(&id) else {
                        continue;
                    };
                    open -= 1;
                    done += 1;
                    let node = id as NodeId;
                    match parse_verdict(&text) {
                        Ok((score, reason)) => {
                            job.store
                                .set_rating(node, job.rater, Some(score), &reason)?;
                            summary.scored += 1;
                            summary.scores[score as usize - 1] += 1;
                        }
                        Err(why) => summary.failed.push((node, why)),
                    }
                    scored(done);
                }
                EngineEvent::Error { id, message, .. } if texts.remove(&id).is_some() => {
                    open -= 1;
                    done += 1;
                    summary.failed.push((id as NodeId, message));
                    scored(done);
                }
                _ => {}
            }
        }
    }
    Ok(summary)
}

/// How far a judge agrees with people, on every answer both rated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Calibration {
    pub judge: String,
    /// The human rater compared (`None`: every human rater, one pair per rating).
    pub rater: Option<String>,
    pub n: usize,
    /// Spearman's rank correlation (ties get average ranks); `None` when either side is
    /// constant.
    pub spearman: Option<f64>,
    /// Share of pairs with the same stars.
    pub exact: Option<f64>,
    /// Share of pairs at most one star apart.
    pub within_one: Option<f64>,
    /// Cohen's κ with quadratic weights; `None` when it is undefined.
    pub kappa_quadratic: Option<f64>,
    /// `confusion[human - 1][judge - 1]`.
    pub confusion: [[usize; 5]; 5],
}

/// The figures for (human, judge) star pairs.
pub fn agreement(judge: &str, rater: Option<&str>, pairs: &[(u8, u8)]) -> Calibration {
    let n = pairs.len();
    let mut confusion = [[0usize; 5]; 5];
    for &(h, j) in pairs {
        confusion[h as usize - 1][j as usize - 1] += 1;
    }
    let share = |f: &dyn Fn(u8, u8) -> bool| {
        (n > 0).then(|| pairs.iter().filter(|&&(h, j)| f(h, j)).count() as f64 / n as f64)
    };
    let exact = share(&|h, j| h == j);
    let within_one = share(&|h, j| h.abs_diff(j) <= 1);
    let hs: Vec<f64> = pairs.iter().map(|p| p.0 as f64).collect();
    let js: Vec<f64> = pairs.iter().map(|p| p.1 as f64).collect();
    let spearman = pearson(&ranks(&hs), &ranks(&js));
    // Quadratic-weighted κ: 1 − Σ w·observed / Σ w·expected, w = (i − j)² / (k − 1)².
    let kappa_quadratic = (n > 0)
        .then(|| {
            let rows: Vec<f64> = (0..5)
                .map(|i| confusion[i].iter().sum::<usize>() as f64)
                .collect();
            let cols: Vec<f64> = (0..5)
                .map(|j| (0..5).map(|i| confusion[i][j]).sum::<usize>() as f64)
                .collect();
            let (mut obs, mut exp) = (0.0, 0.0);
            for i in 0..5 {
                for j in 0..5 {
                    let w = ((i as f64 - j as f64) / 4.0).powi(2);
                    obs += w * confusion[i][j] as f64;
                    exp += w * rows[i] * cols[j] / n as f64;
                }
            }
            (exp > 0.0).then(|| 1.0 - obs / exp)
        })
        .flatten();
    Calibration {
        judge: judge.to_string(),
        rater: rater.map(str::to_string),
        n,
        spearman,
        exact,
        within_one,
        kappa_quadratic,
        confusion,
    }
}

/// Average ranks, 1-based (ties share the mean of their positions).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    if x.len() < 2 {
        return None;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Compares judge `judge` (default: the only judge that rated anything) with human rater
/// `rater` (default: every human rater) on every answer both rated.
pub fn calibrate(store: &Store, judge: Option<&str>, rater: Option<&str>) -> Result<Calibration> {
    let judges = store.judge_raters()?;
    let judge = match judge {
        Some(j) => {
            let j = if crate::store::is_judge(j) {
                j.to_string()
            } else {
                format!("{}{j}", crate::store::JUDGE_PREFIX)
            };
            if !judges.contains(&j) {
                return Err(bad(format!(
                    "no ratings by {j} (judges with ratings: {})",
                    if judges.is_empty() {
                        "none — run arbor judge first".into()
                    } else {
                        judges.join(", ")
                    }
                )));
            }
            j
        }
        None => match judges.as_slice() {
            [] => {
                return Err(bad(
                    "no judge has rated anything yet: run arbor judge first".into(),
                ))
            }
            [one] => one.clone(),
            many => {
                return Err(bad(format!(
                    "several judges rated answers ({}): name one with --judge",
                    many.join(", ")
                )))
            }
        },
    };
    if let Some(r) = rater {
        if crate::store::is_judge(r) {
            return Err(bad(format!("--rater {r} is a judge; name a person")));
        }
    }
    let pairs = store.judge_pairs(&judge, rater)?;
    Ok(agreement(&judge, rater, &pairs))
}

impl std::fmt::Display for Calibration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |x: Option<f64>| x.map_or("–".into(), |x| format!("{:.0}%", x * 100.0));
        let num = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.2}"));
        writeln!(
            f,
            "{} vs {}: {} answers rated by both",
            self.judge,
            self.rater.as_deref().unwrap_or("every human rater"),
            self.n
        )?;
        writeln!(f, "  Spearman ρ             {}", num(self.spearman))?;
        writeln!(f, "  exact agreement        {}", pct(self.exact))?;
        writeln!(f, "  within one star        {}", pct(self.within_one))?;
        writeln!(f, "  Cohen's κ (quadratic)  {}", num(self.kappa_quadratic))?;
        writeln!(f, "  confusion (rows: human ★, columns: judge ★)")?;
        writeln!(f, "         1    2    3    4    5")?;
        for (i, row) in self.confusion.iter().enumerate() {
            writeln!(
                f,
                "    {}  {}",
                i + 1,
                row.iter()
                    .map(|c| format!("{c:>4}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_equals_a_hand_computation() {
        // human: 1 2 3 4 5 5   judge: 1 3 3 5 4 5
        let pairs = [(1, 1), (2, 3), (3, 3), (4, 5), (5, 4), (5, 5)];
        let c = agreement("judge:m", None, &pairs);
        assert_eq!(c.n, 6);
        assert_eq!(c.exact, Some(3.0 / 6.0));
        assert_eq!(c.within_one, Some(1.0));
        // Ranks: human 1 2 3 4 5.5 5.5, judge 1 2.5 2.5 5.5 4 5.5 (both mean 3.5):
        // Σ dx·dy = 14.25, Σ dx² = 17, Σ dy² = 16.5 → ρ = 14.25 / √(17 · 16.5) = 0.8508…
        let rho = c.spearman.unwrap();
        assert!(
            (rho - 14.25 / (17.0f64 * 16.5).sqrt()).abs() < 1e-12,
            "{rho}"
        );
        // κ: weights (i − j)² / 16. Observed Σ w·O = 3 pairs one apart = 3/16 = 0.1875.
        // Human counts per star (1,1,1,1,2), judge's (1,0,2,1,2): expected
        // Σ w · r_i · c_j / 6 = 1.5625 → κ = 1 − 0.1875 / 1.5625 = 0.88.
        assert!(
            (c.kappa_quadratic.unwrap() - 0.88).abs() < 1e-12,
            "{:?}",
            c.kappa_quadratic
        );
        assert_eq!(c.confusion[3][4], 1);
        assert_eq!(c.confusion[4][4], 1);
        // Perfect agreement, and nothing to compare.
        let same = agreement("judge:m", None, &[(1, 1), (3, 3), (5, 5)]);
        assert_eq!(
            (same.spearman, same.kappa_quadratic, same.exact),
            (Some(1.0), Some(1.0), Some(1.0))
        );
        let none = agreement("judge:m", None, &[]);
        assert_eq!(
            (none.spearman, none.kappa_quadratic, none.exact),
            (None, None, None)
        );
    }

    #[test]
    fn rubrics_are_checked_and_filled() {
        for (name, text) in RUBRICS {
            check(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let e = check("Rate it.\n{question}\n").unwrap_err();
        assert!(e.contains("no {answer} placeholder"), "{e}");
        let e = check("{answer}\n\nand {answr}\n").unwrap_err();
        assert!(e.starts_with("line 3: unknown placeholder {answr}"), "{e}");
        assert!(check("JSON like {\"score\": 1} is fine: {answer}").is_ok());
        let conv = Conversation {
            id: 1,
            title: "t".into(),
            system_prompt: "Be brief.".into(),
            tools: None,
            settings: None,
            active_root_id: None,
            created_at: 0,
            updated_at: 0,
        };
        let path = [
            Node::new(1, Role::User, "2+2?"),
            Node::new(1, Role::Assistant, "4"),
        ];
        let r = Rubric {
            name: "t".into(),
            text: "{system}|{question}|{answer}|{tools}|{conversation}".into(),
        };
        assert_eq!(r.render(&conv, &path), "Be brief.|2+2?|4|none|user: 2+2?");
        assert_eq!(
            parse_verdict(r#"{"score": 4, "reason": "ok"}"#).unwrap(),
            (4, "ok".into())
        );
        assert!(parse_verdict(r#"{"score": 9, "reason": "x"}"#).is_err());
        assert!(parse_verdict("4 stars").is_err());
    }
}
