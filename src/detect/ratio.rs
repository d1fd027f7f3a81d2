//! `failure_ratio`: the share of attempts that fail is far above its baseline share.
//!
//! This catches attacks that hide in busy periods, when the failure count rises less
//! than the noise of the total but the share clearly moves. The test is binomial: with
//! `n` attempts and baseline failure share `p`, how unlikely are `k` or more failures? It
//! weighs the number of attempts properly — 6 failures of 10 is weak evidence, 600 of
//! 1,000 is overwhelming.

use std::sync::Arc;

use super::{
    read_p_value, read_positive, severity_from, BinContext, Detector, DetectorKind, Finding,
};
use crate::config_reader::{Problems, Table};
use crate::stats::binomial_upper_tail;

#[derive(Debug, Clone, PartialEq)]
pub struct FailureRatio {
    pub p_value: f64,
    /// At least this many failures in the bin.
    pub min_count: u64,
    /// The observed share must be at least this many times the baseline share.
    pub min_ratio: f64,
}

impl FailureRatio {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> FailureRatio {
        FailureRatio {
            p_value: read_p_value(t, 1e-6, problems),
            min_count: t.count("min_count", 0, problems).unwrap_or(20),
            min_ratio: read_positive(t, "min_ratio", 2.0, problems),
        }
    }
}

impl Detector for FailureRatio {
    fn kind(&self) -> DetectorKind {
        DetectorKind::FailureRatio
    }

    fn p_value(&self) -> Option<f64> {
        Some(self.p_value)
    }

    fn with_p_value(&self, p_value: f64) -> Option<Arc<dyn Detector>> {
        Some(Arc::new(Self {
            p_value,
            ..self.clone()
        }))
    }

    fn min_count(&self) -> Option<u64> {
        Some(self.min_count)
    }

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        let e = ctx.expected?;
        let c = ctx.counts;
        if c.total == 0 {
            return None;
        }
        let base = e.failure_share();
        // Real traffic is noisier than a binomial; inflating the null share by the
        // learned dispersion keeps a busy, slightly-worse-than-usual hour from paging.
        let null = (base * (1.0 + 2.0 * ctx.dispersion.failure.sqrt())).min(0.99);
        let p_value = binomial_upper_tail(c.failure, c.total, null);
        let share = c.failure as f64 / c.total as f64;
        let upper = (base * self.min_ratio).min(1.0);
        // As for `failure_spike`: the extra failures must come with extra accounts (an
        // attack tries each about once; people who fail and retry, twice), unless they
        // are beyond any retry storm of people who still get in — ten times the usual
        // failures *and* most attempts failing (a help-desk reset wave passes ten times
        // a quiet afternoon's failures while most sign-ins succeed). Skipped without
        // distinct-user counts.
        let extra = c.failure as f64 - e.failure;
        let spread = c.failed_users == 0
            || super::spike::beyond_retry_storm(c.failure, c.total, e.failure.max(1.0))
            || c.failed_users as f64 - e.failure >= super::spike::SPREAD * extra;
        Some(Finding {
            anomalous: p_value <= self.p_value
                && c.failure >= self.min_count
                && share >= upper
                && spread,
            observed: share,
            expected: base,
            lower: 0.0,
            upper,
            p_value,
            severity: severity_from(p_value, self.p_value, share / base),
            measure: "failure share",
            window_bins: 1,
            evidence_bins: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::series::History;

    fn det() -> FailureRatio {
        FailureRatio {
            p_value: 1e-6,
            min_count: 20,
            min_ratio: 2.0,
        }
    }

    #[test]
    fn share_jump_with_many_attempts_is_flagged() {
        let h = History::new(4);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(1000, 700, 300),
                Some(expected(1000.0, 950.0, 50.0)),
            ))
            .unwrap();
        assert!(f.anomalous, "{f:?}");
        assert!((f.observed - 0.3).abs() < 1e-9);
    }

    #[test]
    fn same_share_on_few_attempts_is_not() {
        let h = History::new(4);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(10, 7, 3),
                Some(expected(1000.0, 950.0, 50.0)),
            ))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn a_reset_wave_is_not_an_outage_or_an_attack() {
        // A help-desk reset wave on a quiet afternoon: 30 failures where 2 are usual
        // (fifteen times), from 18 people failing about twice, while 55 still sign in.
        let h = History::new(4);
        let mut wave = counts(85, 55, 30);
        wave.failed_users = 18;
        let e = Some(expected(46.0, 44.0, 2.0));
        let f = det().evaluate(&ctx(&h, wave, e)).unwrap();
        assert!(!f.anomalous && f.p_value < 1e-6, "{f:?}");
        // The same people failing while most attempts fail (an agent down): pages.
        let mut outage = counts(45, 15, 30);
        outage.failed_users = 18;
        let f = det().evaluate(&ctx(&h, outage, e)).unwrap();
        assert!(f.anomalous, "{f:?}");
    }

    #[test]
    fn no_attempts_no_verdict() {
        let h = History::new(4);
        assert_eq!(
            det().evaluate(&ctx(&h, counts(0, 0, 0), Some(expected(10.0, 9.0, 1.0)))),
            None
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// Quiet traffic drawn from the baseline's own distribution — successes Poisson
        /// around a daily curve, failures negative binomial around their share of it
        /// with the learned failure dispersion — pages at most at the configured
        /// `p_value` once the floors are off (the null share is inflated by the
        /// dispersion, so a busy, slightly-worse-than-usual hour does not page).
        #[test]
        fn quiet_traffic_pages_at_most_at_the_configured_rate(level in 20.0f64..2000.0, base in 0.01f64..0.3, phi in 0.0f64..0.15, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Gamma, Poisson};
            let p_value = 0.01;
            let d = FailureRatio { p_value, min_count: 0, min_ratio: 1e-9 };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let h = History::new(4);
            let (mut pages, mut judged) = (0u32, 0u32);
            let mut poisson = |l: f64| if l > 0.0 { Poisson::new(l).unwrap().sample(&mut rng) as u64 } else { 0 };
            let mut rng2 = rand::rngs::SmallRng::seed_from_u64(seed + 1);
            for b in 0..6000i64 {
                let hour = (b % 96) as f64 / 4.0;
                let mu = level * (0.3 + (-(hour - 13.0).powi(2) / 20.0).exp());
                let (mu_s, mu_f) = (mu * (1.0 - base), mu * base);
                let lambda = if phi > 0.0 { Gamma::new(1.0 / phi, mu_f * phi).unwrap().sample(&mut rng2) } else { mu_f };
                let (s, f) = (poisson(mu_s), poisson(lambda));
                let mut cx = ctx(&h, counts(s + f, s, f), Some(expected(mu, mu_s, mu_f)));
                cx.dispersion.failure = phi;
                if let Some(f) = d.evaluate(&cx) {
                    judged += 1;
                    pages += u32::from(f.anomalous);
                }
            }
            let rate = f64::from(pages) / f64::from(judged);
            proptest::prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
        }
    }
}
