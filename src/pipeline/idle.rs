//! Idle sources: their empty bins are taught to the baseline only if they are seen again.
//!
//! Most series of a split rule are sources (an address, a user) seen in one or two bins
//! and then idle until they leave, `evict_after` bins later. Every empty bin of such a
//! series still had to be taught — a zero record, the baseline's expectation, the
//! learned dispersion: what later bins of the series read — though no detector could
//! flag it ([`crate::detect::Detector::quiet_on_empty_bin`]) and no alert was open or
//! pending for it. Most of those series leave without being seen again, and their
//! lessons with them: so an idle source's empty bins are only marked
//! ([`SeriesState::idle_from`]) and taught, in order and exactly as they would have
//! been, when something needs the series' history — an observation of it, an observer,
//! a bin the source could not read, a gap skipped, a revision. Alerts are the same.
//!
//! Only a source series (not `(other)` or a summary count) of a rule whose detectors
//! are all quiet on an empty bin of a source is put off, never with an observer (the
//! status board, the backtest report), and not when `distributed_spraying` looks
//! further back than a series' history holds: it reads the bins of idle sources, and
//! the untaught ring must answer it as the taught one would (an empty bin reads as no
//! bin; the records before are the same while its window fits in the ring).

use super::engine::{holds_alert, RuleEngine};
use super::lifecycle::Lifecycle;
use super::series_state::SeriesState;
use super::teach::{expectation, teach, this_bin, BinFacts};
use crate::detect::baseline::Seasonal;
use crate::detect::SeriesKind;
use crate::rule::RuleSpec;
use crate::series::Labels;

/// Whether rule `spec` may put off an idle source's empty bins.
pub(super) fn defers_idle(spec: &RuleSpec) -> bool {
    let history = spec.history_bins();
    spec.split_by.is_some()
        && spec.detectors.iter().all(|d| {
            d.detector.quiet_on_empty_bin(SeriesKind::default())
                && d.detector
                    .as_distributed_spraying()
                    .is_none_or(|s| s.window as usize <= history)
        })
}

/// Whether series `s` (of kind `kind`, named `labels`) of rule `spec`, in a rule that
/// may put idle bins off, is idle in bin `bin` and its bin put off. A series put off
/// stays so until it catches up (it would have, had it been seen), so the caller skips
/// it without asking again.
pub(super) fn put_off(
    s: &mut SeriesState,
    kind: SeriesKind,
    bin: i64,
    spec: &RuleSpec,
    labels: &Labels,
    lifecycle: &Lifecycle,
) -> bool {
    let quiet_source = s.last_active_bin < bin && kind == SeriesKind::default();
    if !quiet_source
        || holds_alert(
            &mut s.may_hold_alert,
            &mut s.fingerprints,
            spec,
            labels,
            lifecycle,
        )
    {
        return false;
    }
    s.idle_from = Some(bin);
    true
}

impl RuleEngine {
    /// Teach every series its bins put off, up to the next bin to close.
    pub(super) fn catch_up_idle(&mut self) {
        let Some(until) = self.next_bin else {
            return;
        };
        let split = self.spec.split_by.is_some();
        for (labels, s) in self.series.iter_mut() {
            let baseline = self.baselines.of(super::engine::series_kind(split, labels));
            catch_up(s, baseline, &self.spec, self.first_bin, until);
        }
    }
}

/// Teach series `s` of rule `spec` (first observed in `first_bin`) its empty bins put
/// off, up to bin `until`: each as the judging of an empty bin would have.
pub(super) fn catch_up(
    s: &mut SeriesState,
    baseline: &Seasonal,
    spec: &RuleSpec,
    first_bin: Option<i64>,
    until: i64,
) {
    let Some(from) = s.idle_from.take() else {
        return;
    };
    for bin in from..until {
        let facts = BinFacts::at(spec, first_bin, bin, None);
        let rec = this_bin(s, &facts);
        let expected = expectation(baseline, None, s, &facts);
        teach(s, rec, expected, false, &facts, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::BinContext;
    use crate::pipeline::{Observer, Pipeline, Verdict};
    use crate::series::{BinIndex, Counts, Labels, RuleId, Update};
    use proptest::prelude::*;

    /// An observer that looks at nothing: with one, nothing is put off.
    struct Nobody;

    impl Observer for Nobody {
        fn series_bin(&mut self, _: RuleId, _: &Labels, _: &BinContext<'_>, _: &[Verdict]) {}
    }

    /// Every series' state as text, sorted, once what was put off is taught.
    fn state(p: &mut Pipeline) -> Vec<String> {
        let mut out = Vec::new();
        for r in &mut p.rules {
            r.catch_up_idle();
            for (labels, s) in r.series.iter() {
                assert!(s.idle_from.is_none());
                let history: Vec<_> = s.history.indexed().collect();
                out.push(format!(
                    "{labels:?} {history:?} {:?} {} {} {}",
                    s.dispersion, s.anomalous_run, s.last_active_bin, s.evidence_since
                ));
            }
        }
        out.sort();
        out
    }

    /// One bin's updates: the sources seen (index, successes, failures), or unknown.
    fn updates(spec: &RuleSpec, bin: i64, seen: &[(u8, u64, u64)], unknown: bool) -> Vec<Update> {
        let (rule, field) = (RuleId(0), spec.split_by.clone().unwrap_or_default());
        let mut out: Vec<Update> = match unknown {
            true => vec![Update::Unknown {
                rule,
                bin: BinIndex(bin),
            }],
            false => (seen.iter())
                .map(|&(source, success, failure)| Update::Observe {
                    rule,
                    bin: BinIndex(bin),
                    labels: [(field.clone(), format!("s{source}"))].into(),
                    counts: Counts {
                        total: success + failure,
                        success,
                        failure,
                        failed_users: failure,
                        failed_ips: u64::from(failure > 0),
                        ..Counts::default()
                    },
                })
                .collect(),
        };
        out.push(Update::Close {
            rule,
            end_bin: BinIndex(bin + 1),
        });
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Sources seen now and then (some attacking, so alerts open and resolve), bins
        /// the source could not read and a gap: the alerts and every series' state are
        /// the same with idle bins put off as with every bin judged.
        #[test]
        fn putting_idle_bins_off_changes_nothing(
            bins in proptest::collection::vec(
                proptest::collection::vec((0u8..8, 0u64..4, prop_oneof![0u64..2, 10u64..40]), 0..4),
                1..160,
            ),
            unknown in proptest::collection::vec(0usize..160, 0..3),
            gap_at in 0usize..200,
            users in any::<bool>(),
        ) {
            let spec = match users {
                true => RuleSpec::mfa_push_fatigue(),
                false => RuleSpec::password_spraying(),
            };
            prop_assert!(defers_idle(&spec));
            let mut put_off = Pipeline::new(vec![spec.clone()]);
            let mut judged = Pipeline::new(vec![spec.clone()]);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut shift = 0;
            for (i, seen) in bins.iter().enumerate() {
                let mut all = Vec::new();
                if i == gap_at {
                    shift = 500;
                    all.push(Update::Skip { rule: RuleId(0), end_bin: BinIndex(i as i64 + shift) });
                }
                all.extend(updates(&spec, i as i64 + shift, seen, unknown.contains(&i)));
                for u in all {
                    put_off.apply(u.clone(), &mut a);
                    judged.apply_observed(u, &mut b, &mut Nobody);
                }
            }
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
            prop_assert_eq!(put_off.stats(), judged.stats());
            prop_assert_eq!(state(&mut put_off), state(&mut judged));
        }
    }
}
