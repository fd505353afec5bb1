//! How far people who rate the same answers agree: Krippendorff's α, with any number of
//! raters, missing ratings, and (for stars) the ordinal metric. Shown by `arbor stats`.
//!
//! With the coincidence matrix `o[c][k]` (each unit's ordered pairs of values, weighted
//! 1 / (values in the unit − 1)), the value totals `n_c` and `n = Σ n_c`:
//! α = 1 − (n − 1) · Σ o[c][k] δ²(c, k) / Σ n_c n_k δ²(c, k).

use std::collections::BTreeMap;

/// The difference function δ².
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Nominal,
    /// δ²(c, k) = (Σ_{g from c to k} n_g − (n_c + n_k) / 2)²: ranks, not distances, count.
    Ordinal,
    Interval,
}

/// α over `units` (each unit: the values its raters gave; units with fewer than two values
/// are not pairable and left out). `None` when nothing is pairable or the data has no
/// variation at all (α is undefined).
pub fn alpha(units: &[Vec<u8>], metric: Metric) -> Option<f64> {
    let mut values: Vec<u8> = units
        .iter()
        .filter(|u| u.len() >= 2)
        .flatten()
        .copied()
        .collect();
    values.sort_unstable();
    values.dedup();
    if values.is_empty() {
        return None;
    }
    let index: BTreeMap<u8, usize> = values.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    let k = values.len();
    let mut o = vec![vec![0.0f64; k]; k];
    for u in units.iter().filter(|u| u.len() >= 2) {
        let m = u.len() as f64;
        for (i, a) in u.iter().enumerate() {
            for (j, b) in u.iter().enumerate() {
                if i != j {
                    o[index[a]][index[b]] += 1.0 / (m - 1.0);
                }
            }
        }
    }
    let n_c: Vec<f64> = o.iter().map(|row| row.iter().sum()).collect();
    let n: f64 = n_c.iter().sum();
    let delta = |c: usize, e: usize| -> f64 {
        match metric {
            Metric::Nominal => (c != e) as u8 as f64,
            Metric::Interval => (values[c] as f64 - values[e] as f64).powi(2),
            Metric::Ordinal => {
                let (lo, hi) = (c.min(e), c.max(e));
                let s: f64 = n_c[lo..=hi].iter().sum();
                (s - (n_c[c] + n_c[e]) / 2.0).powi(2)
            }
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for c in 0..k {
        for e in 0..k {
            let d = delta(c, e);
            observed += o[c][e] * d;
            expected += n_c[c] * n_c[e] * d;
        }
    }
    (expected > 0.0).then(|| 1.0 - (n - 1.0) * observed / expected)
}

/// α between people on the answers they rated.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Agreement {
    /// Every human rater together (ordinal α), and over how many answers rated by two or
    /// more of them.
    pub alpha: Option<f64>,
    pub answers: usize,
    pub raters: usize,
    /// Each pair of raters with answers in common.
    pub pairs: Vec<PairAgreement>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PairAgreement {
    pub a: String,
    pub b: String,
    pub alpha: Option<f64>,
    /// Answers both rated.
    pub n: usize,
}

/// Agreement from (answer, rater, stars) ratings.
pub fn agreement(ratings: &[(i64, String, u8)]) -> Agreement {
    let mut by_answer: BTreeMap<i64, BTreeMap<&str, u8>> = BTreeMap::new();
    for (node, rater, stars) in ratings {
        by_answer.entry(*node).or_default().insert(rater, *stars);
    }
    let units: Vec<Vec<u8>> = by_answer
        .values()
        .map(|r| r.values().copied().collect())
        .collect();
    let mut raters: Vec<&str> = ratings.iter().map(|r| r.1.as_str()).collect();
    raters.sort_unstable();
    raters.dedup();
    let mut pairs = Vec::new();
    for (i, a) in raters.iter().enumerate() {
        for b in &raters[i + 1..] {
            let both: Vec<Vec<u8>> = by_answer
                .values()
                .filter_map(|r| Some(vec![*r.get(a)?, *r.get(b)?]))
                .collect();
            if !both.is_empty() {
                pairs.push(PairAgreement {
                    a: a.to_string(),
                    b: b.to_string(),
                    alpha: alpha(&both, Metric::Ordinal),
                    n: both.len(),
                });
            }
        }
    }
    Agreement {
        alpha: alpha(&units, Metric::Ordinal),
        answers: units.iter().filter(|u| u.len() >= 2).count(),
        raters: raters.len(),
        pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example of
    /// section C: four observers, twelve units, values 1–5, some missing. Published:
    /// nominal α = 0.743, ordinal α = 0.815, interval α = 0.849.
    #[test]
    fn the_textbook_example() {
        let a = [
            Some(1),
            Some(2),
            Some(3),
            Some(3),
            Some(2),
            Some(1),
            Some(4),
            Some(1),
            Some(2),
            None,
            None,
            None,
        ];
        let b = [
            Some(1),
            Some(2),
            Some(3),
            Some(3),
            Some(2),
            Some(2),
            Some(4),
            Some(1),
            Some(2),
            Some(5),
            None,
            Some(3),
        ];
        let c = [
            None,
            Some(3),
            Some(3),
            Some(3),
            Some(2),
            Some(3),
            Some(4),
            Some(2),
            Some(2),
            Some(5),
            Some(1),
            None,
        ];
        let d = [
            Some(1),
            Some(2),
            Some(3),
            Some(3),
            Some(2),
            Some(4),
            Some(4),
            Some(1),
            Some(2),
            Some(5),
            Some(1),
            None,
        ];
        let units: Vec<Vec<u8>> = (0..12)
            .map(|i| [a[i], b[i], c[i], d[i]].into_iter().flatten().collect())
            .collect();
        let r = |m| (alpha(&units, m).unwrap() * 1000.0).round() / 1000.0;
        assert_eq!(r(Metric::Nominal), 0.743);
        assert_eq!(r(Metric::Ordinal), 0.815);
        assert_eq!(r(Metric::Interval), 0.849);
        // Through `agreement`: the same figure, the 11 pairable units, every pair.
        let mut ratings = Vec::new();
        for (name, col) in [("a", a), ("b", b), ("c", c), ("d", d)] {
            for (i, v) in col.iter().enumerate() {
                if let Some(v) = v {
                    ratings.push((i as i64, name.to_string(), *v));
                }
            }
        }
        let g = agreement(&ratings);
        assert_eq!((g.answers, g.raters, g.pairs.len()), (11, 4, 6));
        assert!((g.alpha.unwrap() - alpha(&units, Metric::Ordinal).unwrap()).abs() < 1e-12);
        let ab = &g.pairs[0];
        assert_eq!((ab.a.as_str(), ab.b.as_str(), ab.n), ("a", "b", 9));
    }

    #[test]
    fn perfect_agreement_and_nothing_to_compare() {
        assert_eq!(
            alpha(&[vec![1, 1], vec![3, 3], vec![5, 5]], Metric::Ordinal),
            Some(1.0)
        );
        assert_eq!(alpha(&[vec![4]], Metric::Ordinal), None);
        assert_eq!(alpha(&[vec![4, 4], vec![4, 4]], Metric::Ordinal), None);
    }
}
