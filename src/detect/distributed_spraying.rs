//! `distributed_spraying`: a sprayer that spreads its tries over several addresses and
//! hours — 4–8 addresses, a handful of accounts each, one try per account, over 3–4
//! hours, never a success. No address fails often enough for `distinct_users` (ten
//! accounts from one address) and the totals barely move; what gives it away is the
//! shape across sources.
//!
//! Split rules by address count, per bin, the addresses whose last `window` bins (4
//! hours by default) hold failures for at least `min_accounts` accounts, at most one try
//! per account in each bin (a person retrying, or a service account with a stale
//! password, fails again and again for one account), in at least two different bins (a
//! bot's burst tries its accounts within a minute: low and slow is spread over time),
//! and no success at all: the `(slow sprayers)` series (`failure` = those addresses,
//! `failed_users` = the accounts they tried; `total` = the addresses that failed in
//! this bin once per account without a success, first tries included). Normal traffic
//! has next to none — a stray scanner comes from a fresh address each time, a person
//! who gives up tried one account, an office NAT succeeds all day — so the detector
//! flags the bin when at least `min_sources` such addresses are seen and that many is
//! unlikely (Poisson upper tail at most `p_value`) under their long-run level (learned
//! over days, see `long_run`; never below `null_sources`). The thresholds decide: they
//! are what an operator can reason about, the p-value is a reading aid.
//!
//! Once one slow sprayer is in the window, a second test counts the evidence a
//! sprayer's other addresses already gave — their first tries — against the learned
//! level of such tries (see [`DistributedSpraying::first_tries`]).
//!
//! Two such addresses are enough by default (`min_sources = 2`): an address only counts
//! once it tried its second account, and with two to five accounts each spread over
//! hours, waiting for a third address took half the run (a median of 9.7 bins on the
//! simulator's hard setting, 4.3 with two; two addresses each failing for two accounts
//! and never succeeding within four hours did not occur in four weeks of its benign
//! traffic, reset waves, NATs and VPN changes included).
//!
//! Only the `(slow sprayers)` series is judged; every other series is left alone.

use std::sync::Arc;

use super::{read_bins, read_p_value, severity_from, BinContext, Detector, DetectorKind, Finding};
use crate::config_reader::{Problems, Table};
use crate::detect::baseline::Expected;

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
    /// for the p-value: the level learned over days (see `long_run`) is used when it
    /// is higher. The count is a rolling 4-hour statistic that rises slowly during an
    /// attack, so a baseline learned from its own recent bins would chase it.
    pub null_sources: f64,
}

impl DistributedSpraying {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> DistributedSpraying {
        DistributedSpraying {
            p_value: read_p_value(t, 5e-3, problems),
            window: read_bins(t, "window", 16, problems),
            min_accounts: t.count("min_accounts", 2, problems).unwrap_or(2),
            min_sources: t.count("min_sources", 1, problems).unwrap_or(2),
            null_sources: super::read_positive(t, "null_sources", 0.1, problems),
        }
    }

    /// What one source's last `window` bins (newest last) say of it: a slow sprayer (no
    /// success, at most one failure per account in each bin, at least `min_accounts`
    /// accounts, tried in two bins or more), a source trying its first accounts (no
    /// success, one failure per account, but one account only or all its tries in one
    /// bin: a stray bot, a bot's burst, or a sprayer's first try), or neither.
    pub fn shape(&self, bins: impl Iterator<Item = crate::series::Counts>) -> SourceShape {
        let (mut accounts, mut tried_bins) = (0u64, 0u32);
        for c in bins {
            if c.success > 0 || c.failure > c.failed_users.max(1) {
                return SourceShape::Other;
            }
            accounts += c.failed_users.min(c.failure);
            tried_bins += u32::from(c.failure > 0);
        }
        if accounts >= self.min_accounts && tried_bins >= 2 {
            SourceShape::SlowSprayer
        } else if accounts > 0 {
            SourceShape::FirstTries
        } else {
            SourceShape::Other
        }
    }
}

/// See [`DistributedSpraying::shape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceShape {
    SlowSprayer,
    FirstTries,
    Other,
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
    fn quiet_on_empty_bin(&self, _ctx: &BinContext<'_>) -> bool {
        true
    }

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        if !ctx.sprayers {
            return None;
        }
        let learned = ctx.expected?;
        let sources = ctx.counts.failure;
        // The learned level of slow sprayers, never below the configured one: a tenant
        // whose background holds some (bots that come back for a second account) needs
        // more of them to page.
        let level = self.null_sources.max(learned.failure);
        let p_value = poisson_upper_tail(sources, level);
        let bound = (0..)
            .find(|&k| poisson_upper_tail(k, level) <= self.p_value)
            .unwrap_or(u64::MAX);
        let upper = (self.min_sources as f64).max(bound as f64);
        let x = sources as f64;
        // Only while one of them is still trying: a finished run's sources stay in the
        // window for hours, and must not page again or keep the alert open.
        let sprayers = x >= upper && p_value <= self.p_value && ctx.counts.failed_ips > 0;
        let first = self.first_tries(ctx, learned);
        if !sprayers && sources > 0 && ctx.counts.total > 0 {
            if let Some(f) = first.filter(|f| f.anomalous) {
                return Some(f);
            }
        }
        Some(Finding {
            anomalous: sprayers,
            observed: x,
            expected: level,
            lower: 0.0,
            upper,
            p_value,
            severity: severity_from(p_value, self.p_value, x / self.min_sources as f64),
            measure: SPRAYERS_MEASURE,
            window_bins: self.window,
        })
    }
}

/// What the sprayers test counts.
const SPRAYERS_MEASURE: &str = "sources failing once each for several accounts, never succeeding";
/// What the first-tries test counts.
pub const FIRST_TRIES_MEASURE: &str = "sources failing once per account, never succeeding";

impl DistributedSpraying {
    /// The second test, once a slow sprayer is in the window: the sources that failed
    /// once per account without a success (`total` of the `(slow sprayers)` series: a
    /// sprayer's first tries from its other addresses, and stray bots) summed over the
    /// last hour and two, against the learned level per bin (`expected.total`, used
    /// once a day of bins was learned), each window at `p_value / 2`. A sprayer's
    /// other addresses each try their first account long before their second, so this
    /// can page as its first address comes back instead of its second.
    fn first_tries(&self, ctx: &BinContext<'_>, learned: Expected) -> Option<Finding> {
        // A day of bins learned first; the level never below one such source a day.
        let day = (86_400_000 / ctx.bin_ms.max(1)).max(1);
        if learned.samples < day as usize {
            return None;
        }
        let since = ctx
            .bin
            .saturating_sub(ctx.evidence_since)
            .saturating_add(1)
            .max(1);
        let per_window = self.p_value / FIRST_TRIES_WINDOWS.len() as f64;
        let level = learned.total.max(1.0 / day as f64);
        FIRST_TRIES_WINDOWS
            .iter()
            .map(|&w| {
                w.min(self.window)
                    .min(since.min(i64::from(u32::MAX)) as u32)
            })
            .map(|w| {
                let x = ctx.window_sum(w).total;
                let expected = level * f64::from(w);
                let p_value = poisson_upper_tail(x, expected);
                let upper = (0..)
                    .find(|&k| poisson_upper_tail(k, expected) <= per_window)
                    .unwrap_or(u64::MAX) as f64;
                Finding {
                    anomalous: p_value <= per_window,
                    observed: x as f64,
                    expected,
                    lower: 0.0,
                    upper,
                    p_value,
                    severity: severity_from(p_value, per_window, x as f64 / upper.max(1.0)),
                    measure: FIRST_TRIES_MEASURE,
                    window_bins: w,
                }
            })
            .min_by(|a, b| a.p_value.total_cmp(&b.p_value))
    }
}

/// The windows (in bins) of the first-tries test: an hour and two of 15-minute bins.
/// Not four: its sum still holds the first tries of a stuffing run that ended hours
/// before (each proxy tries an account or two), which then paged after it was over.
const FIRST_TRIES_WINDOWS: [u32; 2] = [4, 8];

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

    #[test]
    fn one_try_per_account_spread_over_bins_and_never_a_success_is_a_slow_sprayer() {
        let d = det();
        let shape = |bins: &[Counts]| d.shape(bins.iter().copied());
        let sprayer = [c(0, 1, 1), c(0, 0, 0), c(0, 1, 1), c(0, 0, 0)];
        assert_eq!(shape(&sprayer), SourceShape::SlowSprayer);
        // One account only: a person who gave up, or a sprayer's first try.
        assert_eq!(shape(&[c(0, 1, 1), c(0, 0, 0)]), SourceShape::FirstTries);
        // A bot's burst: three accounts within one bin, never again. Not low and slow.
        assert_eq!(shape(&[c(0, 3, 3), c(0, 0, 0)]), SourceShape::FirstTries);
        // A success: an office or a home.
        assert_eq!(shape(&[c(0, 1, 1), c(1, 1, 1)]), SourceShape::Other);
        // The same account again and again: a service account with a stale password.
        assert_eq!(shape(&[c(0, 4, 1), c(0, 3, 1)]), SourceShape::Other);
        assert_eq!(shape(&[c(0, 0, 0)]), SourceShape::Other);
    }

    /// The `(slow sprayers)` counts of a bin: `sprayers` slow sprayers in the window,
    /// `trying` of them failing in this bin, `first` sources failing for the first time.
    fn bin(sprayers: u64, trying: u64, first: u64) -> Counts {
        let mut x = c(0, sprayers, 2 * sprayers);
        x.failed_ips = trying;
        x.total = trying + first;
        x
    }

    /// A level learned over more than a day: `first` first tries a bin, `sprayers`
    /// slow sprayers.
    fn learned(first: f64, sprayers: f64) -> Expected {
        Expected {
            samples: 500,
            ..expected(first, 0.0, sprayers)
        }
    }

    #[test]
    fn pages_on_several_sources_and_only_judges_its_series() {
        let h = History::new(16);
        let mut cx = ctx(&h, bin(4, 1, 0), Some(learned(0.5, 0.0)));
        assert_eq!(det().evaluate(&cx), None);
        cx.sprayers = true;
        let f = det().evaluate(&cx).unwrap();
        assert!(f.anomalous, "{f:?}");
        // Two are enough by default; one is not.
        cx.counts = bin(2, 1, 0);
        assert!(det().evaluate(&cx).unwrap().anomalous);
        cx.counts = bin(1, 1, 0);
        assert!(!det().evaluate(&cx).unwrap().anomalous);
        // Four sprayers in the window, none trying in this bin: the run is over.
        cx.counts = bin(4, 0, 0);
        assert!(!det().evaluate(&cx).unwrap().anomalous);
    }

    #[test]
    fn a_background_of_slow_sprayers_raises_the_bar() {
        let h = History::new(16);
        let mut cx = ctx(&h, bin(2, 1, 0), Some(learned(0.5, 1.0)));
        cx.sprayers = true;
        // Two where one is usual is not unlikely; six is.
        assert!(!det().evaluate(&cx).unwrap().anomalous);
        cx.counts = bin(6, 1, 0);
        let f = det().evaluate(&cx).unwrap();
        assert!(f.anomalous && f.upper > 2.0, "{f:?}");
    }

    /// A history of `(slow sprayers)` bins, oldest first, ending at bin 99.
    fn history(bins: &[Counts]) -> History {
        let mut h = History::new(16);
        for (i, c) in bins.iter().enumerate() {
            let b = 100 - bins.len() as i64 + i as i64;
            h.push(b, crate::series::BinRecord::from_counts(*c, b, 15 * 60_000));
        }
        h
    }

    #[test]
    fn one_sprayer_pages_when_its_other_addresses_first_tries_are_unlikely() {
        // Seven first tries in the hour before, where one in two bins is usual.
        let h = history(&[bin(0, 0, 2), bin(0, 0, 3), bin(0, 0, 2)]);
        let mut cx = ctx(&h, bin(1, 1, 1), Some(learned(0.5, 0.0)));
        cx.sprayers = true;
        let f = det().evaluate(&cx).unwrap();
        assert!(f.anomalous, "{f:?}");
        assert_eq!(
            (f.measure, f.window_bins, f.observed),
            (FIRST_TRIES_MEASURE, 4, 9.0)
        );
        // The same first tries without a slow sprayer: stray bots.
        cx.counts = bin(0, 0, 1);
        assert!(!det().evaluate(&cx).unwrap().anomalous);
        // Where first tries are that common, they say nothing.
        cx.counts = bin(1, 1, 1);
        cx.expected = Some(learned(2.5, 0.0));
        assert!(!det().evaluate(&cx).unwrap().anomalous);
        // Nor before a day of bins was learned.
        cx.expected = Some(Expected {
            samples: 20,
            ..learned(0.5, 0.0)
        });
        assert!(!det().evaluate(&cx).unwrap().anomalous);
        // Nor over bins whose evidence already paged.
        cx.expected = Some(learned(0.5, 0.0));
        cx.evidence_since = 100;
        assert!(!det().evaluate(&cx).unwrap().anomalous);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// Counts drawn from the learned (Poisson) levels — slow sprayers in the window,
        /// first tries in each bin — page at most at about the configured rate.
        #[test]
        fn quiet_traffic_pages_at_most_at_the_configured_rate(sprayers in 0.05f64..3.0, first in 0.05f64..3.0, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Poisson};
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let (ps, pf) = (Poisson::new(sprayers).unwrap(), Poisson::new(first).unwrap());
            let d = DistributedSpraying { p_value: 0.01, window: 16, min_accounts: 2, min_sources: 1, null_sources: 0.01 };
            let mut h = History::new(16);
            let mut pages = 0u32;
            let n = 20_000u32;
            for b in 0..i64::from(n) {
                // Of the sources failing in this bin (drawn at the learned level), the
                // sprayers in the window may be some.
                let (k, now) = (ps.sample(&mut rng) as u64, pf.sample(&mut rng) as u64);
                let x = bin(k, k.min(now), now - k.min(now));
                let mut cx = ctx(&h, x, Some(learned(first, sprayers)));
                cx.bin = b;
                cx.sprayers = true;
                pages += u32::from(d.evaluate(&cx).unwrap().anomalous);
                h.push(b, crate::series::BinRecord::from_counts(x, b, 15 * 60_000));
            }
            let rate = f64::from(pages) / f64::from(n);
            // Two tests at 0.01 each: at most about 0.02.
            proptest::prop_assert!(rate <= 0.025, "rate {rate}");
        }
    }
}
