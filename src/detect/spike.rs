//! `failure_spike` and `volume_spike`: a count far above its baseline, in this bin or
//! summed over a sliding window of recent bins.
//!
//! The test is the upper tail of a negative binomial around the expected count
//! (see [`crate::stats`]), so it respects both the level and the noise of the series.
//! Two floors keep tiny absolute changes from paging: `min_count` (at least this many
//! events) and `min_ratio` (at least this many times the expectation).
//!
//! # Evidence that accumulates
//! An attack that stays under every single bin's floor (a dozen failures per 15 minutes
//! on a quiet evening, for an hour and a half) is beyond doubt over its whole length. So
//! besides this bin alone, the detector judges the sums over the last `w` bins for every
//! `w` in `windows` (by default 1, 2, 4, 8 and 16 bins: 15 minutes to 4 hours) against
//! the baseline summed over the same bins — a scan statistic over window lengths, as in
//! public-health surveillance (CDC EARS C1–C3, Kulldorff's scan). The floors apply to the
//! window's total. The sum of `w` independent negative binomials with means `μᵢ` and
//! dispersion `φ` has mean `M = Σμᵢ` and variance `M + φ·Σμᵢ²`, i.e. dispersion
//! `φ·Σμᵢ²/M²`; that is the model each window is tested under. Testing several windows
//! is paid for with a Bonferroni split: each window length is tested at
//! `p_value / windows.len()`, so the chance that any of them fires on normal traffic
//! stays at most `p_value` per bin (the property test below checks it on traffic drawn
//! from the model itself). The finding reports the window that paged (`window_bins`).
//!
//! # The expectation is itself an estimate
//! The baseline's expectation is an average of a few past bins (three per past week),
//! not the truth. For a busy series that hardly matters; for a sparse one — Okta's
//! signals, a few unknown usernames an hour — it is most of the uncertainty: three past
//! bins that held nothing make the expectation 0, and then eleven chance events in two
//! hours look like one in 10⁹. So a window is judged against the *predictive*
//! distribution: the window's expectation `M` rests on `c` copies of the window in the
//! past ([`super::baseline::Expected::window_samples`]), i.e. on about `M·c` past
//! events. The rate behind them gets a gamma prior of one event's weight centred on
//! the rate of the eight clean bins before the window (`M₀` for the window: a quiet
//! stretch that saw nothing at this hour in the past weeks is not taken for a rate of
//! 0), and the posterior is a gamma of shape `M·c + 1` and rate `1/M₀ + c`. The count
//! then is negative binomial with mean `(M·c + 1)/(1/M₀ + c)` and dispersion
//! `φ_w + 1/(M·c + 1)` (plus their product): the noise of the bins and the error of
//! their expectation, independent. A busy series rests on hundreds of past events and
//! is judged as before; the floors and the alert's "expected" stay the baseline's `M`.
//!
//! A window is judged only when every bin in it is known and had an expectation (no
//! warm-up, no failed query inside it), only while the newest bin still carries the
//! excess (at least twice its expectation, and two more), and never back past the bin
//! after this series' last alert resolved: what paged is not added up again.

use std::sync::Arc;

use super::{
    read_p_value, read_positive, severity_from, BinContext, Detector, DetectorKind, Finding,
};
use crate::config_reader::{Problems, Table};
use crate::stats::{CountModel, MIN_MEAN};

/// Which count a spike detector watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeMetric {
    /// Failed attempts: credential stuffing, password spraying, brute force.
    Failure,
    /// All attempts: floods, scripted traffic, misbehaving integrations.
    Total,
}

/// The sliding windows (in bins) a failure count is judged over by default: 15 minutes
/// to 4 hours of 15-minute bins.
pub const DEFAULT_WINDOWS: [u32; 5] = [1, 2, 4, 8, 16];

#[derive(Debug, Clone, PartialEq)]
pub struct CountSpike {
    pub metric: SpikeMetric,
    pub p_value: f64,
    pub min_count: u64,
    pub min_ratio: f64,
    /// `min_ratio` for windows longer than one bin (`window_min_ratio`): a few hours
    /// at three times the usual failures is what a help-desk password reset wave or an
    /// onboarding morning looks like, so the totals ask for five times by default.
    pub window_min_ratio: f64,
    /// Window lengths in bins, ascending, starting with 1 (this bin alone).
    pub windows: Vec<u32>,
    /// Failures must be spread over accounts (`spread_over_users`, true by default):
    /// off for events that carry no user (ThreatInsight's blocked requests).
    pub spread: bool,
    /// The extra failures must also come from about as many extra source addresses
    /// (`spread_over_sources`, off by default; on for the Okta signal rules): stuffing
    /// rotates proxies, while an office full of new starters mistyping their usernames
    /// fails from one NAT address.
    pub spread_sources: bool,
}

/// How many events' worth the prior on a window's rate weighs (one: any series with
/// data outweighs it; see the module docs).
const PRIOR_EVENTS: f64 = 1.0;

/// How many bins before a window its prior rate is read from.
const PRIOR_BINS: i64 = 8;

/// What a window expecting `mean` (dispersion `phi_w`) holds on quiet traffic, when that
/// expectation rests on `copies` past copies of the window (0: taken as exact) and the
/// bins just before the window give it `prior_mean` (see the module docs).
pub(crate) fn predictive(mean: f64, phi_w: f64, copies: f64, prior_mean: f64) -> CountModel {
    // NaN compares false: not usable either.
    let usable = copies > 0.0 && mean.is_finite() && prior_mean > 0.0;
    if !usable {
        return CountModel::new(mean, phi_w);
    }
    let events = mean.max(0.0) * copies;
    let estimate = 1.0 / (events + PRIOR_EVENTS);
    CountModel::new(
        (events + PRIOR_EVENTS) / (PRIOR_EVENTS / prior_mean + copies),
        phi_w + estimate + phi_w * estimate,
    )
}

/// The prior expectation of a window of `w` bins ending at this bin: `w` times the rate
/// of the up to [`PRIOR_BINS`] clean bins before the window (half an event added, so
/// that a quiet stretch does not make it 0).
fn prior_mean(ctx: &BinContext<'_>, metric: SpikeMetric, w: u32) -> f64 {
    let start = ctx.bin - i64::from(w);
    let (mut sum, mut bins) = (0.5f64, 0.0f64);
    for b in (start - PRIOR_BINS)..start {
        if let Some(r) = ctx.history.get(b).filter(|r| r.is_clean()) {
            sum += f64::from(match metric {
                SpikeMetric::Failure => r.failure,
                SpikeMetric::Total => r.total,
            });
            bins += 1.0;
        }
    }
    f64::from(w) * sum / bins.max(1.0)
}

/// Extra accounts per extra failure an attack on passwords brings (see `judge`).
pub(crate) const SPREAD: f64 = 0.7;

/// Extra source addresses per extra failure with `spread_over_sources` (see `judge`).
const SOURCES_SPREAD: f64 = 0.5;

/// How many times its baseline a retry storm of people (a reset wave, an outage) can
/// raise the failures at most (see `judge`).
pub(crate) const RETRY_STORM: f64 = 10.0;

/// One window's sums.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    observed: u64,
    users: u64,
    ips: u64,
    mean: f64,
    mean_sq: f64,
}

impl CountSpike {
    pub fn read(metric: SpikeMetric, t: &mut Table<'_>, problems: &mut Problems) -> CountSpike {
        let (min_count, min_ratio, window_min_ratio, windows) = match metric {
            SpikeMetric::Failure => (20, 3.0, 5.0, DEFAULT_WINDOWS.to_vec()),
            // Volume moves with the working day and with benign surges for hours: only
            // single bins are judged unless asked.
            SpikeMetric::Total => (50, 2.0, 2.0, vec![1]),
        };
        CountSpike {
            metric,
            p_value: read_p_value(t, 1e-6, problems),
            min_count: t.count("min_count", 0, problems).unwrap_or(min_count),
            min_ratio: read_positive(t, "min_ratio", min_ratio, problems),
            window_min_ratio: read_positive(t, "window_min_ratio", window_min_ratio, problems),
            windows: read_windows(t, windows, problems),
            spread: t.bool("spread_over_users", problems).unwrap_or(true),
            spread_sources: t.bool("spread_over_sources", problems).unwrap_or(false),
        }
    }

    fn observed_and_mean(
        &self,
        c: &crate::series::Counts,
        e: &super::baseline::Expected,
    ) -> (u64, f64) {
        match self.metric {
            SpikeMetric::Failure => (c.failure, e.failure),
            SpikeMetric::Total => (c.total, e.total),
        }
    }

    /// Judge one window's sums: the finding, with `window_bins = w`. `prior`: how many
    /// past copies of the window its expectation rests on, and the window's prior
    /// expectation (see [`predictive`]).
    fn judge(
        &self,
        w: u32,
        sums: Sums,
        phi: f64,
        prior: (f64, f64),
        p_threshold: f64,
        measure: &'static str,
    ) -> Finding {
        let mean = sums.mean;
        // Dispersion of a sum of independent negative binomials (see the module docs).
        let phi_w = if mean > 0.0 {
            phi * sums.mean_sq / (mean * mean)
        } else {
            phi
        };
        let model = predictive(mean, phi_w, prior.0, prior.1);
        // The smallest count that would page: the statistical bound and both floors.
        // When the floor itself is already past the bound (one tail evaluation says so),
        // the floor is the answer and the bisection for the bound is skipped: that is
        // the common case of thousands of quiet split series.
        let ratio = if w > 1 {
            self.window_min_ratio
        } else {
            self.min_ratio
        };
        let floor = (self.min_count as f64).max((ratio * mean.max(MIN_MEAN)).ceil());
        let x = sums.observed as f64;
        let (upper, p_value) = if x < floor && w > 1 {
            // Below the floor, a longer window cannot page: skip the tail (cheap path
            // for every quiet series in every bin).
            (floor, 1.0)
        } else {
            let upper = if model.upper_tail(floor as u64) <= p_threshold {
                floor
            } else {
                (model.upper_bound(p_threshold) as f64).max(floor)
            };
            (upper, model.upper_tail(sums.observed))
        };
        // Failures must be spread over accounts: one person failing twenty times (or a
        // stuck client, a service account with a stale password) is Okta's lockout's
        // business, not a page. Without distinct-user counts (a hand-written query
        // without `users`) this check is skipped. An attack on passwords tries each
        // account about once (stuffing, spraying), so its excess failures come with
        // about as many extra accounts; people who fail and retry (a help-desk password
        // reset wave, a morning of typos, everyone during an outage) fail about twice
        // per account. So, up to `RETRY_STORM` times the baseline, the excess must bring
        // at least `SPREAD` extra accounts per extra failure; beyond that no retry storm
        // reaches, and several passwords per account (a brute force on a list) page
        // too. And the accounts alone must reach the paging bound, as the failures do
        // (one account failing all afternoon counts once per bin: not enough). Over a
        // window the distinct counts of its bins add up (an upper bound), which only
        // makes the test gentler.
        let users = sums.users as f64;
        let retry_storm = x < RETRY_STORM * mean.max(MIN_MEAN);
        let spread = self.metric != SpikeMetric::Failure
            || !self.spread
            || sums.users == 0
            || ((!retry_storm || users - mean >= SPREAD * (x - mean)) && users >= upper);
        let sources = !self.spread_sources
            || sums.ips == 0
            || sums.ips as f64 - mean >= SOURCES_SPREAD * (x - mean);
        Finding {
            anomalous: x >= upper && p_value <= p_threshold && spread && sources,
            observed: x,
            expected: mean,
            lower: 0.0,
            upper,
            p_value,
            severity: severity_from(p_value, p_threshold, x / mean.max(1.0)),
            measure,
            window_bins: w,
        }
    }
}

/// Read `windows` (bin counts, each at least 1; 1 is always judged).
pub(crate) fn read_windows(
    t: &mut Table<'_>,
    default: Vec<u32>,
    problems: &mut Problems,
) -> Vec<u32> {
    let key = t.key_path("windows");
    let Some(raw) = t.raw("windows") else {
        return default;
    };
    let Some(items) = raw.as_array() else {
        problems.push(key, "must be a list of bin counts, e.g. [1, 2, 4, 8, 16]");
        return default;
    };
    let mut out: Vec<u32> = Vec::with_capacity(items.len() + 1);
    for v in items {
        match v.as_u64() {
            Some(n) if (1..=10_000).contains(&n) => out.push(n as u32),
            _ => problems.push(
                key.clone(),
                format!("must list bin counts from 1 to 10000, found {v}"),
            ),
        }
    }
    out.push(1);
    out.sort_unstable();
    out.dedup();
    out
}

impl Detector for CountSpike {
    fn kind(&self) -> DetectorKind {
        match self.metric {
            SpikeMetric::Failure => DetectorKind::FailureSpike,
            SpikeMetric::Total => DetectorKind::VolumeSpike,
        }
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
        let (phi, measure) = match self.metric {
            SpikeMetric::Failure => (ctx.dispersion.failure, "failed sign-ins"),
            SpikeMetric::Total => (ctx.dispersion.total, "sign-in attempts"),
        };
        let (observed, mean) = self.observed_and_mean(&ctx.counts, &e);
        let p_threshold = self.p_value / self.windows.len().max(1) as f64;
        let mut sums = Sums {
            observed,
            users: ctx.counts.failed_users,
            ips: ctx.counts.failed_ips,
            mean,
            mean_sq: mean * mean,
        };
        let prior = |w: u32| (e.window_samples(w), prior_mean(ctx, self.metric, w));
        let first = self.judge(1, sums, phi, prior(1), p_threshold, measure);
        // A window pages only while this bin still carries the excess (at least twice
        // what it expects, and two more): when the run stops, its alert resolves like any
        // other instead of staying open for as long as the longest window holds it.
        let hot = observed as f64 >= (2.0 * mean).max(mean + 2.0);
        // Without distinct-user counts (a CSV of counts, a query without `users`) hours
        // of one person's retries cannot be told from an attack: windows need who failed.
        let blind =
            self.metric == SpikeMetric::Failure && self.spread && ctx.counts.failed_users == 0;
        if first.anomalous || self.windows.len() <= 1 || !hot || blind {
            return Some(first);
        }
        // Longer windows: walk back once, judging at each configured length.
        let mut best: Option<Finding> = None;
        let mut bins = 1u32;
        for &w in self.windows.iter().filter(|&&w| w > 1) {
            while bins < w {
                if ctx.bin - i64::from(bins) < ctx.evidence_since {
                    return Some(best.unwrap_or(first));
                }
                let Some(r) = ctx.history.get(ctx.bin - i64::from(bins)) else {
                    return Some(best.unwrap_or(first));
                };
                if !r.known || r.expected_failure < 0.0 {
                    return Some(best.unwrap_or(first));
                }
                let mu = match self.metric {
                    SpikeMetric::Failure => f64::from(r.expected_failure),
                    SpikeMetric::Total => f64::from(r.expected_total),
                };
                sums.observed += u64::from(match self.metric {
                    SpikeMetric::Failure => r.failure,
                    SpikeMetric::Total => r.total,
                });
                sums.users += u64::from(r.failed_users);
                sums.ips += u64::from(r.failed_ips);
                sums.mean += mu;
                sums.mean_sq += mu * mu;
                bins += 1;
            }
            let f = self.judge(w, sums, phi, prior(w), p_threshold, measure);
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
    use super::super::{DetectorSpec, Severity};
    use super::*;
    use crate::series::History;

    fn spike() -> CountSpike {
        let spec = DetectorSpec::default_for(DetectorKind::FailureSpike);
        assert_eq!(spec.detector.kind(), DetectorKind::FailureSpike);
        CountSpike {
            metric: SpikeMetric::Failure,
            p_value: 1e-6,
            min_count: 20,
            min_ratio: 3.0,
            window_min_ratio: 3.0,
            windows: vec![1],
            spread: true,
            spread_sources: false,
        }
    }

    #[test]
    fn quiet_without_baseline() {
        let h = History::new(10);
        assert_eq!(spike().evaluate(&ctx(&h, counts(900, 0, 900), None)), None);
    }

    #[test]
    fn a_stuffing_burst_is_flagged_and_critical() {
        let h = History::new(10);
        let f = spike()
            .evaluate(&ctx(
                &h,
                counts(1400, 400, 1000),
                Some(expected(420.0, 400.0, 20.0)),
            ))
            .unwrap();
        assert!(f.anomalous);
        assert!(f.p_value < 1e-12);
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.upper > 20.0 && f.upper < 1000.0);
    }

    #[test]
    fn ordinary_noise_is_not() {
        let h = History::new(10);
        let f = spike()
            .evaluate(&ctx(
                &h,
                counts(440, 410, 30),
                Some(expected(420.0, 400.0, 20.0)),
            ))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    proptest::proptest! {
        /// The shortcut gives the same band as the full bound: max(bound, floors).
        #[test]
        fn upper_is_the_bound_or_the_floor(mean in 0.0f64..500.0, phi in 0.0f64..0.5, min_count in 0u64..100) {
            let d = CountSpike { metric: SpikeMetric::Failure, p_value: 1e-6, min_count, min_ratio: 3.0, window_min_ratio: 3.0, windows: vec![1], spread: true, spread_sources: false };
            let h = History::new(4);
            let mut e = expected(mean * 2.0, mean, mean);
            e.samples = 0; // taken as exact: the model is the negative binomial itself
            let mut c = ctx(&h, counts(10, 0, 10), Some(e));
            c.dispersion.failure = phi;
            let f = d.evaluate(&c).unwrap();
            let model = CountModel::new(mean, phi);
            let want = (model.upper_bound(1e-6) as f64)
                .max(min_count as f64)
                .max((3.0 * mean.max(MIN_MEAN)).ceil());
            proptest::prop_assert_eq!(f.upper, want);
        }
    }

    #[test]
    fn one_person_failing_twenty_times_is_not_a_spike() {
        let h = History::new(10);
        let mut c = counts(440, 400, 40);
        c.failed_users = 6;
        let e = Some(expected(407.0, 400.0, 7.0));
        assert!(!spike().evaluate(&ctx(&h, c, e)).unwrap().anomalous);
        c.failed_users = 38;
        assert!(spike().evaluate(&ctx(&h, c, e)).unwrap().anomalous);
    }

    #[test]
    fn floors_stop_tiny_spikes_at_night() {
        let h = History::new(10);
        // 12 failures where 0.5 were expected is "unlikely" but far below min_count.
        let f = spike()
            .evaluate(&ctx(&h, counts(12, 0, 12), Some(expected(1.0, 0.5, 0.5))))
            .unwrap();
        assert!(f.p_value < 1e-6 && !f.anomalous);
    }

    fn windowed() -> CountSpike {
        CountSpike {
            metric: SpikeMetric::Failure,
            p_value: 1e-6,
            min_count: 20,
            min_ratio: 3.0,
            window_min_ratio: 3.0,
            windows: DEFAULT_WINDOWS.to_vec(),
            spread: true,
            spread_sources: false,
        }
    }

    /// A history of `bins` bins ending just before `next`, each holding `failures`
    /// failures (from as many users) where `expected` were expected.
    fn steady(next: i64, bins: i64, failures: u32, expected: f32) -> History {
        let mut h = History::new(64);
        for b in (next - bins)..next {
            h.push(
                b,
                crate::series::BinRecord {
                    total: 100 + failures,
                    success: 100,
                    failure: failures,
                    failed_users: failures,
                    known: true,
                    expected_total: 100.0 + expected,
                    expected_failure: expected,
                    ..Default::default()
                },
            );
        }
        h
    }

    #[test]
    fn a_quiet_evening_run_pages_on_its_window_total() {
        // Twelve failures per bin where two are expected: below every bin's floor of
        // 20, beyond doubt over an hour and a half.
        let h = steady(100, 5, 12, 2.0);
        let mut c = counts(112, 100, 12);
        c.failed_users = 12;
        let mut cx = ctx(&h, c, Some(expected(102.0, 100.0, 2.0)));
        cx.bin = 100;
        let single = spike().evaluate(&cx).unwrap();
        assert!(!single.anomalous, "{single:?}");
        let f = windowed().evaluate(&cx).unwrap();
        assert!(f.anomalous, "{f:?}");
        assert!(f.window_bins >= 4, "{f:?}");
        assert!(f.observed >= 48.0 && f.expected <= 4.0 * f.window_bins as f64);
    }

    #[test]
    fn one_account_failing_all_evening_is_not_a_run() {
        // A service account with a stale password: four failures per bin, always the
        // same account.
        let mut h = History::new(64);
        for b in 84..100 {
            h.push(
                b,
                crate::series::BinRecord {
                    total: 6,
                    success: 2,
                    failure: 4,
                    failed_users: 1,
                    known: true,
                    expected_total: 2.5,
                    expected_failure: 0.5,
                    ..Default::default()
                },
            );
        }
        let mut c = counts(6, 2, 4);
        c.failed_users = 1;
        let mut cx = ctx(&h, c, Some(expected(2.5, 2.0, 0.5)));
        cx.bin = 100;
        assert!(!windowed().evaluate(&cx).unwrap().anomalous);
    }

    #[test]
    fn windows_stop_at_unknown_or_warm_up_bins() {
        let mut h = steady(100, 5, 12, 2.0);
        h.push(97, crate::series::BinRecord::default());
        let mut c = counts(112, 100, 12);
        c.failed_users = 12;
        let mut cx = ctx(&h, c, Some(expected(102.0, 100.0, 2.0)));
        cx.bin = 100;
        // Only bins 98, 99 and 100 are usable: 36 failures in 3 bins fit the window of 2.
        let f = windowed().evaluate(&cx).unwrap();
        assert!(f.window_bins <= 2, "{f:?}");
    }

    /// A sparse signal (unknown usernames) whose expectation rests on three past bins
    /// that held nothing: eleven events in two hours, one to three a bin.
    fn sparse_two_hours(
        samples: usize,
    ) -> (
        History,
        crate::series::Counts,
        super::super::baseline::Expected,
    ) {
        let mut h = History::new(64);
        for (k, n) in [1u32, 3, 1, 1, 0, 1, 1].into_iter().enumerate() {
            h.push(
                93 + k as i64,
                crate::series::BinRecord {
                    total: n,
                    failure: n,
                    failed_users: n,
                    failed_ips: n,
                    known: true,
                    expected_failure: 0.0,
                    ..Default::default()
                },
            );
        }
        let mut c = counts(3, 0, 3);
        c.failed_users = 3;
        c.failed_ips = 3;
        let mut e = expected(0.0, 0.0, 0.0);
        e.samples = samples;
        (h, c, e)
    }

    #[test]
    fn chance_events_where_three_empty_past_bins_expect_none_do_not_page() {
        let (h, c, e) = sparse_two_hours(3);
        let mut cx = ctx(&h, c, Some(e));
        cx.bin = 100;
        cx.dispersion.failure = 0.1;
        let d = CountSpike {
            min_count: 10,
            ..windowed()
        };
        let f = d.evaluate(&cx).unwrap();
        assert!(!f.anomalous, "{f:?}");
        // Taken as exact (no past bin behind it), the same expectation pages: 11 events
        // where none were expected.
        let (h, c, e) = sparse_two_hours(0);
        let mut cx = ctx(&h, c, Some(e));
        cx.bin = 100;
        cx.dispersion.failure = 0.1;
        let f = d.evaluate(&cx).unwrap();
        assert!(f.anomalous && f.observed == 11.0, "{f:?}");
    }

    #[test]
    fn an_attack_still_pages_against_an_uncertain_expectation() {
        // Thirty unknown usernames in one bin where three past bins held one in all.
        let h = History::new(64);
        let mut c = counts(30, 0, 30);
        c.failed_users = 30;
        c.failed_ips = 30;
        let mut e = expected(0.33, 0.0, 0.33);
        e.samples = 3;
        let f = windowed().evaluate(&ctx(&h, c, Some(e))).unwrap();
        assert!(f.anomalous && f.p_value < 1e-9, "{f:?}");
    }

    #[test]
    fn the_predictive_model_widens_with_fewer_past_events() {
        // Exact: the model itself. Resting on past events: the mean moves by ½ / copies,
        // and the dispersion grows by about 1 / events.
        assert_eq!(predictive(4.0, 0.1, 0.0, 4.0), CountModel::new(4.0, 0.1));
        let few = predictive(4.0, 0.0, 1.0, 4.0);
        let many = predictive(4.0, 0.0, 100.0, 4.0);
        assert!((few.mean - 4.0).abs() < 1e-12 && (few.phi - 1.0 / 5.0).abs() < 1e-12);
        assert!(many.phi < 0.003 && (many.mean - 4.0).abs() < 1e-12);
        // An expectation of 0 from three empty past bins is pulled towards the rate of
        // the bins before the window.
        let zero = predictive(0.0, 0.0, 1.0, 2.0);
        assert!((zero.mean - 1.0 / 1.5).abs() < 1e-12 && (zero.phi - 1.0).abs() < 1e-12);
        assert!(few.upper_tail(20) > 100.0 * many.upper_tail(20));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(6))]
        /// Sparse quiet traffic (Poisson, a fifth of an event to three a bin at the
        /// day's peak, as Okta's signals are) judged against what the real seasonal
        /// baseline learns of it from its first weeks (three samples a bin in the second
        /// week, six from the third): with every window judged and the floors off, the
        /// share of bins that page stays about the configured `p_value`. Taken as exact,
        /// an expectation of three empty past bins paged such traffic many times over.
        #[test]
        fn sparse_traffic_against_a_learned_baseline_pages_at_about_the_configured_rate(level in 0.2f64..3.0, seed in 0u64..1000) {
            use crate::detect::baseline::{Baseline, Seasonal};
            use rand::SeedableRng;
            use rand_distr::{Distribution, Poisson};
            const BIN: i64 = 15 * 60_000;
            let p_value = 0.01;
            let d = CountSpike { metric: SpikeMetric::Failure, p_value, min_count: 0, min_ratio: 1e-9, window_min_ratio: 1e-9, windows: DEFAULT_WINDOWS.to_vec(), spread: true, spread_sources: false };
            let baseline = Seasonal::new(BIN, 14 * 96);
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut h = History::new(14 * 96);
            let (mut pages, mut judged) = (0u32, 0u32);
            for b in 0..(4 * 7 * 96i64) {
                let hour = (b % 96) as f64 / 4.0;
                let mu = level * (0.1 + (-(hour - 14.0).powi(2) / 18.0).exp());
                let n = Poisson::new(mu).unwrap().sample(&mut rng) as u64;
                let mut c = counts(n, 0, n);
                c.failed_users = n;
                c.failed_ips = n;
                let e = baseline.expected(&h, b);
                if let (Some(e), true) = (e, b >= 7 * 96) {
                    let mut cx = ctx(&h, c, Some(e));
                    cx.bin = b;
                    cx.dispersion.failure = 0.1;
                    judged += 1;
                    pages += u32::from(d.evaluate(&cx).unwrap().anomalous);
                }
                let mut r = crate::series::BinRecord::from_counts(c, b, BIN);
                r.expected_failure = e.map_or(-1.0, |e| e.failure as f32);
                r.expected_total = e.map_or(0.0, |e| e.total as f32);
                r.seasonal_total = e.map_or(0.0, |e| e.seasonal_total as f32);
                h.push(b, r);
            }
            let rate = f64::from(pages) / f64::from(judged);
            proptest::prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
        }
    }

    #[test]
    fn windows_are_read_sorted_with_one() {
        let mut p = Problems::default();
        let v = serde_json::json!({"windows": [8, 4, 4]});
        let mut t = Table::new("d", Some(&v), &mut p);
        let d = CountSpike::read(SpikeMetric::Failure, &mut t, &mut p);
        assert!(p.0.is_empty(), "{p:?}");
        assert_eq!(d.windows, vec![1, 4, 8]);
        assert_eq!(d.window_bins(), 8);
        let v = serde_json::json!({"windows": [0]});
        let mut t = Table::new("d", Some(&v), &mut p);
        CountSpike::read(SpikeMetric::Failure, &mut t, &mut p);
        assert_eq!(p.0.len(), 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]
        /// Quiet traffic drawn from the baseline's own distribution (negative binomial
        /// around a daily curve, the expectation known): with every window judged and
        /// the floors off, the share of bins that page is about the configured
        /// `p_value` — at most it (Bonferroni), and not orders of magnitude below
        /// (the windows are not made blind by the split).
        #[test]
        fn quiet_traffic_pages_at_about_the_configured_rate(level in 2.0f64..40.0, phi in 0.0f64..0.2, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Gamma, Poisson};
            let p_value = 0.01;
            let d = CountSpike { metric: SpikeMetric::Failure, p_value, min_count: 0, min_ratio: 1e-9, window_min_ratio: 1e-9, windows: DEFAULT_WINDOWS.to_vec(), spread: true, spread_sources: false };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut h = History::new(64);
            let (mut pages, mut judged) = (0u32, 0u32);
            for b in 0..6000i64 {
                let hour = (b % 96) as f64 / 4.0;
                let mu = level * (0.2 + (-(hour - 12.0).powi(2) / 18.0).exp());
                let lambda = if phi > 0.0 {
                    Gamma::new(1.0 / phi, mu * phi).unwrap().sample(&mut rng)
                } else {
                    mu
                };
                let n = if lambda > 0.0 { Poisson::new(lambda).unwrap().sample(&mut rng) as u64 } else { 0 };
                let mut c = counts(n + 100, 100, n);
                c.failed_users = n;
                let mut cx = ctx(&h, c, Some(expected(mu + 100.0, 100.0, mu)));
                cx.bin = b;
                cx.dispersion.failure = phi;
                let f = d.evaluate(&cx).unwrap();
                if b >= 16 {
                    judged += 1;
                    pages += u32::from(f.anomalous);
                }
                let mut r = crate::series::BinRecord::from_counts(c, b, 900_000);
                r.expected_failure = mu as f32;
                r.expected_total = (mu + 100.0) as f32;
                h.push(b, r);
            }
            let rate = f64::from(pages) / f64::from(judged);
            proptest::prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
            proptest::prop_assert!(rate >= p_value / 20.0, "rate {rate} far below {p_value}");
        }
    }
}
