//! A counted series from outside the sign-in world, made to measure: the CSV of
//! `timestamp,value` another dashboard exports (5-minute mention counts, requests),
//! with the statistics of a public social-media series and bursts at known times.
//!
//! Each 5-minute count is Poisson around a rate that follows the day (quiet nights, a
//! broad afternoon peak) and the week (weekends at 60 %), multiplied by a Gamma factor
//! with mean 1 drawn once per 15 minutes. So the 15-minute bins a rule judges are
//! negative binomial with dispersion `phi` (variance `mu + phi mu²`) around the
//! seasonal curve, as `stats::dispersion` assumes and as the NAB Twitter series
//! roughly are (`phi` about 0.3-0.6 at 15 minutes). Bursts multiply the rate for a
//! while; they are the labels a test checks pages against.

use rand::rngs::SmallRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma, Poisson};

/// 2026-11-02 00:00 UTC, a Monday.
pub const START_MS: i64 = 1_793_577_600_000;
const ROW_MS: i64 = 5 * 60_000;
const BIN_MS: i64 = 15 * 60_000;

/// A burst injected into the series: from `start_ms` for `minutes`, the rate times
/// `factor`.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub start_ms: i64,
    pub minutes: i64,
    pub factor: f64,
}

impl Burst {
    /// A burst `hours` after [`START_MS`].
    pub fn at(hours: f64, minutes: i64, factor: f64) -> Burst {
        Burst {
            start_ms: START_MS + (hours * 3_600_000.0) as i64,
            minutes,
            factor,
        }
    }

    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.minutes * 60_000
    }
}

/// The expected count of one 5-minute row at `ms` with `peak` at the busiest hour.
pub fn seasonal_rate(ms: i64, peak: f64) -> f64 {
    let hour = (ms.rem_euclid(86_400_000)) as f64 / 3_600_000.0;
    // 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
    let weekday = (ms.div_euclid(86_400_000) + 3).rem_euclid(7);
    let week = if weekday >= 5 { 0.6 } else { 1.0 };
    let day = 0.15 + 0.85 * (-(hour - 16.0).powi(2) / 30.0).exp();
    peak * week * day
}

/// `days` of 5-minute counts from [`START_MS`], dispersion `phi` per 15-minute bin,
/// with `bursts`, as the CSV text a dashboard exports.
pub fn csv(seed: u64, days: i64, peak: f64, phi: f64, bursts: &[Burst]) -> String {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = String::from("timestamp,value\n");
    let mut factor = 1.0;
    let rows = days * 86_400_000 / ROW_MS;
    for i in 0..rows {
        let ms = START_MS + i * ROW_MS;
        if ms % BIN_MS == 0 {
            factor = match Gamma::new(1.0 / phi, phi) {
                Ok(g) => g.sample(&mut rng),
                Err(_) => 1.0,
            };
        }
        let burst: f64 = bursts
            .iter()
            .filter(|b| (b.start_ms..b.end_ms()).contains(&ms))
            .map(|b| b.factor)
            .product();
        let rate = seasonal_rate(ms, peak) * factor * burst;
        let n = Poisson::new(rate.max(1e-9)).map_or(0.0, |d| d.sample(&mut rng));
        let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        out.push_str(&format!("{},{}\n", t.format("%Y-%m-%d %H:%M:%S"), n as u64));
    }
    out
}
