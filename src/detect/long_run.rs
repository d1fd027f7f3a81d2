//! A long-run level: what a rare count holds per bin on average over the last days,
//! for a series whose own short history cannot say — the `(slow sprayers)` count, a
//! rolling four-hour statistic that rises slowly during an attack (a baseline learned
//! from its recent bins would chase it) in a split rule that keeps only hours of
//! history.
//!
//! Discounted sums, `S = Σ γ^age · x` and `N = Σ γ^age`, with `γ` set by a half-life
//! (a week for the sprayers): `S / N` is the level. The caller teaches it only clean
//! bins, so an attack does not teach that attacks are normal.

#[derive(Debug, Clone, PartialEq)]
pub struct LongRunLevel {
    decay: f64,
    sum: f64,
    weight: f64,
    learned: u64,
}

impl LongRunLevel {
    /// A level that forgets half of what it learned in `half_life_bins` bins.
    pub fn new(half_life_bins: f64) -> LongRunLevel {
        LongRunLevel {
            decay: 0.5f64.powf(1.0 / half_life_bins.max(1.0)),
            sum: 0.0,
            weight: 0.0,
            learned: 0,
        }
    }

    /// Learn one clean bin's count.
    pub fn learn(&mut self, x: f64) {
        self.sum = self.sum * self.decay + x;
        self.weight = self.weight * self.decay + 1.0;
        self.learned = self.learned.saturating_add(1);
    }

    /// The level per bin, once `min_bins` bins were learned (a level from the first
    /// hours of a history says little, and would learn an attack that came in them).
    pub fn level(&self, min_bins: u64) -> Option<f64> {
        (self.learned >= min_bins.max(1) && self.weight > 0.0).then(|| self.sum / self.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_nothing_until_enough_bins_were_learned() {
        let mut l = LongRunLevel::new(10.0);
        assert_eq!(l.level(1), None);
        l.learn(3.0);
        assert_eq!(l.level(2), None);
        l.learn(1.0);
        let level = l.level(2).unwrap();
        assert!(level > 1.0 && level < 3.0, "{level}");
    }

    #[test]
    fn follows_the_mean_and_forgets_with_its_half_life() {
        let mut l = LongRunLevel::new(50.0);
        for i in 0..1000u32 {
            l.learn(f64::from(i % 2) * 4.0);
        }
        let level = l.level(1).unwrap();
        assert!((level - 2.0).abs() < 0.1, "{level}");
        // Fifty bins of nothing halve it.
        for _ in 0..50 {
            l.learn(0.0);
        }
        let level = l.level(1).unwrap();
        assert!((level - 1.0).abs() < 0.1, "{level}");
    }
}
