//! The export on several threads: blocks of conversations, each read on its own
//! connection and written to its own buffer, merged in order.

use super::*;
use crate::dataset::Result;
use crate::dataset::Split;
use crate::store::{Judgements, Stars, Store, TreeFields, TREE_BLOCK};
use std::collections::BTreeMap;

/// What one block of conversations produced: per split, its lines joined by new lines.
pub(super) struct BlockOut {
    pub(super) lines: BTreeMap<Split, String>,
    pub(super) report: Report,
}

/// The export on two threads: blocks of `TREE_BLOCK` conversations (by id) go to
/// the workers alternately; this thread writes each block's lines in block order, so the
/// output is the same as one pass. Each worker reads through its own connection and
/// keeps its allocations on its own thread. The stars are read here while the workers
/// read their first block. Returns the report and the stars.
pub(super) fn run_parallel(
    store: &Store,
    opts: &ExportOptions,
    j: &Judgements,
    fields: TreeFields,
    total: usize,
    out: &mut Emit,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Report, Stars)> {
    let blocks = store.conversation_blocks(TREE_BLOCK)?;
    const WORKERS: usize = 2;
    let path = store.path().to_path_buf();
    // Set once by this thread; `None` if reading the stars failed (the workers stop).
    let stars_cell: std::sync::OnceLock<Option<Stars>> = std::sync::OnceLock::new();
    let report = std::thread::scope(|scope| -> Result<Report> {
        let mut receivers = Vec::new();
        for w in 0..WORKERS {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<BlockOut>>(2);
            receivers.push(rx);
            let (blocks, path, stars_cell) = (&blocks, &path, &stars_cell);
            scope.spawn(move || {
                let run = || -> Result<()> {
                    let reader = Store::open_again(path)?;
                    reader.map_for_scans()?;
                    let _visible = reader.visible_only(false)?;
                    let mut block = crate::store::TreeBlock::default();
                    let mut ex: Option<Exporter> = None;
                    let mut sizes: BTreeMap<Split, usize> = BTreeMap::new();
                    for (k, &(lo, hi)) in blocks.iter().skip(w).step_by(WORKERS).enumerate() {
                        reader.read_block(lo, hi, fields, &mut block)?;
                        // The first block is read before the stars are there.
                        if k == 0 {
                            let Some(stars) = stars_cell.wait() else {
                                return Ok(());
                            };
                            ex = Some(Exporter::new(opts, j, stars, None));
                        }
                        let ex = ex.as_mut().expect("made with the first block");
                        ex.report = Report {
                            format: opts.format.name().to_string(),
                            conversations: block.len(),
                            ..Report::default()
                        };
                        let mut lines: BTreeMap<Split, String> = BTreeMap::new();
                        let mut sink = |split: Split, line: &str| -> Result<()> {
                            // Sized like the block before (blocks are alike), not grown.
                            let buf = lines.entry(split).or_insert_with(|| {
                                String::with_capacity(sizes.get(&split).map_or(0, |n| n + n / 8))
                            });
                            if !buf.is_empty() {
                                buf.push('\n');
                            }
                            buf.push_str(line);
                            Ok(())
                        };
                        for (conv, nodes) in block.trees() {
                            ex.tree(conv, nodes, &mut sink)?;
                        }
                        sizes = lines.iter().map(|(s, l)| (*s, l.len())).collect();
                        let report = std::mem::take(&mut ex.report);
                        if tx.send(Ok(BlockOut { lines, report })).is_err() {
                            return Ok(()); // the writer stopped
                        }
                    }
                    Ok(())
                };
                if let Err(e) = run() {
                    let _ = tx.send(Err(e));
                }
            });
        }
        match store.stars(opts.rater.as_deref()) {
            Ok(stars) => {
                let _ = stars_cell.set(Some(stars));
            }
            Err(e) => {
                let _ = stars_cell.set(None);
                return Err(e.into());
            }
        }
        let mut report = Report {
            format: opts.format.name().to_string(),
            ..Report::default()
        };
        for b in 0..blocks.len() {
            let block = receivers[b % WORKERS].recv().map_err(|_| {
                crate::dataset::DatasetError::Msg("an export worker stopped".into())
            })??;
            for (split, text) in &block.lines {
                out(*split, text)?;
            }
            merge(&mut report, block.report);
            progress(report.conversations.min(total), total);
        }
        Ok(report)
    })?;
    let stars = stars_cell.into_inner().flatten().unwrap_or_default();
    Ok((report, stars))
}

pub(super) fn merge(into: &mut Report, r: Report) {
    for (k, v) in r.written {
        *into.written.entry(k).or_default() += v;
    }
    for (k, v) in r.left_out {
        *into.left_out.entry(k).or_default() += v;
    }
    into.within_longer += r.within_longer;
    into.conversations += r.conversations;
    into.notes.extend(r.notes);
    if into.first.is_none() {
        into.first = r.first;
    }
}
