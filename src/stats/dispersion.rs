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
//! The estimate is pooled over the series' seasons: the negative binomial's variance
//! already grows with the mean, so one `phi` fits quiet nights and busy mornings
//! alike. Bins a detector flagged are never learned from (the caller skips them), and
//! bins expecting fewer than [`LEARN_MIN_MEAN`] events carry too little information to
//! tell dispersion from Poisson noise.

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
    fn too_little_expected_teaches_nothing() {
        assert_eq!(learn(0.2, 1.0, 40), 0.2);
        assert_eq!(learn(0.2, f64::NAN, 40), 0.2);
        assert_eq!(learn(f64::NAN, 1.0, 40), FLOOR);
    }

    proptest! {
        /// Whatever it is shown, the estimate stays a usable dispersion.
        #[test]
        fn stays_within_bounds(phi in -1.0f64..10.0, mean in 0.0f64..1e6, x in 0u64..10_000_000) {
            let got = learn(phi, mean, x);
            prop_assert!(got.is_finite() && (FLOOR..=CEILING).contains(&got));
        }
    }
}
