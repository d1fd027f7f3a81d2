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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::alert::{fingerprint, Alert, AlertInput, Status};
use crate::baseline::{Baseline, Basis, Expected, Seasonal};
use crate::detect::{BinContext, DetectorKind, Dispersion, Finding};
use crate::kind::{self, AlertKind};
use crate::lifecycle::{Lifecycle, Transition};
use crate::rule::{RuleSpec, OTHER_SERIES, SOURCES_SERIES};
use crate::series::{BinRecord, Counts, History, Labels};

/// How fast the learned dispersion follows new evidence (per bin).
const DISPERSION_RATE: f64 = 0.05;
const INITIAL_DISPERSION: Dispersion = Dispersion {
    total: 0.05,
    success: 0.05,
    failure: 0.1,
};

/// One series' memory.
#[derive(Debug, Clone)]
struct SeriesState {
    history: History,
    dispersion: Dispersion,
    /// Consecutive anomalous bins; a shift that lasts a day becomes the new normal.
    anomalous_run: u32,
    last_active_bin: i64,
    /// One fingerprint per detector, in the rule's detector order, back to back in one
    /// string (each is 16 hex digits): one allocation per series instead of one per
    /// detector, which matters with thousands of split series.
    fingerprints: String,
}

impl SeriesState {
    fn fingerprints(&self) -> impl Iterator<Item = &str> {
        // Fingerprints are ASCII hex, so every 16-byte chunk is a char boundary.
        (0..self.fingerprints.len() / FINGERPRINT_LEN).filter_map(|i| {
            self.fingerprints
                .get(i * FINGERPRINT_LEN..(i + 1) * FINGERPRINT_LEN)
        })
    }
}

/// The length of an alert fingerprint (see [`fingerprint`]).
const FINGERPRINT_LEN: usize = 16;

struct RuleEngine {
    spec: RuleSpec,
    baseline: Seasonal,
    series: HashMap<Labels, SeriesState>,
    pending: BTreeMap<i64, HashMap<Labels, Counts>>,
    unknown: BTreeSet<i64>,
    /// The next bin to close; `None` until the first observation.
    next_bin: Option<i64>,
    first_bin: Option<i64>,
    /// What each firing alert was classified as when it fired, by fingerprint, so its
    /// resolve notice carries the same kind.
    firing_kinds: HashMap<String, kind::Verdict>,
    /// Split series whose firing was held back as part of a storm (beyond
    /// `max_pages_per_hour`): their repeats and resolves are held back too.
    storm_held: HashSet<String>,
    /// Per detector: the bins of the split-series pages sent within the last hour.
    storm_pages: Vec<std::collections::VecDeque<i64>>,
}

/// A notice decided in the first pass over a bin's series, written in the second (once
/// it is known how many sources fired together).
struct Notice {
    labels: Labels,
    detector: usize,
    status: Status,
    started_ms: i64,
    finding: Finding,
    counts: Counts,
    expected: Option<Expected>,
}

/// Counters for summaries and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PipelineStats {
    pub bins_closed: u64,
    pub series_bins_evaluated: u64,
    pub unknown_bins: u64,
    pub revisions: u64,
}

/// What a source tells the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The absolute counts of one series in one bin.
    Observe {
        rule: usize,
        bin: i64,
        labels: Labels,
        counts: Counts,
    },
    /// The source could not read this bin.
    Unknown { rule: usize, bin: i64 },
    /// Every bin before `end_bin` is final: evaluate them.
    Close { rule: usize, end_bin: i64 },
    /// The bins before `end_bin` that hold no observation are a hole in the input (a
    /// replayed file that jumps ahead in time): they are unknown, like
    /// [`Update::Unknown`], and skipped in one step however many there are.
    Skip { rule: usize, end_bin: i64 },
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
    stats: PipelineStats,
}

impl Pipeline {
    pub fn new(specs: Vec<RuleSpec>) -> Pipeline {
        let rules = specs
            .into_iter()
            .map(|spec| RuleEngine {
                baseline: Seasonal::new(spec.bin_ms(), spec.window_bins()),
                spec,
                series: HashMap::new(),
                pending: BTreeMap::new(),
                unknown: BTreeSet::new(),
                next_bin: None,
                first_bin: None,
                firing_kinds: HashMap::new(),
                storm_held: HashSet::new(),
                storm_pages: Vec::new(),
            })
            .collect();
        Pipeline {
            rules,
            lifecycle: Lifecycle::default(),
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
                let mut rec = BinRecord::from_counts(counts);
                rec.anomalous = old.anomalous;
                rec.seasonal_total = old.seasonal_total;
                rec.expected_total = old.expected_total;
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
                self.stats.series_bins_evaluated +=
                    r.close_bin(bin, observed, &mut self.lifecycle, out, observer) as u64;
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

impl RuleEngine {
    /// With a `failing_sources` detector, the `(failing-only sources)` series' counts for
    /// this bin: addresses that only failed (`failure`), that succeeded (`success`), all
    /// of them (`total`), and the distinct users the failing-only ones tried.
    fn failing_sources(&self, observed: &HashMap<Labels, Counts>) -> Option<(Labels, Counts)> {
        let field = self.spec.split_by.as_ref()?;
        if !self
            .spec
            .detectors
            .iter()
            .any(|d| d.detector.kind() == DetectorKind::FailingSources)
        {
            return None;
        }
        let mut c = Counts::default();
        for counts in observed.values() {
            c.total += 1;
            if counts.success > 0 {
                c.success += 1;
            } else if counts.failure > 0 {
                c.failure += 1;
                c.failed_ips += 1;
                c.failed_users += counts.failed_users;
            }
        }
        let labels = [(field.clone(), SOURCES_SERIES.to_string())].into();
        Some((labels, c))
    }

    /// With `split_by`, values beyond `max_series` share one `(other)` series.
    fn cap_series(&self, labels: Labels) -> Labels {
        if self.spec.split_by.is_none()
            || labels.values().all(|v| v == SOURCES_SERIES)
            || self.series.len() < self.spec.max_series
            || self.series.contains_key(&labels)
        {
            return labels;
        }
        labels
            .into_keys()
            .map(|k| (k, OTHER_SERIES.to_string()))
            .collect()
    }

    fn new_series(&self, labels: &Labels) -> SeriesState {
        SeriesState {
            history: History::new(self.spec.window_bins().max(8)),
            dispersion: INITIAL_DISPERSION,
            anomalous_run: 0,
            last_active_bin: 0,
            fingerprints: self
                .spec
                .detectors
                .iter()
                .map(|d| fingerprint(&self.spec.name, d.detector.kind().name(), labels))
                .collect::<String>(),
        }
    }

    /// With `top_k`, keep the `top_k` split values with the most failures this bin (ties:
    /// fewer successes first, then by value, so the choice is deterministic) and merge the
    /// rest into `(other)`. Cardinality stays bounded however many addresses appear, and
    /// the sources worth watching — the failing ones — keep their own series.
    fn top_k(&self, observed: HashMap<Labels, Counts>) -> Vec<(Labels, Counts)> {
        let mut all: Vec<(Labels, Counts)> = observed.into_iter().collect();
        if self.spec.split_by.is_none() {
            return all;
        }
        // Most failing first, always: when `max_series` is reached, which values still
        // get a series of their own must not depend on hash order (the daemon and a
        // backtest decide alike), and the failing ones are the ones worth watching.
        all.sort_by(|(la, a), (lb, b)| {
            b.failure
                .cmp(&a.failure)
                .then(a.success.cmp(&b.success))
                .then_with(|| la.cmp(lb))
        });
        let Some(k) = self.spec.top_k.filter(|k| all.len() > *k) else {
            return all;
        };
        let rest = all.split_off(k);
        let mut other: Option<(Labels, Counts)> = None;
        for (labels, counts) in rest {
            match &mut other {
                Some((_, c)) => c.merge(&counts),
                None => {
                    let labels = labels
                        .into_keys()
                        .map(|key| (key, OTHER_SERIES.to_string()))
                        .collect();
                    other = Some((labels, counts));
                }
            }
        }
        all.extend(other);
        all
    }

    /// Evaluate every series for `bin`; returns how many series were evaluated.
    fn close_bin(
        &mut self,
        bin: i64,
        observed: HashMap<Labels, Counts>,
        lifecycle: &mut Lifecycle,
        out: &mut Vec<Alert>,
        mut observer: Option<(usize, &mut (dyn Observer + '_))>,
    ) -> usize {
        let sources = self.failing_sources(&observed);
        let mut observed = self.top_k(observed);
        observed.extend(sources);
        for (labels, counts) in observed {
            let labels = self.cap_series(labels);
            if !self.series.contains_key(&labels) {
                let s = self.new_series(&labels);
                self.series.insert(labels.clone(), s);
            }
            // Series start with an empty record for this bin; the loop below fills it.
            if let Some(s) = self.series.get_mut(&labels) {
                let mut counts = counts;
                // Sum when several values were merged into `(other)`.
                if let Some(prev) = s
                    .history
                    .get(bin)
                    .filter(|_| s.history.next_bin() == Some(bin + 1))
                {
                    counts.merge(&prev.counts());
                }
                let mut rec = BinRecord::from_counts(counts);
                rec.known = true;
                s.history.push(bin, rec);
                s.last_active_bin = bin;
            }
        }

        let bin_ms = self.spec.bin_ms();
        let bin_start_ms = bin * bin_ms;
        let rule_warm = self
            .first_bin
            .is_some_and(|f| (bin - f) as usize >= self.spec.warmup_bins());
        let split = self.spec.split_by.is_some();
        let idle_limit = (86_400_000 / bin_ms).max(1);
        // A split series idle for longer than its history holds nothing but zeros: it
        // goes, so the series a rule keeps are the sources active in its window (and
        // `max_series` is rarely reached).
        let evict_after = idle_limit.min(self.spec.window_bins() as i64);
        let mut evicted = Vec::new();
        let mut evaluated = 0;
        let mut notices: Vec<Notice> = Vec::new();
        // Per detector: how many series were anomalous in this bin.
        let mut anomalous_series = vec![0usize; self.spec.detectors.len()];
        // Filled only for an observer, and reused across series.
        let mut verdicts = Vec::new();

        for (labels, s) in self.series.iter_mut() {
            // Series that saw nothing this bin get a zero bin (silence is data).
            let rec = match s.history.get(bin) {
                Some(r) if s.history.next_bin() == Some(bin + 1) => *r,
                _ => {
                    let zero = BinRecord::from_counts(Counts::default());
                    s.history.push(bin, zero);
                    zero
                }
            };
            if split && bin - s.last_active_bin > evict_after {
                evicted.push(labels.clone());
                continue;
            }
            let counts = rec.counts();
            // The baseline looks at the history before this bin.
            let expected = if rule_warm {
                self.baseline.expect(&s.history, bin).or(if split {
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
            } else {
                None
            };
            let ctx = BinContext {
                counts,
                expected,
                dispersion: s.dispersion,
                history: &s.history,
                bin,
                bin_ms,
                aggregate: split
                    && labels
                        .values()
                        .all(|v| v == OTHER_SERIES || v == SOURCES_SERIES),
                sources: split && labels.values().all(|v| v == SOURCES_SERIES),
            };
            let mut any_anomalous = false;
            for (i, (spec, fp)) in self.spec.detectors.iter().zip(s.fingerprints()).enumerate() {
                let finding = spec.detector.evaluate(&ctx);
                let anomalous = finding.as_ref().is_some_and(|f| f.anomalous);
                any_anomalous |= anomalous;
                anomalous_series[i] += usize::from(anomalous);
                let transition = lifecycle.step(
                    fp,
                    &spec.fire,
                    bin_start_ms,
                    finding.as_ref().map(|f| f.anomalous),
                );
                if observer.is_some() {
                    verdicts.push(Verdict {
                        finding: finding.clone(),
                        transition,
                    });
                }
                let (status, started_ms) = match transition {
                    Transition::Quiet => continue,
                    Transition::Fire { started_ms } | Transition::Repeat { started_ms } => {
                        (Status::Firing, started_ms)
                    }
                    Transition::Resolve { started_ms } => (Status::Resolved, started_ms),
                };
                if let Some(finding) = finding {
                    notices.push(Notice {
                        labels: labels.clone(),
                        detector: i,
                        status,
                        started_ms,
                        finding,
                        counts,
                        expected,
                    });
                }
            }
            evaluated += 1;
            if let Some((rule, o)) = observer.as_mut() {
                o.series_bin(*rule, labels, &ctx, &verdicts);
                verdicts.clear();
            }

            // Teach the baseline: record what was expected, flag anomalies, learn noise.
            s.anomalous_run = if any_anomalous {
                s.anomalous_run + 1
            } else {
                0
            };
            let mut rec = rec;
            rec.seasonal_total = expected.map_or(0.0, |e| e.seasonal_total as f32);
            rec.expected_total = expected.map_or(0.0, |e| e.total as f32);
            rec.anomalous = any_anomalous && (s.anomalous_run as i64) < idle_limit;
            s.history.push(bin, rec);
            if let (Some(e), false) = (expected, rec.anomalous) {
                learn_dispersion(&mut s.dispersion, &e, counts);
            }
        }
        for labels in evicted {
            self.series.remove(&labels);
        }
        // Series live in a hash map: put notices in a fixed order so that every run (the
        // daemon, a backtest) writes the same alerts in the same order.
        // Within a detector the most significant come first, so a storm pages its worst.
        notices.sort_by(|a, b| {
            (a.detector, a.finding.p_value, &a.labels)
                .partial_cmp(&(b.detector, b.finding.p_value, &b.labels))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let cap = self.spec.max_pages_per_hour;
        let hour_bins = (3_600_000 / bin_ms).max(1);
        self.storm_pages
            .resize(self.spec.detectors.len(), Default::default());
        for pages in &mut self.storm_pages {
            while pages.front().is_some_and(|&b| b <= bin - hour_bins) {
                pages.pop_front();
            }
        }
        let mut paged = vec![Vec::new(); self.spec.detectors.len()];
        let mut held = vec![0usize; self.spec.detectors.len()];
        for n in notices {
            let spec = &self.spec.detectors[n.detector];
            let detector = spec.detector.kind();
            let fp = fingerprint(&self.spec.name, detector.name(), &n.labels);
            if split {
                // Storm guard: one page per source is right for three sources, not for
                // three hundred.
                let storm = match n.status {
                    Status::Firing if self.storm_held.contains(&fp) => true,
                    Status::Firing
                        if self.storm_pages.get(n.detector).map_or(0, |p| p.len()) >= cap =>
                    {
                        self.storm_held.insert(fp.clone());
                        held[n.detector] += 1;
                        true
                    }
                    Status::Firing => false,
                    Status::Resolved => self.storm_held.remove(&fp),
                };
                if storm {
                    metrics::counter!("authpulse_notifications_suppressed_total", "reason" => "storm").increment(1);
                    continue;
                }
                if n.status == Status::Firing {
                    paged[n.detector].push(out.len());
                    if let Some(p) = self.storm_pages.get_mut(n.detector) {
                        p.push_back(bin);
                    }
                }
            }
            let verdict = match n.status {
                Status::Firing => {
                    let sources = anomalous_series[n.detector];
                    let verdict = if split
                        && detector == DetectorKind::DistinctUsers
                        && sources >= kind::MANY_SOURCES
                    {
                        kind::many_sources(sources)
                    } else {
                        kind::classify(
                            detector,
                            &n.counts,
                            n.expected.as_ref(),
                            &n.finding,
                            spec.detector.window_bins(),
                            bin_ms,
                        )
                    };
                    self.firing_kinds.insert(fp, verdict.clone());
                    verdict
                }
                Status::Resolved => {
                    self.firing_kinds
                        .remove(&fp)
                        .unwrap_or_else(|| kind::Verdict {
                            kind: AlertKind::default_for(detector),
                            reason: "classified when it fired".to_string(),
                        })
                }
            };
            tracing::debug!(rule = %self.spec.name, detector = detector.name(), kind = %verdict.kind, status = ?n.status, "alert");
            out.push(Alert::new(AlertInput {
                status: n.status,
                rule: &self.spec,
                detector,
                labels: &n.labels,
                bin_start_ms,
                started_ms: n.started_ms,
                finding: &n.finding,
                verdict: &verdict,
            }));
        }
        for (d, indices) in paged.iter().enumerate() {
            if held[d] == 0 {
                continue;
            }
            for &i in indices {
                if let Some(a) = out.get_mut(i) {
                    a.summary.push_str(&format!(
                        " {} more sources fired in this bin; they are not paged one by one (max_pages_per_hour = {cap}): see the status page or the rule's query.",
                        held[d]
                    ));
                }
            }
        }
        evaluated
    }
}

/// Update each metric's dispersion from one clean bin: for a negative binomial,
/// E[(x - μ)² - x] = φ μ², so ((x - μ)² - x) / μ² estimates φ.
fn learn_dispersion(d: &mut Dispersion, e: &Expected, c: Counts) {
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
    use super::*;
    use crate::detect::DetectorKind;

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
        let fired: Vec<_> = out.iter().map(|a| a.detector.as_str()).collect();
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
        assert_eq!(names, vec!["(failing-only sources)", "(other)", "a", "b"]);
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
