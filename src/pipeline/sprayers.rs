//! The `(slow sprayers)` count of a split rule with `distributed_spraying`: which
//! sources look like a slow sprayer in a bin (see `detect::distributed_spraying`), the
//! addresses that signed in successfully lately (so that a person's failures at home
//! are not a sprayer's), and the count's long-run level.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::engine::RuleEngine;
use super::story::Story;
use crate::detect::long_run::LongRunLevel;
use crate::detect::DistributedSpraying;
use crate::rule::{LOCKED_OUT_SERIES, OTHER_SERIES, SOURCES_SERIES, SPRAYERS_SERIES};
use crate::series::{Counts, LabelMap, Labels};

/// The half-life of the `(slow sprayers)` count's long-run level: a week.
const HALF_LIFE_MS: i64 = 7 * 86_400_000;

/// At most this many addresses are remembered in each map (`succeeded`, `accounts`):
/// past it the half seen longest ago is forgotten first (see `forget_oldest_half`).
pub(super) const MAX_REMEMBERED: usize = 2_000_000;

/// What a rule remembers for its `(slow sprayers)` count.
#[derive(Debug, Clone)]
pub struct Sprayers {
    /// The count's long-run level (see `long_run`): its expectation.
    pub level: LongRunLevel,
    /// Each address's last bin with a success, by a 64-bit hash of the address keyed
    /// at random per rule (`key_state`). The addresses are the input's, so an
    /// attacker chooses them: with a fixed, public key a sprayer could pick an address
    /// (an IPv6 /64 offers plenty) whose hash equals a known good address's — an
    /// office's — and never be counted. With a random key that cannot be computed in
    /// advance, and two addresses share a 64-bit hash by chance about once in 10^7
    /// runs with a million remembered. An entry is 16 bytes (10,000 addresses: about
    /// 25 bytes a series more). The map hashes those keys again with a fixed key: they
    /// are out of the attacker's hands already.
    succeeded: HashMap<u64, u32, foldhash::fast::FixedState>,
    /// The key of the addresses' hash, drawn at random when the rule starts.
    key_state: foldhash::fast::RandomState,
    /// The oldest bin still remembered, once pruned.
    pruned_at: i64,
    /// The organisation's own accounts each failing-only address failed for lately
    /// (bin, account key; see `FailedAccounts`), by the same key as `succeeded`, kept
    /// for a window: what tells an address back for a second account from a person
    /// failing for their own twice.
    accounts: HashMap<u64, Vec<(u32, u32)>, foldhash::fast::FixedState>,
    /// When `accounts` was last pruned.
    accounts_pruned_at: i64,
}

impl Sprayers {
    pub fn new(bin_ms: i64) -> Sprayers {
        Sprayers {
            level: LongRunLevel::new((HALF_LIFE_MS / bin_ms.max(1)) as f64),
            succeeded: HashMap::default(),
            key_state: foldhash::fast::RandomState::default(),
            pruned_at: i64::MIN,
            accounts: HashMap::default(),
            accounts_pruned_at: i64::MIN,
        }
    }

    /// Note the addresses that succeeded in `bin` (all of them, before any top-K cut),
    /// and forget those that have not within `remember` bins (once that many bins
    /// passed since the last time).
    pub fn note_successes(&mut self, bin: i64, observed: &LabelMap<Counts>, remember: i64) {
        for (labels, c) in observed {
            if c.success > 0 {
                self.succeeded
                    .insert(self.key_state.hash_one(labels), stamp(bin));
            }
        }
        if self.pruned_at == i64::MIN || bin - self.pruned_at >= remember.max(1) {
            // The oldest bin still remembered.
            let oldest = stamp(bin.saturating_sub(remember) + 1);
            self.succeeded.retain(|_, b| *b >= oldest);
            self.pruned_at = bin;
        }
        forget_oldest_half(&mut self.succeeded, MAX_REMEMBERED, |b| *b);
    }

    /// Note the accounts the failing-only addresses of `bin` failed for (all of them,
    /// before any top-K cut), and forget those older than `window` bins.
    pub fn note_accounts(&mut self, bin: i64, observed: &LabelMap<Counts>, window: i64) {
        for (labels, c) in observed {
            if c.success == 0 && c.failure > 0 && !c.failed_accounts.is_empty() {
                let address = self.key_state.hash_one(labels);
                let tried = self.accounts.entry(address).or_default();
                tried.extend(c.failed_accounts.keys().map(|k| (stamp(bin), k)));
            }
        }
        if self.accounts_pruned_at == i64::MIN || bin - self.accounts_pruned_at >= window.max(1) {
            let oldest = stamp(bin.saturating_sub(window) + 1);
            self.accounts.retain(|_, tried| {
                tried.retain(|(b, _)| *b >= oldest);
                !tried.is_empty()
            });
            self.accounts_pruned_at = bin;
        }
        // A botnet of millions of addresses within the window must not grow it
        // without bound.
        forget_oldest_half(&mut self.accounts, MAX_REMEMBERED, |tried| {
            tried.last().map_or(0, |(b, _)| *b)
        });
    }

    /// How many distinct accounts of the organisation the address `labels` failed for
    /// in the bins from `since` to `bin`.
    pub fn accounts_since(&self, labels: &Labels, since: i64, bin: i64) -> u64 {
        let Some(tried) = self.accounts.get(&self.key_state.hash_one(labels)) else {
            return 0;
        };
        let (since, bin) = (stamp(since), stamp(bin));
        let mut keys: Vec<u32> = tried
            .iter()
            .filter(|(b, _)| (since..=bin).contains(b))
            .map(|(_, k)| *k)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len() as u64
    }

    /// Whether the address `labels` succeeded in any bin from `since` on.
    pub fn succeeded_since(&self, labels: &Labels, since: i64) -> bool {
        self.succeeded
            .get(&self.key_state.hash_one(labels))
            .is_some_and(|b| *b >= stamp(since))
    }
}

/// Past `limit` entries, forget those whose `newest` bin is at or before the median
/// (about the older half), so the map stays bounded whatever the input.
pub(super) fn forget_oldest_half<V, S>(
    map: &mut HashMap<u64, V, S>,
    limit: usize,
    newest: impl Fn(&V) -> u32,
) {
    if map.len() <= limit {
        return;
    }
    let mut bins: Vec<u32> = map.values().map(&newest).collect();
    let (_, median, _) = bins.select_nth_unstable(limit / 2);
    let cut = *median;
    map.retain(|_, v| newest(v) > cut);
}

/// A bin index as stored: bins since 1970 fit 32 bits at any bin of a second or more
/// (earlier ones count as 0, later ones as the last).
pub(super) fn stamp(bin: i64) -> u32 {
    bin.clamp(0, i64::from(u32::MAX)) as u32
}

impl RuleEngine {
    /// The rule's `distributed_spraying` detector, if it has one.
    pub(super) fn distributed_spraying(&self) -> Option<&DistributedSpraying> {
        self.spec.split_by.as_ref()?;
        self.spec
            .detectors
            .iter()
            .find_map(|d| d.detector.as_distributed_spraying())
    }

    /// With a `distributed_spraying` detector, the `(slow sprayers)` series' counts for
    /// `bin` (after the bin's counts were recorded): sources whose window looks like a
    /// slow sprayer (`failure`, an address past `min_accounts` accounts, or with
    /// `min_accounts` of the organisation's own, as two, see
    /// `DistributedSpraying::sources_of`; `failed_ips` counts each once), those of them
    /// that failed in this bin (`total`), the
    /// accounts they tried (`failed_users`, tries closer than `retry_gap` as one).
    ///
    /// Failures in bins an outage explains (see `story`) do not make a sprayer: people
    /// who could not sign in from home and gave up look like one. Nor does an address
    /// that succeeded within `remember`.
    pub(super) fn slow_sprayers(&self, bin: i64, story: &Story) -> Option<(Labels, Counts)> {
        let field = self.spec.split_by.as_ref()?;
        let d = self.distributed_spraying()?;
        let window = i64::from(d.window.max(1));
        let bin_ms = self.spec.bin_ms();
        let known_since = bin - d.remember_bins(bin_ms) + 1;
        let mut c = Counts::default();
        for (labels, s) in &self.series {
            // `(other)` is many sources merged: not one address.
            if labels
                .values()
                .any(|v| is_synthetic(v) || v == OTHER_SERIES)
                || bin - s.last_active_bin >= window
                || self.sprayers.succeeded_since(labels, known_since)
            {
                continue;
            }
            let explained = |b: i64| story.outage_explains(b * bin_ms, (b + 1) * bin_ms, bin_ms);
            let bins = (bin - window + 1..=bin).map(|b| {
                let r = s.history.get(b).filter(|r| r.known);
                let c = r.map(|r| r.counts()).unwrap_or_default();
                // A record without a silent edge may not know its events' times (a
                // source that cannot tell spans the whole bin): no retry is inferred.
                let span = r
                    .filter(|r| r.quiet_before > 0 || r.quiet_after > 0)
                    .and_then(|r| r.span(b, bin_ms));
                if c.failure > 0 && explained(b) {
                    // Not a sprayer's try: fail the test.
                    (Counts { success: 1, ..c }, span)
                } else {
                    (c, span)
                }
            });
            if let Some(accounts) = d.slow_sprayer_accounts(bins) {
                let own = self.sprayers.accounts_since(labels, bin - window + 1, bin);
                c.failure += d.sources_of(accounts, own);
                // `total`: those that tried again in this very bin.
                c.total += u64::from(s.history.counts(bin).is_some_and(|x| x.failure > 0));
                c.failed_ips += 1;
                c.failed_users = c.failed_users.saturating_add(accounts);
            }
        }
        let labels = [(field.clone(), SPRAYERS_SERIES.to_string())].into();
        Some((labels, c))
    }
}

/// A label value that names a count the pipeline makes, not a source.
pub(super) fn is_synthetic(v: &str) -> bool {
    v == SOURCES_SERIES || v == LOCKED_OUT_SERIES || v == SPRAYERS_SERIES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Status;
    use crate::pipeline::testing::{c, ip};
    use crate::pipeline::Pipeline;
    use crate::rule::RuleSpec;
    use crate::series::{BinIndex, FailedAccounts, RuleId};

    /// One failure for one account.
    fn once() -> Counts {
        Counts {
            failed_users: 1,
            ..c(1, 1)
        }
    }

    /// The `(slow sprayers)` count of `bin`.
    fn sprayers(p: &Pipeline, bin: i64) -> u64 {
        let s = &p.rules[0].series[&ip(SPRAYERS_SERIES)];
        s.history.get(bin).map_or(0, |r| u64::from(r.failure))
    }

    fn feed(p: &mut Pipeline, bin: i64, sources: &[(&str, Counts)]) {
        for (v, counts) in sources {
            p.observe(RuleId(0), BinIndex(bin), ip(v), *counts);
        }
        p.close_through(RuleId(0), BinIndex(bin + 1), &mut Vec::new());
    }

    #[test]
    fn a_home_address_whose_success_fell_out_of_the_top_k_is_no_sprayer() {
        // Seed 44 (easy), a busy Monday: a person failed at home, got in (a bin the
        // top-K cut dropped: more failing sources than `top_k`), and failed again.
        let mut r = RuleSpec::password_spraying();
        r.top_k = Some(1);
        let mut p = Pipeline::new(vec![r]);
        let office = Counts {
            failed_users: 3,
            ..c(4, 3)
        };
        feed(&mut p, 4, &[("home", once())]);
        feed(&mut p, 6, &[("home", c(1, 0)), ("office", office)]);
        feed(&mut p, 7, &[("home", once())]);
        feed(&mut p, 8, &[("sprayer", once())]);
        feed(&mut p, 9, &[("sprayer", once())]);
        assert_eq!(sprayers(&p, 7), 0);
        // The sprayer counts once it tried its second account.
        assert_eq!(sprayers(&p, 9), 1);
    }

    #[test]
    fn an_address_that_succeeded_within_remember_is_no_sprayer() {
        let mut p = Pipeline::new(vec![RuleSpec::password_spraying()]);
        feed(&mut p, 0, &[("home", c(1, 0))]);
        // Hours later: one account failing twice, hours apart (seed 51).
        feed(&mut p, 40, &[("home", once())]);
        feed(&mut p, 48, &[("home", once())]);
        assert_eq!(sprayers(&p, 48), 0);
        // Two days later the success is forgotten: a fresh address.
        let later = 2 * 96;
        feed(&mut p, later, &[("home", once())]);
        feed(&mut p, later + 4, &[("home", once())]);
        assert_eq!(sprayers(&p, later + 4), 1);
    }

    /// One failure for the organisation's account `id` (an Okta user id).
    fn own(id: &str) -> Counts {
        Counts {
            failed_accounts: FailedAccounts::of(Some(id), None),
            ..once()
        }
    }

    #[test]
    fn two_of_the_organisations_own_accounts_count_as_two_sources() {
        let mut p = Pipeline::new(vec![RuleSpec::password_spraying()]);
        // A sprayer back an hour later for a second real account: pages by itself.
        feed(
            &mut p,
            0,
            &[("sprayer", own("00ua")), ("home", own("00uc"))],
        );
        // A person failing for their own account twice, hours apart, from an address
        // whose success was more than a day ago (hard seeds 62, 83, 84): one source.
        feed(&mut p, 4, &[("sprayer", own("00ub"))]);
        assert_eq!(sprayers(&p, 4), 2);
        feed(&mut p, 12, &[("home", own("00uc"))]);
        assert_eq!(sprayers(&p, 12), 2 + 1);
        // A bot's two unresolved usernames stay one source, as before.
        feed(&mut p, 13, &[("bot", once())]);
        feed(&mut p, 14, &[("bot", once())]);
        assert_eq!(sprayers(&p, 14), 2 + 1 + 1);
        // Past the window the accounts are forgotten with the tries.
        feed(&mut p, 40, &[("sprayer", own("00ua"))]);
        assert_eq!(sprayers(&p, 40), 0);
        assert!(p.rules[0].sprayers.accounts.values().all(|t| t.len() == 1));
    }

    #[test]
    fn a_third_account_counts_as_a_second_source() {
        let mut p = Pipeline::new(vec![RuleSpec::password_spraying()]);
        feed(&mut p, 0, &[("a", once())]);
        feed(&mut p, 4, &[("a", once())]);
        assert_eq!(sprayers(&p, 4), 1);
        // Its third account, an hour later: evidence a second address would give.
        feed(&mut p, 8, &[("a", once())]);
        assert_eq!(sprayers(&p, 8), 2);
        feed(&mut p, 9, &[("a", once())]);
        assert_eq!(sprayers(&p, 9), 2);
        let s = &p.rules[0].series[&ip(SPRAYERS_SERIES)];
        let r = s.history.get(9).map(|r| r.counts()).unwrap_or_default();
        assert_eq!((r.failed_ips, r.failed_users), (1, 4));
    }

    #[test]
    fn successes_are_forgotten_after_remember() {
        let mut s = Sprayers::new(900_000);
        let seen = |v: &str| -> LabelMap<Counts> { [(ip(v), c(1, 0))].into_iter().collect() };
        s.note_successes(0, &seen("a"), 100);
        s.note_successes(50, &seen("b"), 100);
        assert!(s.succeeded_since(&ip("a"), 0) && !s.succeeded_since(&ip("a"), 1));
        s.note_successes(120, &seen("c"), 100);
        // Pruned at bin 120: "a" (bin 0) is gone, "b" (bin 50) is kept.
        assert!(!s.succeeded_since(&ip("a"), i64::MIN));
        assert!(s.succeeded_since(&ip("b"), 50) && s.succeeded_since(&ip("c"), 120));
        assert_eq!(s.succeeded.len(), 2);
    }

    #[test]
    fn past_the_limit_the_addresses_seen_longest_ago_are_forgotten() {
        let mut m: HashMap<u64, Vec<(u32, u32)>, foldhash::fast::FixedState> = HashMap::default();
        for a in 0..10u32 {
            m.insert(u64::from(a), vec![(0, 1), (a, 2)]);
        }
        let newest = |t: &Vec<(u32, u32)>| t.last().map_or(0, |(b, _)| *b);
        forget_oldest_half(&mut m, 10, newest);
        assert_eq!(m.len(), 10, "at the limit nothing is forgotten");
        m.insert(10, vec![(10, 3)]);
        forget_oldest_half(&mut m, 10, newest);
        let mut kept: Vec<u64> = m.keys().copied().collect();
        kept.sort_unstable();
        assert_eq!(kept, (6..=10).collect::<Vec<u64>>());
    }

    #[test]
    fn the_address_key_is_drawn_anew_for_every_rule() {
        // An attacker who could compute the key in advance could pick an address that
        // passes for one that signed in: two rules (two processes alike) disagree.
        let (a, b) = (Sprayers::new(900_000), Sprayers::new(900_000));
        let home = ip("203.0.113.7");
        assert_ne!(a.key_state.hash_one(&home), b.key_state.hash_one(&home));
    }

    #[test]
    fn a_run_s_stragglers_do_not_page_it_a_second_time() {
        // Hard seed 92: a run's addresses fail again 75 minutes after it went quiet,
        // still inside the four-hour window: the same incident, not a second page.
        let mut p = Pipeline::new(vec![RuleSpec::password_spraying()]);
        let mut out = Vec::new();
        let mut step = |p: &mut Pipeline, b: i64, failing: &[String]| {
            p.observe(RuleId(0), BinIndex(b), ip("office"), c(1, 0));
            for a in failing {
                p.observe(RuleId(0), BinIndex(b), ip(a), once());
            }
            p.close_through(RuleId(0), BinIndex(b + 1), &mut out);
        };
        let run: Vec<String> = (0..12).map(|i| format!("198.18.0.{i}")).collect();
        for b in 1..40 {
            step(&mut p, b, &[]);
        }
        for b in 40..46 {
            step(&mut p, b, &run);
        }
        for b in 46..51 {
            step(&mut p, b, &[]);
        }
        step(&mut p, 51, &run[..3]);
        for b in 52..70 {
            step(&mut p, b, &[]);
        }
        let spraying = |s: Status| {
            out.iter()
                .filter(|a| a.detector == "distributed_spraying" && a.status == s)
                .count()
        };
        assert_eq!(spraying(Status::Firing), 1, "{out:#?}");
        assert_eq!(spraying(Status::Resolved), 1, "{out:#?}");
    }

    #[test]
    fn a_background_of_slow_sprayers_is_learned_and_stops_paging() {
        // Every bin a fresh address fails for one account and comes back the next bin
        // for another, day and night: about sixteen slow sprayers in any four hours.
        let mut p = Pipeline::new(vec![RuleSpec::password_spraying()]);
        let mut out = Vec::new();
        let day = 96;
        let once = Counts {
            failed_users: 1,
            ..c(1, 1)
        };
        let mut firing_by_day = vec![0; 14];
        for b in 1..(14 * day) {
            for a in [b, b - 1] {
                p.observe(
                    RuleId(0),
                    BinIndex(b),
                    ip(&format!("10.0.{}.{}", a / 256, a % 256)),
                    once,
                );
            }
            p.close_through(RuleId(0), BinIndex(b + 1), &mut out);
            firing_by_day[(b / day) as usize] += out
                .drain(..)
                .filter(|a| a.detector == "distributed_spraying" && a.status == Status::Firing)
                .count();
        }
        // It pages at first; the level learned over the days then holds it.
        assert!(firing_by_day[0] > 0, "{firing_by_day:?}");
        assert_eq!(firing_by_day[13], 0, "{firing_by_day:?}");
    }
}
