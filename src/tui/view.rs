//! Drawing: `draw(frame, &State)`, a pure function of state. The screen under
//! everything, the status line, then the overlays bottom to top, each drawn by its
//! screen's module.

use super::screens;
use super::state::{ModelState, Overlay, Screen, State};
use super::widgets::truncate;
use crate::tui::theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

pub fn draw(f: &mut Frame, s: &State) {
    let area = f.area();
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    match s.screen {
        Screen::List => screens::list::draw(f, s, main),
        Screen::Chat => screens::chat::draw(f, s, main),
    }
    draw_status(f, s, status);
    for (i, o) in s.overlays.iter().enumerate() {
        match o {
            Overlay::Edit(node, t) => screens::edit::draw(f, *node, t, area),
            Overlay::Prompt(p, t) => screens::prompt::draw(f, p, t, area),
            Overlay::Confirm(c) => screens::prompt::draw_confirm(f, c, area),
            Overlay::Export(d) => screens::export::draw(f, d, area),
            Overlay::Settings(d) => screens::settings::draw(f, d, area),
            Overlay::Presets(sel) => screens::presets::draw(f, s, *sel, area),
            Overlay::Models(v) => screens::models::draw(f, v, area),
            Overlay::Tree(t) => screens::tree::draw(f, t, main),
            Overlay::Compare(c) => screens::compare::draw(f, s, c, main),
            Overlay::Jobs(j) => screens::jobs::draw(f, j, main),
            Overlay::Evals(v) => screens::evals::draw(f, v, main),
            Overlay::Queue(q) => screens::queue::draw(f, q, area),
            Overlay::Review(r) => {
                f.render_widget(Clear, area);
                screens::review::draw(f, r);
            }
            Overlay::Help => {
                // The keys of what is under the help.
                let under = State::context_of(&s.overlays[..i], s);
                screens::help::draw(f, &s.keymap, under, s.help_scroll, area)
            }
        }
    }
}

fn draw_status(f: &mut Frame, s: &State, area: Rect) {
    let model = match &s.model {
        ModelState::Loading(p) => format!("loading model {:.0}%", p * 100.0),
        ModelState::Ready(i) => format!("{} ({})", i.name, i.template),
        ModelState::Failed(_) => "no model".into(),
    };
    let ctx = match (&s.model, s.context_used) {
        (ModelState::Ready(i), Some(u)) => format!(" · ctx {u}/{}", i.context),
        (ModelState::Ready(i), None) => format!(" · ctx {}", i.context),
        _ => String::new(),
    };
    let tps = s
        .last_tps
        .map(|t| format!(" · {t:.1} tok/s"))
        .unwrap_or_default();
    let pending = if s.streaming.is_some() {
        " · generating (Ctrl-C stops)"
    } else {
        ""
    };
    let tools = match (&s.conv, &s.pending_new) {
        (Some(c), _) => c.tools.as_ref(),
        (None, Some((_, t))) => t.as_ref(),
        _ => None,
    };
    let tools = tools
        .and_then(|t| t.as_array())
        .map(|a| match a.len() {
            1 => " · 1 tool".to_string(),
            n => format!(" · {n} tools"),
        })
        .unwrap_or_default();
    let adapter = s
        .adapter
        .as_ref()
        .map(|(n, sc)| format!(" + adapter {n} ×{sc}"))
        .unwrap_or_default();
    let left = format!(
        " {model}{adapter}{pending}{ctx}{tps}{tools} · {} · {}",
        s.rater, s.db_path
    );
    let line = match &s.message {
        Some(m) => Line::from(vec![Span::styled(
            format!(" {m} "),
            Style::new()
                .fg(theme::get().notice_fg)
                .bg(theme::get().notice_bg),
        )]),
        None => Line::from(vec![
            Span::styled(
                truncate(&left, area.width.saturating_sub(8) as usize),
                Style::new().fg(theme::get().bar_fg),
            ),
            Span::styled("  ? help", Style::new().fg(theme::get().dim)),
        ]),
    };
    f.render_widget(
        Paragraph::new(line).style(Style::new().bg(theme::get().bar_bg)),
        area,
    );
}

#[cfg(test)]
mod tests {
    //! Snapshots of each view drawn on ratatui's TestBackend (`cargo insta review` after a
    //! deliberate change).
    use super::*;
    use crate::domain::{Conversation, ConversationSummary, Node, Origin, Role, ToolCall};
    use crate::tui::state::*;
    use crate::tui::update::update;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn render(s: &State, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, s)).unwrap();
        t.backend().to_string()
    }

    /// The foreground colour of the first cell showing `symbol`.
    fn colour_of(s: &State, symbol: &str) -> ratatui::style::Color {
        let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
        t.draw(|f| draw(f, s)).unwrap();
        let buf = t.backend().buffer().clone();
        buf.content()
            .iter()
            .find(|c| c.symbol() == symbol)
            .unwrap_or_else(|| panic!("no {symbol} on screen"))
            .fg
    }

    #[test]
    fn colours_come_from_the_theme() {
        use crate::tui::theme::{self, Theme};
        let s = chat();
        assert_eq!(colour_of(&s, "★"), Theme::DARK.stars);
        theme::set(Theme::LIGHT);
        assert_eq!(colour_of(&s, "★"), Theme::LIGHT.stars);
        assert_eq!(colour_of(&s, "⚙"), Theme::LIGHT.tool);
        let mine = Theme::LIGHT.with_overrides("stars = \"#ff00ff\"").unwrap();
        theme::set(mine);
        assert_eq!(colour_of(&s, "★"), ratatui::style::Color::Rgb(255, 0, 255));
        // The text is the same in every theme.
        let light = render(&s, 100, 30);
        theme::set(Theme::DARK);
        assert_eq!(render(&s, 100, 30), light);
    }

    fn view(id: i64, parent: Option<i64>, role: Role, text: &str) -> NodeView {
        NodeView::of(Node {
            id,
            parent_id: parent,
            ..Node::new(1, role, text)
        })
    }

    fn state() -> State {
        let mut s = State::new("/data/arbor.db".into(), "alice".into());
        s.model = ModelState::Ready(crate::engine::ModelInfo {
            name: "SmolLM2 135M".into(),
            path: "m.gguf".into(),
            architecture: "llama".into(),
            context: 8192,
            template: "model's own".into(),
            threads: 2,
        });
        s.last_tps = Some(92.5);
        s
    }

    fn chat() -> State {
        let mut s = state();
        let tools = serde_json::json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
        let conv = Conversation {
            id: 1,
            title: "Weather and SQL".into(),
            system_prompt: "You are a careful assistant.".into(),
            tools: Some(tools),
            settings: None,
            active_root_id: Some(1),
            created_at: 0,
            updated_at: 0,
        };
        let mut a1 = view(2, Some(1), Role::Assistant, "Which city do you mean?");
        a1.stars = Some(5);
        a1.tags = vec!["clarification".into()];
        a1.sibling = (2, 3);
        a1.node.origin = Origin::Edited;
        let mut a2 = view(4, Some(3), Role::Assistant, "");
        a2.node.tool_calls = vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: serde_json::json!({"city": "Paris"}),
        }];
        a2.node.few_shot = vec![7, 9];
        a2.has_critique = true;
        let mut t = view(5, Some(4), Role::Tool, "{\"temp_c\": 14}");
        t.node.tool_call_id = Some("call_1".into());
        let mut a3 = view(
            6,
            Some(5),
            Role::Assistant,
            "It is 14 °C in Paris.\n```\nSELECT 1;\n```",
        );
        a3.stars = Some(2);
        let path = vec![
            view(1, None, Role::User, "What is the weather?"),
            a1,
            view(3, Some(2), Role::User, "Paris"),
            a2,
            t,
            a3,
        ];
        update(&mut s, Action::PathLoaded(conv, path));
        s
    }

    #[test]
    fn list_view() {
        let mut s = state();
        let c = |id, title: &str, avg| ConversationSummary {
            id,
            title: title.into(),
            updated_at: 1_790_000_000_000 + id * 60_000,
            messages: 4,
            rated: 2,
            avg_stars: avg,
            tags: vec!["clarification".into()],
        };
        update(
            &mut s,
            Action::ListLoaded(vec![
                c(2, "Find information about players", Some(4.5)),
                c(1, "Weather in Paris", None),
            ]),
        );
        insta::assert_snapshot!(render(&s, 80, 10));
    }

    #[test]
    fn chat_view_with_siblings_ratings_tool_calls_and_results() {
        insta::assert_snapshot!(render(&chat(), 80, 34));
    }

    #[test]
    fn selecting_an_early_message_keeps_the_later_ones_in_view() {
        let mut s = chat();
        s.sel = Some(1);
        let screen = render(&s, 80, 16);
        assert!(screen.contains("▶ assistant #2"), "{screen}");
        // The space below the selection shows what follows it.
        assert!(
            screen.contains("you #3") && screen.contains("assistant #4"),
            "{screen}"
        );
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn chat_view_at_the_smallest_size_while_composing_a_tool_result() {
        let mut s = chat();
        s.path.truncate(4);
        s.composing = true;
        s.sel = None;
        insta::assert_snapshot!(render(&s, 40, 12));
    }

    #[test]
    fn help_overlay() {
        let mut s = chat();
        s.open(Overlay::Help);
        insta::assert_snapshot!(render(&s, 100, 44));
    }

    #[test]
    fn settings_popup() {
        let mut s = chat();
        let c = s.conv.clone().unwrap();
        s.open(Overlay::Settings(Box::new(SettingsDialog::new(
            &c.system_prompt,
            c.tools.as_ref(),
            None,
        ))));
        s.settings_mut().unwrap().tab = 1;
        insta::assert_snapshot!(render(&s, 80, 20));
    }

    #[test]
    fn settings_options_form_with_an_error_beside_its_field() {
        let mut s = chat();
        let c = s.conv.clone().unwrap();
        let options = serde_json::json!({"sampling": {"temperature": 0.2, "top_p": 7}, "tool_choice": "required"});
        s.open(Overlay::Settings(Box::new(SettingsDialog::new(
            &c.system_prompt,
            c.tools.as_ref(),
            Some(&options),
        ))));
        s.settings_mut().unwrap().tab = 2;
        insta::assert_snapshot!(render(&s, 100, 20));
    }

    #[test]
    fn tree_view() {
        let mut s = chat();
        let row = |id, graph: &str, role, text: &str, stars, active| TreeRow {
            id,
            graph: graph.into(),
            role,
            text: text.into(),
            stars,
            tool_calls: 0,
            origin: Origin::Generated,
            active,
        };
        s.open(Overlay::Tree(TreeView {
            rows: vec![
                row(1, "└─ ", Role::User, "What is the weather?", None, true),
                row(8, "   ├─ ", Role::Assistant, "Sunny.", Some(1), false),
                row(
                    2,
                    "   ├─ ",
                    Role::Assistant,
                    "Which city do you mean?",
                    Some(5),
                    true,
                ),
                row(3, "   │  └─ ", Role::User, "Paris", None, true),
                row(9, "   └─ ", Role::Assistant, "I cannot know.", None, false),
            ],
            sel: 2,
        }));
        insta::assert_snapshot!(render(&s, 80, 12));
    }

    #[test]
    fn evals_view_with_metric_bars_and_a_blind_pair() {
        use crate::eval::report::{wilson, CandidateReport, PairReport, Report, Summary};
        let mut s = state();
        let summary = |k: usize| Summary {
            answers: 6,
            rates: [
                ("sql_compiles", wilson(k, 6)),
                ("exact_match", wilson(k / 2, 6)),
            ]
            .into_iter()
            .collect(),
            ..Summary::default()
        };
        let report = Report {
            run: 2,
            set: "clarify".into(),
            status: "done".into(),
            cases: 6,
            candidates: vec![
                CandidateReport {
                    spec: "base".into(),
                    all: summary(2),
                    groups: Default::default(),
                },
                CandidateReport {
                    spec: "job-1".into(),
                    all: summary(5),
                    groups: Default::default(),
                },
            ],
            answers: vec![],
            pairs: vec![PairReport {
                a: "base".into(),
                b: "job-1".into(),
                wins: 1,
                ties: 1,
                losses: 4,
                win_rate: wilson(1, 5),
                sign_test_p: crate::eval::report::sign_test(1, 4),
            }],
        };
        s.open(Overlay::Evals(super::super::state::EvalsView {
            runs: vec![report],
            sel: 0,
        }));
        insta::assert_snapshot!(render(&s, 100, 16));
    }

    #[test]
    fn jobs_view_with_loss_chart_and_log() {
        let mut s = state();
        let job = crate::store::Job {
            id: 3,
            recipe: "peft".into(),
            base_model: "/models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            data_path: String::new(),
            params: serde_json::Value::Null,
            status: crate::store::JobStatus::Running,
            pid: Some(10),
            supervisor_pid: Some(9),
            exit_code: None,
            dir: None,
            error: None,
            phase: Some("training".into()),
            cancel_requested: false,
            log_offset: 0,
            examples: Some(20),
            created_at: 0,
            started_at: Some(0),
            finished_at: None,
        };
        let metrics: Vec<crate::store::JobMetric> = (1..=6)
            .map(|step| crate::store::JobMetric {
                step,
                total: Some(10),
                loss: Some(4.0 / step as f64),
                eval_loss: (step % 3 == 0).then(|| 5.0 / step as f64),
                lr: Some(1e-3),
                tokens_per_s: Some(150.0),
                at: step * 1500,
            })
            .collect();
        let progress = crate::train::progress(&job, &metrics);
        let done = crate::store::Job {
            id: 2,
            status: crate::store::JobStatus::Succeeded,
            phase: None,
            ..job.clone()
        };
        s.open(Overlay::Jobs(JobsView {
            rows: vec![
                JobRow {
                    job,
                    progress,
                    adapter: None,
                },
                JobRow {
                    job: done,
                    progress: Default::default(),
                    adapter: Some("job-2".into()),
                },
            ],
            sel: 0,
            metrics,
            log: vec!["{\"event\": \"step\", \"step\": 6}".into()],
            eval: None,
        }));
        insta::assert_snapshot!(render(&s, 100, 24));
    }

    #[test]
    fn compare_view() {
        let mut s = chat();
        s.open(Overlay::Compare(Compare {
            parent: 3,
            slots: vec![(4, 0), (4, 1), (4, 2)],
            labels: Vec::new(),
            nodes: vec![10, 11, 12],
            texts: vec![
                "Paris is 14 °C and cloudy.".into(),
                "I would check a weather service for Paris.".into(),
                "Sunny".into(),
            ],
            done: vec![true, true, false],
            stars: vec![Some(5), None, None],
            sel: 1,
        }));
        insta::assert_snapshot!(render(&s, 90, 12));
    }

    #[test]
    fn export_dialog() {
        let mut s = state();
        s.open(Overlay::Export(ExportDialog {
            format: 0,
            min_rating: Some(4),
            preview: Some(ExportPreview {
                examples: 8,
                conversations: 9,
                left_out: vec![("rated below --min-rating".into(), 5)],
                within_longer: 3,
                first: Some("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}".into()),
            }),
            result: None,
        }));
        insta::assert_snapshot!(render(&s, 80, 20));
    }

    #[test]
    fn preset_picker() {
        let mut s = state();
        s.presets = crate::presets::all(&crate::config::Paths {
            config_dir: "/nonexistent".into(),
            data_dir: "/nonexistent".into(),
        })
        .unwrap();
        s.open(Overlay::Presets(2));
        insta::assert_snapshot!(render(&s, 100, 12));
    }
}
