//! `failing_sources`: many source addresses fail in one bin without a single success —
//! credential stuffing, even when it hides in the totals.
//!
//! A stuffing run rotates through hundreds of proxies, so each address makes one or two
//! attempts and the rule's failure count rises only two- or threefold, within a busy
//! hour's noise. Who fails is more telling than how often: a person who mistypes their
//! password retries and gets in from the same address within the bin, so addresses that
//! *only* failed are rare (someone gave up, a stray scanner) — a handful per bin. A run
//! of leaked credentials makes dozens.
//!
//! Split rules by address (`split_by = "client.ipAddress"`) count, per bin and before
//! top-K, the addresses that failed and never succeeded, into one extra series labelled
//! `(failing-only sources)`: its `failure` is that count, `success` the addresses that
//! succeeded, `total` all addresses seen. This detector judges that series only (every
//! other series is left alone), with the spike test of `failure_spike` — negative
//! binomial upper tail against the series' recent level, and the `min_count` and
//! `min_ratio` floors.

use std::sync::Arc;

use super::{BinContext, CountSpike, Detector, DetectorKind, Finding, SeriesKind, SpikeMetric};
use crate::config_reader::{Problems, Table};

#[derive(Debug, Clone, PartialEq)]
pub struct FailingSources {
    pub spike: CountSpike,
}

impl FailingSources {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> FailingSources {
        let key = t.key_path("count_sources");
        let mut spike = CountSpike::read(SpikeMetric::Failure, t, problems);
        if spike.count_sources {
            problems.push(key, "failing_sources counts addresses already");
            spike.count_sources = false;
        }
        // Tighter than failed sign-ins: a handful of failing-only addresses is normal.
        if t.raw("min_count").is_none() {
            spike.min_count = 9;
        }
        if t.raw("p_value").is_none() {
            spike.p_value = 1e-5;
        }
        FailingSources { spike }
    }
}

impl Detector for FailingSources {
    fn kind(&self) -> DetectorKind {
        DetectorKind::FailingSources
    }

    fn p_value(&self) -> Option<f64> {
        Some(self.spike.p_value)
    }

    fn with_p_value(&self, p_value: f64) -> Option<Arc<dyn Detector>> {
        let mut spike = self.spike.clone();
        spike.p_value = p_value;
        Some(Arc::new(FailingSources { spike }))
    }

    fn min_count(&self) -> Option<u64> {
        Some(self.spike.min_count)
    }

    /// Judges only the `(failing-only sources)` series.
    fn quiet_on_empty_bin(&self, kind: SeriesKind) -> bool {
        !kind.sources
    }

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        if !ctx.sources {
            return None;
        }
        let mut f = self.spike.evaluate(ctx)?;
        f.measure = "sources that failed without a success";
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::series::History;

    fn det() -> FailingSources {
        let mut p = Problems::default();
        let mut t = Table::new("", None, &mut p);
        FailingSources::read(&mut t, &mut p)
    }

    #[test]
    fn count_sources_is_refused_it_counts_addresses_already() {
        let mut problems = Problems::default();
        let table = serde_json::json!({ "count_sources": true });
        let mut t = Table::new("d", Some(&table), &mut problems);
        let d = FailingSources::read(&mut t, &mut problems);
        assert!(!d.spike.count_sources);
        assert_eq!(problems.0.len(), 1, "{problems:?}");
        assert!(problems.0[0].to_string().contains("addresses already"));
    }

    #[test]
    fn dozens_of_failing_only_sources_are_flagged() {
        let h = History::new(16);
        let mut c = ctx(&h, counts(60, 46, 14), Some(expected(50.0, 48.0, 1.5)));
        c.sources = true;
        let f = det().evaluate(&c).unwrap();
        assert!(f.anomalous, "{f:?}");
    }

    #[test]
    fn a_few_are_normal_and_other_series_are_not_judged() {
        let h = History::new(16);
        let mut c = ctx(&h, counts(55, 50, 5), Some(expected(50.0, 48.0, 1.5)));
        c.sources = true;
        assert!(!det().evaluate(&c).unwrap().anomalous);
        c.sources = false;
        c.counts = counts(60, 0, 60);
        assert_eq!(det().evaluate(&c), None);
    }
}
