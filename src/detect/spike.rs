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
//! # Failures and the addresses they came from
//! A sparse signal's failures come in bursts that are no attack: a scanner tries
//! seven names (`admin`, `test`, `root`) from one address within a minute, and those
//! bursts make the failures look noisier than they are, so a stuffing run that adds a
//! dozen failed sign-ins an hour, each from a proxy of its own, stays within them. With
//! `count_sources` (on for the Okta signal rules) the detector also judges the distinct
//! addresses that failed, bin by bin — the scanner is one, the run one per attempt —
//! with the same windows, floors and pooled rate, beside the failures; each count at
//! half the p-value (Bonferroni), so paging on either stays within `p_value`. The
//! failures are kept because a blocked run through a small proxy pool comes back from
//! the same addresses. The addresses are judged against the failures' expectation
//! (their own with `pooled_rate`): a bin never fails from more addresses than it has
//! failures, so the floors err high. A bin whose failures carry no address at all (a
//! CSV of counts, a query without `ips`) counts its failures. Over a window the
//! bins' address counts add up, as the accounts do: an address that fails in each of
//! three bins counts three times, so a slow run from a few addresses is counted as
//! generously as its failures are.
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
use pooled::Pool;

mod pooled;

/// Which count a spike detector watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeMetric {
    /// Failed attempts: credential stuffing, password spraying, brute force.
    Failure,
    /// All attempts: floods, scripted traffic, misbehaving integrations.
    Total,
    /// The distinct source addresses that failed, bin by bin: judged beside the failures
    /// with `count_sources` (see the module docs), never configured on its own.
    FailingSources,
}

impl SpikeMetric {
    /// This metric's count in a bin that saw `failure` failures from `failed_ips`
    /// distinct addresses of `total` attempts. Counting addresses, a bin whose failures
    /// carry no address at all (a CSV of counts, a query without `ips`) counts its
    /// failures instead: an upper bound, never a silent zero.
    fn count(self, total: u64, failure: u64, failed_ips: u64) -> u64 {
        match self {
            SpikeMetric::Failure => failure,
            SpikeMetric::Total => total,
            SpikeMetric::FailingSources if failed_ips == 0 => failure,
            SpikeMetric::FailingSources => failed_ips.min(failure),
        }
    }

    /// This metric's count in a past bin.
    pub(crate) fn of(self, r: &crate::series::BinRecord) -> u32 {
        let n = self.count(
            u64::from(r.total),
            u64::from(r.failure),
            u64::from(r.failed_ips),
        );
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// What the alert calls it.
    fn measure(self) -> &'static str {
        match self {
            SpikeMetric::Failure => "failed sign-ins",
            SpikeMetric::FailingSources => "addresses that failed",
            SpikeMetric::Total => "sign-in attempts",
        }
    }

    /// Whether it counts failures (failed attempts or the addresses they came from).
    fn counts_failures(self) -> bool {
        self != SpikeMetric::Total
    }

    /// Of a figure kept for the failures and for all attempts (an expectation, a
    /// dispersion), the one this metric is judged against. The addresses take the
    /// failures': a bin's failing addresses never outnumber its failures, so the floors
    /// and the alert's "expected" err high.
    fn side<T>(self, failures: T, total: T) -> T {
        if self.counts_failures() {
            failures
        } else {
            total
        }
    }
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
    /// Judge windows against this hour's rate pooled over every day of the history
    /// (`pooled_rate`, off by default; on for the Okta signal rules): see [`pooled`].
    pub pooled: bool,
    /// Also judge the distinct addresses that failed, bin by bin, beside the failures,
    /// each at half the p-value (`count_sources`, off by default; on for the Okta signal
    /// rules): see the module docs.
    pub count_sources: bool,
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
            sum += f64::from(metric.of(r));
            bins += 1.0;
        }
    }
    f64::from(w) * sum / bins.max(1.0)
}

/// The dispersion of a window's sum of independent negative binomials with means summing
/// to `mean` (their squares to `mean_sq`), each of dispersion `phi` (see the module docs).
pub(crate) fn window_dispersion(phi: f64, mean: f64, mean_sq: f64) -> f64 {
    if mean > 0.0 {
        phi * mean_sq / (mean * mean)
    } else {
        phi
    }
}

/// Extra accounts per extra failure an attack on passwords brings (see `judge`).
pub(crate) const SPREAD: f64 = 0.7;

/// Extra source addresses per extra failure with `spread_over_sources` (see `judge`),
/// as many as extra accounts per extra failure ([`SPREAD`]). Over a window the bins'
/// distinct addresses add up, so an office NAT counts once in each bin its new starters
/// mistype in: at 0.5 a small cohort passed. At 600 simulated people (hard seed 4, 14 new
/// starters, 9 unknown usernames from one NAT over four bins beside 6 stray ones)
/// `okta-hostile-signals` saw 10 failures from 6 bin-addresses where 1.65 were due (4.35
/// extra addresses for 8.35 extra failures, 0.52) and `okta-unknown-users` 15 from 11
/// over two hours where 3.3 were due (0.65): both paged. Stuffing rotates proxies, about
/// one address per attempt.
const SOURCES_SPREAD: f64 = 0.7;

/// How many times its baseline a retry storm of people (a reset wave, an outage) can
/// raise the failures at most (see `judge`).
const RETRY_STORM: f64 = 10.0;

/// Whether `failures` of `total` attempts are beyond any retry storm of people who still
/// get in: at least [`RETRY_STORM`] times `expected` (the caller's floored expectation)
/// *and* most attempts failing (a help-desk reset wave passes ten times a quiet
/// afternoon's failures while most sign-ins succeed). `failure_spike`,
/// `failure_ratio` and the outage classification all ask it.
pub(crate) fn beyond_retry_storm(failures: u64, total: u64, expected: f64) -> bool {
    failures as f64 >= RETRY_STORM * expected && 2 * failures >= total
}

/// What a window's expectation rests on.
#[derive(Debug, Clone, Copy)]
enum Rate<'a> {
    /// `copies` past copies of the window (the seasonal baseline's), and the prior
    /// expectation of the bins before it (see [`predictive`]).
    Seasonal { copies: f64, prior_mean: f64 },
    /// The rate pooled over every day of the history, and the bin the window ends at
    /// (see [`pooled`]).
    Pooled(&'a Pool, i64),
}

/// One window's sums.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    observed: u64,
    /// All attempts of the window (with `Failure`: whether most of them failed).
    total: u64,
    users: u64,
    ips: u64,
    mean: f64,
    mean_sq: f64,
}

impl CountSpike {
    pub fn read(metric: SpikeMetric, t: &mut Table<'_>, problems: &mut Problems) -> CountSpike {
        let (min_count, min_ratio, window_min_ratio, windows) = match metric {
            SpikeMetric::Failure | SpikeMetric::FailingSources => {
                (20, 3.0, 5.0, DEFAULT_WINDOWS.to_vec())
            }
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
            pooled: t.bool("pooled_rate", problems).unwrap_or(false),
            count_sources: read_count_sources(metric, t, problems),
        }
    }

    /// Judge one window's sums: the finding, with `window_bins = w`, against what its
    /// expectation rests on (`rate`).
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        metric: SpikeMetric,
        w: u32,
        sums: Sums,
        phi: f64,
        rate: Rate<'_>,
        p_threshold: f64,
        measure: &'static str,
    ) -> Finding {
        let mean = sums.mean;
        // Dispersion of a sum of independent negative binomials (see the module docs).
        let phi_w = window_dispersion(phi, mean, sums.mean_sq);
        let model = match rate {
            Rate::Seasonal { copies, prior_mean } => predictive(mean, phi_w, copies, prior_mean),
            Rate::Pooled(pool, bin) => pool.model(bin, w, phi),
        };
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
        // at least `SPREAD` extra accounts per extra failure; beyond that, with most
        // attempts failing, no retry storm of people who still get in reaches (a reset
        // wave passes ten times a quiet afternoon's failures, but most still sign in),
        // so several passwords per account (a brute force on a list) page too. And the
        // accounts alone must reach the paging bound, as the failures do (one account
        // failing all afternoon counts once per bin: not enough). Over a window the
        // distinct counts of its bins add up (an upper bound): a gentler test.
        let users = sums.users as f64;
        let retry_storm = !beyond_retry_storm(sums.observed, sums.total, mean.max(MIN_MEAN));
        let spread = !metric.counts_failures()
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
            evidence_bins: 1,
        }
    }
}

/// Read `count_sources` (failed attempts only; see [`CountSpike::count_sources`]).
fn read_count_sources(metric: SpikeMetric, t: &mut Table<'_>, problems: &mut Problems) -> bool {
    let key = t.key_path("count_sources");
    match t.bool("count_sources", problems) {
        Some(true) if metric == SpikeMetric::Total => {
            problems.push(key, "only failure_spike counts the addresses that failed");
            false
        }
        v => v.unwrap_or(false),
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
            SpikeMetric::Failure | SpikeMetric::FailingSources => DetectorKind::FailureSpike,
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
        ctx.expected?;
        if !self.count_sources {
            let pool = self.pools(ctx, [self.metric]);
            return self.evaluate_as(ctx, self.metric, self.p_value, pool.as_ref().map(|[p]| p));
        }
        // Failures and the addresses they came from, each at half the p-value
        // (Bonferroni): the more telling of the two.
        let p_value = self.p_value / 2.0;
        let pools = self.pools(ctx, [SpikeMetric::Failure, SpikeMetric::FailingSources]);
        let (by_failure, by_source) = match &pools {
            Some([f, s]) => (Some(f), Some(s)),
            None => (None, None),
        };
        let failures = self.evaluate_as(ctx, SpikeMetric::Failure, p_value, by_failure)?;
        let sources = self.evaluate_as(ctx, SpikeMetric::FailingSources, p_value, by_source)?;
        Some(match (failures.anomalous, sources.anomalous) {
            (true, false) => failures,
            (false, true) => sources,
            _ if sources.p_value < failures.p_value => sources,
            _ => failures,
        })
    }
}

impl CountSpike {
    /// With `pooled_rate`, the pooled rates of `metrics`, learned in one pass. The pool
    /// ends before the longest window, so no window judges its own bins.
    fn pools<const N: usize>(
        &self,
        ctx: &BinContext<'_>,
        metrics: [SpikeMetric; N],
    ) -> Option<[Pool; N]> {
        let before = ctx.bin + 1 - i64::from(self.window_bins());
        self.pooled
            .then(|| Pool::learn_each(ctx.history, before, ctx.bin_ms, metrics))
            .flatten()
    }

    /// Judge `metric` at `p_value` (split over the windows), with `pool` its pooled
    /// rate when `pooled_rate` is on and the history is long enough.
    fn evaluate_as(
        &self,
        ctx: &BinContext<'_>,
        metric: SpikeMetric,
        p_value: f64,
        pool: Option<&Pool>,
    ) -> Option<Finding> {
        let e = ctx.expected?;
        let (phi, measure) = (
            metric.side(ctx.dispersion.failure, ctx.dispersion.total),
            metric.measure(),
        );
        let c = &ctx.counts;
        let observed = metric.count(c.total, c.failure, c.failed_ips);
        let mean = metric.side(e.failure, e.total);
        let p_threshold = p_value / self.windows.len().max(1) as f64;
        let mut sums = Sums {
            observed,
            total: ctx.counts.total,
            users: ctx.counts.failed_users,
            ips: ctx.counts.failed_ips,
            mean,
            mean_sq: mean * mean,
        };
        let rate = |w: u32| match pool {
            Some(pool) => Rate::Pooled(pool, ctx.bin),
            None => Rate::Seasonal {
                copies: e.window_samples(w),
                prior_mean: prior_mean(ctx, metric, w),
            },
        };
        let first = self.judge(metric, 1, sums, phi, rate(1), p_threshold, measure);
        // A window pages only while this bin still carries the excess (at least twice
        // what it expects, and two more): when the run stops, its alert resolves like any
        // other instead of staying open for as long as the longest window holds it.
        let hot = observed as f64 >= (2.0 * mean).max(mean + 2.0);
        // Without distinct-user counts (a CSV of counts, a query without `users`) hours
        // of one person's retries cannot be told from an attack: windows need who failed.
        let blind = metric.counts_failures() && self.spread && ctx.counts.failed_users == 0;
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
                let mu = f64::from(metric.side(r.expected_failure, r.expected_total));
                sums.observed += u64::from(metric.of(r));
                sums.users += u64::from(r.failed_users);
                sums.total += u64::from(r.total);
                sums.ips += u64::from(r.failed_ips);
                sums.mean += mu;
                sums.mean_sq += mu * mu;
                bins += 1;
            }
            let f = self.judge(metric, w, sums, phi, rate(w), p_threshold, measure);
            if f.anomalous && best.as_ref().is_none_or(|b| f.p_value < b.p_value) {
                best = Some(f);
            }
        }
        Some(best.unwrap_or(first))
    }
}

#[cfg(test)]
mod tests;
