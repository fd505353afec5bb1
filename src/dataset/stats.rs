//! `arbor stats`: the database as a dataset — what is rated, how, by whom, with what.

use crate::dataset::Result;
use crate::store::Store;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub conversations: i64,
    pub messages: i64,
    pub by_role: BTreeMap<String, i64>,
    pub answers: i64,
    pub rated: i64,
    pub unrated: i64,
    /// Answers by their lowest star rating across raters.
    pub by_stars: BTreeMap<u8, i64>,
    pub by_rater: BTreeMap<String, i64>,
    pub by_tag: BTreeMap<String, i64>,
    /// Answers by the model that generated them (`human` for edited and imported ones).
    pub by_model: BTreeMap<String, i64>,
    pub by_origin: BTreeMap<String, i64>,
    pub tool_calls: i64,
    pub calls_per_tool: BTreeMap<String, i64>,
    /// Answers tagged `clarification`.
    pub clarification_turns: i64,
    /// Paths that go incomplete request → clarifying question → completed request → answer.
    pub clarification_dialogues: i64,
    /// Ratings per day (UTC): count and mean stars.
    pub ratings_by_day: BTreeMap<String, (i64, f64)>,
    /// How far the people who rated the same answers agree (Krippendorff's α, ordinal).
    pub agreement: crate::dataset::agreement::Agreement,
}

fn map<K: Ord + rusqlite::types::FromSql>(store: &Store, sql: &str) -> Result<BTreeMap<K, i64>> {
    let mut stmt = store.conn().prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, K>(0)?, r.get::<_, i64>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn one(store: &Store, sql: &str) -> Result<i64> {
    Ok(store.conn().query_row(sql, [], |r| r.get(0))?)
}

pub fn stats(store: &Store) -> Result<Stats> {
    // What an unfinished import holds is not counted.
    let _visible = store.visible_only(true)?;
    let c = store.counts()?;
    let mut s = Stats {
        conversations: c.conversations,
        messages: c.nodes,
        by_role: map(store, "SELECT role, count(*) FROM nodes GROUP BY role")?,
        ..Default::default()
    };
    s.answers = *s.by_role.get("assistant").unwrap_or(&0);
    let stars: BTreeMap<i64, i64> = map(
        store,
        concat!(
            "SELECT m, count(*) FROM (SELECT min(stars) AS m FROM ratings r JOIN nodes n ON n.id = r.node_id
               WHERE n.role = 'assistant' AND stars IS NOT NULL AND ",
            crate::person!("r.rater"),
            " GROUP BY node_id) GROUP BY m"
        ),
    )?;
    s.by_stars = stars.into_iter().map(|(k, v)| (k as u8, v)).collect();
    s.rated = s.by_stars.values().sum();
    s.unrated = s.answers - s.rated;
    s.by_rater = map(
        store,
        "SELECT rater, count(*) FROM ratings WHERE stars IS NOT NULL GROUP BY rater",
    )?;
    s.by_tag = map(
        store,
        "SELECT tag, count(DISTINCT node_id) FROM tags GROUP BY tag",
    )?;
    s.by_model = map(
        store,
        "SELECT coalesce(model, 'human'), count(*) FROM nodes WHERE role = 'assistant' GROUP BY 1",
    )?;
    s.by_origin = map(store, "SELECT origin, count(*) FROM nodes GROUP BY origin")?;
    s.calls_per_tool = map(
        store,
        "SELECT json_extract(c.value, '$.name'), count(*) FROM nodes, json_each(nodes.tool_calls) c
           WHERE nodes.tool_calls IS NOT NULL GROUP BY 1",
    )?;
    s.tool_calls = s.calls_per_tool.values().sum();
    s.clarification_turns = one(
        store,
        "SELECT count(DISTINCT t.node_id) FROM tags t JOIN nodes n ON n.id = t.node_id
           WHERE t.tag = 'clarification' AND n.role = 'assistant'",
    )?;
    s.clarification_dialogues = one(
        store,
        "SELECT count(*) FROM nodes q
           JOIN nodes c ON c.id = q.parent_id AND c.role = 'assistant'
           JOIN nodes u ON u.id = c.parent_id AND u.role = 'user'
           JOIN nodes a ON a.parent_id = q.id AND a.role = 'assistant'
          WHERE q.role = 'user'
            AND EXISTS (SELECT 1 FROM tags WHERE node_id = c.id AND tag = 'clarification')
            AND NOT EXISTS (SELECT 1 FROM tags WHERE node_id = a.id AND tag = 'clarification')",
    )?;
    let mut stmt = store.conn().prepare(concat!(
        "SELECT date(updated_at / 1000, 'unixepoch'), count(*), avg(stars) FROM ratings
          WHERE stars IS NOT NULL AND ",
        crate::person!("rater"),
        " GROUP BY 1 ORDER BY 1"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get::<_, i64>(1)?, r.get::<_, f64>(2)?),
        ))
    })?;
    s.ratings_by_day = rows.collect::<rusqlite::Result<_>>()?;
    let mut stmt = store.conn().prepare(concat!(
        "SELECT node_id, rater, stars FROM ratings WHERE stars IS NOT NULL AND ",
        crate::person!("rater")
    ))?;
    let ratings = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    s.agreement = crate::dataset::agreement::agreement(&ratings);
    Ok(s)
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} conversations, {} messages ({})",
            self.conversations,
            self.messages,
            join(&self.by_role)
        )?;
        writeln!(
            f,
            "answers: {} — {} rated, {} unrated",
            self.answers, self.rated, self.unrated
        )?;
        if !self.by_stars.is_empty() {
            write!(f, "by rating:")?;
            for (s, n) in self.by_stars.iter().rev() {
                write!(
                    f,
                    "  {}{} {n}",
                    "★".repeat(*s as usize),
                    "☆".repeat(5 - *s as usize)
                )?;
            }
            writeln!(f)?;
        }
        let sections: [(&str, &BTreeMap<String, i64>); 5] = [
            ("by rater", &self.by_rater),
            ("by tag", &self.by_tag),
            ("answers by model", &self.by_model),
            ("by origin", &self.by_origin),
            ("tool calls by tool", &self.calls_per_tool),
        ];
        for (name, m) in sections {
            if !m.is_empty() {
                writeln!(f, "{name}: {}", join(m))?;
            }
        }
        writeln!(
            f,
            "clarification: {} clarifying turns, {} complete dialogues (request → clarification → completed request → answer)",
            self.clarification_turns, self.clarification_dialogues
        )?;
        let a = &self.agreement;
        let alpha = |x: Option<f64>| x.map_or("undefined".into(), |x| format!("{x:.2}"));
        if a.answers > 0 {
            writeln!(
                f,
                "agreement between people (Krippendorff's α, ordinal): {} over {} answers rated by 2+ of {} raters",
                alpha(a.alpha),
                a.answers,
                a.raters
            )?;
            for p in &a.pairs {
                writeln!(f, "  {} – {}  α {} (n = {})", p.a, p.b, alpha(p.alpha), p.n)?;
            }
        } else if a.raters > 1 {
            writeln!(
                f,
                "agreement between people: no answer is rated by two of them yet"
            )?;
        }
        if !self.ratings_by_day.is_empty() {
            writeln!(f, "ratings over time:")?;
            for (day, (n, mean)) in &self.ratings_by_day {
                writeln!(f, "  {day}  {n:>5} ratings, mean {mean:.2}★")?;
            }
        }
        Ok(())
    }
}

fn join(m: &BTreeMap<String, i64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
