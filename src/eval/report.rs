//! `arbor eval report`: per candidate, every automatic metric's rate with counts and a 95 %
//! Wilson interval, means, human stars where answers were rated; and the same by group
//! (clarification, tool and SQL cases).

use super::metrics::{self, CaseContext, Metrics};
use crate::domain::*;
use crate::eval::Result;
use crate::store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// k of n, with its rate and 95 % Wilson score interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    pub k: usize,
    pub n: usize,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// The Wilson score interval for k successes in n trials at z = 1.96:
/// (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n).
pub fn wilson(k: usize, n: usize) -> Rate {
    if n == 0 {
        return Rate {
            k,
            n,
            rate: 0.0,
            low: 0.0,
            high: 0.0,
        };
    }
    let z = 1.959_963_984_540_054_f64;
    let (kf, nf) = (k as f64, n as f64);
    let p = kf / nf;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * nf);
    let margin = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    let d = 1.0 + z2 / nf;
    Rate {
        k,
        n,
        rate: p,
        low: ((centre - margin) / d).max(0.0),
        high: ((centre + margin) / d).min(1.0),
    }
}

/// One candidate's figures over a group of cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub answers: usize,
    pub failed: usize,
    /// Boolean metrics by name (only those that applied to some case).
    pub rates: BTreeMap<&'static str, Rate>,
    pub mean_token_f1: Option<f64>,
    pub mean_tokens: Option<f64>,
    pub mean_tokens_per_s: Option<f64>,
    /// Mean of the human stars given to this candidate's answers, and how many were rated.
    pub mean_stars: Option<f64>,
    pub rated: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateReport {
    pub spec: String,
    pub all: Summary,
    /// `clarification`, `tools`, `sql` cases.
    pub groups: BTreeMap<&'static str, Summary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub run: i64,
    pub set: String,
    pub status: String,
    pub cases: usize,
    pub candidates: Vec<CandidateReport>,
    /// Per case and candidate: the answer's node and metrics.
    pub answers: Vec<AnswerRow>,
    /// Per pair of candidates, the blind review's verdicts (human raters).
    pub pairs: Vec<PairReport>,
}

/// Blind review of candidates `a` against `b`: wins, ties, losses of `a`, its win rate over
/// the decisive verdicts with a 95 % Wilson interval, and a two-sided sign-test p-value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairReport {
    pub a: String,
    pub b: String,
    pub wins: usize,
    pub ties: usize,
    pub losses: usize,
    pub win_rate: Rate,
    pub sign_test_p: f64,
}

/// Two-sided sign test: twice the probability of at most min(w, l) successes in w + l fair
/// coin flips (ties left out), at most 1.
pub fn sign_test(wins: usize, losses: usize) -> f64 {
    let n = wins + losses;
    if n == 0 {
        return 1.0;
    }
    let k = wins.min(losses);
    // Σ_{i≤k} C(n, i) / 2^n, summed in log space so large n does not underflow.
    let ln2n = n as f64 * std::f64::consts::LN_2;
    let mut ln_c = 0.0f64; // ln C(n, 0)
    let mut total = 0.0f64;
    for i in 0..=k {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        total += (ln_c - ln2n).exp();
    }
    (2.0 * total).min(1.0)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerRow {
    pub case_id: i64,
    pub candidate: usize,
    pub node_id: NodeId,
    pub status: Status,
    pub metrics: Metrics,
}

fn add(s: &mut Summary, m: &Metrics, acc: &mut Acc) {
    let flags: [(&'static str, Option<bool>); 10] = [
        ("tool_call_made", m.tool_call_made),
        ("tool_names_match", m.tool_names_match),
        ("tool_args_valid", m.tool_args_valid),
        ("tool_args_equal", m.tool_args_equal),
        ("no_spurious_call", m.no_spurious_call),
        ("sql_compiles", m.sql_compiles),
        ("sql_same_result", m.sql_same_result),
        ("asks_clarification", m.asks_clarification),
        ("unnecessary_question", m.unnecessary_question),
        ("exact_match", m.exact_match),
    ];
    for (name, v) in flags {
        if let Some(b) = v {
            let e = acc.counts.entry(name).or_default();
            e.1 += 1;
            if b {
                e.0 += 1;
            }
        }
    }
    for (slot, v) in [
        (0, m.token_f1),
        (1, m.tokens.map(|t| t as f64)),
        (2, m.tokens_per_s),
    ] {
        if let Some(x) = v {
            acc.sums[slot].0 += x;
            acc.sums[slot].1 += 1;
        }
    }
    s.answers += 1;
}

#[derive(Default)]
struct Acc {
    counts: BTreeMap<&'static str, (usize, usize)>,
    sums: [(f64, usize); 3],
    stars: (f64, usize),
}

fn close(mut s: Summary, acc: Acc) -> Summary {
    s.rates = acc
        .counts
        .into_iter()
        .map(|(k, (yes, n))| (k, wilson(yes, n)))
        .collect();
    let mean = |(sum, n): (f64, usize)| (n > 0).then(|| sum / n as f64);
    s.mean_token_f1 = mean(acc.sums[0]);
    s.mean_tokens = mean(acc.sums[1]);
    s.mean_tokens_per_s = mean(acc.sums[2]);
    s.mean_stars = mean(acc.stars);
    s.rated = acc.stars.1;
    s
}

/// The report of run `id`; `sql_db` executes SQL for `sql_same_result`.
pub fn report(store: &Store, id: i64, sql_db: Option<&rusqlite::Connection>) -> Result<Report> {
    let run = store.eval_run(id)?;
    let (_, cases) = store.eval_set(&run.set_name)?;
    let answers = store.eval_answers(id)?;
    let by_case: HashMap<i64, &crate::store::EvalCase> = cases.iter().map(|c| (c.id, c)).collect();
    let mut rows = Vec::new();
    let k = run.candidates.len();
    let mut sums: Vec<(Summary, Acc)> = (0..k).map(|_| Default::default()).collect();
    let mut groups: Vec<BTreeMap<&'static str, (Summary, Acc)>> =
        (0..k).map(|_| BTreeMap::new()).collect();
    let mut convs: HashMap<ConversationId, Conversation> = HashMap::new();
    let mut references: HashMap<i64, Option<Node>> = HashMap::new();
    for a in &answers {
        let Some(case) = by_case.get(&a.case_id) else {
            continue;
        };
        if a.candidate >= k {
            continue;
        }
        let node = store.node(a.node_id)?;
        if let std::collections::hash_map::Entry::Vacant(e) = convs.entry(case.conversation_id) {
            e.insert(store.conversation(case.conversation_id)?);
        }
        let conv = &convs[&case.conversation_id];
        // Every candidate's answer to a case is scored against the same reference.
        if let std::collections::hash_map::Entry::Vacant(e) = references.entry(case.id) {
            e.insert(case.reference_node_id.map(|r| store.node(r)).transpose()?);
        }
        let reference = references[&case.id].as_ref();
        let ctx = CaseContext {
            system: &conv.system_prompt,
            tools: conv.tools.as_ref(),
            tags: &case.tags,
            reference,
            sql_db,
        };
        let (s, acc) = &mut sums[a.candidate];
        if node.status != Status::Complete {
            s.failed += 1;
            rows.push(AnswerRow {
                case_id: a.case_id,
                candidate: a.candidate,
                node_id: a.node_id,
                status: node.status,
                metrics: Metrics::default(),
            });
            continue;
        }
        let m = metrics::score(&ctx, &node);
        let stars: Vec<u8> = store
            .ratings(node.id)?
            .iter()
            .filter(|r| !r.rater.starts_with("judge:"))
            .filter_map(|r| r.stars)
            .collect();
        let star = (!stars.is_empty())
            .then(|| stars.iter().map(|&s| s as f64).sum::<f64>() / stars.len() as f64);
        add(s, &m, acc);
        if let Some(x) = star {
            acc.stars.0 += x;
            acc.stars.1 += 1;
        }
        let mut kinds: Vec<&'static str> = Vec::new();
        if case.tags.iter().any(|t| t == "clarification") {
            kinds.push("clarification");
        }
        if conv
            .tools
            .as_ref()
            .and_then(|t| t.as_array())
            .is_some_and(|t| !t.is_empty())
        {
            kinds.push("tools");
        }
        if metrics::schema_of(&conv.system_prompt).is_some() {
            kinds.push("sql");
        }
        for g in kinds {
            let (gs, gacc) = groups[a.candidate].entry(g).or_default();
            add(gs, &m, gacc);
            if let Some(x) = star {
                gacc.stars.0 += x;
                gacc.stars.1 += 1;
            }
        }
        rows.push(AnswerRow {
            case_id: a.case_id,
            candidate: a.candidate,
            node_id: a.node_id,
            status: node.status,
            metrics: m,
        });
    }
    let mut pairs = Vec::new();
    let decisions = store.decisions(id)?;
    for a in 0..k {
        for b in a + 1..k {
            let (mut wins, mut ties, mut losses) = (0, 0, 0);
            for d in decisions
                .iter()
                .filter(|d| d.a == a && d.b == b && !d.rater.starts_with("judge:"))
            {
                match d.winner {
                    Some(w) if w == a => wins += 1,
                    Some(_) => losses += 1,
                    None => ties += 1,
                }
            }
            if wins + ties + losses > 0 {
                pairs.push(PairReport {
                    a: run.candidates[a].clone(),
                    b: run.candidates[b].clone(),
                    wins,
                    ties,
                    losses,
                    win_rate: wilson(wins, wins + losses),
                    sign_test_p: sign_test(wins, losses),
                });
            }
        }
    }
    let candidates = run
        .candidates
        .iter()
        .zip(sums.into_iter().zip(groups))
        .map(|(spec, ((s, acc), g))| CandidateReport {
            spec: spec.clone(),
            all: close(s, acc),
            groups: g
                .into_iter()
                .map(|(k, (s, acc))| (k, close(s, acc)))
                .collect(),
        })
        .collect();
    Ok(Report {
        run: run.id,
        set: run.set_name,
        status: run.status,
        cases: cases.len(),
        candidates,
        answers: rows,
        pairs,
    })
}

impl Report {
    /// One line for the Jobs view: each candidate's first few metric rates, and the blind
    /// review's win rate where there is one.
    pub fn summary_line(&self) -> String {
        let mut parts = Vec::new();
        for c in &self.candidates {
            let rates: Vec<String> = c
                .all
                .rates
                .iter()
                .filter(|(k, _)| **k != "unnecessary_question")
                .take(3)
                .map(|(k, r)| format!("{k} {}/{}", r.k, r.n))
                .collect();
            parts.push(format!("{}: {}", c.spec, rates.join(", ")));
        }
        let mut line = format!(
            "eval run {} ({}): {}",
            self.run,
            self.set,
            parts.join(" · ")
        );
        for p in &self.pairs {
            line.push_str(&format!(
                " · blind {} vs {}: {}–{}–{}",
                p.a, p.b, p.wins, p.ties, p.losses
            ));
        }
        line
    }

    /// The report as Markdown (also what `eval report` prints).
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Eval run {} — set {} ({} cases, {})\n\n",
            self.run, self.set, self.cases, self.status
        );
        let mut names: Vec<&'static str> = Vec::new();
        for c in &self.candidates {
            for k in c.all.rates.keys() {
                if !names.contains(k) {
                    names.push(k);
                }
            }
        }
        out.push_str("| metric |");
        for c in &self.candidates {
            out.push_str(&format!(" {} |", c.spec));
        }
        out.push_str("\n|---|");
        for _ in &self.candidates {
            out.push_str("---|");
        }
        out.push('\n');
        let cell = |r: Option<&Rate>| match r {
            Some(r) => format!(
                "{}/{} ({:.0}% [{:.0}–{:.0}])",
                r.k,
                r.n,
                r.rate * 100.0,
                r.low * 100.0,
                r.high * 100.0
            ),
            None => "–".into(),
        };
        out.push_str("| answers (failed) |");
        for c in &self.candidates {
            out.push_str(&format!(
                " {} ({}) |",
                c.all.answers + c.all.failed,
                c.all.failed
            ));
        }
        out.push('\n');
        for n in &names {
            out.push_str(&format!("| {n} |"));
            for c in &self.candidates {
                out.push_str(&format!(" {} |", cell(c.all.rates.get(n))));
            }
            out.push('\n');
        }
        let num = |v: Option<f64>, digits: usize| {
            v.map_or("–".to_string(), |x| format!("{x:.digits$}"))
        };
        for (label, f) in [
            (
                "token F1 (mean)",
                (|s: &Summary| s.mean_token_f1) as fn(&Summary) -> Option<f64>,
            ),
            ("tokens (mean)", |s: &Summary| s.mean_tokens),
            ("tokens/s (mean)", |s: &Summary| s.mean_tokens_per_s),
            ("human stars (mean)", |s: &Summary| s.mean_stars),
        ] {
            out.push_str(&format!("| {label} |"));
            for c in &self.candidates {
                out.push_str(&format!(" {} |", num(f(&c.all), 2)));
            }
            out.push('\n');
        }
        for g in ["clarification", "tools", "sql"] {
            if !self.candidates.iter().any(|c| c.groups.contains_key(g)) {
                continue;
            }
            out.push_str(&format!("\n**{g} cases**: "));
            let parts: Vec<String> = self
                .candidates
                .iter()
                .map(|c| match c.groups.get(g) {
                    Some(s) => {
                        let rates: Vec<String> = s
                            .rates
                            .iter()
                            .map(|(k, r)| format!("{k} {}", cell(Some(r))))
                            .collect();
                        format!("{}: {}", c.spec, rates.join(", "))
                    }
                    None => format!("{}: –", c.spec),
                })
                .collect();
            out.push_str(&parts.join("; "));
            out.push('\n');
        }
        if self.pairs.is_empty() {
            out.push_str("\nBlind review: no decisions yet (arbor eval review RUN).\n");
        } else {
            out.push_str("\n| blind review | wins / ties / losses | win rate [95%] | sign test p |\n|---|---|---|---|\n");
            for p in &self.pairs {
                out.push_str(&format!(
                    "| {} vs {} | {} / {} / {} | {:.0}% [{:.0}–{:.0}] | {:.3} |\n",
                    p.a,
                    p.b,
                    p.wins,
                    p.ties,
                    p.losses,
                    p.win_rate.rate * 100.0,
                    p.win_rate.low * 100.0,
                    p.win_rate.high * 100.0,
                    p.sign_test_p
                ));
            }
        }
        out.push_str(
            "\nIntervals are 95 % Wilson score intervals; the win rate leaves ties out.\n",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_the_textbook() {
        // 8 of 10: Wilson 95% interval ≈ [0.490, 0.943] (e.g. Newcombe 1998, table I style).
        let r = wilson(8, 10);
        assert!((r.rate - 0.8).abs() < 1e-12);
        assert!((r.low - 0.4902).abs() < 1e-3, "{r:?}");
        assert!((r.high - 0.9433).abs() < 1e-3, "{r:?}");
        // 0 of 10: [0, 0.278].
        let r = wilson(0, 10);
        assert_eq!(r.low, 0.0);
        assert!((r.high - 0.2775).abs() < 1e-3, "{r:?}");
        assert_eq!(wilson(0, 0).n, 0);
    }

    #[test]
    fn sign_test_by_hand() {
        // 8 wins, 2 losses: P(X ≤ 2 | n=10) = (1 + 10 + 45)/1024 = 56/1024; two-sided 0.109375.
        assert!((sign_test(8, 2) - 0.109375).abs() < 1e-12);
        assert!((sign_test(2, 8) - 0.109375).abs() < 1e-12);
        assert_eq!(sign_test(5, 5), 1.0);
        assert_eq!(sign_test(0, 0), 1.0);
        // 1 of 1: 2 · 1/2 = 1.
        assert_eq!(sign_test(1, 0), 1.0);
        // Large n does not underflow: 600 vs 400 is far from chance.
        assert!(sign_test(600, 400) < 1e-9 && sign_test(600, 400) > 0.0);
    }
}
