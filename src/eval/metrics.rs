//! Automatic metrics of one answer to one case (docs/evals.md has the formulas).

use crate::domain::*;
use serde::Serialize;
use std::collections::HashMap;

/// What is known about a case when its answers are scored.
pub struct CaseContext<'a> {
    pub system: &'a str,
    pub tools: Option<&'a serde_json::Value>,
    pub tags: &'a [String],
    pub reference: Option<&'a Node>,
    /// A SQLite file with data, to execute candidate and reference SQL (`--sql-db`).
    pub sql_db: Option<&'a rusqlite::Connection>,
}

/// The metrics of one answer; `None` where a metric does not apply to the case.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// The reference calls tools: a call was made.
    pub tool_call_made: Option<bool>,
    /// … the same tool names (as a multiset).
    pub tool_names_match: Option<bool>,
    /// … every call's arguments valid against its tool's schema.
    pub tool_args_valid: Option<bool>,
    /// … the calls equal the reference's (names and arguments as JSON values).
    pub tool_args_equal: Option<bool>,
    /// The case has tools but the reference calls none: the answer made no call.
    pub no_spurious_call: Option<bool>,
    /// The system prompt holds `CREATE TABLE`s: the answer's SQL compiles against them.
    pub sql_compiles: Option<bool>,
    /// With `--sql-db`: the answer's SQL returns the reference's result set.
    pub sql_same_result: Option<bool>,
    /// A case tagged `clarification`: the answer asks a question instead of answering.
    pub asks_clarification: Option<bool>,
    /// An untagged case: the answer asks a question it did not need to.
    pub unnecessary_question: Option<bool>,
    /// The reference has text: equal after whitespace normalisation.
    pub exact_match: Option<bool>,
    /// … token-level F1 against it.
    pub token_f1: Option<f64>,
    pub tokens: Option<i64>,
    pub tokens_per_s: Option<f64>,
}

/// `CREATE TABLE …;` statements, and fenced code blocks (compiled once: reports score
/// every answer).
static CREATE_TABLE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?is)\bCREATE\s+TABLE\b.*?;").expect("valid regex")
});
static FENCE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?s)```(?:sql|sqlite)?\s*\n(.*?)```").expect("valid regex")
});

/// The `CREATE TABLE …;` statements of a system prompt.
pub fn schema_of(system: &str) -> Option<String> {
    let stmts: Vec<&str> = CREATE_TABLE.find_iter(system).map(|m| m.as_str()).collect();
    (!stmts.is_empty()).then(|| stmts.join("\n"))
}

/// The SQL of an answer: a fenced block (```sql or ```), else the text when it starts with
/// a statement keyword, up to its first `;`.
pub fn sql_of(text: &str) -> Option<String> {
    if let Some(c) = FENCE.captures(text) {
        let s = c[1].trim();
        return (!s.is_empty()).then(|| s.to_string());
    }
    let t = text.trim();
    let head = t
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if ["SELECT", "WITH", "INSERT", "UPDATE", "DELETE"].contains(&head.as_str()) {
        let end = t.find(';').map_or(t.len(), |i| i + 1);
        return Some(t[..end].to_string());
    }
    None
}

/// Whether `sql` compiles against `schema` (an empty in-memory database; `EXPLAIN`).
pub fn sql_compiles(schema: &str, sql: &str) -> Option<bool> {
    let conn = rusqlite::Connection::open_in_memory().ok()?;
    conn.execute_batch(schema).ok()?;
    let ok = conn.prepare(&format!("EXPLAIN {sql}")).is_ok();
    Some(ok)
}

/// The rows `sql` returns on `db` (at most 10,000), as text; `None` when it fails.
fn rows_of(db: &rusqlite::Connection, sql: &str) -> Option<Vec<Vec<String>>> {
    let mut stmt = db.prepare(sql).ok()?;
    if !stmt.readonly() {
        return None;
    }
    let n = stmt.column_count();
    let mut rows = stmt.query([]).ok()?;
    let mut out = Vec::new();
    while let Ok(Some(r)) = rows.next() {
        let row: Vec<String> = (0..n)
            .map(|i| match r.get_ref(i) {
                Ok(v) => format!("{v:?}"),
                Err(_) => String::new(),
            })
            .collect();
        out.push(row);
        if out.len() >= 10_000 {
            break;
        }
    }
    Some(out)
}

/// Whether two queries return the same result set (in order when the reference orders).
fn same_result(db: &rusqlite::Connection, candidate: &str, reference: &str) -> Option<bool> {
    let want = rows_of(db, reference)?;
    let Some(got) = rows_of(db, candidate) else {
        return Some(false);
    };
    if reference.to_ascii_uppercase().contains("ORDER BY") {
        Some(got == want)
    } else {
        let (mut a, mut b) = (got, want);
        a.sort();
        b.sort();
        Some(a == b)
    }
}

/// Whether an answer asks the user a question rather than answering: a sentence ending
/// in `?`, and no SQL and no tool call.
pub fn asks_question(answer: &Node) -> bool {
    answer.tool_calls.is_empty()
        && sql_of(&answer.content).is_none()
        && answer.content.contains('?')
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Token-level F1: 2PR/(P+R) over the multiset of lower-cased alphanumeric tokens.
pub fn token_f1(answer: &str, reference: &str) -> f64 {
    let (a, r) = (tokens(answer), tokens(reference));
    if a.is_empty() && r.is_empty() {
        return 1.0;
    }
    if a.is_empty() || r.is_empty() {
        return 0.0;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &r {
        *counts.entry(t).or_default() += 1;
    }
    let mut common = 0usize;
    for t in &a {
        if let Some(c) = counts.get_mut(t.as_str()) {
            if *c > 0 {
                *c -= 1;
                common += 1;
            }
        }
    }
    if common == 0 {
        return 0.0;
    }
    let p = common as f64 / a.len() as f64;
    let rec = common as f64 / r.len() as f64;
    2.0 * p * rec / (p + rec)
}

fn sorted_calls(calls: &[ToolCall]) -> Vec<(String, serde_json::Value)> {
    let mut v: Vec<(String, serde_json::Value)> = calls
        .iter()
        .map(|c| (c.name.clone(), c.arguments.clone()))
        .collect();
    v.sort_by(|a, b| (&a.0, a.1.to_string()).cmp(&(&b.0, b.1.to_string())));
    v
}

/// Scores `answer` on `case`.
pub fn score(case: &CaseContext, answer: &Node) -> Metrics {
    let mut m = Metrics {
        tokens: answer.generated_tokens,
        tokens_per_s: answer.tokens_per_s,
        ..Metrics::default()
    };
    let has_tools = case
        .tools
        .and_then(|t| t.as_array())
        .is_some_and(|a| !a.is_empty());
    if let Some(r) = case.reference {
        if !r.tool_calls.is_empty() {
            let made = !answer.tool_calls.is_empty();
            m.tool_call_made = Some(made);
            fn names(c: &[ToolCall]) -> Vec<&str> {
                let mut v: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
                v.sort();
                v
            }
            m.tool_names_match = Some(names(&answer.tool_calls) == names(&r.tool_calls));
            m.tool_args_valid = Some(
                made && match case.tools.map(crate::tools::ToolSet::new) {
                    Some(Ok(ts)) => answer
                        .tool_calls
                        .iter()
                        .all(|c| ts.check_call(&c.name, &c.arguments).is_ok()),
                    _ => false,
                },
            );
            m.tool_args_equal =
                Some(sorted_calls(&answer.tool_calls) == sorted_calls(&r.tool_calls));
        } else if has_tools {
            m.no_spurious_call = Some(answer.tool_calls.is_empty());
        }
        if !r.content.trim().is_empty() {
            m.exact_match = Some(normalise(&answer.content) == normalise(&r.content));
            m.token_f1 = Some(token_f1(&answer.content, &r.content));
        }
    } else if has_tools {
        // No reference: a call is not spurious or right by anything we know.
    }
    if let Some(schema) = schema_of(case.system) {
        let sql = sql_of(&answer.content);
        m.sql_compiles = match &sql {
            Some(q) => sql_compiles(&schema, q),
            None => Some(false),
        };
        if let (Some(db), Some(r)) = (case.sql_db, case.reference) {
            if let Some(want) = sql_of(&r.content) {
                m.sql_same_result = match &sql {
                    Some(q) => same_result(db, q, &want),
                    None => Some(false),
                };
            }
        }
    }
    let asks = asks_question(answer);
    if case.tags.iter().any(|t| t == "clarification") {
        m.asks_clarification = Some(asks);
    } else {
        m.unnecessary_question = Some(asks);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(role: Role, content: &str) -> Node {
        Node::new(1, role, content.to_string())
    }

    #[test]
    fn f1_and_sql_extraction_by_hand() {
        // answer tokens {the, cat, sat}, reference {the, cat, ran, away}: 2 common.
        // P = 2/3, R = 2/4, F1 = 2·(2/3)(1/2)/(2/3+1/2) = 4/7.
        let f = token_f1("The cat sat.", "the cat ran away");
        assert!((f - 4.0 / 7.0).abs() < 1e-12, "{f}");
        assert_eq!(token_f1("", ""), 1.0);
        assert_eq!(token_f1("x", ""), 0.0);
        assert_eq!(
            sql_of("Here:\n```sql\nSELECT 1;\n```\nDone").as_deref(),
            Some("SELECT 1;")
        );
        assert_eq!(
            sql_of("select name from t; -- and more").as_deref(),
            Some("select name from t;")
        );
        assert_eq!(sql_of("Which team do you mean?"), None);
        let schema =
            schema_of("Schema:\nCREATE TABLE t (id INTEGER, name TEXT);\nAnswer.").unwrap();
        assert_eq!(sql_compiles(&schema, "SELECT name FROM t"), Some(true));
        assert_eq!(sql_compiles(&schema, "SELECT nam FROM t"), Some(false));
        assert_eq!(sql_compiles(&schema, "SELEC name FROM t"), Some(false));
    }

    #[test]
    fn tool_call_metrics_against_the_reference() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}}]);
        let call = |args: serde_json::Value| ToolCall {
            id: "c".into(),
            name: "get_weather".into(),
            arguments: args,
        };
        let mut reference = node(Role::Assistant, "");
        reference.tool_calls = vec![call(json!({"city": "Paris", "unit": "c"}))];
        let case = CaseContext {
            system: "",
            tools: Some(&tools),
            tags: &[],
            reference: Some(&reference),
            sql_db: None,
        };
        let mut same = node(Role::Assistant, "");
        same.tool_calls = vec![call(json!({"unit": "c", "city": "Paris"}))];
        let m = score(&case, &same);
        assert_eq!(
            (
                m.tool_call_made,
                m.tool_names_match,
                m.tool_args_valid,
                m.tool_args_equal
            ),
            (Some(true), Some(true), Some(true), Some(true))
        );
        let mut bad = node(Role::Assistant, "");
        bad.tool_calls = vec![call(json!({"town": "Paris"}))];
        let m = score(&case, &bad);
        assert_eq!(
            (
                m.tool_call_made,
                m.tool_names_match,
                m.tool_args_valid,
                m.tool_args_equal
            ),
            (Some(true), Some(true), Some(false), Some(false))
        );
        let m = score(&case, &node(Role::Assistant, "It is sunny?"));
        assert_eq!(m.tool_call_made, Some(false));
        assert_eq!(m.unnecessary_question, Some(true));
        // No call in the reference: a call is spurious.
        let plain = node(Role::Assistant, "4");
        let case = CaseContext {
            reference: Some(&plain),
            ..case
        };
        assert_eq!(score(&case, &same).no_spurious_call, Some(false));
        assert_eq!(
            score(&case, &node(Role::Assistant, " 4 ")).exact_match,
            Some(true)
        );
    }
}
