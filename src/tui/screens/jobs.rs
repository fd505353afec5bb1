//! The Jobs view (`J`): training jobs, the selected one's loss chart and log; start,
//! cancel, resume, attach its adapter.

use crate::tui::base::Base;
use crate::tui::effect::{close, stay, Effect, Next, Reply};
use crate::tui::keymap::Cmd;
use crate::tui::theme;
use crate::tui::widgets::*;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// One row of the Jobs view.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub job: crate::store::Job,
    pub progress: crate::train::Progress,
    /// The adapter it made.
    pub adapter: Option<String>,
}

/// The Jobs view: every job, and the selected one's metrics and log tail.
#[derive(Debug, Clone, Default)]
pub struct JobsView {
    pub rows: Vec<JobRow>,
    pub sel: usize,
    pub metrics: Vec<crate::store::JobMetric>,
    pub log: Vec<String>,
    /// The selected job's `--eval` run, summed up in one line.
    pub eval: Option<String>,
}

impl JobsView {
    pub fn selected(&self) -> Option<&JobRow> {
        self.rows.get(self.sel)
    }
}

pub fn on_key(j: &mut JobsView, b: &mut Base, cmd: Option<Cmd>) -> Reply {
    let sel = j.selected().map(|r| r.job.id);
    match cmd {
        Some(Cmd::Down) => {
            j.sel = (j.sel + 1).min(j.rows.len().saturating_sub(1));
            return stay(vec![Effect::LoadJobs(j.selected().map(|r| r.job.id))]);
        }
        Some(Cmd::Up) => {
            j.sel = j.sel.saturating_sub(1);
            return stay(vec![Effect::LoadJobs(j.selected().map(|r| r.job.id))]);
        }
        Some(Cmd::NewJob) => return stay(vec![Effect::StartJob, Effect::LoadJobs(None)]),
        Some(Cmd::CancelJob) => match j.selected() {
            Some(r) if r.job.status.is_live() => {
                b.message = Some(format!("cancelling job {}…", r.job.id));
                return stay(vec![Effect::CancelJob(r.job.id)]);
            }
            Some(r) => b.message = Some(format!("job {} is not running", r.job.id)),
            None => {}
        },
        Some(Cmd::ResumeJob) => {
            if let Some(id) = sel {
                return stay(vec![Effect::ResumeJob(id), Effect::LoadJobs(Some(id))]);
            }
        }
        Some(Cmd::UseAdapter) => match j.selected() {
            Some(JobRow {
                adapter: Some(a), ..
            }) => {
                let scale = b.adapter_scale;
                return stay(vec![Effect::UseAdapter(Some((a.clone(), scale)))]);
            }
            Some(r) => {
                b.message = Some(format!(
                    "job {} has no adapter (it {})",
                    r.job.id, r.job.status
                ))
            }
            None => {}
        },
        Some(Cmd::DetachAdapter) => return stay(vec![Effect::UseAdapter(None)]),
        Some(c @ (Cmd::MoreScale | Cmd::LessScale)) => {
            let step = if c == Cmd::MoreScale { 0.25 } else { -0.25 };
            b.adapter_scale = (b.adapter_scale + step).clamp(0.0, 4.0);
            return match b.adapter.clone() {
                Some((name, _)) => stay(vec![Effect::UseAdapter(Some((name, b.adapter_scale)))]),
                None => {
                    b.message = Some(format!("adapter scale {} (a attaches)", b.adapter_scale));
                    stay(vec![])
                }
            };
        }
        Some(Cmd::Back) => return close(vec![]),
        Some(Cmd::Help) => return (Next::Help, vec![]),
        _ => {}
    }
    stay(vec![])
}

/// The Jobs view: the jobs on the left; on the right the selected one's status line,
/// its loss chart (train and validation) and the tail of its log.
pub fn draw(f: &mut Frame, j: &JobsView, area: Rect) {
    use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
    f.render_widget(Clear, area);
    let block = Block::bordered().title(
        " jobs — j/k select, n new (peft, 4★+), c cancel, r run again, a chat with its adapter (+/- scale), A base, Esc closes ",
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [left, right] =
        Layout::horizontal([Constraint::Length(34), Constraint::Min(10)]).areas(inner);
    if j.rows.is_empty() {
        f.render_widget(
            Paragraph::new(
                "No training jobs yet.\n\nPress n to train a LoRA adapter on the answers you rated 4 stars or more,\nor run `arbor train --min-rating 4` in a shell.",
            )
            .wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    let status_color = |st: crate::store::JobStatus| {
        use crate::store::JobStatus::*;
        match st {
            Queued | Running => theme::get().busy,
            Succeeded => theme::get().ok,
            Failed | Lost => theme::get().error,
            Cancelled => theme::get().dim,
        }
    };
    let lines: Vec<Line> = j
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = &r.progress;
            let steps = match p.total {
                Some(t) => format!("{}/{t}", p.step),
                None => String::new(),
            };
            let line = Line::from(vec![
                Span::raw(format!("#{:<3} ", r.job.id)),
                Span::styled(
                    format!("{:<9} ", r.job.status.as_str()),
                    Style::new().fg(status_color(r.job.status)),
                ),
                Span::raw(format!("{:<5} {steps}", r.job.recipe)),
            ]);
            selectable(line, i == j.sel)
        })
        .collect();
    draw_side_list(f, lines, left);
    let Some(row) = j.selected() else {
        return;
    };
    let job = &row.job;
    let p = &row.progress;
    let mut head = vec![Line::from(vec![
        Span::styled(
            format!("job {} {} ", job.id, job.status),
            Style::new().fg(status_color(job.status)).bold(),
        ),
        Span::raw(format!(
            "{} on {}",
            job.recipe,
            std::path::Path::new(&job.base_model)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        )),
    ])];
    let mut facts = Vec::new();
    if let Some(t) = p.total {
        facts.push(format!("step {}/{t}", p.step));
    }
    if let Some(l) = p.loss {
        facts.push(format!("loss {l:.3}"));
    }
    if let Some(l) = p.eval_loss {
        facts.push(format!("eval {l:.3}"));
    }
    if let Some(t) = p.tokens_per_s {
        facts.push(format!("{t:.0} tok/s"));
    }
    if let Some(e) = p.eta_s {
        facts.push(format!("ETA {}", crate::train::fmt_duration(e)));
    }
    if let Some(ph) = &job.phase {
        facts.push(ph.clone());
    }
    head.push(Line::raw(facts.join(" · ")));
    match (&row.adapter, &job.error) {
        (Some(a), _) => head.push(Line::styled(
            format!("adapter {a} — press a to chat with it"),
            Style::new().fg(theme::get().ok),
        )),
        (None, Some(e)) => head.push(Line::styled(
            e.lines().next().unwrap_or("").to_string(),
            Style::new().fg(theme::get().error),
        )),
        _ => {}
    }
    if let Some(e) = &j.eval {
        head.push(Line::styled(e.clone(), Style::new().fg(theme::get().info)));
    }
    let [head_area, chart_area, log_area] = Layout::vertical([
        Constraint::Length(head.len() as u16),
        Constraint::Percentage(55),
        Constraint::Min(3),
    ])
    .areas(right);
    f.render_widget(Paragraph::new(head), head_area);
    let train: Vec<(f64, f64)> = j
        .metrics
        .iter()
        .filter_map(|m| Some((m.step as f64, m.loss?)))
        .collect();
    let valid: Vec<(f64, f64)> = j
        .metrics
        .iter()
        .filter_map(|m| Some((m.step as f64, m.eval_loss?)))
        .collect();
    if train.is_empty() && valid.is_empty() {
        f.render_widget(
            Paragraph::new("no loss reported yet").block(Block::bordered().title(" loss ")),
            chart_area,
        );
    } else {
        let x_max = p
            .total
            .map(|t| t as f64)
            .unwrap_or(0.0)
            .max(train.iter().chain(&valid).map(|x| x.0).fold(1.0, f64::max));
        let y_max = train.iter().chain(&valid).map(|x| x.1).fold(0.0, f64::max) * 1.1;
        let y_max = if y_max > 0.0 { y_max } else { 1.0 };
        let mut sets = vec![Dataset::default()
            .name("train")
            .marker(ratatui::symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme::get().candidate_1))
            .data(&train)];
        if !valid.is_empty() {
            sets.push(
                Dataset::default()
                    .name("validation")
                    .marker(ratatui::symbols::Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(theme::get().candidate_2))
                    .data(&valid),
            );
        }
        let chart = Chart::new(sets)
            .block(Block::bordered().title(" loss "))
            .x_axis(
                Axis::default()
                    .title("step")
                    .bounds([1.0, x_max])
                    .labels(["1".to_string(), format!("{x_max:.0}")]),
            )
            .y_axis(
                Axis::default()
                    .bounds([0.0, y_max])
                    .labels(["0".to_string(), format!("{y_max:.2}")]),
            );
        f.render_widget(chart, chart_area);
    }
    let h = log_area.height.saturating_sub(2) as usize;
    let tail: Vec<Line> = j.log[j.log.len().saturating_sub(h)..]
        .iter()
        .map(|l| Line::raw(l.clone()))
        .collect();
    f.render_widget(
        Paragraph::new(tail).block(Block::bordered().title(" log ")),
        log_area,
    );
}

#[cfg(test)]
mod tests {

    use crate::tui::keymap::Context;
    use crate::tui::state::*;
    use crate::tui::testing::*;
    use crate::tui::update::update;

    use crossterm::event::KeyCode;

    #[test]
    fn jobs_view_loads_refreshes_and_acts_on_the_selected_job() {
        let mut s = open_chat();
        assert_eq!(
            update(&mut s, key(KeyCode::Char('J'))),
            vec![Effect::LoadJobs(None)]
        );
        let job = |id, status: &str| JobRow {
            job: crate::store::Job {
                id,
                recipe: "peft".into(),
                base_model: "m.gguf".into(),
                data_path: String::new(),
                params: serde_json::Value::Null,
                status: status.parse().unwrap(),
                pid: None,
                supervisor_pid: None,
                exit_code: None,
                dir: None,
                error: None,
                phase: None,
                cancel_requested: false,
                log_offset: 0,
                examples: None,
                created_at: 0,
                started_at: None,
                finished_at: None,
            },
            progress: Default::default(),
            adapter: (status == "succeeded").then(|| format!("job-{id}")),
        };
        update(
            &mut s,
            Action::JobsLoaded(JobsView {
                rows: vec![job(2, "running"), job(1, "succeeded")],
                ..Default::default()
            }),
        );
        assert_eq!(s.key_context(), Context::Jobs);
        assert_eq!(
            update(&mut s, key(KeyCode::Char('c'))),
            vec![Effect::CancelJob(2)]
        );
        assert_eq!(
            update(&mut s, Action::Tick),
            vec![Effect::LoadJobs(Some(2))]
        );
        assert!(update(&mut s, key(KeyCode::Char('a'))).is_empty());
        assert!(s.message.as_deref().unwrap().contains("no adapter"));
        assert_eq!(
            update(&mut s, key(KeyCode::Char('j'))),
            vec![Effect::LoadJobs(Some(1))]
        );
        // A refresh keeps the selection on the same job.
        update(
            &mut s,
            Action::JobsLoaded(JobsView {
                rows: vec![job(3, "queued"), job(2, "running"), job(1, "succeeded")],
                ..Default::default()
            }),
        );
        assert_eq!(s.jobs().unwrap().selected().unwrap().job.id, 1);
        assert_eq!(
            update(&mut s, key(KeyCode::Char('a'))),
            vec![Effect::UseAdapter(Some(("job-1".into(), 1.0)))]
        );
        assert_eq!(
            update(&mut s, key(KeyCode::Char('r'))),
            vec![Effect::ResumeJob(1), Effect::LoadJobs(Some(1))]
        );
        update(&mut s, key(KeyCode::Esc));
        assert!(s.jobs().is_none());
        assert_eq!(update(&mut s, Action::Tick), vec![]);
    }
}
