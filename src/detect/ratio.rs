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
        Some(Finding {
            anomalous: p_value <= self.p_value && c.failure >= self.min_count && share >= upper,
            observed: share,
            expected: base,
            lower: 0.0,
            upper,
            p_value,
            severity: severity_from(p_value, self.p_value, share / base),
            measure: "failure share",
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
    fn no_attempts_no_verdict() {
        let h = History::new(4);
        assert_eq!(
            det().evaluate(&ctx(&h, counts(0, 0, 0), Some(expected(10.0, 9.0, 1.0)))),
            None
        );
    }
}
