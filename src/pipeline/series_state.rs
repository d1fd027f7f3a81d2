//! One series' memory: its history, learned dispersion and alert fingerprints.

use crate::alert::fingerprint;
use crate::detect::baseline::Expected;
use crate::detect::Dispersion;
use crate::rule::RuleSpec;
use crate::series::{Counts, History, Labels};

/// How fast the learned dispersion follows new evidence (per bin).
const DISPERSION_RATE: f64 = 0.05;
const INITIAL_DISPERSION: Dispersion = Dispersion {
    total: 0.05,
    success: 0.05,
    failure: 0.1,
};

/// The length of an alert fingerprint (see [`fingerprint`]).
const FINGERPRINT_LEN: usize = 16;

#[derive(Debug, Clone)]
pub struct SeriesState {
    pub history: History,
    pub dispersion: Dispersion,
    /// Consecutive anomalous bins; a shift that lasts a day becomes the new normal.
    pub anomalous_run: u32,
    pub last_active_bin: i64,
    /// Sliding windows start no earlier than this bin: the bin after an alert of this
    /// series last resolved, so evidence that already paged is not added up again.
    pub evidence_since: i64,
    /// One fingerprint per detector, in the rule's detector order, back to back in one
    /// string (each is 16 hex digits): one allocation per series instead of one per
    /// detector, which matters with thousands of split series.
    fingerprints: String,
}

impl SeriesState {
    pub fn new(spec: &RuleSpec, labels: &Labels) -> SeriesState {
        SeriesState {
            history: History::new(spec.window_bins().max(8)),
            dispersion: INITIAL_DISPERSION,
            anomalous_run: 0,
            last_active_bin: 0,
            evidence_since: i64::MIN,
            fingerprints: spec
                .detectors
                .iter()
                .map(|d| fingerprint(&spec.name, d.detector.kind().name(), labels))
                .collect::<String>(),
        }
    }

    pub fn fingerprints(&self) -> impl Iterator<Item = &str> {
        // Fingerprints are ASCII hex, so every 16-byte chunk is a char boundary.
        (0..self.fingerprints.len() / FINGERPRINT_LEN).filter_map(|i| {
            self.fingerprints
                .get(i * FINGERPRINT_LEN..(i + 1) * FINGERPRINT_LEN)
        })
    }
}

/// Update each metric's dispersion from one clean bin: for a negative binomial,
/// E[(x - μ)² - x] = φ μ², so ((x - μ)² - x) / μ² estimates φ.
pub fn learn_dispersion(d: &mut Dispersion, e: &Expected, c: Counts) {
    fn one(phi: &mut f64, mean: f64, x: u64) {
        if mean < 2.0 {
            return;
        }
        let x = x as f64;
        let z = ((x - mean).powi(2) - x) / (mean * mean);
        *phi = (*phi + DISPERSION_RATE * (z - *phi)).clamp(0.01, 1.0);
    }
    one(&mut d.total, e.total, c.total);
    one(&mut d.success, e.success, c.success);
    one(&mut d.failure, e.failure, c.failure);
}

#[cfg(test)]
mod tests {
    use crate::alert::fingerprint;
    use crate::pipeline::testing::rule;
    use crate::pipeline::Pipeline;
    use crate::series::Labels;

    #[test]
    fn fingerprints_are_one_per_detector() {
        let p = Pipeline::new(vec![rule()]);
        let r = &p.rules[0];
        let s = r.new_series(&Labels::new());
        let fps: Vec<&str> = s.fingerprints().collect();
        assert_eq!(fps.len(), r.spec.detectors.len());
        for (fp, d) in fps.iter().zip(&r.spec.detectors) {
            assert_eq!(
                *fp,
                fingerprint("t", d.detector.kind().name(), &Labels::new())
            );
        }
    }
}
