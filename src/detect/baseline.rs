//! Baselines: what a bin of a series is expected to hold, learned from its history.
//!
//! Sign-ins follow the week: busy weekday mornings, quiet nights, quieter weekends. So
//! the expectation for a bin comes, in order of preference, from
//!
//! 1. the same time in previous weeks (hour of week), when a week of history exists;
//! 2. the same time on previous days of the same kind (weekday or weekend);
//! 3. the recent level (the last few clean bins), when there is no more history.
//!
//! Each uses neighbouring bins too (±1 bin) and a trimmed mean, so one odd bin does not
//! drag the expectation. Bins a detector flagged as anomalous are skipped, so an attack
//! does not teach the baseline that attacks are normal (on a rule over totals, so are
//! bins a detector found beyond its `p_value` that a guard let pass: see
//! `pipeline::engine`). A level factor then scales the
//! seasonal expectation by how the last few hours compared with what was expected of
//! them, which follows slow drift and quiet holidays.
//!
//! # Seasons in the organisation's time zone
//! People keep local time, so "the same time last week" and "a weekday" are local
//! notions: with a `timezone` (IANA, e.g. `America/New_York`) the samples are taken at
//! the same *local* time in previous weeks and days, and weekends are local weekends.
//! Across a daylight saving change the UTC bin of 09:00 moves by an hour; without the
//! time zone the baseline would compare 09:00 with 08:00 (or 10:00) for a week. UTC is
//! the default.

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

use crate::series::{BinRecord, History};

/// What a bin is expected to hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    pub total: f64,
    pub success: f64,
    pub failure: f64,
    /// Seasonal `total` before the level factor (kept in history to measure level later).
    pub seasonal_total: f64,
    pub basis: Basis,
    /// How many past bins the expectation rests on.
    pub samples: usize,
}

impl Expected {
    /// Expected share of attempts that fail, with half a failure in one attempt added so
    /// that a series with no failures yet does not make the first one look infinitely
    /// unlikely. The prior pulls the share towards one half, so it raises every share a
    /// detector could page on: a prior that pulled it towards a twentieth (half a
    /// failure in ten attempts did) put the null below the true share on a quiet series
    /// that often fails, and its quiet bins paged at five times the configured rate.
    pub fn failure_share(&self) -> f64 {
        failure_share(self.failure, self.total)
    }

    pub fn success_share(&self) -> f64 {
        (self.success + 0.5) / (self.total + 1.0)
    }

    /// How many independent copies of a window of `w` bins this expectation is an
    /// average of: the expectation of such a window rests on about this many times its
    /// own count of past events, and is as uncertain as that count is small (see
    /// `detect::spike`). 0 when it rests on no past bin (a value never seen before).
    ///
    /// A seasonal tier averages `n` samples, three per past period (the bin at the same
    /// time and its two neighbours). For one bin they are `n` copies. For a window of
    /// `w ≥ 2` bins the neighbours of one bin are bins of the window itself, so a past
    /// period holds about one copy of the window: the window's estimate is a sum in which
    /// each past bin counts up to three times, and its variance is that of
    /// `(n/3) · 9w / (9w − 8)` independent copies (`Σ m²` over the past bins, with
    /// multiplicities `m` of 1, 2, 3 … 3, 2, 1). The recent level is one mean of `n`
    /// bins repeated over the window: `n / w` copies.
    pub fn window_samples(&self, w: u32) -> f64 {
        let n = self.samples as f64;
        let w = f64::from(w.max(1));
        match self.basis {
            _ if self.samples == 0 => 0.0,
            Basis::RecentLevel => n / w,
            Basis::HourOfWeek | Basis::TimeOfDay if w < 2.0 => n,
            Basis::HourOfWeek | Basis::TimeOfDay => n / 3.0 * 9.0 * w / (9.0 * w - 8.0),
        }
    }
}

/// The share of `total` expected attempts that `failure` expected failures make, with
/// half a failure in one attempt added (see [`Expected::failure_share`]): also what a
/// window of bins expects, from its summed expectations.
pub fn failure_share(failure: f64, total: f64) -> f64 {
    (failure + 0.5) / (total + 1.0)
}

/// Which history an expectation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    HourOfWeek,
    TimeOfDay,
    RecentLevel,
}

/// A baseline computes expectations from a series' history.
pub trait Baseline: Send + Sync {
    /// The expectation for `bin`, from the history before it; `None` while there is too
    /// little history to say.
    fn expected(&self, history: &History, bin: i64) -> Option<Expected>;
}

/// The seasonal baseline described in the module docs.
#[derive(Debug, Clone)]
pub struct Seasonal {
    bin_ms: i64,
    bins_per_day: i64,
    /// How many bins back the history reaches (the baseline window).
    window_bins: i64,
    local: LocalTime,
}

/// Bins in the organisation's local time: which bin of a past week or day is "the same
/// time" to people who keep a clock that changes for daylight saving.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalTime {
    bin_ms: i64,
    /// The organisation's time zone; `None` is UTC.
    tz: Option<Tz>,
}

impl LocalTime {
    pub fn new(bin_ms: i64, tz: Option<Tz>) -> LocalTime {
        LocalTime {
            bin_ms: bin_ms.max(1),
            tz,
        }
    }

    /// The time zone's offset from UTC at the start of `bin`, in ms (0 for UTC).
    pub fn offset_ms(&self, bin: i64) -> i64 {
        let Some(tz) = self.tz else {
            return 0;
        };
        match chrono::DateTime::from_timestamp_millis(bin * self.bin_ms) {
            Some(t) => {
                let secs = tz
                    .offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc();
                i64::from(secs) * 1000
            }
            None => 0,
        }
    }

    /// The bin `back_bins` before `bin` at the same local time: shifted by the change
    /// of the time zone's offset in between (an hour across a DST change).
    pub fn same_local_time(&self, bin: i64, back_bins: i64) -> i64 {
        let centre = bin - back_bins;
        if self.tz.is_none() {
            return centre;
        }
        centre + (self.offset_ms(bin) - self.offset_ms(centre)).div_euclid(self.bin_ms)
    }
}

/// Below this mean a bin, a metric's samples are not trimmed (see `Samples::trimmed`).
const SPARSE_MEAN: f64 = 3.0;

/// Fewer samples than this and a tier is not trusted.
const MIN_SAMPLES: usize = 3;
/// How many recent bins the level factor and the recent-level fallback look at.
const RECENT_BINS: usize = 8;

impl Seasonal {
    pub fn new(bin_ms: i64, window_bins: usize) -> Seasonal {
        let bin_ms = bin_ms.max(1);
        Seasonal {
            bin_ms,
            bins_per_day: (86_400_000 / bin_ms).max(1),
            window_bins: window_bins as i64,
            local: LocalTime::new(bin_ms, None),
        }
    }

    /// The same baseline with seasons in `local`'s time zone.
    pub fn with_local_time(mut self, local: LocalTime) -> Seasonal {
        self.local = local;
        self
    }

    fn is_weekend(&self, bin: i64) -> bool {
        // 1970-01-01 was a Thursday: day 0 → Thursday, so (day + 3) % 7 is 0 for Monday.
        let day = (bin * self.bin_ms + self.local.offset_ms(bin)).div_euclid(86_400_000);
        (day + 3).rem_euclid(7) >= 5
    }

    /// Samples at `bin - k * period ± 1` for k = 1.., within the window, kept when `keep`.
    fn samples(
        &self,
        history: &History,
        bin: i64,
        period: i64,
        keep: impl Fn(i64) -> bool,
        out: &mut Samples,
    ) {
        // A bin far off its own expectation (a holiday at a fifth of the usual volume, a
        // surge) is not what this time of the week usually holds: averaged in, a holiday
        // makes the same day next week look half as busy and an outage then looks like
        // a dip. Such bins are left out when enough others remain (robust across
        // weeks); when most are off (the normal itself moved), all are kept. Both sums
        // are kept as they come, so no bin is stored or visited twice.
        let mut all = Samples::default();
        let mut typical = Samples::default();
        // The window's own bins only: a history may keep a few more for the detectors
        // (see `RuleSpec::history_bins`). A week or day whose earlier neighbour lies
        // outside the window is left out whole: its later neighbours alone would lean
        // the season towards what comes next (before a morning's step, the step: on
        // outside traffic seeds 5 and 30 a lull of minutes in the quiet Sunday bin before
        // the phones' morning paged `flatline`).
        let oldest = history.next_bin().unwrap_or(bin) - self.window_bins;
        let mut k = 1;
        while k * period <= self.window_bins {
            let centre = self.local.same_local_time(bin, k * period);
            if keep(centre) && centre > oldest {
                for j in -1..=1 {
                    if let Some(r) = history.get(centre + j) {
                        if r.is_clean() {
                            all.add(r);
                            if is_typical(r) {
                                typical.add(r);
                            }
                        }
                    }
                }
            }
            k += 1;
        }
        *out = if typical.n >= MIN_SAMPLES && typical.n < all.n {
            typical
        } else {
            all
        };
    }
}

/// Fewer expected events than this and a bin's level is not judged: noise.
const MIN_LEVEL_EXPECTED: f32 = 10.0;

/// How far off its seasonal expectation (either way) a bin must be to be left out.
const LEVEL_OUTLIER: f32 = 2.0;

/// The bin held about what its season expected (within a factor of two), or too little
/// was expected to tell.
fn is_typical(r: &BinRecord) -> bool {
    let e = r.seasonal_total;
    if e < MIN_LEVEL_EXPECTED {
        return true;
    }
    let x = r.total as f32;
    x * LEVEL_OUTLIER >= e && x <= e * LEVEL_OUTLIER
}

impl Baseline for Seasonal {
    fn expected(&self, history: &History, bin: i64) -> Option<Expected> {
        // A window shorter than a day (split rules keep hours) holds no previous day, let
        // alone week: straight to the recent level (most series of a backtest, every bin).
        if self.bins_per_day <= self.window_bins {
            if let Some(e) = self.seasonal(history, bin) {
                return Some(e);
            }
        }
        self.recent_level(history)
    }
}

impl Seasonal {
    /// Tiers 1 and 2: the same time in previous weeks, else on previous days of the same
    /// kind, scaled by the level factor; `None` when neither has enough samples.
    fn seasonal(&self, history: &History, bin: i64) -> Option<Expected> {
        let mut samples = Samples::default();
        let week = self.bins_per_day * 7;
        let day = self.bins_per_day;

        let mut basis = Basis::HourOfWeek;
        self.samples(history, bin, week, |_| true, &mut samples);
        if samples.n < MIN_SAMPLES {
            basis = Basis::TimeOfDay;
            let weekend = self.is_weekend(bin);
            self.samples(
                history,
                bin,
                day,
                |b| self.is_weekend(b) == weekend,
                &mut samples,
            );
        }
        if samples.n < MIN_SAMPLES {
            return None;
        }
        let (total, success, failure) = samples.trimmed();
        let level = level_factor(history, total);
        Some(Expected {
            total: total * level,
            success: success * level,
            failure: failure * level,
            seasonal_total: total,
            basis,
            samples: samples.n,
        })
    }

    /// Tier 3: the last few clean bins; `None` with too few of them.
    fn recent_level(&self, history: &History) -> Option<Expected> {
        let mut samples = Samples::default();
        let lookback = self
            .bins_per_day
            .min(self.window_bins)
            .max(RECENT_BINS as i64) as usize;
        history.recent_clean(RECENT_BINS, lookback, |r| samples.add(r));
        if samples.n < MIN_SAMPLES {
            return None;
        }
        let e = samples.trimmed();
        Some(Expected {
            total: e.0,
            success: e.1,
            failure: e.2,
            seasonal_total: e.0,
            basis: Basis::RecentLevel,
            samples: samples.n,
        })
    }
}

/// The clean bins a tier found, as running sums: the trimmed mean needs no more, so
/// nothing is kept or sorted (this runs for every series in every bin).
#[derive(Debug, Clone, Copy)]
struct Samples {
    n: usize,
    /// Per metric (total, success, failure).
    sum: [f64; 3],
    /// Infinite while there is no sample (the samples are whole counts: never NaN).
    min: [f64; 3],
    max: [f64; 3],
}

impl Default for Samples {
    fn default() -> Samples {
        Samples {
            n: 0,
            sum: [0.0; 3],
            min: [f64::INFINITY; 3],
            max: [f64::NEG_INFINITY; 3],
        }
    }
}

impl Samples {
    #[inline]
    fn add(&mut self, r: &BinRecord) {
        let v = [r.total, r.success, r.failure].map(f64::from);
        for (i, v) in v.into_iter().enumerate() {
            self.min[i] = self.min[i].min(v);
            self.max[i] = self.max[i].max(v);
            self.sum[i] += v;
        }
        self.n += 1;
    }

    /// Mean of each metric after dropping the highest and lowest sample (when there are
    /// 5+). The samples are whole counts, so their sums are exact in any order: the
    /// result is that of sorting and dropping, bit for bit.
    ///
    /// A sparse metric (under [`SPARSE_MEAN`] a bin on average: a signal that sees a
    /// few events an hour) is not trimmed: its highest sample is most of its mass, not
    /// an outlier, and dropping it made the expectation of a series that holds one
    /// event every few bins zero, so any cluster of chance events looked impossible.
    fn trimmed(&self) -> (f64, f64, f64) {
        let one = |i: usize| {
            let mean = self.sum[i] / self.n.max(1) as f64;
            if self.n >= 5 && mean >= SPARSE_MEAN {
                (self.sum[i] - self.min[i] - self.max[i]) / (self.n - 2) as f64
            } else {
                self.sum[i] / self.n.max(1) as f64
            }
        };
        (one(0), one(1), one(2))
    }
}

/// [`Samples::trimmed`] of a slice of bins.
#[cfg(test)]
fn trimmed(samples: &[BinRecord]) -> (f64, f64, f64) {
    let mut s = Samples::default();
    for r in samples {
        s.add(r);
    }
    s.trimmed()
}

/// How the recent clean bins compared with their seasonal expectation, shrunk towards 1
/// (by pretending two bins of exactly-as-expected traffic) and bounded to [0.2, 5].
fn level_factor(history: &History, current_seasonal: f64) -> f64 {
    let (mut observed, mut expected) = (0.0, 0.0);
    for r in history.last(RECENT_BINS).filter(|r| r.is_clean()) {
        if r.seasonal_total > 0.0 {
            observed += f64::from(r.total);
            expected += f64::from(r.seasonal_total);
        }
    }
    let prior = 2.0 * current_seasonal.max(1.0);
    ((observed + prior) / (expected + prior)).clamp(0.2, 5.0)
}

#[cfg(test)]
mod tests;
