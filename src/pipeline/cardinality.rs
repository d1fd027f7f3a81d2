//! Cardinality: how a split rule keeps its series bounded however many addresses
//! appear — the `(failing-only sources)` series, a top-K cut per bin, a `max_series` cap
//! with `(other)` — and deterministic about which values keep a series of their own.

use std::collections::HashMap;

use super::engine::RuleEngine;
use crate::detect::DetectorKind;
use crate::rule::{OTHER_SERIES, SOURCES_SERIES};
use crate::series::{BinRecord, Counts, Labels};

impl RuleEngine {
    /// With a `failing_sources` detector, the `(failing-only sources)` series' counts for
    /// this bin: addresses that only failed (`failure`), that succeeded (`success`), all
    /// of them (`total`), and the distinct users the failing-only ones tried.
    pub(super) fn failing_sources(
        &self,
        observed: &HashMap<Labels, Counts>,
    ) -> Option<(Labels, Counts)> {
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
    pub(super) fn cap_series(&self, labels: Labels) -> Labels {
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

    /// With `top_k`, keep the `top_k` split values with the most failures this bin (ties:
    /// fewer successes first, then by value, so the choice is deterministic) and merge the
    /// rest into `(other)`. Cardinality stays bounded however many addresses appear, and
    /// the sources worth watching — the failing ones — keep their own series.
    pub(super) fn top_k(&self, observed: HashMap<Labels, Counts>) -> Vec<(Labels, Counts)> {
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

    /// Record the bin's observed counts in each series' history (step one of
    /// [`RuleEngine::close_bin`]): the failing-only sources series, the top-K cut, the
    /// `max_series` cap (values merged into `(other)` are summed).
    pub(super) fn record_observed(&mut self, bin: i64, observed: HashMap<Labels, Counts>) {
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
    }
}
