//! `flatline`: no events at all for `bins` bins in a row (3 by default: 45 minutes of
//! 15m bins) while the baseline expected some — the log pipeline (Okta → EventBridge →
//! CloudWatch) is probably broken.
//!
//! The test is the probability of seeing nothing in every one of those bins under the
//! baseline: P(0) per bin from the count model, multiplied. At 4 a.m. on a Sunday the
//! expectation is near zero, P(0) is near one, and nothing fires. Unknown bins (a failed
//! query) break the run: not knowing is not silence.

use std::sync::Arc;

use super::{read_p_value, BinContext, Detector, DetectorKind, Finding, Severity};
use crate::config_reader::{Problems, Table};
use crate::stats::CountModel;

#[derive(Debug, Clone, PartialEq)]
pub struct Flatline {
    pub p_value: f64,
    /// How many consecutive empty bins it takes.
    pub bins: u32,
}

impl Flatline {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> Flatline {
        Flatline {
            p_value: read_p_value(t, 1e-6, problems),
            bins: t.count("bins", 1, problems).unwrap_or(3).min(10_000) as u32,
        }
    }
}

impl Detector for Flatline {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Flatline
    }

    fn window_bins(&self) -> u32 {
        self.bins
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
        let phi = ctx.dispersion.total;
        let observed = ctx.counts.total as f64;
        // Flatline only judges the low side; report the usual upper bound of the band.
        let upper = CountModel::new(e.total, phi).upper_bound(self.p_value) as f64;
        if ctx.counts.total > 0 {
            return Some(Finding {
                anomalous: false,
                observed,
                expected: e.total,
                lower: 1.0,
                upper,
                p_value: 1.0,
                severity: Severity::Critical,
                measure: "events",
            });
        }
        // This bin is empty; walk back over the previous bins of the run.
        // Level-adjusted expectations: on a quiet holiday the bar is lower too.
        let mut p_all_zero = CountModel::new(e.total, phi).p_zero();
        let mut expected_sum = e.total;
        let mut run = 1u32;
        let mut bin = ctx.bin - 1;
        while run < self.bins {
            match ctx.history.get(bin) {
                Some(r) if r.known && r.total == 0 => {
                    p_all_zero *= CountModel::new(f64::from(r.expected_total), phi).p_zero();
                    expected_sum += f64::from(r.expected_total);
                }
                _ => break,
            }
            run += 1;
            bin -= 1;
        }
        let full_run = run >= self.bins;
        Some(Finding {
            anomalous: full_run && p_all_zero <= self.p_value,
            observed,
            expected: expected_sum,
            lower: 1.0,
            upper,
            p_value: if full_run { p_all_zero } else { 1.0 },
            severity: Severity::Critical,
            measure: "events",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::series::{BinRecord, History};

    fn empty(seasonal: f32) -> BinRecord {
        BinRecord {
            known: true,
            seasonal_total: seasonal,
            ..BinRecord::default()
        }
    }

    fn det() -> Flatline {
        Flatline {
            p_value: 1e-6,
            bins: 4,
        }
    }

    #[test]
    fn silence_in_business_hours_fires_after_the_run() {
        let mut h = History::new(16);
        for i in 0..2 {
            h.push(i, empty(300.0));
        }
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(0, 0, 0),
                Some(expected(300.0, 280.0, 20.0)),
            ))
            .unwrap();
        assert!(!f.anomalous, "only three empty bins: {f:?}");
        h.push(2, empty(300.0));
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(0, 0, 0),
                Some(expected(300.0, 280.0, 20.0)),
            ))
            .unwrap();
        assert!(f.anomalous && f.p_value < 1e-20, "{f:?}");
    }

    #[test]
    fn silence_at_night_is_normal() {
        let mut h = History::new(16);
        for i in 0..3 {
            h.push(i, empty(0.3));
        }
        let f = det()
            .evaluate(&ctx(&h, counts(0, 0, 0), Some(expected(0.3, 0.3, 0.0))))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn unknown_bins_break_the_run() {
        let mut h = History::new(16);
        h.push(0, empty(300.0));
        h.push(1, BinRecord::default());
        h.push(2, empty(300.0));
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(0, 0, 0),
                Some(expected(300.0, 280.0, 20.0)),
            ))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }
}
