//! One rule's engine: its series, pending bins and what its alerts were classified as.
//! [`RuleEngine::close_bin`] is the recipe for one bin:
//!
//! ```text
//!   record observed counts (cardinality) ─▶ judge every series (baseline, detectors,
//!   lifecycle; teach the baseline) ─▶ evict idle series ─▶ write notices (storm guard,
//!   classification) as alerts
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::classify;
use super::lifecycle::{Lifecycle, Transition};
use super::series_state::{learn_dispersion, Fingerprints, SeriesState};
use super::sprayers::Sprayers;
use super::storm::StormGuard;
use super::story::Story;
use super::{Observer, Verdict};
use crate::alert::{fingerprint, Alert, AlertInput, Status};
use crate::alert_kind::{AlertKind, Verdict as KindVerdict};
use crate::detect::baseline::{Baseline, Basis, Expected, Seasonal};
use crate::detect::long_run::LongRunLevel;
use crate::detect::{BinContext, DetectorKind, Dispersion, Finding};
use crate::rule::{RuleSpec, OTHER_SERIES, SOURCES_SERIES, SPRAYERS_SERIES};
use crate::series::{BinRecord, Counts, History, LabelMap, Labels};

pub struct RuleEngine {
    pub spec: RuleSpec,
    pub baseline: Seasonal,
    pub series: LabelMap<SeriesState>,
    pub pending: BTreeMap<i64, LabelMap<Counts>>,
    pub unknown: BTreeSet<i64>,
    /// The next bin to close; `None` until the first observation.
    pub next_bin: Option<i64>,
    pub first_bin: Option<i64>,
    /// What each firing alert was classified as when it fired, by fingerprint, so its
    /// resolve notice carries the same kind.
    firing_kinds: HashMap<String, KindVerdict>,
    storm: StormGuard,
    /// The `(slow sprayers)` count's long-run level (see `distributed_spraying`): its
    /// expectation, in place of the seasonal baseline over hours of history; and the
    /// addresses that succeeded lately, which are no sprayers.
    pub(super) sprayers: Sprayers,
}

/// A notice decided while judging a bin's series, written once it is known how many
/// sources fired together.
struct Notice {
    labels: Labels,
    detector: usize,
    status: Status,
    started_ms: i64,
    finding: Finding,
    counts: Counts,
    expected: Option<Expected>,
}

/// What judging one bin's series found.
#[derive(Default)]
struct Judged {
    notices: Vec<Notice>,
    /// Per detector: how many series were anomalous.
    anomalous_series: Vec<usize>,
    evicted: Vec<Labels>,
    evaluated: usize,
    /// A rule over totals saw an outage in this bin (see `story`).
    outage: bool,
}

/// What is fixed for every series of a rule in one bin.
struct BinFacts {
    bin: i64,
    bin_ms: i64,
    rule_warm: bool,
    split: bool,
    /// Consecutive anomalous bins after which a shift counts as the new normal.
    idle_limit: i64,
    /// A split series idle this long leaves.
    evict_after: i64,
    /// A rule over totals: its last event of this bin, if any (see `Story::recast_silence`).
    totals_last_ms: Option<i64>,
}

impl RuleEngine {
    pub fn new(spec: RuleSpec) -> RuleEngine {
        RuleEngine {
            baseline: Seasonal::new(spec.bin_ms(), spec.window_bins()).with_timezone(spec.timezone),
            storm: StormGuard::new(spec.max_pages_per_hour),
            sprayers: Sprayers::new(spec.bin_ms()),
            spec,
            series: LabelMap::default(),
            pending: BTreeMap::new(),
            unknown: BTreeSet::new(),
            next_bin: None,
            first_bin: None,
            firing_kinds: HashMap::new(),
        }
    }

    pub fn new_series(&self) -> SeriesState {
        SeriesState::new(&self.spec)
    }

    /// Evaluate every series for `bin`; returns how many series were evaluated.
    pub fn close_bin(
        &mut self,
        bin: i64,
        observed: LabelMap<Counts>,
        lifecycle: &mut Lifecycle,
        story: &mut Story,
        out: &mut Vec<Alert>,
        observer: Option<(usize, &mut (dyn Observer + '_))>,
    ) -> usize {
        self.record_observed(bin, observed, story);
        if self.spec.split_by.is_none() && self.series.is_empty() {
            // A rule over totals has its one series from its first bin, events or not.
            let labels = Labels::new();
            let s = self.new_series();
            self.series.insert(labels, s);
        }
        let facts = self.facts(bin);
        story.note_stream(facts.totals_last_ms);
        let judged = self.judge_all(&facts, lifecycle, observer);
        let totals = self.series.get(&Labels::new()).map(|s| &s.history);
        story.note_unknown_users(&self.spec, bin, facts.bin_ms, totals);
        for labels in &judged.evicted {
            self.series.remove(labels);
        }
        if judged.outage {
            story.note_outage(bin * facts.bin_ms, (bin + 1) * facts.bin_ms);
        }
        self.write(&facts, judged.notices, &judged.anomalous_series, story, out);
        judged.evaluated
    }

    fn facts(&self, bin: i64) -> BinFacts {
        let bin_ms = self.spec.bin_ms();
        let idle_limit = (86_400_000 / bin_ms).max(1);
        BinFacts {
            bin,
            bin_ms,
            rule_warm: self
                .first_bin
                .is_some_and(|f| (bin - f) as usize >= self.spec.warmup_bins()),
            split: self.spec.split_by.is_some(),
            idle_limit,
            // A split series idle for longer than its history holds nothing but zeros:
            // it goes, so the series a rule keeps are the sources active in its window
            // (and `max_series` is rarely reached).
            evict_after: idle_limit.min(self.spec.window_bins() as i64),
            totals_last_ms: (self.series.get(&Labels::new()))
                .filter(|_| self.spec.split_by.is_none())
                .and_then(|s| s.history.get(bin))
                .and_then(|r| r.span(bin, bin_ms))
                .map(|span| span.last_ms),
        }
    }

    fn judge_all(
        &mut self,
        facts: &BinFacts,
        lifecycle: &mut Lifecycle,
        mut observer: Option<(usize, &mut (dyn Observer + '_))>,
    ) -> Judged {
        let mut judged = Judged {
            anomalous_series: vec![0; self.spec.detectors.len()],
            ..Judged::default()
        };
        // Filled only for an observer, and reused across series.
        let mut verdicts = Vec::new();
        for (labels, s) in self.series.iter_mut() {
            let bin = facts.bin;
            let rec = this_bin(s, facts);
            if facts.split && bin - s.last_active_bin > facts.evict_after {
                judged.evicted.push(labels.clone());
                continue;
            }
            let summary = Summary::of(facts, labels);
            let mut level = summary.sprayers.then_some(&mut self.sprayers.level);
            let expected = expectation(&self.baseline, level.as_deref(), s, facts);
            let ctx = context(
                &s.history,
                s.dispersion,
                s.evidence_since,
                rec,
                expected,
                summary,
                facts,
            );
            if !facts.split && classify::outage_evidence(&ctx.counts, expected.as_ref()) {
                judged.outage = true;
            }
            judged.evaluated += 1;
            // An empty bin no detector can flag, of a series with no alert open or
            // pending: judging it would change nothing (most split series, most bins).
            let nothing_to_judge = observer.is_none()
                && ctx.counts == Counts::default()
                && self
                    .spec
                    .detectors
                    .iter()
                    .all(|d| d.detector.quiet_on_empty_bin(&ctx))
                && !holds_alert(
                    &mut s.may_hold_alert,
                    &mut s.fingerprints,
                    &self.spec,
                    labels,
                    lifecycle,
                );
            if nothing_to_judge {
                teach(s, rec, expected, false, facts, level.as_deref_mut());
                continue;
            }
            let record_verdicts = observer.is_some().then_some(&mut verdicts);
            let (any_anomalous, resolved) = judge_series(
                &self.spec,
                &ctx,
                &mut s.fingerprints,
                labels,
                lifecycle,
                &mut judged,
                record_verdicts,
            );
            s.may_hold_alert |= any_anomalous;
            if let Some((rule, o)) = observer.as_mut() {
                o.series_bin(crate::series::RuleId(*rule), labels, &ctx, &verdicts);
                verdicts.clear();
            }
            if resolved {
                s.evidence_since = bin + 1;
            }
            teach(s, rec, expected, any_anomalous, facts, level);
        }
        judged
    }

    /// Write the bin's notices as alerts: in a fixed order, through the storm guard,
    /// each named by what it most likely is.
    fn write(
        &mut self,
        facts: &BinFacts,
        mut notices: Vec<Notice>,
        anomalous_series: &[usize],
        story: &Story,
        out: &mut Vec<Alert>,
    ) {
        // Series live in a hash map: a fixed order makes every run (the daemon, a backtest)
        // write the same alerts; within a detector the worst first, as a storm pages it.
        notices.sort_by(|a, b| {
            (a.detector, a.finding.p_value, &a.labels)
                .partial_cmp(&(b.detector, b.finding.p_value, &b.labels))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let hour_bins = (3_600_000 / facts.bin_ms).max(1);
        self.storm
            .start_bin(facts.bin, self.spec.detectors.len(), hour_bins);
        for n in notices {
            let detector = self.spec.detectors[n.detector].detector.kind();
            let fp = fingerprint(&self.spec.name, detector.name(), &n.labels);
            if facts.split
                && !self
                    .storm
                    .admit(n.detector, &fp, n.status, facts.bin, out.len())
            {
                continue;
            }
            let verdict = self.verdict(&n, fp, anomalous_series, facts, story);
            tracing::debug!(rule = %self.spec.name, detector = detector.name(), kind = %verdict.kind, status = ?n.status, "alert");
            out.push(Alert::new(AlertInput {
                status: n.status,
                rule: &self.spec,
                detector,
                labels: &n.labels,
                bin_start_ms: facts.bin * facts.bin_ms,
                started_ms: n.started_ms,
                finding: &n.finding,
                verdict: &verdict,
            }));
        }
        self.storm.annotate(out);
    }

    /// What a notice is: classified when it fires, the same kind when it resolves.
    fn verdict(
        &mut self,
        n: &Notice,
        fp: String,
        anomalous_series: &[usize],
        facts: &BinFacts,
        story: &Story,
    ) -> KindVerdict {
        let spec = &self.spec.detectors[n.detector];
        let detector = spec.detector.kind();
        match n.status {
            // A repeat keeps the kind it fired with: a window still holding the start of
            // an incident hours later must not re-read its tail as something else.
            Status::Firing if self.firing_kinds.contains_key(&fp) => self
                .firing_kinds
                .get(&fp)
                .cloned()
                .unwrap_or_else(|| KindVerdict {
                    kind: AlertKind::default_for(detector),
                    reason: String::new(),
                }),
            Status::Firing => {
                let sources = anomalous_series.get(n.detector).copied().unwrap_or(0);
                let verdict = if facts.split
                    && detector == DetectorKind::DistinctUsers
                    && sources >= classify::MANY_SOURCES
                {
                    classify::many_sources(sources)
                } else {
                    classify::classify(
                        detector,
                        &n.counts,
                        n.expected.as_ref(),
                        &n.finding,
                        spec.detector.window_bins(),
                        facts.bin_ms,
                    )
                };
                // A rule over one of Okta's signals says which: "failed sign-ins on
                // usernames Okta could not resolve (actor.id = unknown): 41 failures
                // against 40 accounts from 38 sources ...".
                let verdict = match self.spec.signal_note() {
                    Some(note) => KindVerdict {
                        reason: format!(
                            "{:.0} {} {note} where about {:.0} were expected: {}",
                            n.finding.observed,
                            n.finding.measure,
                            n.finding.expected,
                            verdict.reason
                        ),
                        ..verdict
                    },
                    None => verdict,
                };
                let start = facts.bin * facts.bin_ms;
                let verdict = story.recast_spraying(verdict, start + facts.bin_ms);
                let verdict = story.fold(verdict, start, start + facts.bin_ms);
                // A rule over totals is silent at least since its last event of this bin.
                let since = (!facts.split).then(|| facts.totals_last_ms.unwrap_or(start));
                let verdict = story.recast_silence(verdict, since, start + facts.bin_ms);
                self.firing_kinds.insert(fp, verdict.clone());
                verdict
            }
            Status::Resolved => self
                .firing_kinds
                .remove(&fp)
                .unwrap_or_else(|| KindVerdict {
                    kind: AlertKind::default_for(detector),
                    reason: "classified when it fired".to_string(),
                }),
        }
    }
}

/// Whether the lifecycle holds state (an alert open or pending) for one of a series'
/// `fingerprints`; once it does not, `may_hold` is cleared so the question (and the
/// fingerprints) need not come up again until a detector flags the series.
fn holds_alert(
    may_hold: &mut bool,
    fingerprints: &mut Fingerprints,
    spec: &RuleSpec,
    labels: &Labels,
    lifecycle: &Lifecycle,
) -> bool {
    if *may_hold && (lifecycle.is_empty() || !lifecycle.holds_any(fingerprints.all(spec, labels))) {
        *may_hold = false;
    }
    *may_hold
}

/// What the baseline expects of a series in this bin (from the history before it).
/// This bin's record of a series; a series that saw nothing this bin gets a zero bin
/// (silence is data).
fn this_bin(s: &mut SeriesState, facts: &BinFacts) -> BinRecord {
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

/// What the detectors see of one series in this bin.
fn context<'a>(
    history: &'a History,
    dispersion: Dispersion,
    evidence_since: i64,
    rec: BinRecord,
    expected: Option<Expected>,
    summary: Summary,
    facts: &BinFacts,
) -> BinContext<'a> {
    let bin = facts.bin;
    BinContext {
        counts: Counts {
            span: rec.span(bin, facts.bin_ms),
            ..rec.counts()
        },
        expected,
        dispersion,
        history,
        bin,
        bin_ms: facts.bin_ms,
        aggregate: summary.aggregate,
        sources: summary.sources,
        sprayers: summary.sprayers,
        evidence_since,
    }
}

/// Whether a split rule's series is one of its summary series rather than one source:
/// any of them (the rest of the sources, all sources, the sprayers), all sources, the
/// sprayers. Read once per series and bin (the labels are a map of strings).
#[derive(Debug, Clone, Copy)]
struct Summary {
    aggregate: bool,
    sources: bool,
    sprayers: bool,
}

impl Summary {
    /// Each flag holds when every label value is one of its names.
    fn of(facts: &BinFacts, labels: &Labels) -> Summary {
        let split = facts.split;
        let mut s = Summary {
            aggregate: split,
            sources: split,
            sprayers: split,
        };
        if split {
            for v in labels.values().map(String::as_str) {
                s.sources &= v == SOURCES_SERIES;
                s.sprayers &= v == SPRAYERS_SERIES;
                s.aggregate &= v == OTHER_SERIES || v == SOURCES_SERIES || v == SPRAYERS_SERIES;
            }
        }
        s
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
fn expectation(
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

/// Run every detector of the rule on one series' bin and step its lifecycle; notices go
/// to `judged`. Returns whether any detector found the bin anomalous, and whether an
/// alert of the series resolved.
fn judge_series(
    spec: &RuleSpec,
    ctx: &BinContext<'_>,
    fingerprints: &mut Fingerprints,
    labels: &Labels,
    lifecycle: &mut Lifecycle,
    judged: &mut Judged,
    mut verdicts: Option<&mut Vec<Verdict>>,
) -> (bool, bool) {
    let bin_start_ms = ctx.bin * ctx.bin_ms;
    let mut any_anomalous = false;
    let mut resolved = false;
    for (i, d) in spec.detectors.iter().enumerate() {
        let finding = d.detector.evaluate(ctx);
        let anomalous = finding.as_ref().is_some_and(|f| f.anomalous);
        any_anomalous |= anomalous;
        judged.anomalous_series[i] += usize::from(anomalous);
        let verdict = finding.as_ref().map(|f| f.anomalous);
        // The fingerprint only when the lifecycle may hold state for it (hashing it is
        // most of a quiet series' cost).
        let transition = match verdict {
            None => Transition::Quiet,
            Some(false) if lifecycle.is_empty() => Transition::Quiet,
            Some(_) => lifecycle.step(
                fingerprints.get(spec, labels, i),
                &d.fire,
                bin_start_ms,
                verdict,
                finding.as_ref().map_or(1, |f| f.evidence_bins),
            ),
        };
        if let Some(v) = verdicts.as_deref_mut() {
            v.push(Verdict {
                finding: finding.clone(),
                transition,
            });
        }
        let (status, started_ms) = match transition {
            Transition::Quiet => continue,
            Transition::Fire { started_ms } | Transition::Repeat { started_ms } => {
                (Status::Firing, started_ms)
            }
            Transition::Resolve { started_ms } => {
                resolved = true;
                (Status::Resolved, started_ms)
            }
        };
        if let Some(finding) = finding {
            // A window's page is classified by what the window holds.
            let counts = if finding.window_bins > 1 {
                ctx.window_sum(finding.window_bins)
            } else {
                ctx.counts
            };
            judged.notices.push(Notice {
                labels: labels.clone(),
                detector: i,
                status,
                started_ms,
                finding,
                counts,
                expected: ctx.expected,
            });
        }
    }
    (any_anomalous, resolved)
}

/// Teach the baseline: record what was expected, flag anomalies, learn the noise (and,
/// for the `(slow sprayers)` count, its long-run `level` from clean windows).
fn teach(
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
