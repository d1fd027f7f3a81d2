//! `failure_spike` and `volume_spike`: a count far above its baseline.
//!
//! The test is the upper tail of a negative binomial around the expected count
//! (see [`crate::stats`]), so it respects both the level and the noise of the series.
//! Two floors keep tiny absolute changes from paging: `min_count` (at least this many
//! events in the bin) and `min_ratio` (at least this many times the expectation).

use std::sync::Arc;

use super::{
    read_p_value, read_positive, severity_from, BinContext, Detector, DetectorKind, Finding,
};
use crate::config_reader::{Problems, Table};
use crate::stats::{CountModel, MIN_MEAN};

/// Which count a spike detector watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeMetric {
    /// Failed attempts: credential stuffing, password spraying, brute force.
    Failure,
    /// All attempts: floods, scripted traffic, misbehaving integrations.
    Total,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CountSpike {
    pub metric: SpikeMetric,
    pub p_value: f64,
    pub min_count: u64,
    pub min_ratio: f64,
}

impl CountSpike {
    pub fn read(metric: SpikeMetric, t: &mut Table<'_>, problems: &mut Problems) -> CountSpike {
        let (min_count, min_ratio) = match metric {
            SpikeMetric::Failure => (20, 3.0),
            SpikeMetric::Total => (50, 2.0),
        };
        CountSpike {
            metric,
            p_value: read_p_value(t, 1e-6, problems),
            min_count: t.count("min_count", 0, problems).unwrap_or(min_count),
            min_ratio: read_positive(t, "min_ratio", min_ratio, problems),
        }
    }
}

impl Detector for CountSpike {
    fn kind(&self) -> DetectorKind {
        match self.metric {
            SpikeMetric::Failure => DetectorKind::FailureSpike,
            SpikeMetric::Total => DetectorKind::VolumeSpike,
        }
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
        let (observed, mean, phi, measure) = match self.metric {
            SpikeMetric::Failure => (
                ctx.counts.failure,
                e.failure,
                ctx.dispersion.failure,
                "failed sign-ins",
            ),
            SpikeMetric::Total => (
                ctx.counts.total,
                e.total,
                ctx.dispersion.total,
                "sign-in attempts",
            ),
        };
        let model = CountModel::new(mean, phi);
        let p_value = model.upper_tail(observed);
        // The smallest count that would page: the statistical bound and both floors.
        // When the floor itself is already past the bound (one tail evaluation says so),
        // the floor is the answer and the bisection for the bound is skipped: that is
        // the common case of thousands of quiet split series.
        let floor = (self.min_count as f64).max((self.min_ratio * mean.max(MIN_MEAN)).ceil());
        let upper = if model.upper_tail(floor as u64) <= self.p_value {
            floor
        } else {
            (model.upper_bound(self.p_value) as f64).max(floor)
        };
        let x = observed as f64;
        // Failures must be spread over accounts: one person failing twenty times (or a
        // stuck client) is Okta's lockout's business, not a page. Without distinct-user
        // counts (a hand-written query without `users`) this check is skipped.
        let users = ctx.counts.failed_users;
        let spread = self.metric != SpikeMetric::Failure || users == 0 || users as f64 >= upper;
        Some(Finding {
            anomalous: x >= upper && p_value <= self.p_value && spread,
            observed: x,
            expected: mean,
            lower: 0.0,
            upper,
            p_value,
            severity: severity_from(p_value, self.p_value, x / mean.max(1.0)),
            measure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{DetectorSpec, Severity};
    use super::*;
    use crate::series::History;

    fn spike() -> CountSpike {
        let spec = DetectorSpec::default_for(DetectorKind::FailureSpike);
        assert_eq!(spec.detector.kind(), DetectorKind::FailureSpike);
        CountSpike {
            metric: SpikeMetric::Failure,
            p_value: 1e-6,
            min_count: 20,
            min_ratio: 3.0,
        }
    }

    #[test]
    fn quiet_without_baseline() {
        let h = History::new(10);
        assert_eq!(spike().evaluate(&ctx(&h, counts(900, 0, 900), None)), None);
    }

    #[test]
    fn a_stuffing_burst_is_flagged_and_critical() {
        let h = History::new(10);
        let f = spike()
            .evaluate(&ctx(
                &h,
                counts(1400, 400, 1000),
                Some(expected(420.0, 400.0, 20.0)),
            ))
            .unwrap();
        assert!(f.anomalous);
        assert!(f.p_value < 1e-12);
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.upper > 20.0 && f.upper < 1000.0);
    }

    #[test]
    fn ordinary_noise_is_not() {
        let h = History::new(10);
        let f = spike()
            .evaluate(&ctx(
                &h,
                counts(440, 410, 30),
                Some(expected(420.0, 400.0, 20.0)),
            ))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    proptest::proptest! {
        /// The shortcut gives the same band as the full bound: max(bound, floors).
        #[test]
        fn upper_is_the_bound_or_the_floor(mean in 0.0f64..500.0, phi in 0.0f64..0.5, min_count in 0u64..100) {
            let d = CountSpike { metric: SpikeMetric::Failure, p_value: 1e-6, min_count, min_ratio: 3.0 };
            let h = History::new(4);
            let mut c = ctx(&h, counts(10, 0, 10), Some(expected(mean * 2.0, mean, mean)));
            c.dispersion.failure = phi;
            let f = d.evaluate(&c).unwrap();
            let model = CountModel::new(mean, phi);
            let want = (model.upper_bound(1e-6) as f64)
                .max(min_count as f64)
                .max((3.0 * mean.max(MIN_MEAN)).ceil());
            proptest::prop_assert_eq!(f.upper, want);
        }
    }

    #[test]
    fn one_person_failing_twenty_times_is_not_a_spike() {
        let h = History::new(10);
        let mut c = counts(440, 400, 40);
        c.failed_users = 6;
        let e = Some(expected(407.0, 400.0, 7.0));
        assert!(!spike().evaluate(&ctx(&h, c, e)).unwrap().anomalous);
        c.failed_users = 38;
        assert!(spike().evaluate(&ctx(&h, c, e)).unwrap().anomalous);
    }

    #[test]
    fn floors_stop_tiny_spikes_at_night() {
        let h = History::new(10);
        // 12 failures where 0.5 were expected is "unlikely" but far below min_count.
        let f = spike()
            .evaluate(&ctx(&h, counts(12, 0, 12), Some(expected(1.0, 0.5, 0.5))))
            .unwrap();
        assert!(f.p_value < 1e-6 && !f.anomalous);
    }
}
