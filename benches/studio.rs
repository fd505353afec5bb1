//! `cargo bench --bench studio`: a 5,000-message conversation in the studio.
//! - loading the chat path: one joined query (`Store::path_view`) vs the per-message
//!   queries it replaced (path, then siblings, rating and tags of each message);
//! - drawing a frame (120×40): the chat view wraps only what is visible, vs wrapping the
//!   whole history first (what a naive view does), in the same run.

use arbor::domain::{NewNode, Origin, Role};
use arbor::store::Store;
use arbor::tui::state::{Action, NodeView, State};
use arbor::tui::update::update;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::Instant;

const MESSAGES: usize = 5000;

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        out = Some(v);
    }
    (best, out.expect("ran"))
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("bench.db")).unwrap();
    let conv = store
        .create_conversation("long", "Be brief.", None)
        .unwrap();
    let text =
        "A line of a longer answer, with enough words to wrap on a narrow terminal. ".repeat(3);
    let mut parent = None;
    for i in 0..MESSAGES {
        let node = if i % 2 == 0 {
            NewNode::user(format!("question {i}"))
        } else {
            NewNode::assistant(text.clone(), Origin::Generated)
        };
        let n = store.append_child(conv.id, parent, &node).unwrap();
        if i % 10 == 1 {
            store.rate(n.id, "me", Some(4)).unwrap();
            store.add_tag(n.id, "me", "good").unwrap();
            // A sibling every tenth answer.
            let mut alt = NewNode::assistant("another answer", Origin::Generated);
            alt.role = Role::Assistant;
            store.append_child(conv.id, parent, &alt).unwrap();
            store.set_active(n.id).unwrap();
        }
        parent = Some(n.id);
    }
    println!("{MESSAGES}-message conversation (best of 5)");

    let (joined, path) = best_of(5, || arbor::tui::load_path(&store, conv.id, "me").unwrap());
    let (per_message, _) = best_of(5, || {
        let path = store.active_path(conv.id).unwrap();
        path.into_iter()
            .map(|node| {
                let sibs = store.siblings(node.id).unwrap();
                let pos = sibs.iter().position(|s| s.id == node.id).unwrap_or(0) + 1;
                let rating = store.rating(node.id, "me").unwrap();
                NodeView {
                    stars: rating.as_ref().and_then(|r| r.stars),
                    has_critique: rating.as_ref().is_some_and(|r| r.critique.is_some()),
                    tags: store.tags(node.id).unwrap(),
                    sibling: (pos, sibs.len()),
                    judge: None,
                    node,
                }
            })
            .collect::<Vec<_>>()
    });
    println!("load the path    joined query {joined:>8.1} ms   per-message queries {per_message:>8.1} ms   ({:.1}× faster)", per_message / joined);

    let mut s = State::new("bench.db".into(), "me".into());
    update(
        &mut s,
        Action::PathLoaded(store.conversation(conv.id).unwrap(), path),
    );
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let (frame, _) = best_of(5, || {
        term.draw(|f| arbor::tui::view::draw(f, &s))
            .map(|_| ())
            .unwrap()
    });
    let (wrap_all, lines) = best_of(5, || {
        s.path
            .iter()
            .map(|v| textwrap::wrap(&v.node.content, 116).len() + 2)
            .sum::<usize>()
    });
    println!("draw a frame     visible part {frame:>8.2} ms   wrapping all {lines} lines first {wrap_all:>8.2} ms");
}
