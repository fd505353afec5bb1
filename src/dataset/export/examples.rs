//! The examples of one tree, written in each format: multi-turn chats, prompt/completion,
//! preference pairs, KTO, OASST trees; streamed line by line to the output.

use super::*;
use crate::dataset::formats::{
    alpaca_record, openai_message, push_oa_message, push_oa_system, sharegpt_record, trl_message,
};
use crate::dataset::Result;
use crate::dataset::{Format, Split};
use crate::domain::*;
use crate::error::Context as _;
use serde_json::{json, Map, Value};

/// One line to write and the split it goes to.
pub(super) type Emit<'e> = dyn FnMut(Split, &str) -> Result<()> + 'e;

/// Writing the examples of one tree in each format.
impl<'a> Exporter<'a> {
    /// Writes a line unless `--dedup` has seen it.
    pub(super) fn emit<S: serde::Serialize>(
        &mut self,
        split: Split,
        line: &S,
        out: &mut Emit,
    ) -> Result<()> {
        self.emit_built(split, out, |_, buf| Ok(serde_json::to_writer(buf, line)?))
    }

    /// Writes the line `build` makes into the one buffer every line reuses (no
    /// allocation per line), then emits it.
    pub(super) fn emit_built(
        &mut self,
        split: Split,
        out: &mut Emit,
        build: impl FnOnce(&Self, &mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let mut buf = std::mem::take(&mut self.line);
        buf.clear();
        let r = build(self, &mut buf)
            .and_then(|()| self.emit_text(split, std::str::from_utf8(&buf)?, out));
        self.line = buf;
        r
    }

    pub(super) fn emit_text(&mut self, split: Split, text: &str, out: &mut Emit) -> Result<()> {
        if self.opts.dedup {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut h);
            if !self.seen.insert(h.finish()) {
                self.report.skip("duplicate (--dedup)");
                return Ok(());
            }
        }
        if self.report.first.is_none() {
            self.report.first = Some(text.to_string());
        }
        out(split, text)?;
        *self.report.written.entry(split.name()).or_default() += 1;
        Ok(())
    }

    pub(super) fn tree(
        &mut self,
        conv: &Conversation,
        nodes: &[Node],
        out: &mut Emit,
    ) -> Result<()> {
        if self.j.held_out.contains(&conv.id) {
            let answers = nodes.iter().filter(|n| n.role == Role::Assistant).count();
            *self.report.left_out.entry(HELD_OUT_REASON).or_default() += answers;
            return Ok(());
        }
        let t = Tree::new(conv, nodes);
        let split = self.opts.split.of(conv.id, self.opts.seed);
        match self.opts.format {
            Format::Oasst => self.oasst(&t, split, out),
            Format::OpenaiDpo | Format::TrlPreference => self.pairs(&t, split, out),
            Format::Kto | Format::TrlPromptCompletion => self.completions(&t, split, out),
            _ => self.multi_turn(&t, split, out),
        }
    }

    /// openai, trl, mlx, sharegpt, alpaca, text: one example per trained answer that is
    /// not inside a longer example.
    pub(super) fn multi_turn(&mut self, t: &Tree, split: Split, out: &mut Emit) -> Result<()> {
        let weights = self.opts.format == Format::Openai;
        let mut candidates: Vec<Vec<usize>> = Vec::new();
        for (i, n) in t.nodes.iter().enumerate() {
            if n.role != Role::Assistant {
                continue;
            }
            if let Err(why) = self.eligible(n) {
                self.report.skip(why);
                continue;
            }
            let path = t.path(i);
            if let Err(why) = self.path_tags_ok(t, &path) {
                self.report.skip(why);
                continue;
            }
            if !weights
                && path[..path.len() - 1].iter().any(|&k| {
                    t.nodes[k].role == Role::Assistant && self.eligible(&t.nodes[k]).is_err()
                })
            {
                self.report
                    .skip("an earlier answer on the path is not trainable (format has no weight)");
                continue;
            }
            if self.too_long(t, &path)? {
                self.report.skip("over --max-tokens");
                continue;
            }
            candidates.push(path);
        }
        // Nodes inside some candidate's path (not its end).
        let mut interior = vec![false; t.nodes.len()];
        for p in &candidates {
            for &k in &p[..p.len() - 1] {
                interior[k] = true;
            }
        }
        for path in candidates {
            let end = *path.last().expect("non-empty");
            if interior[end] {
                self.report.within_longer += 1;
                continue;
            }
            if matches!(self.opts.format, Format::Openai | Format::Mlx) {
                self.emit_built(split, out, |ex, buf| ex.openai_line(t, &path, buf))?;
                continue;
            }
            match self.multi_turn_line(t, &path)? {
                Ok(line) => self.emit(split, &line, out)?,
                Err(why) => self.report.skip(why),
            }
        }
        Ok(())
    }

    pub(super) fn multi_turn_line(
        &self,
        t: &Tree,
        path: &[usize],
    ) -> Result<Result<Value, &'static str>> {
        let tools = t.conv.tools.as_ref();
        let sys = t.system();
        let line = match self.opts.format {
            Format::Trl => {
                let mut o = Map::new();
                o.insert("messages".into(), self.trl_messages(t, sys.as_ref(), path));
                if let Some(tools) = tools {
                    o.insert("tools".into(), tools.clone());
                }
                Value::Object(o)
            }
            Format::Sharegpt => {
                let nodes: Vec<&Node> = path.iter().map(|&i| &t.nodes[i]).collect();
                match sharegpt_record(&t.conv.system_prompt, tools, &nodes) {
                    Ok(v) => v,
                    Err(why) => return Ok(Err(why)),
                }
            }
            Format::Alpaca => {
                let nodes: Vec<&Node> = path.iter().map(|&i| &t.nodes[i]).collect();
                match alpaca_record(&t.conv.system_prompt, &nodes) {
                    Ok(v) => v,
                    Err(why) => return Ok(Err(why)),
                }
            }
            Format::Text => {
                let tpl = self
                    .opts
                    .text_template
                    .as_ref()
                    .context("the text format needs a chat template or a template file")?;
                let text = tpl.render(&t.chat(path), tools, false)?;
                json!({ "text": text })
            }
            other => crate::fail!("{other} is not a multi-turn format"),
        };
        Ok(Ok(line))
    }

    /// An `openai` line (weights, `content: null` for calls-only answers,
    /// `parallel_tool_calls`) or an `mlx` one (mlx-lm renders through HF templates, which
    /// concatenate `content`: `""`; it reads neither weights nor parallel_tool_calls),
    /// written straight into `buf`: `{"messages":[…],"tools":[…],"parallel_tool_calls":…}`.
    pub(super) fn openai_line(&self, t: &Tree, path: &[usize], buf: &mut Vec<u8>) -> Result<()> {
        let openai = self.opts.format == Format::Openai;
        buf.extend_from_slice(br#"{"messages":["#);
        let mut first = true;
        if !t.conv.system_prompt.is_empty() {
            push_oa_system(buf, &t.conv.system_prompt);
            first = false;
        }
        for &i in path {
            if !first {
                buf.push(b',');
            }
            first = false;
            let n = &t.nodes[i];
            let w =
                (openai && n.role == Role::Assistant).then(|| u8::from(self.eligible(n).is_ok()));
            push_oa_message(buf, n, w, openai);
        }
        buf.push(b']');
        if let Some(tools) = &t.conv.tools {
            buf.extend_from_slice(br#","tools":"#);
            serde_json::to_writer(&mut *buf, tools)?;
            if openai {
                let parallel = path.iter().any(|&i| t.nodes[i].tool_calls.len() > 1);
                buf.extend_from_slice(if parallel {
                    br#","parallel_tool_calls":true"#
                } else {
                    br#","parallel_tool_calls":false"#
                });
            }
        }
        buf.push(b'}');
        Ok(())
    }

    pub(super) fn trl_messages(&self, t: &Tree, sys: Option<&Node>, path: &[usize]) -> Value {
        let mut msgs: Vec<Value> = sys.iter().map(|n| trl_message(n, None)).collect();
        msgs.extend(
            path.iter()
                .map(|&i| trl_message(&t.nodes[i], t.call_name(i))),
        );
        Value::Array(msgs)
    }

    pub(super) fn prompt_messages(&self, t: &Tree, prompt: &[usize]) -> Value {
        let sys = t.system();
        if self.opts.format == Format::OpenaiDpo {
            let mut msgs: Vec<Value> = sys.iter().map(|n| openai_message(n, None)).collect();
            msgs.extend(prompt.iter().map(|&i| openai_message(&t.nodes[i], None)));
            Value::Array(msgs)
        } else {
            self.trl_messages(t, sys.as_ref(), prompt)
        }
    }

    pub(super) fn answer_message(&self, t: &Tree, i: usize) -> Value {
        if self.opts.format == Format::OpenaiDpo {
            json!([openai_message(&t.nodes[i], None)])
        } else {
            json!([trl_message(&t.nodes[i], None)])
        }
    }

    /// trl-prompt-completion (trained answers) and kto (rated answers, labelled).
    pub(super) fn completions(&mut self, t: &Tree, split: Split, out: &mut Emit) -> Result<()> {
        let kto = self.opts.format == Format::Kto;
        for (i, n) in t.nodes.iter().enumerate() {
            if n.role != Role::Assistant {
                continue;
            }
            let label = if kto {
                if let Err(why) = self.eligible_except_rating(n) {
                    self.report.skip(why);
                    continue;
                }
                match self.stars(n) {
                    Some(s) => s >= self.opts.kto_threshold(),
                    None => {
                        self.report.skip("unrated (kto labels rated answers)");
                        continue;
                    }
                }
            } else {
                if let Err(why) = self.eligible(n) {
                    self.report.skip(why);
                    continue;
                }
                true
            };
            let path = t.path(i);
            if let Err(why) = self.path_tags_ok(t, &path) {
                self.report.skip(why);
                continue;
            }
            if self.too_long(t, &path)? {
                self.report.skip("over --max-tokens");
                continue;
            }
            let mut o = Map::new();
            o.insert(
                "prompt".into(),
                self.prompt_messages(t, &path[..path.len() - 1]),
            );
            o.insert("completion".into(), self.answer_message(t, i));
            if kto {
                o.insert("label".into(), label.into());
            }
            if let Some(tools) = &t.conv.tools {
                o.insert("tools".into(), tools.clone());
            }
            self.emit(split, &Value::Object(o), out)?;
        }
        Ok(())
    }

    /// Preference pairs: rated siblings at least `--margin` apart (chosen at or above
    /// `--min-rating` when set), and each human edit against the answer it replaced
    /// unless that answer was rated as high. An unrated edit counts as 5 stars.
    pub(super) fn pairs(&mut self, t: &Tree, split: Split, out: &mut Emit) -> Result<()> {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for kids in t.kids() {
            let answers: Vec<usize> = kids
                .iter()
                .copied()
                .filter(|&k| t.nodes[k].role == Role::Assistant)
                .collect();
            for &a in &answers {
                for &b in &answers {
                    if a == b {
                        continue;
                    }
                    let (Some(sa), Some(sb)) = (self.stars(&t.nodes[a]), self.stars(&t.nodes[b]))
                    else {
                        continue;
                    };
                    if sa <= sb {
                        continue;
                    }
                    if sa - sb < self.opts.margin {
                        self.report.skip("pair: ratings closer than --margin");
                        continue;
                    }
                    if let Err(why) = self.chosen_rating_ok(sa) {
                        self.report.skip(why);
                        continue;
                    }
                    pairs.push((a, b));
                }
            }
        }
        // Stated preferences (OASST ranks, blind decisions): chosen over rejected, where
        // both answer the same message.
        for (c, n) in t.nodes.iter().enumerate() {
            let Some(rejected) = self.j.prefs.get(&n.id) else {
                continue;
            };
            for &rid in rejected {
                let Some(r) = t.index_of(rid) else { continue };
                if n.role != Role::Assistant
                    || t.nodes[r].role != Role::Assistant
                    || t.parent(c) != t.parent(r)
                    || pairs.contains(&(c, r))
                {
                    continue;
                }
                if pairs.contains(&(r, c)) {
                    self.report.skip("pair: preference contradicts the stars");
                    continue;
                }
                if let Some(s) = self.stars(n) {
                    if let Err(why) = self.chosen_rating_ok(s) {
                        self.report.skip(why);
                        continue;
                    }
                }
                pairs.push((c, r));
            }
        }
        for (e, n) in t.nodes.iter().enumerate() {
            let Some(o) = n
                .edited_from
                .and_then(|id| t.index_of(id))
                .filter(|_| n.origin == Origin::Edited && n.role == Role::Assistant)
            else {
                continue;
            };
            if pairs.contains(&(e, o)) || pairs.contains(&(o, e)) {
                continue;
            }
            let se = self.stars(n).unwrap_or(5);
            if let Err(why) = self.chosen_rating_ok(se) {
                self.report.skip(why);
                continue;
            }
            if self.stars(&t.nodes[o]).is_some_and(|so| so >= se) {
                self.report.skip("pair: edit not rated above the original");
                continue;
            }
            pairs.push((e, o));
        }
        for (chosen, rejected) in pairs {
            let c = &t.nodes[chosen];
            if let Err(why) = self
                .eligible_except_rating(c)
                .and_then(|_| self.eligible_except_rating(&t.nodes[rejected]).map(|_| ()))
            {
                self.report.skip(why);
                continue;
            }
            let path = t.path(chosen);
            let prompt = &path[..path.len() - 1];
            if prompt.is_empty() {
                self.report.skip("pair: no prompt");
                continue;
            }
            if let Err(why) = self.path_tags_ok(t, &path) {
                self.report.skip(why);
                continue;
            }
            let tools = t.conv.tools.as_ref();
            let mut rejected_path = prompt.to_vec();
            rejected_path.push(rejected);
            if self.too_long(t, &path)? || self.too_long(t, &rejected_path)? {
                self.report.skip("over --max-tokens");
                continue;
            }
            let line = if self.opts.format == Format::OpenaiDpo {
                let mut input = Map::new();
                input.insert("messages".into(), self.prompt_messages(t, prompt));
                if let Some(tools) = tools {
                    input.insert("tools".into(), tools.clone());
                }
                json!({
                    "input": input,
                    "preferred_output": self.answer_message(t, chosen),
                    "non_preferred_output": self.answer_message(t, rejected),
                })
            } else {
                let mut o = Map::new();
                o.insert("prompt".into(), self.prompt_messages(t, prompt));
                o.insert("chosen".into(), self.answer_message(t, chosen));
                o.insert("rejected".into(), self.answer_message(t, rejected));
                if let Some(tools) = tools {
                    o.insert("tools".into(), tools.clone());
                }
                Value::Object(o)
            };
            self.emit(split, &line, out)?;
        }
        Ok(())
    }

    /// Whole trees, OpenAssistant style: ranks among siblings by stars, the stars as a
    /// `quality` label, answers that are not trainable marked `review_result: false`,
    /// and Arbor's own fields under `arbor` so an import restores everything.
    pub(super) fn oasst(&mut self, t: &Tree, split: Split, out: &mut Emit) -> Result<()> {
        let roots: Vec<usize> = (0..t.nodes.len())
            .filter(|&i| t.parent(i).is_none())
            .collect();
        for r in roots {
            let mut all = Vec::new();
            let mut stack = vec![r];
            while let Some(i) = stack.pop() {
                all.push(i);
                stack.extend(t.kids()[i].iter().copied());
            }
            if let Err(why) = self.path_tags_ok(t, &all) {
                self.report.skip(why);
                continue;
            }
            if (self.opts.model.is_some() || self.opts.since.is_some() || self.opts.until.is_some())
                && !all
                    .iter()
                    .any(|&i| self.eligible_except_rating(&t.nodes[i]).is_ok())
            {
                self.report
                    .skip("tree without an answer matching --model/--since/--until");
                continue;
            }
            let mut ext = Map::new();
            ext.insert("conversation_id".into(), t.conv.id.into());
            ext.insert("title".into(), t.conv.title.clone().into());
            if !t.conv.system_prompt.is_empty() {
                ext.insert("system".into(), t.conv.system_prompt.clone().into());
            }
            if let Some(tools) = &t.conv.tools {
                ext.insert("tools".into(), tools.clone());
            }
            let line = json!({
                "message_tree_id": format!("arbor-{}-{}", t.conv.id, t.nodes[r].id),
                "tree_state": "ready_for_export",
                "prompt": self.oasst_message(t, r, None, false),
                "arbor": ext,
            });
            self.emit(split, &line, out)?;
        }
        Ok(())
    }

    /// `rank_is_preference`: the rank comes from stated preferences (it imports as them).
    pub(super) fn oasst_message(
        &self,
        t: &Tree,
        i: usize,
        rank: Option<usize>,
        rank_is_preference: bool,
    ) -> Value {
        let n = &t.nodes[i];
        let mut m = Map::new();
        m.insert("message_id".into(), format!("arbor-{}", n.id).into());
        m.insert(
            "parent_id".into(),
            n.parent_id.map(|p| format!("arbor-{p}")).into(),
        );
        m.insert("text".into(), n.content.clone().into());
        let role = if n.role == Role::Assistant {
            "assistant"
        } else {
            "prompter"
        };
        m.insert("role".into(), role.into());
        m.insert("created_date".into(), rfc3339(n.created_at).into());
        m.insert("synthetic".into(), (n.origin == Origin::Generated).into());
        m.insert("model_name".into(), n.model.clone().into());
        let trainable = n.role != Role::Assistant || self.eligible(n).is_ok();
        m.insert("review_result".into(), trainable.into());
        m.insert("rank".into(), rank.into());
        let ratings = self.j.ratings_of(n.id);
        let rated: Vec<u8> = ratings
            .iter()
            .filter(|r| self.rater().is_none_or(|x| r.rater == x))
            .filter_map(|r| r.stars)
            .collect();
        if !rated.is_empty() {
            let mean = rated.iter().map(|&s| s as f64).sum::<f64>() / rated.len() as f64;
            m.insert(
                "labels".into(),
                json!({"name": ["quality"], "value": [(mean - 1.0) / 4.0], "count": [rated.len()]}),
            );
        }
        let mut ext = Map::new();
        ext.insert("role".into(), n.role.as_str().into());
        ext.insert("origin".into(), n.origin.as_str().into());
        if n.status != Status::Complete {
            ext.insert("status".into(), n.status.as_str().into());
        }
        if !n.tool_calls.is_empty() {
            ext.insert(
                "tool_calls".into(),
                crate::dataset::formats::openai_tool_calls(&n.tool_calls),
            );
        }
        if let Some(id) = &n.tool_call_id {
            ext.insert("tool_call_id".into(), id.clone().into());
        }
        if let Some(e) = n.edited_from {
            ext.insert("edited_from".into(), format!("arbor-{e}").into());
        }
        if rank_is_preference {
            ext.insert("rank_is_preference".into(), true.into());
        }
        if !ratings.is_empty() {
            ext.insert(
                "ratings".into(),
                Value::Array(
                    ratings
                        .iter()
                        .map(
                            |r| json!({"rater": r.rater, "stars": r.stars, "critique": r.critique}),
                        )
                        .collect(),
                ),
            );
        }
        let tags = self.j.tags_of(n.id);
        if !tags.is_empty() {
            ext.insert(
                "tags".into(),
                Value::Array(
                    tags.iter()
                        .map(|(rater, tag)| json!({"rater": rater, "tag": tag}))
                        .collect(),
                ),
            );
        }
        m.insert("arbor".into(), Value::Object(ext));
        // Ranks among siblings: from stated preferences where there are any (the number
        // of siblings preferred to each; those no preference names are unranked), else
        // most stars first, unrated last.
        let kids = t.kids()[i].clone();
        let prefers = |a: usize, b: usize| {
            self.j
                .prefs
                .get(&t.nodes[a].id)
                .is_some_and(|r| r.contains(&t.nodes[b].id))
        };
        let beaten_by = |k: usize| kids.iter().filter(|&&s| prefers(s, k)).count();
        let in_prefs = |k: usize| {
            kids.iter()
                .any(|&s| s != k && (prefers(s, k) || prefers(k, s)))
        };
        let replies: Vec<Value> = if kids.iter().any(|&k| in_prefs(k)) {
            let mut order = kids.clone();
            order.sort_by_key(|&k| (!in_prefs(k), beaten_by(k), t.nodes[k].id));
            order
                .iter()
                .map(|&k| {
                    let ranked = in_prefs(k);
                    self.oasst_message(t, k, ranked.then(|| beaten_by(k)), ranked)
                })
                .collect()
        } else {
            let mut order = kids.clone();
            order.sort_by_key(|&k| {
                (
                    std::cmp::Reverse(self.stars(&t.nodes[k]).unwrap_or(0)),
                    t.nodes[k].id,
                )
            });
            let ranked = order.len() > 1;
            order
                .iter()
                .enumerate()
                .map(|(r, &k)| self.oasst_message(t, k, ranked.then_some(r), false))
                .collect()
        };
        m.insert("replies".into(), Value::Array(replies));
        Value::Object(m)
    }
}

pub(super) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
