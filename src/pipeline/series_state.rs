//! One series' memory: its history, learned dispersion and alert fingerprints.

use crate::alert::fingerprint;
use crate::detect::baseline::Expected;
use crate::detect::Dispersion;
use crate::rule::RuleSpec;
use crate::series::{BinRecord, Counts, History, Labels};
use crate::stats::dispersion;

const INITIAL_DISPERSION: Dispersion = Dispersion {
    total: 0.05,
    success: 0.05,
    failure: 0.1,
    step: 0.05,
    busy_step: 0.05,
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
    /// The series' alert fingerprints, computed when first needed.
    pub fingerprints: Fingerprints,
    /// The lifecycle may hold state for one of the fingerprints: true until checked,
    /// and again whenever a detector finds a bin anomalous (the only way state is made).
    pub may_hold_alert: bool,
    /// The bins from this one on (to the last one closed) were empty and are not taught
    /// yet (see `pipeline::idle`).
    pub idle_from: Option<i64>,
}

impl SeriesState {
    pub fn new(spec: &RuleSpec) -> SeriesState {
        SeriesState::keeping(spec.history_bins())
    }

    /// A series whose history holds `bins` bins.
    pub fn keeping(bins: usize) -> SeriesState {
        SeriesState {
            history: History::new(bins),
            dispersion: INITIAL_DISPERSION,
            anomalous_run: 0,
            last_active_bin: 0,
            evidence_since: i64::MIN,
            fingerprints: Fingerprints::default(),
            may_hold_alert: true,
            idle_from: None,
        }
    }
}

/// One fingerprint per detector of a series, in the rule's detector order, back to back
/// in one string (each is 16 hex digits): one allocation per series instead of one per
/// detector, which matters with thousands of split series. Empty until first asked for:
/// most split series (an address seen once or twice) never page and never need them.
#[derive(Debug, Clone, Default)]
pub struct Fingerprints(String);

impl Fingerprints {
    /// All of them, for the series of rule `spec` named by `labels`.
    pub fn all(&mut self, spec: &RuleSpec, labels: &Labels) -> impl Iterator<Item = &str> {
        if self.0.is_empty() {
            self.0 = spec
                .detectors
                .iter()
                .map(|d| fingerprint(&spec.name, d.detector.kind().name(), labels))
                .collect::<String>();
        }
        // Fingerprints are ASCII hex, so every 16-byte chunk is a char boundary.
        let all = &self.0;
        (0..all.len() / FINGERPRINT_LEN)
            .filter_map(move |i| all.get(i * FINGERPRINT_LEN..(i + 1) * FINGERPRINT_LEN))
    }

    /// The fingerprint of detector `i` (empty if the rule has no such detector).
    pub fn get(&mut self, spec: &RuleSpec, labels: &Labels, i: usize) -> &str {
        self.all(spec, labels).nth(i).unwrap_or_default()
    }
}

/// Learn each metric's dispersion from one clean bin `c` that expected `e`, and the
/// step dispersion from it and the clean bin before it, `prev` (see
/// [`crate::stats::dispersion`]).
pub fn learn_dispersion(d: &mut Dispersion, e: &Expected, c: Counts, prev: Option<&BinRecord>) {
    d.total = dispersion::learn(d.total, e.total, c.total);
    d.success = dispersion::learn(d.success, e.success, c.success);
    d.failure = dispersion::learn(d.failure, e.failure, c.failure);
    if let Some(p) = prev.filter(|p| p.is_clean() && p.seasonal_total > 0.0) {
        let predicted = e.seasonal_total * f64::from(p.total) / f64::from(p.seasonal_total);
        d.step = dispersion::learn_step(d.step, e.total, predicted, c.total);
        d.busy_step = dispersion::learn_busy_step(d.busy_step, e.total, predicted, c.total);
    }
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
        let mut s = r.new_series();
        let fps: Vec<&str> = s.fingerprints.all(&r.spec, &Labels::new()).collect();
        assert_eq!(fps.len(), r.spec.detectors.len());
        for (fp, d) in fps.iter().zip(&r.spec.detectors) {
            assert_eq!(
                *fp,
                fingerprint("t", d.detector.kind().name(), &Labels::new())
            );
        }
    }

    /// What a series keeps reaches the oldest bin a verdict reads: on the Monday after
    /// the clocks went back, the copies of the longest verdict's bins two weeks back at
    /// the same local time (an hour before the bare window). A split rule's hours-long
    /// window (thousands of series) keeps exactly its window.
    #[test]
    fn a_seasonal_history_reaches_the_oldest_bin_a_verdict_reads() {
        use crate::rule::RuleSpec;
        let mut sign_ins = RuleSpec::sign_ins();
        sign_ins.timezone = Some(chrono_tz::America::New_York);
        let bin_ms = sign_ins.bin_ms();
        // Monday 2 November 2026 09:15 New York (EST), the day after the change.
        let bin = chrono::DateTime::parse_from_rfc3339("2026-11-02T14:15:00Z")
            .unwrap() // ok: a test
            .timestamp_millis()
            / bin_ms;
        let week = 7 * 86_400_000 / bin_ms;
        let weeks = sign_ins.window_bins() as i64 / week;
        let reach = (sign_ins.detectors.iter())
            .map(|d| i64::from(d.detector.window_bins()))
            .max()
            .unwrap_or(1);
        let oldest_read = sign_ins.local_time().same_local_time(bin, weeks * week) - (reach - 1);
        // The history after this bin was taught holds bins from `bin + 1 - capacity` on.
        let holds = |capacity: usize| bin + 1 - capacity as i64 <= oldest_read;
        assert!(holds(sign_ins.history_bins()));
        assert!(
            !holds(sign_ins.window_bins()),
            "the bare window falls short"
        );
        let spraying = RuleSpec::builtin()
            .into_iter()
            .find(|r| r.split_by.is_some())
            .unwrap(); // ok: a test
        assert_eq!(spraying.history_bins(), spraying.window_bins().max(8));
        // Its failing-only count keeps days, and a restart loads them.
        assert!(spraying.sources_history_bins() > 14 * 86_400_000 / bin_ms as usize);
        assert_eq!(
            spraying.history_window(),
            spraying.bin * spraying.sources_history_bins() as u32
        );
    }
}
