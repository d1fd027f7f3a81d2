//! A long-run level: what a rare count holds per bin on average over the last days,
//! for a series whose own short history cannot say (the `(slow sprayers)` count: a
//! rolling four-hour statistic that rises slowly during an attack, so a baseline
//! learned from its recent bins would chase it, and a split rule keeps only hours of
//! history).
//!
//! Discounted sums, `S = Σ γ^age · x` and `N = Σ γ^age`, with `γ` set by a half-life
//! (a week by default): `S / N` is the level. Bins a detector flagged are not learned,
//! so an attack does not teach that attacks are normal; what it leaves in a rolling
//! count after its last flagged bin is diluted by the half-life.

use crate::detect::baseline::{Basis, Expected};
use crate::series::Counts;

#[derive(Debug, Clone, PartialEq)]
pub struct LongRunLevel {
    decay: f64,
    total: f64,
    failure: f64,
    weight: f64,
    learned: usize,
}

impl LongRunLevel {
    /// A level that forgets half of what it learned in `half_life_bins` bins.
    pub fn new(half_life_bins: f64) -> LongRunLevel {
        LongRunLevel {
            decay: 0.5f64.powf(1.0 / half_life_bins.max(1.0)),
            total: 0.0,
            failure: 0.0,
            weight: 0.0,
            learned: 0,
        }
    }

    /// Learn one clean bin.
    pub fn learn(&mut self, c: &Counts) {
        self.total = self.total * self.decay + c.total as f64;
        self.failure = self.failure * self.decay + c.failure as f64;
        self.weight = self.weight * self.decay + 1.0;
        self.learned = self.learned.saturating_add(1);
    }

    /// The level of `total` and `failure` per bin, once `min_bins` bins were learned.
    pub fn expected(&self, min_bins: usize) -> Option<Expected> {
        if self.learned < min_bins.max(1) || self.weight <= 0.0 {
            return None;
        }
        let total = self.total / self.weight;
        Some(Expected {
            total,
            success: 0.0,
            failure: self.failure / self.weight,
            seasonal_total: total,
            basis: Basis::RecentLevel,
            samples: self.learned,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(total: u64, failure: u64) -> Counts {
        Counts {
            total,
            failure,
            ..Counts::default()
        }
    }

    #[test]
    fn says_nothing_until_enough_bins_were_learned() {
        let mut l = LongRunLevel::new(100.0);
        l.learn(&counts(1, 0));
        assert_eq!(l.expected(2), None);
        l.learn(&counts(0, 1));
        let e = l.expected(2).unwrap();
        assert!(e.total > 0.0 && e.total < 1.0, "{e:?}");
        assert!(e.failure > 0.0 && e.failure < 1.0, "{e:?}");
        assert_eq!(e.samples, 2);
    }

    #[test]
    fn follows_the_mean_and_forgets_with_its_half_life() {
        let mut l = LongRunLevel::new(50.0);
        for i in 0..1000u64 {
            l.learn(&counts(i % 2, 2));
        }
        let e = l.expected(1).unwrap();
        assert!((e.total - 0.5).abs() < 0.05, "{e:?}");
        assert!((e.failure - 2.0).abs() < 1e-9, "{e:?}");
        // Fifty bins of nothing halve it.
        for _ in 0..50 {
            l.learn(&counts(0, 0));
        }
        let after = l.expected(1).unwrap();
        assert!((after.failure - 1.0).abs() < 0.05, "{after:?}");
    }
}
