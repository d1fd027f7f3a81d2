//! `distinct_users`: one source fails for many different accounts — password spraying.
//!
//! A sprayer tries one or two common passwords against many accounts, slowly, from a
//! handful of addresses, so the rule's totals barely move. Per source the pattern is
//! plain: over the last few hours the address failed for many *distinct* users and
//! almost never succeeded. A person fails for one account (their own); an office NAT
//! fails for many accounts but succeeds far more often than it fails.
//!
//! Over a trailing window of `window` bins (this bin included) the detector adds up the
//! source's failed attempts F, successes S and distinct failing users U, and flags the
//! bin when
//!
//! * U ≥ `min_users`, and
//! * at least `min_failure_share` of the window's attempts failed, and F failures out
//!   of F + S attempts is unlikely for a normal source, whose failures are at most a
//!   `null_failure_share` of its attempts (binomial upper tail ≤ `p_value`), and
//! * the source failed more than it succeeded in this bin (so the alert resolves once
//!   it stops, and an office whose sign-ins failed during an outage an hour ago is not
//!   flagged now that they succeed again).
//!
//! A window without failures is judged normal (not skipped), so an alert resolves
//! however sparse the source's series is.
//!
//! Runs on split rules (`split_by = "client.ipAddress"`); the `(other)` remainder of a
//! top-K split is many sources, not one, and is not judged.

use super::{
    read_bins, read_p_value, read_share, severity_from, BinContext, Detector, DetectorKind,
    Finding, SeriesKind,
};
use std::sync::Arc;

use crate::config_reader::{Problems, Table};
use crate::stats::binomial_upper_tail;

#[derive(Debug, Clone, PartialEq)]
pub struct DistinctUsers {
    pub p_value: f64,
    /// Trailing window, in bins.
    pub window: u32,
    pub min_users: u64,
    /// The largest failure share a legitimate source plausibly has.
    pub null_failure_share: f64,
    /// Flag only sources whose attempts in the window failed at least this often.
    pub min_failure_share: f64,
}

impl DistinctUsers {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> DistinctUsers {
        DistinctUsers {
            p_value: read_p_value(t, 1e-6, problems),
            window: read_bins(t, "window", 16, problems),
            min_users: t.count("min_users", 2, problems).unwrap_or(10),
            null_failure_share: read_share(t, "null_failure_share", 0.2, problems),
            min_failure_share: read_share(t, "min_failure_share", 0.8, problems),
        }
    }
}

impl Detector for DistinctUsers {
    fn kind(&self) -> DetectorKind {
        DetectorKind::DistinctUsers
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

    /// Flags only a bin with more failures than successes.
    fn quiet_on_empty_bin(&self, _kind: SeriesKind) -> bool {
        true
    }

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        ctx.expected?;
        if ctx.aggregate {
            return None;
        }
        let w = ctx.window_sum(self.window);
        let attempts = w.failure + w.success;
        let p_value = if w.failure == 0 {
            // Most sources, most bins: nothing failed, nothing to test.
            1.0
        } else {
            binomial_upper_tail(w.failure, attempts, self.null_failure_share)
        };
        let share = w.failure as f64 / attempts.max(1) as f64;
        let users = w.failed_users;
        let x = users as f64;
        Some(Finding {
            // Distinct counts add up over the window's bins (an upper bound), so one
            // account failing in every bin (a service account with a stale password)
            // would look like many: a sprayer tries each account about once, so its
            // failures come with about as many accounts; half is the bar.
            anomalous: ctx.counts.failure > ctx.counts.success
                && users >= self.min_users
                && 2 * users >= w.failure
                && share >= self.min_failure_share
                && p_value <= self.p_value,
            observed: x,
            expected: self.null_failure_share * attempts as f64,
            lower: 0.0,
            upper: self.min_users as f64,
            p_value,
            severity: severity_from(p_value, self.p_value, x / self.min_users as f64),
            measure: "distinct users failing from one source",
            window_bins: 1,
            evidence_bins: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::series::{BinRecord, Counts, History};
    use proptest::prelude::*;

    fn det() -> DistinctUsers {
        let mut p = Problems::default();
        let mut t = Table::new("", None, &mut p);
        DistinctUsers::read(&mut t, &mut p)
    }

    /// A source that failed `per_bin` times against as many users, for `bins` bins.
    fn sprayer(bins: i64, per_bin: u32, success: u32) -> History {
        let mut h = History::new(16);
        for b in 0..bins {
            h.push(
                b,
                BinRecord {
                    total: per_bin + success,
                    success,
                    failure: per_bin,
                    failed_users: per_bin,
                    known: true,
                    ..BinRecord::default()
                },
            );
        }
        h
    }

    fn bin(failure: u64, users: u64, success: u64) -> Counts {
        Counts {
            total: failure + success,
            success,
            failure,
            failed_users: users,
            failed_ips: 1,
            ..Counts::default()
        }
    }

    #[test]
    fn low_and_slow_spraying_adds_up() {
        // Two accounts every 15 minutes for three hours.
        let h = sprayer(12, 2, 0);
        let f = det()
            .evaluate(&ctx(&h, bin(2, 2, 0), Some(expected(0.0, 0.0, 0.0))))
            .unwrap();
        assert!(f.anomalous, "{f:?}");
        assert_eq!(f.observed, 26.0);
    }

    #[test]
    fn an_office_recovering_from_an_outage_is_not_a_sprayer() {
        // An hour of failing sign-ins, then normal ones again.
        let h = sprayer(4, 40, 2);
        let f = det()
            .evaluate(&ctx(&h, bin(3, 3, 60), Some(expected(60.0, 57.0, 3.0))))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn an_office_nat_fails_for_many_but_succeeds_more() {
        let h = sprayer(15, 4, 120);
        let f = det()
            .evaluate(&ctx(&h, bin(4, 4, 120), Some(expected(124.0, 120.0, 4.0))))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn a_locked_out_person_is_one_user() {
        let h = sprayer(0, 0, 0);
        let f = det()
            .evaluate(&ctx(&h, bin(15, 1, 0), Some(expected(0.0, 0.0, 0.0))))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn aggregates_and_warmup_are_not_judged() {
        let h = sprayer(12, 5, 0);
        let mut c = ctx(&h, bin(5, 5, 0), Some(expected(0.0, 0.0, 0.0)));
        c.aggregate = true;
        assert_eq!(det().evaluate(&c), None);
        assert_eq!(det().evaluate(&ctx(&h, bin(5, 5, 0), None)), None);
    }

    proptest! {
        /// Fewer than `min_users` distinct users never pages, however lopsided.
        #[test]
        fn few_users_never_page(failure in 1u64..10_000, users in 1u64..10, success in 0u64..100) {
            let h = History::new(16);
            let f = det().evaluate(&ctx(&h, bin(failure, users, success), Some(expected(0.0, 0.0, 0.0)))).unwrap();
            prop_assert!(!f.anomalous);
        }

        /// More successes never make a source more suspicious.
        #[test]
        fn successes_only_lower_suspicion(failure in 1u64..200, success in 0u64..200, more in 1u64..200) {
            let h = History::new(16);
            let e = Some(expected(0.0, 0.0, 0.0));
            let a = det().evaluate(&ctx(&h, bin(failure, failure, success), e)).unwrap();
            let b = det().evaluate(&ctx(&h, bin(failure, failure, success + more), e)).unwrap();
            prop_assert!(b.p_value >= a.p_value);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// A legitimate source at the edge of the null — its attempts fail at exactly
        /// `null_failure_share`, each failure for a different account (the worst case
        /// for the users' floor) — pages at most at the configured `p_value` once the
        /// floors are off: the window's binomial test holds its size (the bin's own
        /// majority of failures only lowers the rate).
        #[test]
        fn quiet_traffic_pages_at_most_at_the_configured_rate(share in 0.5f64..0.9, rate in 0.5f64..10.0, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Binomial, Distribution, Poisson};
            let p_value = 0.01;
            let d = DistinctUsers { p_value, window: 16, min_users: 0, null_failure_share: share, min_failure_share: 0.0 };
            let attempts = Poisson::new(rate).unwrap();
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut h = History::new(32);
            // 24,000 bins: pages come in runs (a window that holds a cluster stays
            // anomalous for several bins), so the rate of 6,000 bins scattered up to
            // 1.5x p_value across seeds at a true rate under p_value.
            let bins = 24_000i64;
            let mut pages = 0u32;
            for b in 0..bins {
                let n = attempts.sample(&mut rng) as u64;
                let failure = Binomial::new(n, share).unwrap().sample(&mut rng);
                let c = bin(failure, failure, n - failure);
                let mut cx = ctx(&h, c, Some(expected(0.0, 0.0, 0.0)));
                cx.bin = b;
                pages += u32::from(d.evaluate(&cx).unwrap().anomalous);
                h.push(b, BinRecord::from_counts(c, b, 900_000));
            }
            let rate = f64::from(pages) / bins as f64;
            prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
        }
    }
}
