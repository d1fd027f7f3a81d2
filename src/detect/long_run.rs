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
}

impl LongRunLevel {
    /// A level that forgets half of what it learned in `half_life_bins` bins.
    pub fn new(half_life_bins: f64) -> LongRunLevel {
        LongRunLevel {
            decay: 0.5f64.powf(1.0 / half_life_bins.max(1.0)),
            sum: 0.0,
            weight: 0.0,
        }
    }

    /// Learn one clean bin's count.
    pub fn learn(&mut self, x: f64) {
        self.sum = self.sum * self.decay + x;
        self.weight = self.weight * self.decay + 1.0;
    }

    /// The level per bin; 0 before anything was learned.
    pub fn level(&self) -> f64 {
        if self.weight > 0.0 {
            self.sum / self.weight
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_learned_is_level_zero() {
        assert_eq!(LongRunLevel::new(10.0).level(), 0.0);
    }

    #[test]
    fn follows_the_mean_and_forgets_with_its_half_life() {
        let mut l = LongRunLevel::new(50.0);
        for i in 0..1000u32 {
            l.learn(f64::from(i % 2) * 4.0);
        }
        assert!((l.level() - 2.0).abs() < 0.1, "{}", l.level());
        // Fifty bins of nothing halve it.
        for _ in 0..50 {
            l.learn(0.0);
        }
        assert!((l.level() - 1.0).abs() < 0.1, "{}", l.level());
    }
}
