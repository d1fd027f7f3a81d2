//! Learning a count series' over-dispersion `phi` (the `1/k` of a negative binomial:
//! variance `mu + phi * mu²`), robustly, one clean bin at a time.
//!
//! The moment estimator — `((x - mu)² - x) / mu²` averaged — is what a textbook gives,
//! and what a counted series from outside the sign-in world breaks: one burst that
//! stayed under the paging bound (a social-media series has several a day) is squared
//! into it and sets `phi` for a day, after which it decays until bursts page again. So
//! `phi` is learned from a *count of exceedances* instead, which no single bin can
//! move far: under the model, the standardised residual `z = (x - mu) / sqrt(mu + phi
//! mu²)` falls outside ±[`CUT`] in a share [`EXCEED`] of the bins (the normal
//! approximation). Each clean bin nudges `log phi` up when `|z| > CUT` and down
//! otherwise, by a stochastic-approximation step whose fixed point is the `phi` at
//! which exceedances happen exactly as often as the model says — a quantile-matching
//! estimate, like the median absolute deviation but at the 95 % point, so it follows
//! the tail the detectors test in rather than the body. One bin moves `phi` by at
//! most a factor `exp(RATE * (1 / EXCEED - 1))` (about 11 %); it forgets with a time
//! constant of about `1 / RATE` = 200 bins (two days of 15-minute bins).
//!
//! # Per level, not pooled
//! One `phi` does not fit a whole day. Events that come in clusters (a sign-in writes
//! three, a retweet storm) scatter like `c * mu` on top of Poisson, which in negative
//! binomial terms is a *larger* `phi` where less is expected; a baseline estimated from
//! a handful of past bins adds error in proportion to the mean, a `phi` of its own. So
//! [`ByLevel`] keeps one estimate per order of magnitude of the expected count (below
//! 20, up to 200, above), and a bin is judged with the estimate of its own level:
//! quiet nights with the night's scatter, busy afternoons with theirs. Bins a detector
//! flagged are never learned from (the caller skips them), and bins expecting fewer
//! than [`LEARN_MIN_MEAN`] events carry too little information to tell dispersion from
//! Poisson noise (they are judged with the lowest level's estimate).

/// The smallest and largest dispersion learned (`k` from 100 down to 0.25).
pub const FLOOR: f64 = 0.01;
pub const CEILING: f64 = 4.0;

/// Bins expecting fewer events than this do not teach dispersion.
pub const LEARN_MIN_MEAN: f64 = 3.0;

/// A standardised residual beyond ±`CUT` is an exceedance.
const CUT: f64 = 2.0;

/// P(|Z| > 2) for a standard normal: how often an exceedance happens under the model.
const EXCEED: f64 = 0.0455;

/// Step size of the stochastic approximation, in `log phi` per bin.
const RATE: f64 = 0.005;

/// Where the levels of [`ByLevel`] part: expected counts below 20, below 200, above.
const LEVEL_BOUNDS: [f64; 2] = [20.0, 200.0];

/// One metric's dispersion, learned separately at each level of the expected count.
/// A level that has taught fewer than [`SEEN_ENOUGH`] bins (a burst took the series
/// where it rarely goes) is judged with the nearest level that has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ByLevel {
    phi: [f64; 3],
    seen: [u32; 3],
}

/// Bins a level must have learned from before its own estimate is used: a day of
/// 15-minute bins.
pub const SEEN_ENOUGH: u32 = 96;

impl ByLevel {
    /// Every level starting at `phi`.
    pub fn new(phi: f64) -> ByLevel {
        ByLevel {
            phi: [phi; 3],
            seen: [0; 3],
        }
    }

    fn level(mean: f64) -> usize {
        LEVEL_BOUNDS.iter().filter(|&&b| mean >= b).count()
    }

    /// The dispersion to judge a bin expecting `mean` with.
    pub fn at(&self, mean: f64) -> f64 {
        let i = Self::level(mean);
        // This level, else the nearest that learned enough (the larger estimate of
        // two at the same distance).
        for d in 0..self.phi.len() {
            let near = [i.checked_sub(d), Some(i + d)]
                .into_iter()
                .flatten()
                .filter(|&j| j < self.phi.len() && self.seen[j] >= SEEN_ENOUGH)
                .map(|j| self.phi[j])
                .reduce(f64::max);
            if let Some(phi) = near {
                return phi;
            }
        }
        self.phi[i]
    }

    /// Learn from one more clean bin (see [`learn`]).
    pub fn learn(&mut self, mean: f64, x: u64) {
        if !mean.is_finite() || mean < LEARN_MIN_MEAN {
            return;
        }
        let i = Self::level(mean);
        self.phi[i] = learn(self.phi[i], mean, x);
        self.seen[i] = self.seen[i].saturating_add(1);
    }
}

/// `phi` after one more clean bin that held `x` where `mean` was expected.
pub fn learn(phi: f64, mean: f64, x: u64) -> f64 {
    let phi = if phi.is_finite() {
        phi.clamp(FLOOR, CEILING)
    } else {
        FLOOR
    };
    if !mean.is_finite() || mean < LEARN_MIN_MEAN {
        return phi;
    }
    let z = (x as f64 - mean) / (mean + phi * mean * mean).sqrt();
    let hit = if z.abs() > CUT { 1.0 } else { 0.0 };
    let step = RATE * (hit / EXCEED - 1.0);
    (phi * step.exp()).clamp(FLOOR, CEILING)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::CountModel;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Gamma, Poisson};

    /// A negative binomial draw with mean `mu` and dispersion `phi` (Gamma-Poisson).
    fn nb(rng: &mut SmallRng, mu: f64, phi: f64) -> u64 {
        let lambda = if phi > 0.0 {
            Gamma::new(1.0 / phi, mu * phi).unwrap().sample(rng)
        } else {
            mu
        };
        if lambda <= 0.0 {
            return 0;
        }
        Poisson::new(lambda).unwrap().sample(rng) as u64
    }

    /// Learn over `bins` bins of a daily curve between `low` and `high` expected
    /// events, drawn with dispersion `phi`; the learned value averaged over the last
    /// quarter (the estimate jitters by design).
    fn learned(phi: f64, low: f64, high: f64, bins: usize, seed: u64) -> f64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut est = 0.05;
        let (mut sum, mut n) = (0.0, 0);
        for b in 0..bins {
            let hour = (b % 96) as f64 / 4.0;
            let mu = low + (high - low) * (-(hour - 12.0).powi(2) / 18.0).exp();
            est = learn(est, mu, nb(&mut rng, mu, phi));
            if b >= bins * 3 / 4 {
                sum += est;
                n += 1;
            }
        }
        sum / f64::from(n)
    }

    #[test]
    fn finds_the_dispersion_of_negative_binomial_counts() {
        for (phi, low, high) in [(0.05, 20.0, 400.0), (0.3, 10.0, 150.0), (1.0, 5.0, 60.0)] {
            let got = learned(phi, low, high, 20_000, 7);
            assert!(
                got > phi * 0.7 && got < phi * 1.4,
                "phi {phi}: learned {got}"
            );
        }
    }

    #[test]
    fn poisson_counts_learn_almost_nothing() {
        let got = learned(0.0, 20.0, 400.0, 20_000, 3);
        assert!(got < 0.02, "learned {got}");
    }

    #[test]
    fn one_burst_moves_it_a_little_and_a_moment_estimator_a_lot() {
        let phi = 0.1;
        let after = learn(phi, 100.0, 10_000);
        assert!(after > phi && after < phi * 1.12, "{after}");
        // What a moment estimate from the same bin alone would say.
        let moment = ((10_000.0f64 - 100.0).powi(2) - 10_000.0) / 1e4;
        assert!(moment > 9_000.0);
    }

    #[test]
    fn each_level_learns_its_own_scatter() {
        // Clustered events: quiet bins scatter like 4 * mu (phi about 3 / mu), busy
        // ones like a negative binomial with phi 0.02.
        let mut rng = SmallRng::seed_from_u64(11);
        let mut d = ByLevel::new(0.05);
        for b in 0..30_000 {
            let (mu, x) = if b % 2 == 0 {
                let clusters = nb(&mut rng, 2.5, 0.0);
                (10.0, 4 * clusters)
            } else {
                (500.0, nb(&mut rng, 500.0, 0.02))
            };
            d.learn(mu, x);
        }
        assert!(d.at(10.0) > 0.15, "{d:?}");
        assert!(d.at(500.0) < 0.04, "{d:?}");
        assert_eq!(d.at(1.0), d.at(10.0));
        // The middle level saw nothing: the larger of its neighbours judges it.
        assert_eq!(d.at(60.0), d.at(10.0));
    }

    #[test]
    fn a_level_seldom_seen_borrows_its_neighbours_estimate() {
        let mut d = ByLevel::new(0.05);
        let mut rng = SmallRng::seed_from_u64(5);
        for _ in 0..5_000 {
            d.learn(80.0, nb(&mut rng, 80.0, 0.4));
        }
        // One burst took the expectation past 200 for a few bins.
        for _ in 0..3 {
            d.learn(450.0, 450);
        }
        assert!(d.at(80.0) > 0.25, "{d:?}");
        assert_eq!(d.at(450.0), d.at(80.0));
        assert_eq!(d.at(5.0), d.at(80.0));
    }

    #[test]
    fn too_little_expected_teaches_nothing() {
        assert_eq!(learn(0.2, 1.0, 40), 0.2);
        assert_eq!(learn(0.2, f64::NAN, 40), 0.2);
        assert_eq!(learn(f64::NAN, 1.0, 40), FLOOR);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Quiet traffic drawn from a negative binomial, judged bin by bin as the spike
        /// detector judges one bin (the upper tail at the learned dispersion, floors
        /// off) and then learned from, as the pipeline does: the share of bins that
        /// page is about the configured p-value, whatever the true dispersion and level.
        #[test]
        fn quiet_traffic_pages_at_about_the_configured_rate(
            phi in 0.02f64..1.5,
            level in 10.0f64..300.0,
            seed in 0u64..1000,
        ) {
            let p_value = 0.01;
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut est = 0.05;
            let (mut pages, mut judged) = (0u32, 0u32);
            for b in 0..16_000usize {
                let hour = (b % 96) as f64 / 4.0;
                let mu = level * (0.2 + (-(hour - 12.0).powi(2) / 18.0).exp());
                let x = nb(&mut rng, mu, phi);
                let paged = CountModel::new(mu, est).upper_tail(x) <= p_value;
                if b >= 4_000 {
                    judged += 1;
                    pages += u32::from(paged);
                }
                if !paged {
                    est = learn(est, mu, x);
                }
            }
            let rate = f64::from(pages) / f64::from(judged);
            prop_assert!(rate <= 2.0 * p_value, "rate {rate}: phi {phi} learned {est}");
            prop_assert!(rate >= p_value / 3.0, "rate {rate}: phi {phi} learned {est}");
        }

        /// Whatever it is shown, the estimate stays a usable dispersion.
        #[test]
        fn stays_within_bounds(phi in -1.0f64..10.0, mean in 0.0f64..1e6, x in 0u64..10_000_000) {
            let got = learn(phi, mean, x);
            prop_assert!(got.is_finite() && (FLOOR..=CEILING).contains(&got));
        }
    }
}
