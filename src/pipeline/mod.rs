//! The pipeline: binned counts in, alerts out. The same code serves the backtest and
//! the daemon, whichever source fed it.
//!
//! ```text
//!   source ──observe(rule, bin, labels, counts)──▶ pending bins
//!          ──close_through(rule, bin)──▶ per series: baseline → detectors → lifecycle ──▶ alerts
//! ```
//!
//! Counts are absolute: observing a bin again replaces what was there, so a source that
//! re-reads recent bins (late logs) revises them without double counting. A bin closes
//! once the source says it is final; every series the rule knows is evaluated for it,
//! with zero counts where nothing arrived — silence is data too. A bin the source could
//! not read is marked unknown instead: it teaches nothing and judges nothing.
//!
//! Tools that look inside (`backtest --report`, `--suggest`) pass an [`Observer`] to
//! [`Pipeline::apply_observed`] and see every series' every evaluated bin; the daemon and
//! the plain backtest pass none and pay nothing for it.

mod cardinality;
pub mod classify;
mod engine;
pub mod lifecycle;
mod series_state;
mod storm;
mod story;

use crate::alert::Alert;
use crate::detect::{BinContext, Finding};
use crate::rule::RuleSpec;
use crate::series::{BinRecord, Counts, Labels, Update};
use engine::RuleEngine;
use lifecycle::{Lifecycle, Transition};

/// How far one rule's warm-up got: nothing is judged before `warm_from_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmUp {
    pub rule: String,
    /// The start of the rule's first bin, `None` when it saw nothing.
    pub first_ms: Option<i64>,
    /// The start of the first bin judged (first bin + the rule's `warmup`).
    pub warm_from_ms: Option<i64>,
}

/// Counters for summaries and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PipelineStats {
    pub bins_closed: u64,
    pub series_bins_evaluated: u64,
    pub unknown_bins: u64,
    pub revisions: u64,
}

/// One detector's part of an evaluated bin: its finding (`None`: it could not judge the
/// bin) and what the lifecycle made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub finding: Option<Finding>,
    pub transition: Transition,
}

/// Sees what the pipeline decided, series by series and bin by bin.
pub trait Observer {
    /// Called once per series for every bin evaluated. `ctx` is what the detectors saw
    /// (counts, baseline expectation, history); `verdicts` follow the rule's detector
    /// order.
    fn series_bin(
        &mut self,
        rule: usize,
        labels: &Labels,
        ctx: &BinContext<'_>,
        verdicts: &[Verdict],
    );

    /// Forget everything seen so far: the replay starts over (a backtest that found its
    /// input out of order replays it again, sorted).
    fn reset(&mut self) {}
}

pub struct Pipeline {
    rules: Vec<RuleEngine>,
    lifecycle: Lifecycle,
    story: story::Story,
    stats: PipelineStats,
}

impl Pipeline {
    pub fn new(specs: Vec<RuleSpec>) -> Pipeline {
        let rules = specs.into_iter().map(RuleEngine::new).collect();
        Pipeline {
            rules,
            lifecycle: Lifecycle::default(),
            story: story::Story::default(),
            stats: PipelineStats::default(),
        }
    }

    pub fn rules(&self) -> impl Iterator<Item = &RuleSpec> {
        self.rules.iter().map(|r| &r.spec)
    }

    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Each rule's warm-up: from when its bins are judged (said out loud by the backtest
    /// summary; the daemon logs it as it happens).
    pub fn warmup(&self) -> Vec<WarmUp> {
        self.rules
            .iter()
            .map(|r| {
                let bin_ms = r.spec.bin_ms();
                WarmUp {
                    rule: r.spec.name.clone(),
                    first_ms: r.first_bin.map(|b| b * bin_ms),
                    warm_from_ms: r
                        .first_bin
                        .map(|b| (b + r.spec.warmup_bins() as i64) * bin_ms),
                }
            })
            .collect()
    }

    /// The next bin `rule` will close, if it has seen anything.
    pub fn next_bin(&self, rule: usize) -> Option<i64> {
        self.rules.get(rule).and_then(|r| r.next_bin)
    }

    /// Apply one update from a source, appending any alerts to `out`.
    pub fn apply(&mut self, update: Update, out: &mut Vec<Alert>) {
        self.apply_inner(update, out, None);
    }

    /// [`Pipeline::apply`], showing every evaluated series-bin to `observer`.
    pub fn apply_observed(
        &mut self,
        update: Update,
        out: &mut Vec<Alert>,
        observer: &mut dyn Observer,
    ) {
        self.apply_inner(update, out, Some(observer));
    }

    fn apply_inner(
        &mut self,
        update: Update,
        out: &mut Vec<Alert>,
        observer: Option<&mut (dyn Observer + '_)>,
    ) {
        match update {
            Update::Observe {
                rule,
                bin,
                labels,
                counts,
            } => self.observe(rule, bin, labels, counts),
            Update::Unknown { rule, bin } => self.mark_unknown(rule, bin),
            Update::Close { rule, end_bin } => {
                self.close_through_inner(rule, end_bin, out, observer)
            }
            Update::Skip { rule, end_bin } => self.skip_to(rule, end_bin, out, observer),
        }
    }

    /// Record the absolute counts of one series in one bin (replacing earlier counts).
    pub fn observe(&mut self, rule: usize, bin: i64, labels: Labels, counts: Counts) {
        let Some(r) = self.rules.get_mut(rule) else {
            return;
        };
        if r.first_bin.is_none() {
            let until = (bin + r.spec.warmup_bins() as i64) * r.spec.bin_ms();
            tracing::info!(
                rule = %r.spec.name,
                judged_from = %crate::alert::rfc3339(until),
                "warming up: this rule's bins are learned, not judged, until then"
            );
        }
        r.first_bin = Some(r.first_bin.map_or(bin, |f| f.min(bin)));
        if r.next_bin.is_none() {
            r.next_bin = Some(bin);
        }
        if r.next_bin.is_some_and(|next| bin < next) {
            // A revision of a closed bin: correct the history the baseline learns from.
            self.stats.revisions += 1;
            let labels = r.cap_series(labels);
            if let Some(s) = r.series.get_mut(&labels) {
                let old = s.history.get(bin).copied().unwrap_or_default();
                let mut rec = BinRecord::from_counts(counts, bin, r.spec.bin_ms());
                rec.anomalous = old.anomalous;
                rec.seasonal_total = old.seasonal_total;
                rec.expected_total = old.expected_total;
                rec.expected_failure = old.expected_failure;
                s.history.push(bin, rec);
            }
            return;
        }
        r.unknown.remove(&bin);
        r.pending.entry(bin).or_default().insert(labels, counts);
    }

    /// The source could not read `bin`: it stays unknown unless observed later.
    pub fn mark_unknown(&mut self, rule: usize, bin: i64) {
        if let Some(r) = self.rules.get_mut(rule) {
            if r.next_bin.is_none_or(|next| bin >= next) {
                if r.next_bin.is_none() {
                    r.next_bin = Some(bin);
                }
                r.pending.remove(&bin);
                r.unknown.insert(bin);
            }
        }
    }

    /// Close every bin of `rule` before `end_bin`, appending alerts to `out`.
    pub fn close_through(&mut self, rule: usize, end_bin: i64, out: &mut Vec<Alert>) {
        self.close_through_inner(rule, end_bin, out, None);
    }

    fn close_through_inner(
        &mut self,
        rule: usize,
        end_bin: i64,
        out: &mut Vec<Alert>,
        mut observer: Option<&mut (dyn Observer + '_)>,
    ) {
        let Some(r) = self.rules.get_mut(rule) else {
            return;
        };
        if r.next_bin.is_none() && r.spec.split_by.is_none() && end_bin > i64::MIN {
            // A rule over totals told to close before it saw anything: its series
            // starts now, with zeros (see `RuleEngine::close_bin`).
            r.next_bin = Some(end_bin - 1);
            r.first_bin = Some(end_bin - 1);
        }
        let Some(mut bin) = r.next_bin else { return };
        while bin < end_bin {
            if r.unknown.remove(&bin) {
                r.pending.remove(&bin);
                for s in r.series.values_mut() {
                    s.history.push(bin, BinRecord::default());
                }
                self.stats.unknown_bins += 1;
            } else {
                let observed = r.pending.remove(&bin).unwrap_or_default();
                let observer = observer.as_deref_mut().map(|o| (rule, o));
                self.stats.series_bins_evaluated += r.close_bin(
                    bin,
                    observed,
                    &mut self.lifecycle,
                    &mut self.story,
                    out,
                    observer,
                ) as u64;
            }
            self.stats.bins_closed += 1;
            bin += 1;
            r.next_bin = Some(bin);
        }
    }

    /// [`Update::Skip`]: empty bins before `end_bin` become unknown in one step (each
    /// series' history takes the gap at once); observed bins in between close as usual.
    fn skip_to(
        &mut self,
        rule: usize,
        end_bin: i64,
        out: &mut Vec<Alert>,
        mut observer: Option<&mut (dyn Observer + '_)>,
    ) {
        loop {
            let Some(r) = self.rules.get_mut(rule) else {
                return;
            };
            let Some(next) = r.next_bin else {
                return;
            };
            if next >= end_bin {
                return;
            }
            let stop = r
                .pending
                .range(next..)
                .next()
                .map(|(b, _)| *b)
                .into_iter()
                .chain(r.unknown.range(next..).next().copied())
                .min()
                .unwrap_or(end_bin)
                .min(end_bin);
            if stop > next {
                for s in r.series.values_mut() {
                    s.history.push(stop - 1, BinRecord::default());
                }
                let n = (stop - next) as u64;
                self.stats.unknown_bins += n;
                self.stats.bins_closed += n;
                r.next_bin = Some(stop);
            }
            if stop < end_bin {
                self.close_through_inner(rule, stop + 1, out, observer.as_deref_mut());
            }
        }
    }

    /// Close everything observed so far (end of a backtest).
    pub fn close_all(&mut self, out: &mut Vec<Alert>) {
        for i in 0..self.rules.len() {
            let last = self.rules[i]
                .pending
                .keys()
                .next_back()
                .copied()
                .into_iter()
                .chain(self.rules[i].unknown.iter().next_back().copied())
                .max();
            if let Some(last) = last {
                self.close_through(i, last + 1, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{fingerprint, Status};
    use crate::detect::DetectorKind;
    use crate::rule::{OTHER_SERIES, SOURCES_SERIES};

    fn rule() -> RuleSpec {
        let mut r = RuleSpec::named("t");
        r.warmup = std::time::Duration::from_secs(86_400);
        r
    }

    fn c(total: u64, failure: u64) -> Counts {
        Counts {
            total,
            success: total - failure,
            failure,
            ..Counts::default()
        }
    }

    /// Feed `days` of steady traffic (100 attempts, 5 failures per bin).
    fn steady(p: &mut Pipeline, bins: std::ops::Range<i64>, out: &mut Vec<Alert>) {
        for b in bins {
            p.observe(0, b, Labels::new(), c(100, 5));
            p.close_through(0, b + 1, out);
        }
    }

    #[test]
    fn steady_traffic_is_quiet_and_an_attack_fires_then_resolves() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..(3 * 96), &mut out);
        assert!(out.is_empty(), "{out:#?}");
        let b = 3 * 96;
        p.observe(0, b, Labels::new(), c(1100, 1000));
        p.close_through(0, b + 1, &mut out);
        let fired: Vec<_> = out.iter().map(|a| a.detector.name()).collect();
        assert!(fired.contains(&"failure_spike"), "{fired:?}");
        assert!(out.iter().all(|a| a.status == Status::Firing));
        out.clear();
        steady(&mut p, (b + 1)..(b + 4), &mut out);
        assert!(
            out.iter()
                .any(|a| a.status == Status::Resolved && a.detector == "failure_spike"),
            "{out:#?}"
        );
    }

    #[test]
    fn silence_is_zero_filled_and_flatlines() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..(3 * 96), &mut out);
        p.close_through(0, 3 * 96 + 4, &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].detector, DetectorKind::Flatline.name());
    }

    #[test]
    fn unknown_bins_do_not_flatline() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..(3 * 96), &mut out);
        for b in (3 * 96)..(3 * 96 + 8) {
            p.mark_unknown(0, b);
        }
        p.close_through(0, 3 * 96 + 8, &mut out);
        assert!(out.is_empty(), "{out:#?}");
        assert_eq!(p.stats().unknown_bins, 8);
    }

    #[test]
    fn nothing_fires_during_warmup() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..10, &mut out);
        p.observe(0, 10, Labels::new(), c(5000, 4900));
        p.close_through(0, 11, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_long_attack_is_not_learned_as_normal() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..(3 * 96), &mut out);
        // Twelve hours of attack: it must keep firing, never resolve.
        for b in (3 * 96)..(3 * 96 + 48) {
            p.observe(0, b, Labels::new(), c(1100, 1000));
            p.close_through(0, b + 1, &mut out);
        }
        let spike: Vec<_> = out
            .iter()
            .filter(|a| a.detector == "failure_spike")
            .collect();
        assert!(spike.iter().any(|a| a.status == Status::Firing), "{out:#?}");
        assert!(
            spike.iter().all(|a| a.status == Status::Firing),
            "resolved mid-attack: {spike:#?}"
        );
    }

    #[test]
    fn revisions_replace_counts() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..10, &mut out);
        p.observe(0, 5, Labels::new(), c(120, 5));
        assert_eq!(p.stats().revisions, 1);
        let s = p.rules[0].series.get(&Labels::new()).unwrap();
        assert_eq!(s.history.get(5).unwrap().total, 120);
    }

    /// Records what an observer is shown.
    #[derive(Default)]
    struct Seen {
        series_bins: usize,
        fires: Vec<(usize, i64)>,
        judged: usize,
    }

    impl Observer for Seen {
        fn series_bin(
            &mut self,
            _rule: usize,
            _labels: &Labels,
            ctx: &BinContext<'_>,
            verdicts: &[Verdict],
        ) {
            self.series_bins += 1;
            for (i, v) in verdicts.iter().enumerate() {
                self.judged += usize::from(v.finding.is_some());
                if matches!(v.transition, Transition::Fire { .. }) {
                    self.fires.push((i, ctx.bin));
                }
            }
        }
    }

    #[test]
    fn an_observer_sees_every_evaluated_bin_and_the_same_decisions() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        let mut seen = Seen::default();
        let attack = 3 * 96;
        for b in 0..(attack + 4) {
            let counts = if b == attack {
                c(1100, 1000)
            } else {
                c(100, 5)
            };
            p.apply_observed(
                Update::Observe {
                    rule: 0,
                    bin: b,
                    labels: Labels::new(),
                    counts,
                },
                &mut out,
                &mut seen,
            );
            p.apply_observed(
                Update::Close {
                    rule: 0,
                    end_bin: b + 1,
                },
                &mut out,
                &mut seen,
            );
        }
        assert_eq!(seen.series_bins as u64, p.stats().series_bins_evaluated);
        assert!(seen.judged > 0);
        let fired: Vec<_> = out.iter().filter(|a| a.status == Status::Firing).collect();
        assert_eq!(seen.fires.len(), fired.len(), "{out:#?}");
        assert!(seen.fires.iter().all(|&(_, bin)| bin == attack));
    }

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

    #[test]
    fn a_storm_of_sources_pages_a_few_times_not_once_per_source() {
        let mut r = rule();
        r.split_by = Some("client.ipAddress".into());
        r.detectors = vec![crate::detect::DetectorSpec::default_for(
            DetectorKind::FailureSpike,
        )];
        let mut p = Pipeline::new(vec![r]);
        let mut out = Vec::new();
        let ip = |i: usize| {
            let mut l = Labels::new();
            l.insert("client.ipAddress".into(), format!("203.0.113.{i}"));
            l
        };
        // A day of one quiet source, then 40 sources fail hard in one bin, then stop.
        for b in 0..100 {
            p.observe(0, b, ip(0), c(4, 0));
            p.close_through(0, b + 1, &mut out);
        }
        for i in 1..=40 {
            p.observe(0, 100, ip(i), c(60, 60));
        }
        p.close_through(0, 101, &mut out);
        let firing: Vec<_> = out.iter().filter(|a| a.status == Status::Firing).collect();
        assert_eq!(firing.len(), 3, "{firing:#?}");
        assert!(
            firing.iter().all(|a| a.summary.contains("37 more sources")),
            "{:?}",
            firing[0].summary
        );
        for b in 101..104 {
            p.close_through(0, b + 1, &mut out);
        }
        let resolved = out.iter().filter(|a| a.status == Status::Resolved).count();
        assert_eq!(resolved, 3, "only what paged resolves");
    }

    #[test]
    fn split_series_are_capped() {
        let mut r = rule();
        r.split_by = Some("client.ipAddress".into());
        r.max_series = 2;
        let mut p = Pipeline::new(vec![r]);
        let mut out = Vec::new();
        for ip in ["a", "b", "c", "d"] {
            let mut l = Labels::new();
            l.insert("client.ipAddress".into(), ip.into());
            p.observe(0, 0, l, c(1, 1));
        }
        p.close_through(0, 1, &mut out);
        assert_eq!(p.rules[0].series.len(), 3);
        let mut other = Labels::new();
        other.insert("client.ipAddress".into(), OTHER_SERIES.into());
        let s = p.rules[0].series.get(&other).unwrap();
        assert_eq!(s.history.get(0).unwrap().total, 2);
    }

    fn ip(v: &str) -> Labels {
        [("client.ipAddress".to_string(), v.to_string())].into()
    }

    #[test]
    fn top_k_keeps_the_most_failing_sources_and_counts_the_failing_only_ones() {
        let mut r = RuleSpec::password_spraying();
        r.top_k = Some(2);
        let mut p = Pipeline::new(vec![r]);
        let mut out = Vec::new();
        for (v, total, failure) in [("a", 5, 5), ("b", 4, 3), ("c", 1, 1), ("d", 4, 0)] {
            p.observe(0, 0, ip(v), c(total, failure));
        }
        p.close_through(0, 1, &mut out);
        let series = &p.rules[0].series;
        let mut names: Vec<&str> = series
            .keys()
            .map(|l| l["client.ipAddress"].as_str())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "(failing-only sources)",
                "(other)",
                "(slow sprayers)",
                "a",
                "b"
            ]
        );
        let other = series[&ip(OTHER_SERIES)].history.get(0).unwrap().counts();
        assert_eq!((other.total, other.failure), (5, 1));
        // a and c failed without a success; b and d succeeded.
        let sources = series[&ip(SOURCES_SERIES)].history.get(0).unwrap().counts();
        assert_eq!((sources.total, sources.success, sources.failure), (4, 2, 2));
    }

    #[test]
    fn idle_split_series_leave_once_their_history_is_all_zeros() {
        let r = RuleSpec::password_spraying();
        let window = r.window_bins() as i64;
        let mut p = Pipeline::new(vec![r]);
        let mut out = Vec::new();
        p.observe(0, 0, ip("a"), c(1, 1));
        for b in 1..(window + 3) {
            p.observe(0, b, ip("b"), c(1, 0));
            p.close_through(0, b + 1, &mut out);
        }
        let series = &p.rules[0].series;
        assert!(!series.contains_key(&ip("a")));
        assert!(series.contains_key(&ip("b")));
    }
}
