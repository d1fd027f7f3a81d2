//! A sparse signal's rate pooled over every day of the history (`pooled_rate`).
//!
//! Okta's signals hold an event every few bins: ThreatInsight's blocked requests about
//! one every four bins, at any hour. The seasonal baseline reads the same hours of past
//! weeks — three bins a week, so for such a series an expectation that rests on no
//! event at all, and the predictive model around it (see the module docs of
//! [`super`]) is then nearly geometric: twelve blocked requests in half an hour where
//! one every hour is usual come out about one in 10³. Yet the history holds hundreds of
//! bins of the same signal: for a signal with little hour-of-week seasonality, the rate
//! of *this hour of the day, on every day of the history* is known far better.
//!
//! So each bin of the history falls into one of 48 buckets — the hour of the day
//! (UTC), on a weekday or at a weekend — and each bucket's rate is estimated by
//! empirical Bayes: the buckets' rates are taken as drawn from a gamma around the
//! overall rate `r` with a squared coefficient of variation `cv²` estimated from the
//! data (the method of moments on Pearson's χ² of the buckets' counts, whose
//! expectation is about `J − 1 + S·cv²` over `J` buckets holding `S` events), i.e. a
//! prior of `α = 1/cv²` events'
//! weight (at least 1, at most `S`). A bucket that held `s` events in `n` bins then has
//! a gamma posterior of shape `α + s` and rate `α/r + n`: a flat signal borrows the
//! strength of every hour, a strongly seasonal one keeps mostly its own hour's.
//!
//! A window of `w` bins expects the sum of its bins' bucket rates, `M`; its count is
//! negative binomial with mean `M` and the dispersion of the bins' noise plus that of
//! the estimate (`Σⱼ (kⱼ·μⱼ)² / aⱼ / M²` over the buckets the window touches, `k` of
//! its bins in a bucket of rate `μ` and shape `a`), as in [`super::predictive`].
//!
//! Only clean bins (known, not anomalous) before the longest window are pooled, and only
//! once they cover [`MIN_DAYS`] days: before that the seasonal predictive model judges.

use super::SpikeMetric;
use crate::series::History;
use crate::stats::CountModel;

/// Hours of the day, on weekdays and at weekends.
const BUCKETS: usize = 48;

/// Days of clean history before the pooled rate is used.
pub(crate) const MIN_DAYS: f64 = 4.0;

const DAY_MS: i64 = 86_400_000;

/// The bucket of bin `bin`: its hour of the day in UTC, plus 24 at a weekend.
fn bucket(bin: i64, bin_ms: i64) -> usize {
    let ms = bin.saturating_mul(bin_ms);
    let day = ms.div_euclid(DAY_MS);
    let hour = (ms.rem_euclid(DAY_MS) / 3_600_000) as usize;
    // 1 January 1970 was a Thursday: day 0 is weekday 3 counting Monday as 0.
    let weekend = (day + 3).rem_euclid(7) >= 5;
    hour.min(23) + if weekend { 24 } else { 0 }
}

/// Each bucket's estimated rate per bin and the weight (events) behind it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pool {
    rate: [f64; BUCKETS],
    shape: [f64; BUCKETS],
    /// The prior's weight `α` (for tests and reasons).
    pub(crate) alpha: f64,
    bin_ms: i64,
}

impl Pool {
    /// Learn the buckets from the clean bins of `history` before bin `before`; `None`
    /// until they cover [`MIN_DAYS`] days.
    #[cfg(test)]
    pub(crate) fn learn(
        history: &History,
        before: i64,
        bin_ms: i64,
        metric: SpikeMetric,
    ) -> Option<Pool> {
        Pool::learn_each(history, before, bin_ms, [metric]).map(|[p]| p)
    }

    /// [`Pool::learn`] for each of `metrics`, in one pass over the history (a signal
    /// rule that counts its failures and their addresses reads it once).
    pub(crate) fn learn_each<const N: usize>(
        history: &History,
        before: i64,
        bin_ms: i64,
        metrics: [SpikeMetric; N],
    ) -> Option<[Pool; N]> {
        if bin_ms <= 0 {
            return None;
        }
        let (mut s, mut n) = ([[0f64; BUCKETS]; N], [0f64; BUCKETS]);
        for (b, r) in history.indexed() {
            if b >= before {
                break;
            }
            if r.is_clean() {
                let j = bucket(b, bin_ms);
                for (sums, metric) in s.iter_mut().zip(metrics) {
                    sums[j] += f64::from(metric.of(r));
                }
                n[j] += 1.0;
            }
        }
        let bins: f64 = n.iter().sum();
        if bins * (bin_ms as f64) < MIN_DAYS * DAY_MS as f64 {
            return None;
        }
        Some(s.map(|sums| Pool::from_sums(&sums, &n, bins, bin_ms)))
    }

    /// The pool of buckets that held `s` events in `n` clean bins (`bins` in all).
    fn from_sums(s: &[f64; BUCKETS], n: &[f64; BUCKETS], bins: f64, bin_ms: i64) -> Pool {
        let events: f64 = s.iter().sum();
        // Half an event, so that a signal silent so far is not taken for a rate of 0.
        let r = (events + 0.5) / bins;
        let (mut chi2, mut used) = (0.0, 0.0);
        for (sj, nj) in s.iter().zip(n).filter(|(_, nj)| **nj > 0.0) {
            chi2 += (sj - nj * r).powi(2) / (nj * r);
            used += 1.0;
        }
        let weight = events.max(1.0);
        let cv2 = (chi2 - (used - 1.0)).max(0.0) / weight;
        let alpha = if cv2 > 0.0 {
            (1.0 / cv2).clamp(1.0, weight)
        } else {
            weight
        };
        let mut pool = Pool {
            rate: [r; BUCKETS],
            shape: [alpha; BUCKETS],
            alpha,
            bin_ms,
        };
        for j in 0..BUCKETS {
            pool.shape[j] = alpha + s[j];
            pool.rate[j] = pool.shape[j] / (alpha / r + n[j]);
        }
        pool
    }

    /// The window of `w` bins ending at bin `bin`: its expected count, the sum of its
    /// bins' squared expectations, and the variance of the estimate.
    fn window(&self, bin: i64, w: u32) -> (f64, f64, f64) {
        let mut k = [0f64; BUCKETS];
        for b in (bin - i64::from(w.max(1)) + 1)..=bin {
            k[bucket(b, self.bin_ms)] += 1.0;
        }
        let (mut mean, mut mean_sq, mut var) = (0.0, 0.0, 0.0);
        for j in (0..BUCKETS).filter(|&j| k[j] > 0.0) {
            let mu = self.rate[j];
            mean += k[j] * mu;
            mean_sq += k[j] * mu * mu;
            var += (k[j] * mu).powi(2) / self.shape[j];
        }
        (mean, mean_sq, var)
    }

    /// What the window of `w` bins ending at bin `bin` holds on quiet traffic, with
    /// per-bin dispersion `phi`.
    pub(crate) fn model(&self, bin: i64, w: u32, phi: f64) -> CountModel {
        let (mean, mean_sq, var) = self.window(bin, w);
        if mean <= 0.0 {
            return CountModel::new(mean, phi);
        }
        let phi_w = phi * mean_sq / (mean * mean);
        let estimate = var / (mean * mean);
        CountModel::new(mean, phi_w + estimate + phi_w * estimate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::BinRecord;

    const BIN: i64 = 15 * 60_000;

    fn history(days: i64, per_bin: impl Fn(i64) -> u32) -> History {
        let mut h = History::new(14 * 96);
        for b in 0..days * 96 {
            let n = per_bin(b);
            let mut r = BinRecord::from_counts(crate::series::Counts::default(), b, BIN);
            r.failure = n;
            r.total = n;
            h.push(b, r);
        }
        h
    }

    #[test]
    fn buckets_are_hours_of_weekdays_and_weekends() {
        // Bin 0 starts Thursday 1 January 1970, 00:00 UTC.
        assert_eq!(bucket(0, BIN), 0);
        assert_eq!(bucket(4 * 13 + 1, BIN), 13);
        // Saturday 3 January, 02:00.
        assert_eq!(bucket(2 * 96 + 8, BIN), 26);
        // Monday 5 January, 23:45.
        assert_eq!(bucket(4 * 96 + 95, BIN), 23);
    }

    #[test]
    fn a_flat_signal_borrows_every_hour_and_a_seasonal_one_keeps_its_own() {
        // One event every fourth bin, at any hour: α reaches the whole history.
        let flat = history(10, |b| u32::from(b % 4 == 0));
        let p = Pool::learn(&flat, 10 * 96, BIN, SpikeMetric::Failure).unwrap();
        assert!(p.alpha > 100.0, "{p:?}");
        let m = p.model(10 * 96 + 1, 2, 0.0);
        assert!((m.mean - 0.5).abs() < 0.05 && m.phi < 0.02, "{m:?}");
        // Twelve in two bins is then far beyond chance (against about 1e-3 when the
        // expectation rests on three empty past bins).
        assert!(m.upper_tail(12) < 1e-12, "{}", m.upper_tail(12));
        // Events only from 13:00 to 17:00: the buckets differ, α is small, and the
        // afternoon expects its own rate, the night next to nothing.
        let seasonal = history(10, |b| if (52..68).contains(&(b % 96)) { 2 } else { 0 });
        let p = Pool::learn(&seasonal, 10 * 96, BIN, SpikeMetric::Failure).unwrap();
        assert!(p.alpha < 2.0, "{p:?}");
        let (day, night) = (p.window(10 * 96 + 60, 1).0, p.window(10 * 96 + 8, 1).0);
        assert!(day > 1.5 && night < 0.1, "{day} {night}");
    }

    #[test]
    fn one_pass_learns_each_metric_as_alone() {
        let mut h = history(6, |b| u32::from(b % 3 == 0) * 4);
        for b in 0..6 * 96 {
            if let Some(r) = h.get(b) {
                let mut r = *r;
                r.failed_ips = r.failure / 4;
                h.push(b, r);
            }
        }
        let metrics = [SpikeMetric::Failure, SpikeMetric::FailingSources];
        let both = Pool::learn_each(&h, 6 * 96, BIN, metrics).unwrap();
        for (pool, metric) in both.iter().zip(metrics) {
            assert_eq!(Some(pool), Pool::learn(&h, 6 * 96, BIN, metric).as_ref());
        }
        assert!(both[0].window(6 * 96, 1).0 > 3.0 * both[1].window(6 * 96, 1).0);
    }

    #[test]
    fn too_little_history_is_not_pooled_and_anomalous_bins_are_left_out() {
        let short = history(3, |_| 1);
        assert_eq!(Pool::learn(&short, 3 * 96, BIN, SpikeMetric::Failure), None);
        let mut h = history(6, |_| 0);
        let mut attack = BinRecord::from_counts(crate::series::Counts::default(), 6 * 96, BIN);
        attack.failure = 500;
        attack.anomalous = true;
        h.push(6 * 96, attack);
        let p = Pool::learn(&h, 6 * 96 + 1, BIN, SpikeMetric::Failure).unwrap();
        assert!(p.window(6 * 96 + 1, 1).0 < 0.01, "{p:?}");
        // Bins at or after `before` are not read either.
        let p = Pool::learn(
            &history(6, |b| u32::from(b >= 5 * 96) * 9),
            5 * 96,
            BIN,
            SpikeMetric::Failure,
        )
        .unwrap();
        assert!(p.window(5 * 96, 1).0 < 0.01, "{p:?}");
    }
}
