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

mod bins;
mod cardinality;
pub mod classify;
mod engine;
mod fresh_sources;
mod idle;
pub mod lifecycle;
mod retry_wave;
mod series_state;
mod sprayers;
mod storm;
mod story;
mod teach;
#[cfg(test)]
mod testing;

use crate::alert::Alert;
use crate::detect::{BinContext, Finding};
use crate::rule::RuleSpec;
use crate::series::{BinIndex, Labels, RuleId, Update};
use engine::RuleEngine;
use lifecycle::{Lifecycle, Transition};
pub use retry_wave::{HeldPage, Retries};

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
    /// Pages held as retry waves (see `retry_wave`).
    pub held_waves: u64,
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
        rule: RuleId,
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
    waves: retry_wave::RetryWaves,
    /// The rule split by source address whose bins tell a retry wave from an attack.
    source_rule: Option<usize>,
    /// Per rule, which of its pages the retry-wave stage judges (see `retry_wave`).
    wave_scopes: Vec<retry_wave::Scope>,
    stats: PipelineStats,
}

impl Pipeline {
    pub fn new(specs: Vec<RuleSpec>) -> Pipeline {
        let rules: Vec<RuleEngine> = specs.into_iter().map(RuleEngine::new).collect();
        let source_rule = rules.iter().position(|r| r.spec.splits_by_source());
        let wave_scopes = rules
            .iter()
            .enumerate()
            .map(|(i, r)| retry_wave::Scope::of(&r.spec, i, source_rule))
            .collect();
        Pipeline {
            rules,
            lifecycle: Lifecycle::default(),
            story: story::Story::default(),
            waves: retry_wave::RetryWaves::default(),
            source_rule,
            wave_scopes,
            stats: PipelineStats::default(),
        }
    }

    pub fn rules(&self) -> impl Iterator<Item = &RuleSpec> {
        self.rules.iter().map(|r| &r.spec)
    }

    pub fn stats(&self) -> PipelineStats {
        PipelineStats {
            held_waves: self.waves.held_count,
            ..self.stats
        }
    }

    /// The first pages held as retry waves (their count is in [`Pipeline::stats`]).
    pub fn held_pages(&self) -> &[HeldPage] {
        &self.waves.held_pages
    }

    /// End of input (a backtest): attack pages still waiting for the rule split by
    /// source address are judged on what it counted.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        self.waves.finish(out);
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

    /// The first bin of `rule` whose notifications may not all have been handed out:
    /// the next bin it will close, or an earlier one whose page still waits for the
    /// rule split by source address (see `retry_wave`). Everything of the bins before it
    /// is out (the delivery ledger's watermark rests on that).
    pub fn next_bin(&self, RuleId(rule): RuleId) -> Option<BinIndex> {
        let r = self.rules.get(rule)?;
        let next = r.next_bin?;
        let waiting = self
            .waves
            .earliest_waiting(&r.spec.name)
            .map(|ms| ms.div_euclid(r.spec.bin_ms()));
        Some(BinIndex(waiting.map_or(next, |w| w.min(next))))
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
                self.close_through_inner(rule.0, end_bin.0, out, observer)
            }
            Update::Skip { rule, end_bin } => self.skip_to(rule.0, end_bin.0, out, observer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Status;
    use testing::{c, rule};

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
            _rule: RuleId,
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
                    rule: RuleId(0),
                    bin: BinIndex(b),
                    labels: Labels::new(),
                    counts,
                },
                &mut out,
                &mut seen,
            );
            p.apply_observed(
                Update::Close {
                    rule: RuleId(0),
                    end_bin: BinIndex(b + 1),
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
}
