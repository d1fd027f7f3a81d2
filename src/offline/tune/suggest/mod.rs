//! `backtest --suggest`: per detector, the threshold that would have paged at most a
//! target number of times per week on this history, and what it would have caught.
//!
//! The suggested p-value is the one that pages the most within the budget (the most
//! sensitive setting the budget affords), and among settings paging alike, the one
//! nearest the configured value. Nothing is re-run: the [`Recorder`] kept every bin's p-value and whether the bin passes
//! the detector's other floors, so a candidate threshold turns each bin into a verdict
//! (`anomalous at p` = passes the floors and `p_value ≤ p`), and the alert lifecycle is
//! replayed over those verdicts with the detector's own M-of-N, resolve and repeat
//! settings. Counting pages this way ignores one second-order effect: bins flagged under
//! the new threshold would also be kept out of the baseline. At the configured threshold
//! the replay reproduces the backtest's pages exactly (see the tests).

use crate::alert::rfc3339;
use crate::detect::{DetectorKind, FirePolicy};
use crate::offline::evaluate::GRACE_MS;
use crate::pipeline::lifecycle::{Lifecycle, Reading, Transition};
use crate::simulate::Incident;

mod table;

use super::{series_name, Recorder, SeriesTrace, PROBE_P_VALUE};

/// Candidate p-value thresholds, loosest first: 1e-2, 3e-3, 1e-3, ... 1e-20.
fn p_grid() -> Vec<f64> {
    let mut grid = Vec::new();
    for exp in 2..=20 {
        let p = 10f64.powi(-exp);
        grid.push(p);
        if exp < 20 {
            grid.push(3.0 * 10f64.powi(-exp - 1));
        }
    }
    grid
}

/// One page (a firing notice that starts an incident) under a candidate threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub series: String,
    pub bin_start_ms: i64,
    /// Start of the incident's first anomalous bin (as the alert's `started_at`).
    pub started_ms: i64,
    pub observed: f64,
    pub expected: f64,
    pub p_value: f64,
    /// Repeat notices the incident sent after this one while it lasted.
    pub repeats: usize,
}

/// What a threshold would have done over the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub p_value: f64,
    pub min_count: Option<u64>,
    pub pages: Vec<Page>,
}

impl Replay {
    /// Firing notices, repeats included: every one of them pages someone.
    pub fn notices(&self) -> usize {
        self.pages.iter().map(|p| 1 + p.repeats).sum()
    }
}

/// The verdict for one detector of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub rule: String,
    pub detector: DetectorKind,
    pub bin_ms: i64,
    /// What the configured thresholds did.
    pub current: Replay,
    /// The p-value that pages the most without exceeding the target (configured
    /// min_count), nearest the configured one among equals; `None` if none meets it.
    pub by_p_value: Option<Replay>,
    /// The smallest min_count meeting the target (configured p-value), for detectors
    /// with a count floor.
    pub by_min_count: Option<Replay>,
    /// The detector cannot be evaluated at looser thresholds: suggestions only tighten.
    pub tighten_only: bool,
    /// What the strictest candidate p-value still pages (shown when none meets the target).
    pub strictest: Replay,
}

/// All suggestions, with what they were measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestions {
    pub target_per_week: f64,
    pub weeks: f64,
    pub items: Vec<Suggestion>,
    /// Every rule's detectors, in config order (for the snippet to paste).
    pub rules: Vec<(String, Vec<DetectorKind>)>,
}

/// The count a detector's `min_count` floor compares with, for the kinds that have one.
fn floor_count(kind: DetectorKind, c: &crate::series::Counts) -> Option<u64> {
    match kind {
        DetectorKind::FailureSpike | DetectorKind::FailureRatio | DetectorKind::FailingSources => {
            Some(c.failure)
        }
        DetectorKind::VolumeSpike => Some(c.total),
        DetectorKind::SuccessDrop
        | DetectorKind::Flatline
        | DetectorKind::VolumeDrop
        | DetectorKind::DistinctUsers
        | DetectorKind::PushFatigue
        | DetectorKind::DistributedSpraying => None,
    }
}

struct Ctx<'a> {
    rec: &'a Recorder,
    rule: usize,
    d: usize,
    detectors: usize,
    kind: DetectorKind,
    policy: FirePolicy,
    bin_ms: i64,
}

impl Ctx<'_> {
    fn series(&self) -> impl Iterator<Item = &SeriesTrace> {
        self.rec.series.iter().filter(move |s| s.rule == self.rule)
    }

    /// Replay the lifecycle of every series with verdicts at `p` and `min_count`.
    fn replay(&self, p: f64, min_count: Option<u64>) -> Replay {
        let name = &self.rec.rules[self.rule].spec.name;
        let mut pages = Vec::new();
        for s in self.series() {
            // A series none of whose bins could be flagged at `p` cannot page: skip it
            // (in a split rule, nearly all of them).
            let can_fire = s
                .detector_points(self.d, self.detectors)
                .any(|(_, pt)| pt.is_some_and(|pt| pt.anomalous_loose && pt.p_value <= p));
            if !can_fire {
                continue;
            }
            let mut lifecycle = Lifecycle::default();
            let mut open: Option<usize> = None;
            for (i, (bin, pt)) in s.detector_points(self.d, self.detectors).enumerate() {
                let verdict = pt.map(|pt| {
                    let anomalous = pt.anomalous_loose
                        && pt.p_value <= p
                        && min_count.is_none_or(|m| {
                            floor_count(self.kind, &s.counts[i]).is_none_or(|c| c >= m)
                        });
                    Reading::of(anomalous, pt.off_band)
                });
                let at = bin * self.bin_ms;
                match (
                    lifecycle.step(
                        "",
                        &self.policy,
                        at,
                        verdict,
                        pt.map_or(1, |pt| u32::from(pt.evidence_bins)),
                    ),
                    pt,
                ) {
                    // A fire needs a verdict, so the point is there.
                    (Transition::Fire { started_ms }, Some(pt)) => {
                        pages.push(Page {
                            series: series_name(name, &s.labels),
                            bin_start_ms: at,
                            started_ms,
                            observed: f64::from(pt.observed),
                            expected: f64::from(pt.expected),
                            p_value: pt.p_value,
                            repeats: 0,
                        });
                        open = Some(pages.len() - 1);
                    }
                    (Transition::Repeat { .. }, _) => {
                        if let Some(page) = open.and_then(|i| pages.get_mut(i)) {
                            page.repeats += 1;
                        }
                    }
                    (Transition::Resolve { .. }, _) => open = None,
                    _ => {}
                }
            }
        }
        pages.sort_by(|a, b| (a.bin_start_ms, &a.series).cmp(&(b.bin_start_ms, &b.series)));
        Replay {
            p_value: p,
            min_count,
            pages,
        }
    }
}

/// Suggest thresholds for every detector of every rule, for at most `target_per_week`
/// firing notices per week.
pub fn suggest(rec: &Recorder, target_per_week: f64) -> Suggestions {
    let mut items = Vec::new();
    let mut weeks_seen: f64 = 0.0;
    for (rule, info) in rec.rules.iter().enumerate() {
        let Some((first, last)) = rec.span_ms(rule) else {
            continue;
        };
        let bin_ms = info.spec.bin_ms();
        let weeks = ((last + bin_ms - first) as f64 / (7.0 * 86_400_000.0)).max(1e-9);
        weeks_seen = weeks_seen.max(weeks);
        let budget = (target_per_week * weeks).floor() as usize;
        for (d, spec) in info.spec.detectors.iter().enumerate() {
            let Some(configured_p) = spec.detector.p_value() else {
                continue;
            };
            let ctx = Ctx {
                rec,
                rule,
                d,
                detectors: info.spec.detectors.len(),
                kind: spec.detector.kind(),
                policy: spec.fire,
                bin_ms,
            };
            let tighten_only = !info.loosenable(d);
            items.push(suggest_one(
                &ctx,
                &info.spec.name,
                configured_p,
                spec.detector.min_count(),
                budget,
                tighten_only,
            ));
        }
    }
    Suggestions {
        target_per_week,
        weeks: weeks_seen,
        items,
        rules: rec
            .rules
            .iter()
            .map(|r| (r.spec.name.clone(), r.kinds().collect()))
            .collect(),
    }
}

/// One detector's suggestion: replay it at every p-value on the grid (and the configured
/// one) and, when that cannot meet the budget, at raised `min_count`s.
fn suggest_one(
    ctx: &Ctx<'_>,
    rule: &str,
    configured_p: f64,
    configured_min: Option<u64>,
    budget: usize,
    tighten_only: bool,
) -> Suggestion {
    let current = ctx.replay(configured_p, None);
    let loosest = if tighten_only {
        configured_p
    } else {
        PROBE_P_VALUE.max(configured_p)
    };
    let replays: Vec<Replay> = p_grid()
        .into_iter()
        .chain(std::iter::once(configured_p))
        .filter(|&p| p <= loosest)
        .map(|p| ctx.replay(p, None))
        .collect();
    let strictest = replays
        .iter()
        .min_by(|a, b| a.p_value.total_cmp(&b.p_value))
        .cloned()
        .unwrap_or_else(|| current.clone());
    // Within budget, the threshold that pages the most (it catches the most); among
    // equals, the one nearest the configured value: a change that pages nothing more is
    // no improvement.
    let distance = |r: &Replay| (r.p_value.log10() - configured_p.log10()).abs();
    let by_p_value = replays
        .into_iter()
        .filter(|r| r.notices() <= budget)
        .max_by(|a, b| {
            a.notices()
                .cmp(&b.notices())
                .then(distance(b).total_cmp(&distance(a)))
        });
    let by_min_count = configured_min
        .filter(|_| floor_count(ctx.kind, &Default::default()).is_some())
        .filter(|_| current.notices() > budget)
        .and_then(|configured| by_min_count(ctx, configured_p, configured, budget));
    Suggestion {
        rule: rule.to_string(),
        detector: ctx.kind,
        bin_ms: ctx.bin_ms,
        current,
        by_p_value,
        by_min_count,
        tighten_only,
        strictest,
    }
}

/// Raising `min_count` only removes pages: try each count that would drop one more of
/// the current pages' bins, smallest first, and keep the first within budget.
fn by_min_count(
    ctx: &Ctx<'_>,
    configured_p: f64,
    configured: u64,
    budget: usize,
) -> Option<Replay> {
    let (d, kind) = (ctx.d, ctx.kind);
    let mut counts: Vec<u64> = ctx
        .series()
        .flat_map(|s| {
            s.detector_points(d, ctx.detectors)
                .zip(&s.counts)
                .filter(|((_, pt), _)| pt.is_some_and(|pt| pt.anomalous))
                .filter_map(|(_, c)| floor_count(kind, c))
                .collect::<Vec<_>>()
        })
        .map(|c| c + 1)
        .filter(|&m| m > configured)
        .collect();
    counts.sort_unstable();
    counts.dedup();
    counts
        .into_iter()
        .map(|m| ctx.replay(configured_p, Some(m)))
        .find(|r| r.notices() <= budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_descending_and_spans_the_useful_range() {
        let g = p_grid();
        assert_eq!(g.first(), Some(&1e-2));
        assert!(g.windows(2).all(|w| w[0] > w[1]));
        assert!(g.last().is_some_and(|&p| p <= 1e-20));
    }
}
