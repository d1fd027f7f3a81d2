//! Cardinality: how a split rule keeps its series bounded however many addresses
//! appear — the `(failing-only sources)` series, a top-K cut per bin, a `max_series` cap
//! with `(other)` — and deterministic about which values keep a series of their own.

use std::collections::hash_map::Entry;
use std::collections::HashSet;

use super::fresh_sources::Failing;

use super::engine::RuleEngine;
use super::series_state::SeriesState;
use super::sprayers::is_synthetic;
use super::story::Story;
use crate::rule::{LOCKED_OUT_SERIES, OTHER_SERIES, SOURCES_SERIES};
use crate::series::{BinRecord, Counts, LabelMap, Labels};

impl RuleEngine {
    /// With a `failing_sources` detector, the two counts it judges for this bin (see
    /// `fresh_sources`), each as one series:
    /// - `(failing-only sources)`: addresses that only failed, on a username Okta could
    ///   not resolve or flagged by ThreatInsight, new in the window (`failure`), that
    ///   succeeded (`success`), all of them (`total`), and the distinct users the counted
    ///   ones tried;
    /// - `(locked-out sources)`: of the addresses that in the bin before only failed, on
    ///   their own accounts, new in the window (`total`), those that have not got in
    ///   since (`failure`) and those that have (`success`). Whether the address got in
    ///   before says nothing here: on the outside traffic most addresses people failed
    ///   from in an outage had never got in before (phones, new networks).
    pub(super) fn failing_sources(
        &mut self,
        bin: i64,
        observed: &LabelMap<Counts>,
    ) -> Vec<(Labels, Counts)> {
        let Some(field) = self
            .spec
            .split_by
            .as_ref()
            .filter(|_| self.spec.counts_failing_sources())
        else {
            return Vec::new();
        };
        let window = self.spec.window_bins().max(1) as i64;
        let mut hostile = Counts::default();
        let mut waiting = self.fresh_sources.take_waiting(bin);
        let mut locked = Counts {
            total: waiting.len() as u64,
            ..Counts::default()
        };
        let mut own = HashSet::default();
        for (labels, counts) in observed {
            hostile.total += 1;
            if counts.success > 0 {
                hostile.success += 1;
            }
            // Most addresses only succeed, and nobody is waiting for most of them: the
            // address is hashed only when it matters.
            if counts.failure == 0 && (counts.success == 0 || waiting.is_empty()) {
                continue;
            }
            let key = self.fresh_sources.key(labels);
            if counts.success > 0 {
                locked.success += u64::from(waiting.remove(&key));
            }
            match self.fresh_sources.judge(key, counts, bin, window) {
                Some(Failing::Hostile) => {
                    hostile.failure += 1;
                    hostile.failed_ips += 1;
                    hostile.failed_users = hostile.failed_users.saturating_add(counts.failed_users);
                }
                Some(Failing::Own) => {
                    own.insert(key);
                }
                None => {}
            }
        }
        self.fresh_sources.wait_for(bin, own);
        self.fresh_sources.prune(bin, window);
        // One person (at least) behind each address: what the windows need to tell
        // many people from one person's retries (`detect::spike`).
        locked.failure = waiting.len() as u64;
        locked.failed_ips = locked.failure;
        locked.failed_users = locked.failure;
        let series = |name: &str| [(field.clone(), name.to_string())].into();
        vec![
            (series(SOURCES_SERIES), hostile),
            (series(LOCKED_OUT_SERIES), locked),
        ]
    }

    /// With `split_by`, values beyond `max_series` share one `(other)` series.
    pub(super) fn cap_series(&self, labels: Labels) -> Labels {
        if self.spec.split_by.is_none()
            || labels.values().all(|v| is_synthetic(v))
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
    pub(super) fn top_k(&self, observed: LabelMap<Counts>) -> Vec<(Labels, Counts)> {
        let mut all: Vec<(Labels, Counts)> = observed.into_iter().collect();
        if self.spec.split_by.is_none() {
            return all;
        }
        // Most failing first (ties: fewer successes, then the value): a total order.
        let order = |(la, a): &(Labels, Counts), (lb, b): &(Labels, Counts)| {
            b.failure
                .cmp(&a.failure)
                .then(a.success.cmp(&b.success))
                .then_with(|| la.cmp(lb))
        };
        let mut rest = Vec::new();
        if let Some(k) = self.spec.top_k.filter(|k| all.len() > *k) {
            // The first k in that order, found without sorting them all.
            all.select_nth_unstable_by(k, order);
            rest = all.split_off(k);
            if rest.iter().any(|(_, c)| c.total == 0) {
                // Merged in order, so an empty bin's span is taken as before.
                rest.sort_by(order);
            }
        }
        // When `max_series` may be reached, which values still get a series of their own
        // must not depend on hash order (the daemon and a backtest decide alike): they
        // are recorded in that order, the failing ones (worth watching) first.
        if self.series.len() + all.len() + 1 >= self.spec.max_series {
            all.sort_by(order);
        }
        if rest.is_empty() {
            return all;
        }
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
    pub(super) fn record_observed(&mut self, bin: i64, observed: LabelMap<Counts>, story: &Story) {
        let spraying = self.distributed_spraying().map(|d| {
            (
                d.remember_bins(self.spec.bin_ms()),
                i64::from(d.window.max(1)),
            )
        });
        if let Some((remember, window)) = spraying {
            self.sprayers.note_successes(bin, &observed, remember);
            self.sprayers.note_accounts(bin, &observed, window);
        }
        let sources = self.failing_sources(bin, &observed);
        let mut observed = self.top_k(observed);
        observed.extend(sources);
        self.record(bin, observed);
        if let Some(sprayers) = self.slow_sprayers(bin, story) {
            self.record(bin, vec![sprayers]);
        }
    }

    fn record(&mut self, bin: i64, observed: Vec<(Labels, Counts)>) {
        for (labels, counts) in observed {
            let labels = self.cap_series(labels);
            let kind = super::engine::series_kind(self.spec.split_by.is_some(), &labels);
            let s = match self.series.entry(labels) {
                Entry::Occupied(s) => s.into_mut(),
                Entry::Vacant(v) => v.insert(SeriesState::keeping(if kind.sources {
                    self.spec.sources_history_bins()
                } else {
                    self.spec.history_bins()
                })),
            };
            let baseline = self.baselines.of(kind);
            super::idle::catch_up(s, baseline, &self.spec, self.first_bin, bin);
            {
                let mut counts = counts;
                // Sum when several values were merged into `(other)`.
                if let Some(prev) = s
                    .history
                    .get(bin)
                    .filter(|_| s.history.next_bin() == Some(bin + 1))
                {
                    counts.merge(&prev.counts());
                }
                let mut rec = BinRecord::from_counts(counts, bin, self.spec.bin_ms());
                rec.known = true;
                s.history.push(bin, rec);
                s.last_active_bin = bin;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::testing::{c, ip, rule};
    use crate::pipeline::Pipeline;
    use crate::rule::{RuleSpec, LOCKED_OUT_SERIES, OTHER_SERIES, SOURCES_SERIES};
    use crate::series::{BinIndex, Counts, FailedAccounts, Labels, RuleId};

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
            p.observe(RuleId(0), BinIndex(0), l, c(1, 1));
        }
        p.close_through(RuleId(0), BinIndex(1), &mut out);
        assert_eq!(p.rules[0].series.len(), 3);
        let mut other = Labels::new();
        other.insert("client.ipAddress".into(), OTHER_SERIES.into());
        let s = p.rules[0].series.get(&other).unwrap();
        assert_eq!(s.history.get(0).unwrap().total, 2);
    }

    #[test]
    fn top_k_keeps_the_most_failing_sources_and_counts_the_failing_only_ones() {
        let mut r = RuleSpec::password_spraying();
        r.top_k = Some(2);
        let mut p = Pipeline::new(vec![r]);
        let mut out = Vec::new();
        for (v, total, failure) in [("a", 5, 5), ("b", 4, 3), ("c", 1, 1), ("d", 4, 0)] {
            p.observe(RuleId(0), BinIndex(0), ip(v), c(total, failure));
        }
        p.close_through(RuleId(0), BinIndex(1), &mut out);
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
                "(locked-out sources)",
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
        p.observe(RuleId(0), BinIndex(0), ip("a"), c(1, 1));
        for b in 1..(window + 3) {
            p.observe(RuleId(0), BinIndex(b), ip("b"), c(1, 0));
            p.close_through(RuleId(0), BinIndex(b + 1), &mut out);
        }
        let series = &p.rules[0].series;
        assert!(!series.contains_key(&ip("a")));
        assert!(series.contains_key(&ip("b")));
    }

    /// The count takes an address that only failed on an unknown username and had not
    /// failed within the window before, and keeps days of bins where the rule's
    /// addresses keep hours.
    #[test]
    fn the_failing_only_count_takes_new_addresses_on_unknown_usernames_and_keeps_days() {
        let r = RuleSpec::password_spraying();
        let window = r.window_bins() as i64;
        let mut p = Pipeline::new(vec![r]);
        let mut out = Vec::new();
        let known = Counts {
            failed_accounts: FailedAccounts::of(Some("00u1"), None),
            ..c(1, 1)
        };
        for b in 0..(window + 3) {
            // A service account under a wrong username, every bin from one address; a
            // person failing for their own account; in bin 0 a proxy.
            p.observe(RuleId(0), BinIndex(b), ip("svc"), c(1, 1));
            p.observe(RuleId(0), BinIndex(b), ip("home"), known);
            if b == 0 {
                p.observe(RuleId(0), BinIndex(b), ip("proxy"), c(1, 1));
            }
            p.close_through(RuleId(0), BinIndex(b + 1), &mut out);
        }
        let series = &p.rules[0].series;
        let sources = &series[&ip(SOURCES_SERIES)].history;
        let counted: Vec<u32> = (0..(window + 3))
            .map(|b| sources.get(b).map_or(u32::MAX, |r| r.failure))
            .collect();
        let mut expected = vec![0; counted.len()];
        expected[0] = 2; // svc and proxy, both new; svc never again while it keeps failing
        assert_eq!(counted, expected);
        assert!(
            series[&ip("svc")].history.get(0).is_none(),
            "an address keeps hours"
        );
    }

    /// The locked-out count takes, one bin later, the addresses that failed on their
    /// own accounts and have not got in since; someone who mistyped and got in, or got
    /// in in the next bin, is not counted.
    #[test]
    fn the_locked_out_count_takes_people_who_did_not_get_in_by_the_next_bin() {
        let mut p = Pipeline::new(vec![RuleSpec::password_spraying()]);
        let mut out = Vec::new();
        let own = Counts {
            failed_accounts: FailedAccounts::of(Some("00u1"), Some("00u1")),
            ..c(2, 2)
        };
        for v in ["p1", "p2", "p3"] {
            p.observe(RuleId(0), BinIndex(0), ip(v), own);
        }
        let typo = Counts {
            success: 1,
            total: 3,
            ..own
        };
        p.observe(RuleId(0), BinIndex(0), ip("typo"), typo);
        p.close_through(RuleId(0), BinIndex(1), &mut out);
        p.observe(RuleId(0), BinIndex(1), ip("p3"), c(1, 0));
        p.observe(RuleId(0), BinIndex(1), ip("p1"), own);
        p.close_through(RuleId(0), BinIndex(3), &mut out);
        let series = &p.rules[0].series;
        let locked = &series[&ip(LOCKED_OUT_SERIES)].history;
        let at = |b: i64| locked.get(b).map(|r| (r.total, r.success, r.failure));
        assert_eq!(at(0), Some((0, 0, 0)), "nobody was waiting yet");
        assert_eq!(at(1), Some((3, 1, 2)), "p1 and p2 still out, p3 got in");
        assert_eq!(at(2), Some((0, 0, 0)), "p1's second failure is not new");
        // Their own accounts: the stuffing count took none of them.
        let sources = &series[&ip(SOURCES_SERIES)].history;
        assert_eq!(sources.get(0).map(|r| r.failure), Some(0));
    }
}
