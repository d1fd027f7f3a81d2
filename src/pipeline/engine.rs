//! One rule's engine: its series, pending bins and what its alerts were classified as.
//! [`RuleEngine::close_bin`] is the recipe for one bin:
//!
//! ```text
//!   record observed counts (cardinality) ─▶ judge every series (baseline, detectors,
//!   lifecycle; teach the baseline) ─▶ evict idle series ─▶ write notices (storm guard,
//!   classification) as alerts
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::fresh_sources::FreshSources;
use super::lifecycle::{Lifecycle, Reading, Transition};
use super::series_state::{Fingerprints, SeriesState};
use super::sprayers::Sprayers;
use super::storm::StormGuard;
use super::story::Story;
use super::teach::{expectation, teach, this_bin, Baselines, BinFacts};
use super::{classify, idle, Observer, Verdict};
use crate::alert::{fingerprint, Alert, AlertInput, Status};
use crate::alert_kind::{AlertKind, Verdict as KindVerdict};
use crate::detect::baseline::Expected;
use crate::detect::{BinContext, DetectorKind, Dispersion, Finding, SeriesKind};
use crate::rule::{RuleSpec, LOCKED_OUT_SERIES, OTHER_SERIES, SOURCES_SERIES, SPRAYERS_SERIES};
use crate::series::{BinRecord, Counts, History, LabelMap, Labels};

/// How many bins back a rule over totals looks for its last event (see
/// [`RuleEngine::silent_since`]): as far as `flatline` judges a span (`bins`, eight
/// for `okta-sessions`) and more.
const SILENCE_LOOKBACK: i64 = 16;

/// How many bins back a `volume_drop` page looks for the empty bins of a silence (see
/// `Story::fold_drop_into_silence`): it pages on two anomalous bins of three, so the
/// bin it fires in may come two after the silence's last empty one; an hour of bins.
const DROP_CONFIRM_BINS: u32 = 4;

pub struct RuleEngine {
    pub spec: RuleSpec,
    pub(super) baselines: Baselines,
    /// Which failing-only addresses the `(failing-only sources)` count takes.
    pub(super) fresh_sources: FreshSources,
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
    /// An idle source's empty bins may be taught later (see `idle`).
    pub(super) defer_idle: bool,
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

impl RuleEngine {
    pub fn new(spec: RuleSpec) -> RuleEngine {
        RuleEngine {
            baselines: Baselines::new(&spec),
            fresh_sources: FreshSources::default(),
            storm: StormGuard::new(spec.max_pages_per_hour),
            sprayers: Sprayers::new(spec.bin_ms()),
            defer_idle: super::idle::defers_idle(&spec),
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
        if observer.is_some() {
            // The observer sees every series' every bin as it is judged.
            self.catch_up_idle();
        }
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

    /// When a rule over totals last counted an event, as far back as its history goes
    /// (at most [`SILENCE_LOOKBACK`] bins): its silence began then. An empty bin says
    /// only that it began before this one — a silence of an hour judged from its last
    /// bin must not read as a quarter of an hour (`Story::recast_silence` compares it
    /// with the stream's).
    fn silent_since(&self, facts: &BinFacts) -> i64 {
        let start = facts.bin * facts.bin_ms;
        if let Some(last) = facts.totals_last_ms {
            return last;
        }
        let Some(s) = self.series.get(&Labels::new()) else {
            return start;
        };
        let mut since = start;
        for back in 1..=SILENCE_LOOKBACK {
            let bin = facts.bin - back;
            let Some(r) = s.history.get(bin).filter(|r| r.known) else {
                break;
            };
            match r.span(bin, facts.bin_ms) {
                Some(span) => return span.last_ms,
                None => since = bin * facts.bin_ms,
            }
        }
        since
    }

    /// A `volume_drop` page at the edge of a silence this rule's `flatline` pages, in
    /// bins the whole stream left empty, is that silence (`Story::fold_drop_into_silence`).
    fn fold_drop(
        &self,
        detector: DetectorKind,
        n: &Notice,
        facts: &BinFacts,
        story: &Story,
        verdict: KindVerdict,
    ) -> KindVerdict {
        if detector != DetectorKind::VolumeDrop {
            return verdict;
        }
        let flat = DetectorKind::Flatline.name();
        let silence = fingerprint(&self.spec.name, flat, &n.labels);
        let window = n.finding.window_bins.max(DROP_CONFIRM_BINS);
        let empty = self.empty_bins(facts, window);
        story.fold_drop_into_silence(verdict, self.firing_kinds.get(&silence), &empty)
    }

    /// The bins (start, end in ms) among this one and the `window` - 1 before it in
    /// which the rule over totals counted nothing (see `Story::fold_drop_into_silence`).
    fn empty_bins(&self, facts: &BinFacts, window: u32) -> Vec<(i64, i64)> {
        let Some(s) = self.series.get(&Labels::new()) else {
            return Vec::new();
        };
        (0..i64::from(window.max(1)))
            .map(|back| facts.bin - back)
            .filter(|&b| s.history.get(b).is_some_and(|r| r.known && r.total == 0))
            .map(|b| (b * facts.bin_ms, (b + 1) * facts.bin_ms))
            .collect()
    }

    fn facts(&self, bin: i64) -> BinFacts {
        let bin_ms = self.spec.bin_ms();
        let totals_last_ms = (self.series.get(&Labels::new()))
            .filter(|_| self.spec.split_by.is_none())
            .and_then(|s| s.history.get(bin))
            .and_then(|r| r.span(bin, bin_ms))
            .map(|span| span.last_ms);
        BinFacts::at(&self.spec, self.first_bin, bin, totals_last_ms)
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
        let defer = self.defer_idle && observer.is_none();
        for (labels, s) in self.series.iter_mut() {
            let bin = facts.bin;
            if facts.split && bin - s.last_active_bin > facts.evict_after {
                judged.evicted.push(labels.clone());
                continue;
            }
            judged.evaluated += 1;
            if s.idle_from.is_some() {
                continue; // put off, and not seen in this bin either (see `idle`)
            }
            let kind = series_kind(facts.split, labels);
            if defer && idle::put_off(s, kind, bin, &self.spec, labels, lifecycle) {
                continue;
            }
            let rec = this_bin(s, facts);
            let mut level = kind.sprayers.then_some(&mut self.sprayers.level);
            let expected = expectation(self.baselines.of(kind), level.as_deref(), s, facts);
            let ctx = context(
                &s.history,
                s.dispersion,
                s.evidence_since,
                rec,
                expected,
                kind,
                facts,
            );
            if !facts.split && classify::outage_evidence(&ctx.counts, expected.as_ref()) {
                judged.outage = true;
            }
            let state = (&mut s.may_hold_alert, &mut s.fingerprints);
            if observer.is_none() && nothing_to_judge(&self.spec, &ctx, state, labels, lifecycle) {
                teach(s, rec, expected, false, facts, level.as_deref_mut());
                continue;
            }
            let record_verdicts = observer.is_some().then_some(&mut verdicts);
            let verdict = judge_series(
                &self.spec,
                &ctx,
                &mut s.fingerprints,
                labels,
                lifecycle,
                &mut judged,
                record_verdicts,
            );
            s.may_hold_alert |= verdict.anomalous;
            if let Some((rule, o)) = observer.as_mut() {
                o.series_bin(crate::series::RuleId(*rule), labels, &ctx, &verdicts);
                verdicts.clear();
            }
            if verdict.resolved {
                s.evidence_since = bin + 1;
            }
            // A totals bin beyond a detector's p-value that a guard let pass (a reset
            // wave's failures come with their successes) is not normal traffic either:
            // it is kept out of the baseline and the noise as a flagged one is. A wave
            // of 374 people learned as normal raised the next week's expectation at
            // that hour, whose bins then taught the noise: at that evening's outage the
            // failures' dispersion was 0.29 (0.04 with the wave kept out, hard seed 13)
            // and the busy hours' step 0.019 (0.015), and the outage fell short of its
            // page (`volume_drop` 3.5e-6 over four bins; 4.0e-7 with the wave kept
            // out). A source's series is judged over windows that reach back past its
            // own bin (`distinct_users`), and is not held to this. Nor is a held bin.
            let unusual = verdict.anomalous || verdict.held || (verdict.extreme && !facts.split);
            teach(s, rec, expected, unusual, facts, level);
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
                } else if detector == DetectorKind::FailingSources
                    && series_kind(facts.split, &n.labels).locked_out
                {
                    // Its only other series is the stuffing count: both anomalous in
                    // one bin is stuffing whose combo list holds real usernames.
                    classify::locked_out(&n.finding, facts.bin_ms, sources >= 2)
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
                let since = (!facts.split).then(|| self.silent_since(facts));
                let verdict =
                    story.recast_silence(verdict, since, start + facts.bin_ms, facts.bin_ms);
                let verdict = self.fold_drop(detector, n, facts, story, verdict);
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

/// An empty bin no detector can flag, of a series with no alert open or pending:
/// judging it would change nothing (most split series, most bins).
fn nothing_to_judge(
    spec: &RuleSpec,
    ctx: &BinContext<'_>,
    (may_hold, fingerprints): (&mut bool, &mut Fingerprints),
    labels: &Labels,
    lifecycle: &Lifecycle,
) -> bool {
    ctx.counts == Counts::default()
        && (spec.detectors.iter()).all(|d| d.detector.quiet_on_empty_bin(ctx.kind()))
        && !holds_alert(may_hold, fingerprints, spec, labels, lifecycle)
}

/// Whether the lifecycle holds state (an alert open or pending) for one of a series'
/// `fingerprints`; once it does not, `may_hold` is cleared so the question (and the
/// fingerprints) need not come up again until a detector flags the series.
pub(super) fn holds_alert(
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

/// What the detectors see of one series in this bin.
fn context<'a>(
    history: &'a History,
    dispersion: Dispersion,
    evidence_since: i64,
    rec: BinRecord,
    expected: Option<Expected>,
    kind: SeriesKind,
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
        local: facts.local,
        aggregate: kind.aggregate,
        sources: kind.sources,
        locked_out: kind.locked_out,
        sprayers: kind.sprayers,
        evidence_since,
    }
}

/// Whether a split rule's series is one of its summary series rather than one source:
/// any of them (the rest of the sources, all sources, the sprayers), all sources, the
/// sprayers; each flag holds when every label value is one of its names. Read once per
/// series and bin (the labels are a map of strings).
pub(super) fn series_kind(split: bool, labels: &Labels) -> SeriesKind {
    let mut s = SeriesKind {
        aggregate: split,
        sources: split,
        locked_out: split,
        sprayers: split,
    };
    if split {
        for v in labels.values().map(String::as_str) {
            s.locked_out &= v == LOCKED_OUT_SERIES;
            s.sources &= v == SOURCES_SERIES || v == LOCKED_OUT_SERIES;
            s.sprayers &= v == SPRAYERS_SERIES;
            s.aggregate &= v == OTHER_SERIES || super::sprayers::is_synthetic(v);
        }
    }
    s
}

/// What the detectors of a rule said of one series' bin, taken together.
#[derive(Default)]
struct SeriesBin {
    /// Some detector found the bin anomalous.
    anomalous: bool,
    /// Some detector found it beyond its `p_value`, whatever its other conditions said.
    extreme: bool,
    /// An alert of the series resolved.
    resolved: bool,
    /// An open alert of the series was held: the bin is off its band (see
    /// [`Reading::OffBand`]). Such a bin is not taught either: an outage's bins that
    /// no longer prove it on their own would teach the noise and the season the
    /// outage (outside seed 17: the expected failure share rose from 0.2 to 0.4
    /// within 45 minutes of every sign-in failing).
    held: bool,
}

/// Run every detector of the rule on one series' bin and step its lifecycle; notices go
/// to `judged`. What the caller teaches depends on what it returns.
fn judge_series(
    spec: &RuleSpec,
    ctx: &BinContext<'_>,
    fingerprints: &mut Fingerprints,
    labels: &Labels,
    lifecycle: &mut Lifecycle,
    judged: &mut Judged,
    mut verdicts: Option<&mut Vec<Verdict>>,
) -> SeriesBin {
    let bin_start_ms = ctx.bin * ctx.bin_ms;
    let mut seen = SeriesBin::default();
    for (i, d) in spec.detectors.iter().enumerate() {
        let finding = d.detector.evaluate(ctx);
        let anomalous = finding.as_ref().is_some_and(|f| f.anomalous);
        seen.anomalous |= anomalous;
        seen.extreme |= finding
            .as_ref()
            .zip(d.detector.p_value())
            .is_some_and(|(f, p)| f.p_value <= p);
        judged.anomalous_series[i] += usize::from(anomalous);
        // The fingerprint and the reading only when the lifecycle may hold state for it
        // (hashing the fingerprint is most of a quiet series' cost).
        let transition = match finding.as_ref() {
            None => Transition::Quiet,
            Some(f) if !f.anomalous && lifecycle.is_empty() => Transition::Quiet,
            Some(f) => lifecycle.step(
                fingerprints.get(spec, labels, i),
                &d.fire,
                bin_start_ms,
                Some(Reading::of(f.anomalous, f.off_band(d.detector.kind()))),
                f.evidence_bins,
            ),
        };
        seen.held |= transition == Transition::Held;
        if let Some(v) = verdicts.as_deref_mut() {
            v.push(Verdict {
                finding: finding.clone(),
                transition,
            });
        }
        let (status, started_ms) = match transition {
            Transition::Quiet | Transition::Held => continue,
            Transition::Fire { started_ms } | Transition::Repeat { started_ms } => {
                (Status::Firing, started_ms)
            }
            Transition::Resolve { started_ms } => {
                seen.resolved = true;
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
    seen
}
