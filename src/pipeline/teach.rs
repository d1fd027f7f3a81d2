//! What a series learns from each bin it is judged on: the bin's record (a zero one when
//! it saw nothing: silence is data), what the baseline expected of it, and the lessons
//! taught afterwards (the expectation kept in the record, the learned dispersion, the
//! `(slow sprayers)` count's long-run level).

use super::series_state::{learn_dispersion, SeriesState};
use crate::detect::baseline::{Baseline, Basis, Expected, LocalTime, Seasonal};
use crate::detect::long_run::LongRunLevel;
use crate::detect::SeriesKind;
use crate::rule::RuleSpec;
use crate::series::{BinRecord, Counts, History};

/// A rule's baselines: its series' own, and the `(failing-only sources)` count's over
/// days with its season (see `detect::failing_sources`), where a split rule's sources
/// keep hours.
#[derive(Debug, Clone)]
pub(super) struct Baselines {
    series: Seasonal,
    sources: Seasonal,
}

impl Baselines {
    pub(super) fn new(spec: &RuleSpec) -> Baselines {
        let local = spec.local_time();
        Baselines {
            series: Seasonal::new(spec.bin_ms(), spec.window_bins()).with_local_time(local),
            sources: Seasonal::new(spec.bin_ms(), spec.sources_window_bins())
                .with_local_time(local),
        }
    }

    /// The baseline of a series of `kind`.
    pub(super) fn of(&self, kind: SeriesKind) -> &Seasonal {
        if kind.sources {
            &self.sources
        } else {
            &self.series
        }
    }
}

/// What is fixed for every series of a rule in one bin.
pub(super) struct BinFacts {
    pub(super) bin: i64,
    pub(super) bin_ms: i64,
    /// The rule's bins in the organisation's local time.
    pub(super) local: LocalTime,
    pub(super) rule_warm: bool,
    pub(super) split: bool,
    /// Consecutive anomalous bins after which a shift counts as the new normal.
    pub(super) idle_limit: i64,
    /// A split series idle this long leaves.
    pub(super) evict_after: i64,
    /// A rule over totals: its last event of this bin, if any (see `Story::recast_silence`).
    pub(super) totals_last_ms: Option<i64>,
}

impl BinFacts {
    /// The facts of bin `bin` of rule `spec`, first observed in `first_bin`.
    pub(super) fn at(
        spec: &RuleSpec,
        first_bin: Option<i64>,
        bin: i64,
        totals_last_ms: Option<i64>,
    ) -> BinFacts {
        let bin_ms = spec.bin_ms();
        let idle_limit = (86_400_000 / bin_ms).max(1);
        BinFacts {
            bin,
            bin_ms,
            local: spec.local_time(),
            rule_warm: first_bin.is_some_and(|f| (bin - f) as usize >= spec.warmup_bins()),
            split: spec.split_by.is_some(),
            idle_limit,
            // A split series idle for longer than its history holds nothing but zeros:
            // it goes, so the series a rule keeps are the sources active in its window
            // (and `max_series` is rarely reached).
            evict_after: idle_limit.min(spec.window_bins() as i64),
            totals_last_ms,
        }
    }
}

/// This bin's record of a series; a series that saw nothing this bin gets a zero bin
/// (silence is data).
pub(super) fn this_bin(s: &mut SeriesState, facts: &BinFacts) -> BinRecord {
    let bin = facts.bin;
    match s.history.get(bin) {
        Some(r) if s.history.next_bin() == Some(bin + 1) => *r,
        _ => {
            let zero = BinRecord::from_counts(Counts::default(), bin, facts.bin_ms);
            s.history.push(bin, zero);
            zero
        }
    }
}

/// The `(slow sprayers)` count's expectation, once the rule is warm: its level learned
/// over days (`failure`), once a day of bins was learned (0 until then: the detector's
/// `null_sources` holds).
fn sprayers_expectation(level: &LongRunLevel, facts: &BinFacts) -> Option<Expected> {
    facts.rule_warm.then(|| Expected {
        total: 0.0,
        success: 0.0,
        failure: level.level(facts.idle_limit as u64).unwrap_or(0.0),
        seasonal_total: 0.0,
        basis: Basis::RecentLevel,
        samples: 0,
    })
}

/// Whether no bin of the window (this one included, once taught) was flagged: the
/// `(slow sprayers)` count holds an attack's sources for the whole window after it, in
/// bins nobody flags (no sprayer tries any more), which must not teach its level. A
/// shift that lasts a day is no longer flagged (see `teach`), so a background that
/// holds such sources all the time is learned.
fn clean_window(history: &History) -> bool {
    history.last(history.len()).all(|r| !r.anomalous)
}

/// What the baseline expects of a series in this bin: the seasonal baseline, or for
/// the `(slow sprayers)` count its long-run `level`.
pub(super) fn expectation(
    baseline: &Seasonal,
    level: Option<&LongRunLevel>,
    s: &SeriesState,
    facts: &BinFacts,
) -> Option<Expected> {
    if let Some(level) = level {
        return sprayers_expectation(level, facts);
    }
    if !facts.rule_warm {
        return None;
    }
    baseline.expected(&s.history, facts.bin).or(if facts.split {
        // A split value never seen before (a new IP): expect next to nothing.
        Some(Expected {
            total: 0.0,
            success: 0.0,
            failure: 0.0,
            seasonal_total: 0.0,
            basis: Basis::RecentLevel,
            samples: 0,
        })
    } else {
        None
    })
}

/// Teach the baseline: record what was expected, flag anomalies, learn the noise (and,
/// for the `(slow sprayers)` count, its long-run `level` from clean windows).
pub(super) fn teach(
    s: &mut SeriesState,
    mut rec: BinRecord,
    expected: Option<Expected>,
    any_anomalous: bool,
    facts: &BinFacts,
    level: Option<&mut LongRunLevel>,
) {
    let bin = facts.bin;
    s.anomalous_run = if any_anomalous {
        s.anomalous_run + 1
    } else {
        0
    };
    rec.seasonal_total = expected.map_or(0.0, |e| e.seasonal_total as f32);
    rec.expected_total = expected.map_or(0.0, |e| e.total as f32);
    rec.expected_failure = expected.map_or(-1.0, |e| e.failure as f32);
    rec.anomalous = any_anomalous && (s.anomalous_run as i64) < facts.idle_limit;
    let prev = s.history.get(bin - 1).copied();
    s.history.push(bin, rec);
    if let (Some(e), false) = (expected, rec.anomalous) {
        learn_dispersion(&mut s.dispersion, &e, rec.counts(), prev.as_ref());
    }
    if let Some(level) = level.filter(|_| clean_window(&s.history)) {
        level.learn(rec.failure.into());
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::{c, rule, steady};
    use crate::pipeline::Pipeline;
    use crate::series::{BinIndex, Counts, Labels, RuleId};

    /// A help-desk reset wave — twelve times the failures, people failing twice each,
    /// most sign-ins still succeeding — is beyond `failure_spike`'s p-value, and its
    /// guards let it pass (an attack brings about an account per failure); it must not
    /// teach the baseline or the noise.
    #[test]
    fn an_extreme_bin_a_guard_let_pass_is_not_learned() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        let wave = 3 * 96;
        steady(&mut p, 0..wave, &mut out);
        let before = p.rules[0].series.get(&Labels::new()).map(|s| s.dispersion);
        let counts = Counts {
            failed_ips: 30,
            failed_users: 30,
            ..c(130, 60)
        };
        p.observe(RuleId(0), BinIndex(wave), Labels::new(), counts);
        p.close_through(RuleId(0), BinIndex(wave + 1), &mut out);
        assert!(out.is_empty(), "nothing pages: {out:#?}");
        let s = p.rules[0].series.get(&Labels::new()).expect("the series");
        let rec = s.history.get(wave).expect("the wave's bin");
        assert_eq!(Some(s.dispersion), before, "the noise learned nothing");
        assert!(rec.anomalous, "kept out of the baseline: {rec:?}");
    }
}
