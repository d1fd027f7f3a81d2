//! `success_drop`: successful sign-ins collapse while the baseline expects plenty — an
//! outage of the IdP, an app integration or a network path.
//!
//! Two tests must agree: the success count is far below its expectation (negative
//! binomial lower tail), and the success *share* of the attempts that did arrive is far
//! below its usual share (binomial). The second test is what keeps quiet days quiet: on a
//! holiday there are fewer attempts, but they succeed as often as ever. A bin with no
//! events at all is left to `flatline`.

use std::sync::Arc;

use super::{read_p_value, read_positive, BinContext, Detector, DetectorKind, Finding, Severity};
use crate::config_reader::{Problems, Table};
use crate::stats::{binomial_upper_tail, CountModel};

#[derive(Debug, Clone, PartialEq)]
pub struct SuccessDrop {
    pub p_value: f64,
    /// Only judge bins where at least this many successes are expected.
    pub min_expected: f64,
    /// Flag only when successes are at most this fraction of the expectation.
    pub max_fraction: f64,
}

impl SuccessDrop {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> SuccessDrop {
        let max_fraction = read_positive(t, "max_fraction", 0.5, problems);
        if max_fraction >= 1.0 {
            problems.push(
                t.key_path("max_fraction"),
                format!("must be below 1, found {max_fraction}"),
            );
        }
        SuccessDrop {
            p_value: read_p_value(t, 1e-6, problems),
            min_expected: read_positive(t, "min_expected", 20.0, problems),
            max_fraction: max_fraction.min(0.99),
        }
    }
}

impl Detector for SuccessDrop {
    fn kind(&self) -> DetectorKind {
        DetectorKind::SuccessDrop
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

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        let e = ctx.expected?;
        let c = ctx.counts;
        if e.success < self.min_expected || c.total == 0 {
            return None;
        }
        let model = CountModel::new(e.success, ctx.dispersion.success);
        let p_count = model.lower_tail(c.success);
        // P(successes ≤ s of n) = P(non-successes ≥ n - s) at the usual non-success share.
        let p_share = binomial_upper_tail(c.total - c.success, c.total, 1.0 - e.success_share());
        let p_value = p_count.max(p_share);
        let lower = (model.lower_bound(self.p_value).unwrap_or(0) as f64)
            .min((self.max_fraction * e.success).floor());
        let x = c.success as f64;
        let fraction = x / e.success;
        Some(Finding {
            anomalous: p_value <= self.p_value && x <= lower,
            observed: x,
            expected: e.success,
            lower,
            upper: model.upper_bound(self.p_value) as f64,
            p_value,
            severity: if fraction <= 0.2 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            measure: "successful sign-ins",
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

    fn det() -> SuccessDrop {
        SuccessDrop {
            p_value: 1e-6,
            min_expected: 20.0,
            max_fraction: 0.5,
        }
    }

    #[test]
    fn outage_with_failing_attempts_is_flagged() {
        let h = History::new(4);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(400, 40, 360),
                Some(expected(420.0, 400.0, 20.0)),
            ))
            .unwrap();
        assert!(f.anomalous, "{f:?}");
        assert_eq!(f.severity, Severity::Critical);
    }

    #[test]
    fn holiday_with_normal_share_is_not() {
        let h = History::new(4);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(84, 80, 4),
                Some(expected(420.0, 400.0, 20.0)),
            ))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn quiet_hours_are_not_judged() {
        let h = History::new(4);
        assert_eq!(
            det().evaluate(&ctx(&h, counts(2, 0, 2), Some(expected(6.0, 5.0, 1.0)))),
            None
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// Quiet traffic drawn from the baseline's own distribution — attempts negative
        /// binomial around a daily curve with the learned dispersion, each succeeding at
        /// the usual share — pages at most at the configured `p_value` once the floors
        /// are off. Both tests must reject (an intersection-union test), so the rate is
        /// at most `p_value` and, by design, below it.
        #[test]
        fn quiet_traffic_pages_at_most_at_the_configured_rate(level in 20.0f64..400.0, phi in 0.0f64..0.15, share in 0.5f64..0.98, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Binomial, Distribution, Gamma, Poisson};
            let p_value = 0.01;
            let d = SuccessDrop { p_value, min_expected: 5.0, max_fraction: 0.99 };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let h = History::new(4);
            let (mut pages, mut judged) = (0u32, 0u32);
            for b in 0..6000i64 {
                let hour = (b % 96) as f64 / 4.0;
                let mu = level * (0.3 + (-(hour - 13.0).powi(2) / 20.0).exp());
                let lambda = if phi > 0.0 { Gamma::new(1.0 / phi, mu * phi).unwrap().sample(&mut rng) } else { mu };
                let n = Poisson::new(lambda).unwrap().sample(&mut rng) as u64;
                let s = Binomial::new(n, share).unwrap().sample(&mut rng);
                let mut cx = ctx(&h, counts(n, s, n - s), Some(expected(mu, mu * share, mu * (1.0 - share))));
                cx.dispersion.success = phi;
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
