//! `failure_ratio`: the share of attempts that fail is far above its baseline share, in
//! this bin or over a sliding window of recent bins.
//!
//! This catches attacks that hide in busy periods, when the failure count rises less
//! than the noise of the total but the share clearly moves, and outages at thin hours,
//! when everybody's sign-in fails but the failures are too few for a spike. The test is
//! binomial: with `n` attempts and baseline failure share `p`, how unlikely are `k` or
//! more failures? It weighs the number of attempts properly — 6 failures of 10 is weak
//! evidence, 600 of 1,000 is overwhelming.
//!
//! # Evidence that accumulates
//! A whole organisation that cannot sign in on a quiet mid-morning (thirty people a
//! quarter-hour, nearly every attempt failing for an hour) is beyond doubt over the
//! hour, while its single bins may not be: the first bin holds the outage's start, and
//! the failures of an hour teach the dispersion the test inflates its null by, so each
//! further bin alone weighs less (outside traffic, seed 17: one bin of four paged, the
//! lifecycle wants two). So, as `failure_spike` does, the detector also judges the sums
//! over the last `w` bins for every `w` in `windows` (by default 1, 2 and 4 bins) against
//! the baseline's share over the same bins, each length at `p_value / windows.len()`
//! (Bonferroni). The floors apply to the window: at least `min_count` failures in it,
//! its share at least `min_ratio` times the baseline's. A window is judged only while
//! this bin itself shows the raised share, over bins that were all known and expected,
//! never back past the bin after this series' last alert resolved. The bins of a
//! window that paged count as evidence towards `bins_to_fire` when each showed the
//! raised share on its own (`Finding::evidence_bins`): the window's test pooled them, and
//! they share the anomaly.
//!
//! A window pages only for sign-ins that fail and stop succeeding: at least
//! [`WINDOW_MIN_SHARE`] of its attempts failed, and at most
//! [`WINDOW_MAX_SUCCESS_FRACTION`] of the successes it expected came. A help-desk password
//! reset wave raises the failing share for hours while everybody still gets in (each
//! person fails once with the old password); a service account with a stale password
//! failing three times a quarter-hour all night, beside the night's few people, holds
//! the share near 0.6 against a season that expects almost no failure at night, from
//! a dozen distinct accounts an hour (its own and the night's strays). On outside
//! traffic (seeds 1–20) windows without these guards paged seven reset waves and
//! service-account nights; seed 17's outage is 0.8 over its first half-hour, with a
//! third of the successes expected. Attacks that hide in the failures over a window
//! are `failure_spike`'s.

use std::sync::Arc;

use super::baseline::failure_share;
use super::spike::window_dispersion;
use super::{
    read_p_value, read_positive, severity_from, BinContext, Detector, DetectorKind, Finding,
};
use crate::config_reader::{Problems, Table};
use crate::stats::binomial_upper_tail;

/// The sliding windows (in bins) a failure share is judged over by default: this bin, and
/// the last 2 and 4 bins (15 minutes to an hour of 15-minute bins).
pub const DEFAULT_WINDOWS: [u32; 3] = [1, 2, 4];

/// A window longer than a bin pages only when its successes are at most this share of
/// what its bins expected (see the module docs).
pub const WINDOW_MAX_SUCCESS_FRACTION: f64 = 0.5;

/// A window longer than a bin pages only when at least this share of its attempts
/// failed (see the module docs).
pub const WINDOW_MIN_SHARE: f64 = 0.75;

#[derive(Debug, Clone, PartialEq)]
pub struct FailureRatio {
    pub p_value: f64,
    /// At least this many failures in the bin (in the window, for a window).
    pub min_count: u64,
    /// The observed share must be at least this many times the baseline share.
    pub min_ratio: f64,
    /// Window lengths in bins, ascending, starting with 1 (this bin alone).
    pub windows: Vec<u32>,
}

impl FailureRatio {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> FailureRatio {
        FailureRatio {
            p_value: read_p_value(t, 1e-6, problems),
            min_count: t.count("min_count", 0, problems).unwrap_or(20),
            min_ratio: read_positive(t, "min_ratio", 2.0, problems),
            windows: super::spike::read_windows(t, DEFAULT_WINDOWS.to_vec(), problems),
        }
    }

    /// Judge one window's sums, tested at `p_threshold`.
    fn judge(&self, s: &Sums, phi: f64, p_threshold: f64) -> Finding {
        let base = failure_share(s.e_failure, s.e_total);
        // Real traffic is noisier than a binomial; inflating the null share by the
        // learned dispersion keeps a busy, slightly-worse-than-usual hour from paging.
        // Over a window the dispersion of the summed failures is that of a sum of
        // independent negative binomials (see `failure_spike`).
        let phi_w = window_dispersion(phi, s.e_failure, s.e_failure_sq);
        let null = (base * (1.0 + 2.0 * phi_w.sqrt())).min(0.99);
        let p_value = binomial_upper_tail(s.failure, s.total, null);
        let share = if s.total > 0 {
            s.failure as f64 / s.total as f64
        } else {
            0.0
        };
        let upper = (base * self.min_ratio).min(1.0);
        // A window is an outage's evidence: nearly every attempt failed, and the
        // successes it expected collapsed (see the module docs).
        let collapsed = s.bins <= 1
            || (share >= WINDOW_MIN_SHARE
                && (s.total - s.failure) as f64
                    <= WINDOW_MAX_SUCCESS_FRACTION * s.e_success_seasonal);
        Finding {
            anomalous: p_value <= p_threshold
                && s.failure >= self.min_count
                && share >= upper
                && collapsed
                && spread(s, self.min_count),
            observed: share,
            expected: base,
            lower: 0.0,
            upper,
            p_value,
            severity: severity_from(p_value, p_threshold, share / base),
            measure: "failure share",
            window_bins: s.bins,
            evidence_bins: s.raised.max(1),
        }
    }
}

/// Whether the extra failures of a window come from many people. As for
/// `failure_spike`: the extra failures must come with extra accounts (an attack tries
/// each about once), unless they are beyond any retry storm of people who still get in
/// — ten times the usual failures *and* most attempts failing (a help-desk reset wave
/// passes ten times a quiet afternoon's failures while most sign-ins succeed) — or most
/// attempts fail from at least one account per four failures: nobody gets in, and people
/// try two or three times before they give up (an outage at a thin hour, where ten times
/// the usual failures is more people than there are: outside traffic, seed 17, 48
/// failures of 60 from 21 accounts in half an hour). And the accounts alone must reach
/// half the failure floor (`min_count`; over a window the bins' distinct accounts add
/// up): one account failing all night (a service account with a stale password, most
/// of a night's attempts) is Okta's lockout's business, not a page. Skipped without
/// distinct-user counts.
fn spread(s: &Sums, min_count: u64) -> bool {
    let extra = s.failure as f64 - s.e_failure;
    let users = s.failed_users as f64;
    s.failed_users == 0
        || (2 * s.failed_users >= min_count
            && (super::spike::beyond_retry_storm(s.failure, s.total, s.e_failure.max(1.0))
                || users - s.e_failure >= super::spike::SPREAD * extra
                || (2 * s.failure >= s.total && 4 * s.failed_users >= s.failure)))
}

/// The successes expected of a bin that expected `total` attempts (`failure` of them
/// failing) after the level factor, `seasonal_total` before it.
fn seasonal_success(total: f64, failure: f64, seasonal_total: f64) -> f64 {
    if total <= 0.0 {
        return 0.0;
    }
    (total - failure).max(0.0) * seasonal_total / total
}

/// One window's sums: counts and what the baseline expected of them.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    bins: u32,
    failure: u64,
    total: u64,
    failed_users: u64,
    e_failure: f64,
    e_failure_sq: f64,
    e_total: f64,
    /// The successes the season expected, before the recent level scaled them: an
    /// attack's own attempts raise the level (and with it every expectation of the
    /// bins after its start), so a level-scaled expectation of successes would see
    /// them collapse under an attack at a thin hour.
    e_success_seasonal: f64,
    /// How many of the bins showed the raised share on their own.
    raised: u32,
}

impl Sums {
    /// Add one bin: `failure` of `total` attempts failed, from `failed_users` accounts,
    /// where `e_failure` of `e_total` were expected (`seasonal_total` attempts before the
    /// level factor); `raised` when the bin's own share was. The current bin comes as
    /// counts and an `f64` expectation, the earlier ones as records: plain numbers serve
    /// both.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        failure: u64,
        total: u64,
        failed_users: u64,
        e_failure: f64,
        e_total: f64,
        seasonal_total: f64,
        raised: bool,
    ) {
        self.bins += 1;
        self.failure += failure;
        self.total += total;
        self.failed_users += failed_users;
        self.e_failure += e_failure;
        self.e_failure_sq += e_failure * e_failure;
        self.e_total += e_total;
        self.e_success_seasonal += seasonal_success(e_total, e_failure, seasonal_total);
        self.raised += u32::from(raised);
    }
}

impl Detector for FailureRatio {
    fn kind(&self) -> DetectorKind {
        DetectorKind::FailureRatio
    }

    fn window_bins(&self) -> u32 {
        self.windows.last().copied().unwrap_or(1)
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
        Some(self.min_count)
    }

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        let e = ctx.expected?;
        let c = ctx.counts;
        if c.total == 0 {
            return None;
        }
        let phi = ctx.dispersion.failure;
        let p_threshold = self.p_value / self.windows.len().max(1) as f64;
        // Whether a bin's own share is raised (at least `min_ratio` times its baseline's).
        let raised = |failure: u64, total: u64, e_failure: f64, e_total: f64| {
            total > 0
                && failure as f64
                    >= self.min_ratio * failure_share(e_failure, e_total) * total as f64
        };
        let hot = raised(c.failure, c.total, e.failure, e.total);
        let mut sums = Sums::default();
        sums.add(
            c.failure,
            c.total,
            c.failed_users,
            e.failure,
            e.total,
            e.seasonal_total,
            hot,
        );
        let first = self.judge(&sums, phi, p_threshold);
        if first.anomalous || self.windows.len() <= 1 || !hot {
            return Some(first);
        }
        // Longer windows: walk back once, judging at each configured length.
        let mut best: Option<Finding> = None;
        for &w in self.windows.iter().filter(|&&w| w > 1) {
            while sums.bins < w {
                let bin = ctx.bin - i64::from(sums.bins);
                let record = ctx
                    .history
                    .get(bin)
                    .filter(|r| bin >= ctx.evidence_since && r.known && r.expected_failure >= 0.0);
                let Some(r) = record else {
                    return Some(best.unwrap_or(first));
                };
                let (ef, et) = (f64::from(r.expected_failure), f64::from(r.expected_total));
                let (failure, total) = (u64::from(r.failure), u64::from(r.total));
                sums.add(
                    failure,
                    total,
                    u64::from(r.failed_users),
                    ef,
                    et,
                    f64::from(r.seasonal_total),
                    raised(failure, total, ef, et),
                );
            }
            let f = self.judge(&sums, phi, p_threshold);
            if f.anomalous && best.as_ref().is_none_or(|b| f.p_value < b.p_value) {
                best = Some(f);
            }
        }
        Some(best.unwrap_or(first))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::detect::baseline::Expected;
    use crate::series::{BinRecord, Counts, History};

    fn det() -> FailureRatio {
        FailureRatio {
            p_value: 1e-6,
            min_count: 20,
            min_ratio: 2.0,
            windows: DEFAULT_WINDOWS.to_vec(),
        }
    }

    /// A record of a bin that held `failure` of `total` (from `users` accounts) where
    /// `expected_failure` of `expected_total` were expected.
    fn record(
        total: u32,
        failure: u32,
        users: u32,
        expected_total: f32,
        expected_failure: f32,
    ) -> BinRecord {
        BinRecord {
            total,
            success: total - failure,
            failure,
            failed_users: users,
            known: true,
            seasonal_total: expected_total,
            expected_total,
            expected_failure,
            ..BinRecord::default()
        }
    }

    /// Outside traffic, seed 17, Wed 4 Nov: both tenants' sign-ins fail from 09:51Z on a
    /// thin mid-morning (about 25 sign-ins a quarter-hour, a fifth failing as a rule). The
    /// quarter-hour of 09:45 held 17 failures of 28, that of 10:00 31 of 32; the hour's
    /// failures had raised the learned failure dispersion to 0.52.
    fn thin_morning_outage() -> (History, Counts, Expected) {
        let mut h = History::new(16);
        for b in 90..99 {
            h.push(b, record(25, 5, 5, 24.0, 5.0));
        }
        h.push(99, record(28, 17, 14, 24.2, 5.0));
        let mut c = counts(32, 1, 31);
        c.failed_users = 24;
        (h, c, expected(18.2, 14.2, 4.0))
    }

    #[test]
    fn a_whole_organisation_failing_at_a_thin_hour_pages_on_its_window() {
        let (h, c, e) = thin_morning_outage();
        let mut cx = ctx(&h, c, Some(e));
        cx.bin = 100;
        cx.dispersion.failure = 0.524;
        let single = FailureRatio {
            windows: vec![1],
            ..det()
        };
        let alone = single.evaluate(&cx).unwrap();
        let f = det().evaluate(&cx).unwrap();
        assert!(f.anomalous, "{f:?}");
        assert!(f.p_value < alone.p_value, "{f:?} vs {alone:?}");
        assert_eq!((f.window_bins, f.evidence_bins), (2, 2), "{f:?}");
        assert!(f.observed > 0.75 && f.expected < 0.3, "{f:?}");
        // What already paged is not added up again.
        cx.evidence_since = 100;
        let f = det().evaluate(&cx).unwrap();
        assert_eq!(f.window_bins, 1, "{f:?}");
    }

    #[test]
    fn one_account_failing_all_night_is_not_a_window() {
        // Eight failures a quarter-hour at night for ten bins, from `users` accounts,
        // beside `success` sign-ins that get in.
        let night = |success: u32, users: u32| {
            let mut h = History::new(16);
            for b in 90..100 {
                h.push(b, record(success + 8, 8, users, 3.0, 0.3));
            }
            let mut c = counts(u64::from(success + 8), u64::from(success), 8);
            c.failed_users = u64::from(users);
            let mut cx = ctx(&h, c, Some(expected(3.0, 2.7, 0.3)));
            cx.bin = 100;
            det().evaluate(&cx).unwrap()
        };
        // A service account with a stale password, where three people sign in: most
        // attempts fail, from one account.
        let f = night(3, 1);
        assert!(!f.anomalous, "{f:?}");
        // Eight people failing each quarter-hour and nobody getting in: an outage.
        let f = night(0, 8);
        assert!(f.anomalous && f.window_bins > 1, "{f:?}");
    }

    /// An hour in which 32 people a quarter-hour fail once each where 5 failures of 100
    /// sign-ins are usual, `total` attempts a quarter-hour in all.
    fn hour_of_failures(total: u32) -> Finding {
        let mut h = History::new(16);
        for b in 90..97 {
            h.push(b, record(100, 5, 5, 100.0, 5.0));
        }
        for b in 97..100 {
            h.push(b, record(total, 32, 32, 100.0, 5.0));
        }
        let mut c = counts(u64::from(total), u64::from(total) - 32, 32);
        c.failed_users = 32;
        let mut cx = ctx(&h, c, Some(expected(100.0, 95.0, 5.0)));
        cx.bin = 100;
        cx.dispersion.failure = 0.3;
        det().evaluate(&cx).unwrap()
    }

    #[test]
    fn a_reset_wave_raises_the_share_for_an_hour_without_a_window_page() {
        // Forced password resets: each person fails once with the old password, then
        // gets in. A quarter of the attempts fail for an hour where a twentieth do, from
        // as many accounts, while the successes run as usual.
        let f = hour_of_failures(130);
        assert!(!f.anomalous, "{f:?}");
        // The same failures with the successes gone: an outage, which pages.
        let f = hour_of_failures(40);
        assert!(f.anomalous, "{f:?}");
    }

    #[test]
    fn windows_stop_at_unknown_or_warm_up_bins() {
        let (mut h, c, e) = thin_morning_outage();
        h.push(
            99,
            BinRecord {
                expected_failure: -1.0,
                ..record(28, 17, 14, 24.2, 5.0)
            },
        );
        let mut cx = ctx(&h, c, Some(e));
        cx.bin = 100;
        cx.dispersion.failure = 0.524;
        assert_eq!(det().evaluate(&cx).unwrap().window_bins, 1);
    }

    #[test]
    fn share_jump_with_many_attempts_is_flagged() {
        let h = History::new(4);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(1000, 700, 300),
                Some(expected(1000.0, 950.0, 50.0)),
            ))
            .unwrap();
        assert!(f.anomalous, "{f:?}");
        assert!((f.observed - 0.3).abs() < 1e-9);
    }

    #[test]
    fn same_share_on_few_attempts_is_not() {
        let h = History::new(4);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(10, 7, 3),
                Some(expected(1000.0, 950.0, 50.0)),
            ))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn a_reset_wave_is_not_an_outage_or_an_attack() {
        // A help-desk reset wave on a quiet afternoon: 30 failures where 2 are usual
        // (fifteen times), from 18 people failing about twice, while 55 still sign in.
        let h = History::new(4);
        let mut wave = counts(85, 55, 30);
        wave.failed_users = 18;
        let e = Some(expected(46.0, 44.0, 2.0));
        let f = det().evaluate(&ctx(&h, wave, e)).unwrap();
        assert!(!f.anomalous && f.p_value < 1e-6, "{f:?}");
        // The same people failing while most attempts fail (an agent down): pages.
        let mut outage = counts(45, 15, 30);
        outage.failed_users = 18;
        let f = det().evaluate(&ctx(&h, outage, e)).unwrap();
        assert!(f.anomalous, "{f:?}");
    }

    #[test]
    fn no_attempts_no_verdict() {
        let h = History::new(4);
        assert_eq!(
            det().evaluate(&ctx(&h, counts(0, 0, 0), Some(expected(10.0, 9.0, 1.0)))),
            None
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// Quiet traffic drawn from the baseline's own distribution — successes Poisson
        /// around a daily curve, failures negative binomial around their share of it
        /// with the learned failure dispersion — pages at most at the configured
        /// `p_value` once the floors are off, every window judged (the null share is
        /// inflated by the dispersion, so a busy, slightly-worse-than-usual hour does
        /// not page; the windows share `p_value` between them).
        #[test]
        fn quiet_traffic_pages_at_most_at_the_configured_rate(level in 20.0f64..2000.0, base in 0.01f64..0.3, phi in 0.0f64..0.15, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Gamma, Poisson};
            let p_value = 0.01;
            let d = FailureRatio { p_value, min_count: 0, min_ratio: 1e-9, windows: DEFAULT_WINDOWS.to_vec() };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut h = History::new(8);
            let (mut pages, mut judged) = (0u32, 0u32);
            let mut poisson = |l: f64| if l > 0.0 { Poisson::new(l).unwrap().sample(&mut rng) as u64 } else { 0 };
            let mut rng2 = rand::rngs::SmallRng::seed_from_u64(seed + 1);
            for b in 0..6000i64 {
                let hour = (b % 96) as f64 / 4.0;
                let mu = level * (0.3 + (-(hour - 13.0).powi(2) / 20.0).exp());
                let (mu_s, mu_f) = (mu * (1.0 - base), mu * base);
                let lambda = if phi > 0.0 { Gamma::new(1.0 / phi, mu_f * phi).unwrap().sample(&mut rng2) } else { mu_f };
                let (s, f) = (poisson(mu_s), poisson(lambda));
                let c = counts(s + f, s, f);
                let mut cx = ctx(&h, c, Some(expected(mu, mu_s, mu_f)));
                cx.bin = b;
                cx.dispersion.failure = phi;
                if let Some(f) = d.evaluate(&cx) {
                    judged += 1;
                    pages += u32::from(f.anomalous);
                }
                h.push(b, record((s + f) as u32, f as u32, 0, mu as f32, mu_f as f32));
            }
            let rate = f64::from(pages) / f64::from(judged);
            proptest::prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
        }
    }
}
