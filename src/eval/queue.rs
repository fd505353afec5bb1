//! The review queue (`arbor review`, `V` in the studio): the answers a curator should look
//! at next, one at a time, in this order — answers they have not rated, then answers where
//! an LLM judge and they disagree by two stars or more, then those the judge was least sure
//! of (it gave 3, the middle of its scale; the judge records no probabilities).

use super::Result;
use crate::domain::*;
use crate::store::Store;

/// Why an answer is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "why")]
pub enum Why {
    Unrated,
    Disagree { mine: u8, judge: u8 },
    Unsure { mine: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct QueueItem {
    pub answer: NodeId,
    #[serde(flatten)]
    pub why: Why,
}

/// The queue over `answers` (in their order within each tier) for `rater`.
pub fn queue(store: &Store, answers: &[NodeId], rater: &str) -> Result<Vec<QueueItem>> {
    let mine = store.stars(Some(rater))?;
    let judge = store.judge_stars()?;
    let mut tiers: [Vec<QueueItem>; 3] = Default::default();
    for &answer in answers {
        match (mine.get(answer), judge.get(&answer).copied()) {
            (None, _) => tiers[0].push(QueueItem {
                answer,
                why: Why::Unrated,
            }),
            (Some(m), Some(j)) if m.abs_diff(j) >= 2 => tiers[1].push(QueueItem {
                answer,
                why: Why::Disagree { mine: m, judge: j },
            }),
            (Some(m), Some(3)) => tiers[2].push(QueueItem {
                answer,
                why: Why::Unsure { mine: m },
            }),
            _ => {}
        }
    }
    Ok(tiers.into_iter().flatten().collect())
}

/// Every complete answer of the turns the filters select, queued for `rater`.
pub fn from_filters(
    store: &Store,
    filters: crate::dataset::export::ExportOptions,
    rater: &str,
) -> Result<Vec<QueueItem>> {
    let cases = super::cases_from_store(
        store,
        &super::SetOptions {
            filters,
            sample: None,
            seed: 0,
        },
    )?;
    let answers = super::judge::answers_of(store, &cases)?;
    queue(store, &answers, rater)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrated_first_then_disagreements_then_the_judges_threes() {
        let store = Store::open_in_memory().unwrap();
        let c = store.create_conversation("t", "", None).unwrap();
        let u = store.append_child(c.id, None, &NewNode::user("q")).unwrap();
        let a: Vec<NodeId> = (0..5)
            .map(|i| {
                store
                    .append_child(
                        c.id,
                        Some(u.id),
                        &NewNode::new(Role::Assistant, format!("a{i}"), Origin::Generated),
                    )
                    .unwrap()
                    .id
            })
            .collect();
        // a0 agreed, a1 disagreed (5 vs 2), a2 judge unsure, a3 and a4 unrated.
        for (id, me, j) in [(a[0], 4, 4), (a[1], 5, 2), (a[2], 4, 3)] {
            store.rate(id, "me", Some(me)).unwrap();
            store.rate(id, "judge:m", Some(j)).unwrap();
        }
        store.rate(a[3], "judge:m", Some(1)).unwrap();
        store.rate(a[4], "bob", Some(5)).unwrap();
        let q = queue(&store, &a, "me").unwrap();
        assert_eq!(
            q,
            vec![
                QueueItem {
                    answer: a[3],
                    why: Why::Unrated
                },
                QueueItem {
                    answer: a[4],
                    why: Why::Unrated
                },
                QueueItem {
                    answer: a[1],
                    why: Why::Disagree { mine: 5, judge: 2 }
                },
                QueueItem {
                    answer: a[2],
                    why: Why::Unsure { mine: 4 }
                },
            ]
        );
    }
}
