//! Tuning tools: what the pipeline decided for every series and bin of a backtest, drawn
//! as a page an operator can read (`backtest --report`) and replayed under other
//! thresholds (`backtest --suggest`), or told bin by bin over a span (`backtest --explain`).
//!
//! A [`Recorder`] is the pipeline's [`Observer`] during such a backtest. Per series it
//! keeps one small [`Point`] per detector per evaluated bin — observed, expected, band,
//! p-value and what the lifecycle did — and, for `--suggest`, whether the bin would be
//! anomalous under a looser threshold ([`PROBE_P_VALUE`]). A plain backtest and the daemon
//! record nothing.

pub mod explain;
pub mod report;
pub mod suggest;

use std::collections::HashMap;
use std::sync::Arc;

use crate::detect::{BinContext, Detector, DetectorKind};
use crate::pipeline::{Observer, Verdict};
use crate::rule::RuleSpec;
use crate::series::{Counts, Labels, RuleId};

/// The loosest `p_value` `--suggest` considers. Each detector is also evaluated with this
/// threshold, so the recorder knows which bins a looser setting would flag: a bin is
/// anomalous at threshold `p` ≤ this when it is anomalous here and its p-value is ≤ `p`
/// (every floor other than the p-value is the same for both).
pub const PROBE_P_VALUE: f64 = 0.01;

pub use crate::chart::Mark;

/// One detector's judgement of one bin, kept small (a series holds thousands).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub observed: f32,
    pub expected: f32,
    pub lower: f32,
    pub upper: f32,
    pub p_value: f64,
    /// Flagged with the configured thresholds.
    pub anomalous: bool,
    /// Flagged with the `p_value` raised to [`PROBE_P_VALUE`] (the configured one when
    /// the detector cannot be re-tuned, see [`Detector::with_p_value`]).
    pub anomalous_loose: bool,
    /// How many bins an anomalous verdict stands for in the lifecycle
    /// (`Finding::evidence_bins`, at most 64).
    pub evidence_bins: u8,
    /// The bin lies outside its band (`Finding::off_band`): it holds an open alert.
    pub off_band: bool,
    pub mark: Mark,
}

/// Every evaluated bin of one series.
#[derive(Debug, Clone)]
pub struct SeriesTrace {
    pub rule: usize,
    pub labels: Labels,
    /// Bin indices, ascending (unknown bins are absent).
    pub bins: Vec<i64>,
    pub counts: Vec<Counts>,
    /// `bins.len() × detectors` points, bin-major: `points[i * detectors + d]`.
    pub points: Vec<Option<Point>>,
}

impl SeriesTrace {
    /// The points of detector `d`, with their bin index, in bin order.
    pub fn detector_points(
        &self,
        d: usize,
        detectors: usize,
    ) -> impl Iterator<Item = (i64, Option<Point>)> + '_ {
        self.bins
            .iter()
            .enumerate()
            .map(move |(i, &bin)| (bin, self.points[i * detectors + d]))
    }

    pub fn total_events(&self) -> u64 {
        self.counts.iter().map(|c| c.total).sum()
    }
}

/// What the recorder knows of one rule.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub spec: RuleSpec,
    /// Per detector: a copy with `p_value` = [`PROBE_P_VALUE`], when it can be re-tuned
    /// and is stricter than that already.
    probes: Vec<Option<Arc<dyn Detector>>>,
    /// Per detector: what its findings measure ("failed sign-ins"), once seen.
    measures: Vec<Option<&'static str>>,
}

impl RuleInfo {
    pub fn kinds(&self) -> impl Iterator<Item = DetectorKind> + '_ {
        self.spec.detectors.iter().map(|d| d.detector.kind())
    }

    /// Whether the recorder knows what detector `d` would flag up to
    /// [`PROBE_P_VALUE`]; if not, `--suggest` can only make it stricter.
    pub fn loosenable(&self, d: usize) -> bool {
        self.probes.get(d).is_some_and(Option::is_some)
            || self
                .spec
                .detectors
                .get(d)
                .is_some_and(|s| s.detector.p_value().is_some_and(|p| p >= PROBE_P_VALUE))
    }
}

/// The pipeline observer behind `--report` and `--suggest`.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub rules: Vec<RuleInfo>,
    pub series: Vec<SeriesTrace>,
    /// Per rule: labels → index in `series`.
    index: Vec<HashMap<Labels, usize>>,
    /// Per rule: the first and last bin evaluated.
    spans: Vec<Option<(i64, i64)>>,
}

impl Recorder {
    /// Keep lifecycle marks only where a notice went out. A transition whose notice was
    /// held back (a storm of sources beyond `max_pages_per_hour`) stays a flagged bin, so
    /// the report marks exactly what paged.
    pub fn keep_marks_of(&mut self, alerts: &[crate::alert::Alert]) {
        let sent: std::collections::HashSet<(&str, &str, &Labels, i64)> = alerts
            .iter()
            .map(|a| {
                (
                    a.rule.as_str(),
                    a.detector.name(),
                    &a.series,
                    a.bin_start.ms(),
                )
            })
            .collect();
        for s in &mut self.series {
            let Some(info) = self.rules.get(s.rule) else {
                continue;
            };
            let names: Vec<&str> = info.kinds().map(|k| k.name()).collect();
            let bin_ms = info.spec.bin_ms();
            for (i, &bin) in s.bins.iter().enumerate() {
                for (d, name) in names.iter().enumerate() {
                    let key = (info.spec.name.as_str(), *name, &s.labels, bin * bin_ms);
                    if let Some(Some(p)) = s.points.get_mut(i * names.len() + d) {
                        if p.mark != Mark::None && !sent.contains(&key) {
                            p.mark = Mark::None;
                        }
                    }
                }
            }
        }
    }

    pub fn new(rules: &[RuleSpec]) -> Recorder {
        let rules: Vec<RuleInfo> = rules
            .iter()
            .map(|spec| RuleInfo {
                measures: vec![None; spec.detectors.len()],
                probes: spec
                    .detectors
                    .iter()
                    .map(|d| {
                        d.detector
                            .p_value()
                            .filter(|&p| p < PROBE_P_VALUE)
                            .and_then(|_| d.detector.with_p_value(PROBE_P_VALUE))
                    })
                    .collect(),
                spec: spec.clone(),
            })
            .collect();
        Recorder {
            index: vec![HashMap::new(); rules.len()],
            spans: vec![None; rules.len()],
            rules,
            series: Vec::new(),
        }
    }

    /// What detector `d` of `rule` measures, if it ever judged a bin.
    pub fn measure(&self, rule: usize, d: usize) -> Option<&'static str> {
        self.rules.get(rule)?.measures.get(d).copied().flatten()
    }

    /// First and last evaluated bin start of `rule` (ms), if it evaluated any.
    pub fn span_ms(&self, rule: usize) -> Option<(i64, i64)> {
        let bin_ms = self.rules.get(rule)?.spec.bin_ms();
        let (first, last) = (*self.spans.get(rule)?)?;
        Some((first * bin_ms, last * bin_ms))
    }
}

impl Observer for Recorder {
    fn reset(&mut self) {
        let specs: Vec<RuleSpec> = self.rules.iter().map(|r| r.spec.clone()).collect();
        *self = Recorder::new(&specs);
    }

    fn series_bin(
        &mut self,
        RuleId(rule): RuleId,
        labels: &Labels,
        ctx: &BinContext<'_>,
        verdicts: &[Verdict],
    ) {
        let (Some(info), Some(index)) = (self.rules.get_mut(rule), self.index.get_mut(rule)) else {
            return;
        };
        let i = match index.get(labels) {
            Some(&i) => i,
            None => {
                self.series.push(SeriesTrace {
                    rule,
                    labels: labels.clone(),
                    bins: Vec::new(),
                    counts: Vec::new(),
                    points: Vec::new(),
                });
                index.insert(labels.clone(), self.series.len() - 1);
                self.series.len() - 1
            }
        };
        if let Some(span) = self.spans.get_mut(rule) {
            let (first, last) = span.get_or_insert((ctx.bin, ctx.bin));
            *first = (*first).min(ctx.bin);
            *last = (*last).max(ctx.bin);
        }
        let s = &mut self.series[i];
        s.bins.push(ctx.bin);
        s.counts.push(ctx.counts);
        for (d, v) in verdicts.iter().enumerate() {
            if let (Some(f), Some(m)) = (&v.finding, info.measures.get_mut(d)) {
                m.get_or_insert(f.measure);
            }
            s.points.push(v.finding.as_ref().map(|f| {
                // Only bins that pass the loose p-value can be flagged loosely: evaluate
                // the probe for those alone (they are few).
                let anomalous_loose = match info.probes.get(d) {
                    Some(Some(probe)) if f.p_value <= PROBE_P_VALUE => {
                        probe.evaluate(ctx).is_some_and(|p| p.anomalous)
                    }
                    Some(Some(_)) => false,
                    _ => f.anomalous,
                };
                Point {
                    observed: f.observed as f32,
                    expected: f.expected as f32,
                    lower: f.lower as f32,
                    upper: f.upper as f32,
                    p_value: f.p_value,
                    anomalous: f.anomalous,
                    anomalous_loose,
                    evidence_bins: f.evidence_bins.min(64) as u8,
                    off_band: info
                        .spec
                        .detectors
                        .get(d)
                        .is_some_and(|spec| f.off_band(spec.detector.kind())),
                    mark: v.transition.mark(),
                }
            }));
        }
    }
}

/// A human name for a series: `rule` or `rule {ip=203.0.113.5}`.
pub fn series_name(rule: &str, labels: &Labels) -> String {
    if labels.is_empty() {
        rule.to_string()
    } else {
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{rule} {{{}}}", inner.join(", "))
    }
}
