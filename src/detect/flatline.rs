//! `flatline`: the log stream went silent — no events at all in this bin, and so little
//! in the last few bins that the chance of it under the baseline is below `p_value`.
//! The log pipeline (Okta → EventBridge → CloudWatch) is probably broken.
//!
//! # Silence judged by its probability
//! A 35-minute break rarely fills whole bins: it starts in the middle of one, empties
//! the next and ends in the middle of a third. So the detector does not count empty
//! bins. When this bin is empty it asks, for every window of the last `w` bins
//! (`w` = 1 … `bins`, this one included), how likely it is to see as few events as the
//! window holds under the baseline: the lower tail of a negative binomial whose mean is
//! the window's summed expectation (the partial bin at the edge contributes what it
//! held). It pages when the smallest of those chances is at most `p_value / bins`
//! (Bonferroni over the window lengths), whatever the window. At the weekday peak one
//! empty bin is already impossible, so 35 minutes of nothing pages after the first
//! empty bin; at 4 a.m. on a Sunday, where a bin expects one event, an empty hour is
//! ordinary and nothing fires. Level-adjusted expectations are used, so on a quiet
//! holiday the bar is lower too. Unknown bins (a failed query) end the window: not
//! knowing is not silence.
//!
//! What a bin cannot tell is where inside it the events stopped: a gap of a dozen
//! expected events at night that leaves only one empty bin between two partial ones
//! stays above the threshold (see the README's detection-quality notes).

use std::sync::Arc;

use super::{read_p_value, BinContext, Detector, DetectorKind, Finding, Severity};
use crate::config_reader::{Problems, Table};
use crate::stats::CountModel;

#[derive(Debug, Clone, PartialEq)]
pub struct Flatline {
    pub p_value: f64,
    /// The longest window judged, in bins (4 by default: an hour of 15m bins).
    pub bins: u32,
}

impl Flatline {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> Flatline {
        Flatline {
            p_value: read_p_value(t, 1e-6, problems),
            bins: t.count("bins", 1, problems).unwrap_or(4).min(10_000) as u32,
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
                window_bins: 1,
            });
        }
        // This bin is empty: judge every window that ends with it.
        let threshold = self.p_value / f64::from(self.bins.max(1));
        let (mut seen, mut mean, mut mean_sq) = (0u64, e.total, e.total * e.total);
        let mut best = (CountModel::new(e.total, phi).p_zero(), 0u64, e.total, 1u32);
        for w in 2..=self.bins {
            match ctx.history.get(ctx.bin - i64::from(w - 1)) {
                Some(r) if r.known => {
                    let mu = f64::from(r.expected_total);
                    seen += u64::from(r.total);
                    mean += mu;
                    mean_sq += mu * mu;
                }
                _ => break,
            }
            let phi_w = if mean > 0.0 {
                phi * mean_sq / (mean * mean)
            } else {
                phi
            };
            let p = CountModel::new(mean, phi_w).lower_tail(seen);
            if p < best.0 {
                best = (p, seen, mean, w);
            }
        }
        let (p_value, seen, expected, w) = best;
        Some(Finding {
            anomalous: p_value <= threshold,
            observed: seen as f64,
            expected,
            lower: 1.0,
            upper,
            p_value,
            severity: Severity::Critical,
            measure: "events",
            window_bins: w,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::series::{BinRecord, History};

    /// A past bin that held `total` events where `expected` were expected.
    fn bin(total: u32, expected: f32) -> BinRecord {
        BinRecord {
            total,
            known: true,
            seasonal_total: expected,
            expected_total: expected,
            ..BinRecord::default()
        }
    }

    fn det() -> Flatline {
        Flatline {
            p_value: 1e-6,
            bins: 4,
        }
    }

    fn judge(h: &History, expected: f64) -> Finding {
        det()
            .evaluate(&ctx(
                h,
                counts(0, 0, 0),
                Some(test_support_expected(expected)),
            ))
            .unwrap()
    }

    fn test_support_expected(total: f64) -> crate::detect::baseline::Expected {
        expected(total, total * 0.9, total * 0.1)
    }

    #[test]
    fn one_empty_bin_at_the_peak_pages_at_once() {
        let mut h = History::new(16);
        for i in 0..3 {
            h.push(i, bin(300, 300.0));
        }
        // The gap started mid-bin: the bin before held a third of its events.
        h.push(3, bin(100, 300.0));
        let f = judge(&h, 300.0);
        assert!(f.anomalous && f.p_value < 1e-20, "{f:?}");
    }

    #[test]
    fn silence_accumulates_over_a_window() {
        // Six events expected per bin: one empty bin is ordinary (P = e^-6), an hour
        // of nothing is not (e^-24).
        let mut h = History::new(16);
        h.push(0, bin(6, 6.0));
        let f = judge(&h, 6.0);
        assert!(!f.anomalous, "{f:?}");
        let mut h = History::new(16);
        for i in 0..3 {
            h.push(i, bin(0, 6.0));
        }
        let f = judge(&h, 6.0);
        assert!(f.anomalous, "{f:?}");
        assert_eq!(f.window_bins, 4);
        assert!((f.expected - 24.0).abs() < 1e-9);
    }

    #[test]
    fn an_empty_night_hour_is_normal() {
        let mut h = History::new(16);
        for i in 0..3 {
            h.push(i, bin(0, 0.3));
        }
        let f = judge(&h, 0.3);
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn a_bin_with_events_is_not_silence() {
        let h = History::new(16);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(1, 1, 0),
                Some(test_support_expected(300.0)),
            ))
            .unwrap();
        assert!(!f.anomalous && f.p_value == 1.0);
    }

    #[test]
    fn unknown_bins_end_the_window() {
        let mut h = History::new(16);
        h.push(0, bin(0, 6.0));
        h.push(1, bin(0, 6.0));
        h.push(2, BinRecord::default());
        let f = judge(&h, 6.0);
        assert!(!f.anomalous, "{f:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        /// Traffic drawn from the baseline's own (Poisson) distribution: whatever its
        /// level, the chance that a bin pages stays at most about `p_value`. With a
        /// loose threshold (1 %) so the rate is measurable in a test.
        #[test]
        fn quiet_traffic_pages_at_most_at_the_configured_rate(mean in 0.5f64..4.0, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Poisson};
            let d = Flatline { p_value: 0.01, bins: 4 };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let poisson = Poisson::new(mean).unwrap();
            let mut h = History::new(16);
            let (mut pages, mut judged) = (0u32, 0u32);
            for b in 0..4000i64 {
                let n = poisson.sample(&mut rng) as u64;
                let mut c = ctx(&h, counts(n, n, 0), Some(expected(mean, mean, 0.0)));
                c.bin = b;
                c.dispersion.total = 0.0;
                let f = d.evaluate(&c).unwrap();
                judged += 1;
                pages += u32::from(f.anomalous);
                h.push(b, bin(n as u32, mean as f32));
            }
            let rate = f64::from(pages) / f64::from(judged);
            proptest::prop_assert!(rate <= 0.015, "rate {rate}");
        }
    }
}
