//! Builders for the detectors' unit and property tests.

use super::*;
use crate::detect::baseline::Basis;

pub fn expected(total: f64, success: f64, failure: f64) -> Expected {
    Expected {
        total,
        success,
        failure,
        seasonal_total: total,
        basis: Basis::HourOfWeek,
        samples: 12,
    }
}

pub fn counts(total: u64, success: u64, failure: u64) -> Counts {
    Counts {
        total,
        success,
        failure,
        ..Counts::default()
    }
}

pub const LOW_DISPERSION: Dispersion = Dispersion {
    total: 0.02,
    success: 0.02,
    failure: 0.05,
    step: 0.02,
    busy_step: 0.02,
};

pub fn ctx<'a>(history: &'a History, c: Counts, e: Option<Expected>) -> BinContext<'a> {
    BinContext {
        counts: c,
        expected: e,
        dispersion: LOW_DISPERSION,
        history,
        bin: history.next_bin().unwrap_or(1000),
        bin_ms: 15 * 60_000,
        local: LocalTime::new(15 * 60_000, None),
        aggregate: false,
        sources: false,
        locked_out: false,
        sprayers: false,
        evidence_since: i64::MIN,
    }
}

/// One bin of quiet traffic drawn from the baseline's own distribution.
pub struct QuietBin {
    pub bin: i64,
    /// The daily curve at this bin (what a sound season expects).
    pub season: f64,
    pub count: u64,
}

/// `bins` bins of quiet traffic: a daily curve around `level`, scaled by a level of
/// the day (busy and quiet days, one drifting into the next over the day, not in a
/// step at midnight), each bin Poisson (`phi` = 0) or negative binomial with step
/// dispersion `phi` around it.
pub fn quiet_days(seed: u64, level: f64, phi: f64, bins: i64) -> Vec<QuietBin> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Gamma, Poisson};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let days = Gamma::new(25.0, 1.0 / 25.0).unwrap();
    let (mut today, mut tomorrow) = (1.0, days.sample(&mut rng));
    let mut out = Vec::with_capacity(usize::try_from(bins).unwrap_or(0));
    for bin in 0..bins {
        if bin % 96 == 0 {
            (today, tomorrow) = (tomorrow, days.sample(&mut rng));
        }
        let hour = (bin % 96) as f64 / 4.0;
        let season = level * (0.3 + (-(hour - 13.0).powi(2) / 20.0).exp());
        let mu = season * (today + (tomorrow - today) * hour / 24.0);
        let lambda = if phi > 0.0 {
            Gamma::new(1.0 / phi, mu * phi).unwrap().sample(&mut rng)
        } else {
            mu
        };
        let count = Poisson::new(lambda).unwrap().sample(&mut rng) as u64;
        out.push(QuietBin { bin, season, count });
    }
    out
}

/// The record a series of all-successful sign-ins keeps for a quiet bin.
pub fn quiet_record(q: &QuietBin, anomalous: bool) -> crate::series::BinRecord {
    crate::series::BinRecord {
        total: q.count as u32,
        success: q.count as u32,
        known: true,
        anomalous,
        seasonal_total: q.season as f32,
        expected_total: q.season as f32,
        expected_failure: -1.0,
        ..crate::series::BinRecord::default()
    }
}
