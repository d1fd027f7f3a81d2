//! The count statistics the detectors share, on top of statrs.
//!
//! Sign-in counts are over-dispersed: two Tuesdays at 10:00 differ by more than a Poisson
//! distribution allows. So counts are modelled as negative binomial with mean `mu` and
//! variance `mu + phi * mu²`; `phi` (the dispersion) is learned per series from its
//! clean bins ([`dispersion`]). With `phi = 0` this is exactly Poisson.

pub mod dispersion;

use statrs::distribution::{Binomial, DiscreteCDF, NegativeBinomial, Poisson};

/// The smallest expected count used in a test. Zero expected failures at night would
/// make any single failure "impossible"; this floor keeps one stray event from paging.
pub const MIN_MEAN: f64 = 0.5;

/// A count model: mean and dispersion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountModel {
    pub mean: f64,
    pub phi: f64,
}

impl CountModel {
    pub fn new(mean: f64, phi: f64) -> Self {
        let mean = if mean.is_finite() {
            mean.max(MIN_MEAN)
        } else {
            MIN_MEAN
        };
        let phi = if phi.is_finite() { phi.max(0.0) } else { 0.0 };
        CountModel { mean, phi }
    }

    /// P(X ≥ x): how unlikely a count this high is.
    pub fn upper_tail(&self, x: u64) -> f64 {
        if x == 0 {
            return 1.0;
        }
        clamp_p(self.sf(x - 1))
    }

    /// P(X ≤ x): how unlikely a count this low is.
    pub fn lower_tail(&self, x: u64) -> f64 {
        clamp_p(1.0 - self.sf(x))
    }

    /// P(X = 0).
    pub fn p_zero(&self) -> f64 {
        self.lower_tail(0)
    }

    /// The smallest x with P(X ≥ x) ≤ p: the count at which the upper test would fire.
    pub fn upper_bound(&self, p: f64) -> u64 {
        // P(X ≥ x) falls as x grows: find the first x where it is ≤ p by doubling, then
        // bisecting. Bounded: each step halves the interval.
        let mut hi = (self.mean.ceil() as u64).max(1);
        while self.upper_tail(hi) > p && hi < u64::MAX / 4 {
            hi *= 2;
        }
        let mut lo = 0u64;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.upper_tail(mid) <= p {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// The largest x with P(X ≤ x) ≤ p, or `None` when even zero is not that unlikely:
    /// the count at or below which the lower test would fire.
    pub fn lower_bound(&self, p: f64) -> Option<u64> {
        if self.lower_tail(0) > p {
            return None;
        }
        let (mut lo, mut hi) = (0u64, self.mean.ceil() as u64 + 1);
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if self.lower_tail(mid) <= p {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }

    /// P(X > x).
    fn sf(&self, x: u64) -> f64 {
        // Below a tiny dispersion the negative binomial is numerically Poisson.
        if self.phi < 1e-6 {
            return match Poisson::new(self.mean) {
                Ok(d) => d.sf(x),
                Err(_) => 0.0,
            };
        }
        let r = 1.0 / self.phi;
        let p = r / (r + self.mean);
        match NegativeBinomial::new(r, p) {
            Ok(d) => d.sf(x),
            Err(_) => 0.0,
        }
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p): how unlikely `k` failures out of `n` attempts are
/// when each fails with probability `p`.
pub fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    match Binomial::new(p, n) {
        Ok(d) => clamp_p(d.sf(k - 1)),
        Err(_) => 1.0,
    }
}

/// Keep probabilities inside [0, 1] whatever rounding did, and map NaN to "not unusual".
fn clamp_p(p: f64) -> f64 {
    if p.is_nan() {
        1.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// A human reading of a p-value: "1 in 3,400,000".
pub fn one_in(p: f64) -> String {
    if p <= 0.0 {
        return "less than 1 in 10^15".to_string();
    }
    let n = 1.0 / p;
    if n >= 1e15 {
        "less than 1 in 10^15".to_string()
    } else if n >= 1e6 {
        format!("about 1 in 10^{}", n.log10().floor() as i64)
    } else {
        format!("about 1 in {}", group_thousands(n.round() as u64))
    }
}

fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn poisson_tails_match_known_values() {
        let m = CountModel::new(10.0, 0.0);
        // P(X ≥ 20 | λ = 10) ≈ 0.00345
        assert!((m.upper_tail(20) - 0.003454).abs() < 1e-5);
        // P(X ≤ 2 | λ = 10) ≈ 0.002769
        assert!((m.lower_tail(2) - 0.002769).abs() < 1e-5);
        assert!((m.p_zero() - (-10.0f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn dispersion_widens_the_tails() {
        let poisson = CountModel::new(50.0, 0.0);
        let nb = CountModel::new(50.0, 0.2);
        assert!(nb.upper_tail(100) > poisson.upper_tail(100) * 100.0);
        assert!(nb.upper_bound(1e-6) > poisson.upper_bound(1e-6));
    }

    #[test]
    fn bounds_are_where_the_tests_flip() {
        let m = CountModel::new(40.0, 0.05);
        let u = m.upper_bound(1e-6);
        assert!(m.upper_tail(u) <= 1e-6 && m.upper_tail(u - 1) > 1e-6);
        let l = m.lower_bound(1e-6).unwrap();
        assert!(m.lower_tail(l) <= 1e-6 && m.lower_tail(l + 1) > 1e-6);
        assert_eq!(CountModel::new(1.0, 0.0).lower_bound(1e-6), None);
    }

    #[test]
    fn binomial_tail() {
        // 10 failures of 10 at p = 0.5: 1/1024
        assert!((binomial_upper_tail(10, 10, 0.5) - 1.0 / 1024.0).abs() < 1e-9);
        assert_eq!(binomial_upper_tail(0, 10, 0.5), 1.0);
        assert_eq!(binomial_upper_tail(11, 10, 0.5), 0.0);
    }

    #[test]
    fn one_in_reads_well() {
        assert_eq!(one_in(0.001), "about 1 in 1,000");
        assert_eq!(one_in(2e-9), "about 1 in 10^8");
        assert_eq!(one_in(0.0), "less than 1 in 10^15");
    }

    proptest! {
        #[test]
        fn tails_are_probabilities_and_monotone(mean in 0.0f64..5000.0, phi in 0.0f64..2.0, x in 0u64..20000) {
            let m = CountModel::new(mean, phi);
            let (u0, u1) = (m.upper_tail(x), m.upper_tail(x + 1));
            prop_assert!((0.0..=1.0).contains(&u0) && u1 <= u0 + 1e-12);
            let (l0, l1) = (m.lower_tail(x), m.lower_tail(x + 1));
            prop_assert!((0.0..=1.0).contains(&l0) && l1 + 1e-12 >= l0);
        }

        #[test]
        fn binomial_tail_is_monotone(n in 1u64..5000, k in 0u64..5000, p in 0.0f64..1.0) {
            let a = binomial_upper_tail(k, n, p);
            let b = binomial_upper_tail(k + 1, n, p);
            prop_assert!((0.0..=1.0).contains(&a) && b <= a + 1e-12);
        }
    }
}
