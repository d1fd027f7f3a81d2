//! The chart's axes: a value axis with round ticks (linear, or logarithmic when an
//! attack dwarfs the baseline), round time steps, and thinning of long runs.

use super::Point;

/// The value axis: from 0 to `max`, linear or logarithmic (`log(1 + v)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueAxis {
    pub max: f64,
    pub log: bool,
}

impl ValueAxis {
    /// A round maximum covering what was seen and expected, at least 2 (so a quiet
    /// series reads 0, 1, 2). A band edge far off the scale (a drop detector's upper
    /// bound) is clipped rather than squashing the lines. When the peak dwarfs what is
    /// normal (an attack of 2,000 failures next to a normal 5), the axis is logarithmic,
    /// so both the attack and the band stay readable.
    pub fn log_when_dwarfed(points: &[Point]) -> ValueAxis {
        let finite_hi = |p: &Point| {
            p.band
                .map_or(0.0, |(_, hi)| if hi.is_finite() { hi } else { 0.0 })
        };
        let seen = points
            .iter()
            .map(|p| p.observed.max(p.expected.unwrap_or(0.0)))
            .fold(0.0, f64::max);
        let band_top = points.iter().map(finite_hi).fold(0.0, f64::max);
        let normal = points
            .iter()
            .map(|p| p.expected.unwrap_or(0.0).max(finite_hi(p)))
            .fold(0.0, f64::max);
        ValueAxis {
            max: nice_ceiling(seen.max(band_top.min(seen * 2.0 + 5.0)).max(2.0)),
            log: seen > 10.0 * normal.max(2.0),
        }
    }

    /// A linear axis that follows the bulk of the data: one burst a hundred times the
    /// usual level would flatten everything else to a line at zero, so the maximum is the
    /// 99th percentile of observations, the 98th of the upper bound and every
    /// expectation (with some headroom) unless the largest observation is not much beyond
    /// that; taller bins are drawn clipped at the top with their value written there.
    pub fn bulk(points: &[Point]) -> ValueAxis {
        let observed = || points.iter().map(|p| p.observed);
        let upper = points.iter().filter_map(|p| p.band.map(|(_, hi)| hi));
        let bulk = quantile(observed().collect(), 0.99)
            .max(quantile(upper.collect(), 0.98))
            .max(points.iter().filter_map(|p| p.expected).fold(0.0, f64::max))
            * 1.15;
        let top = observed().fold(0.0, f64::max) * 1.08;
        let max = if top <= bulk * 1.5 {
            top.max(bulk)
        } else {
            bulk
        };
        ValueAxis {
            max: if max > 0.0 { max } else { 1.0 },
            log: false,
        }
    }

    /// Where `v` sits between the axis' bottom (0) and top (1); off-scale and infinite
    /// values sit at the top.
    pub(super) fn unit(&self, v: f64) -> f64 {
        let u = if self.log {
            (1.0 + v.max(0.0)).log10() / (1.0 + self.max).log10()
        } else {
            v / self.max
        };
        if u.is_finite() {
            u.clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    /// Gridlines: multiples of a round step on a linear axis; 0, each power of ten and
    /// the top on a logarithmic one (the top only when its label would not run into the
    /// last power's: 2000 sits too close above 1000).
    pub fn ticks(&self) -> Vec<f64> {
        if self.log {
            let mut ticks: Vec<f64> = std::iter::once(0.0)
                .chain(
                    std::iter::successors(Some(1.0), |v| Some(v * 10.0))
                        .take_while(|v| *v < self.max),
                )
                .collect();
            if ticks
                .last()
                .is_none_or(|&t| self.unit(self.max) - self.unit(t) > 0.12)
            {
                ticks.push(self.max);
            }
            return ticks;
        }
        let step = nice_step(self.max, 3.0);
        (0..)
            .map(|i| f64::from(i) * step)
            .take_while(|v| *v <= self.max * (1.0 + 1e-9))
            .take(100)
            .collect()
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `v`: a round top for an axis.
pub fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

/// A step of 1, 2 or 5 times a power of ten that cuts `range` into about `ticks` parts.
pub fn nice_step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// The `q` quantile of some values (0 when there are none).
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

/// Keep at most `max` points of a run: each kept point stands for a bucket of bins and
/// shows the bucket's most deviating observation (spikes and drops both survive), its
/// mean expectation and its widest band.
pub fn thin(run: &[Point], max: usize) -> Vec<Point> {
    let per = run.len().div_ceil(max.max(1)).max(1);
    if per == 1 {
        return run.to_vec();
    }
    run.chunks(per).filter_map(merge).collect()
}

/// One point for a bucket of points (see [`thin`]).
fn merge(chunk: &[Point]) -> Option<Point> {
    let first = chunk.first()?;
    let expected: Vec<f64> = chunk.iter().filter_map(|p| p.expected).collect();
    let expected =
        (!expected.is_empty()).then(|| expected.iter().sum::<f64>() / expected.len() as f64);
    let band = chunk
        .iter()
        .filter_map(|p| p.band)
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    let centre = expected
        .unwrap_or_else(|| chunk.iter().map(|p| p.observed).sum::<f64>() / chunk.len() as f64);
    let observed = chunk
        .iter()
        .map(|p| p.observed)
        .max_by(|a, b| (a - centre).abs().total_cmp(&(b - centre).abs()))
        .unwrap_or(first.observed);
    Some(Point {
        bin: first.bin,
        observed,
        expected,
        band,
        anomalous: chunk.iter().any(|p| p.anomalous),
    })
}

/// Time gridlines: a round step (minutes to weeks) giving at most `max` labels.
pub(super) fn time_step_ms(span_ms: i64, max: usize) -> i64 {
    const MINUTE: i64 = 60_000;
    const STEPS: [i64; 13] = [
        1, 5, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 4320, 10080,
    ];
    let max = max.max(1) as i64;
    STEPS
        .iter()
        .map(|m| m * MINUTE)
        .find(|step| span_ms / step <= max)
        .unwrap_or_else(|| (span_ms / max / (1440 * MINUTE) + 1) * 1440 * MINUTE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(bin: i64, observed: f64) -> Point {
        Point {
            bin,
            observed,
            expected: Some(10.0),
            band: Some((5.0, 15.0)),
            anomalous: false,
        }
    }

    #[test]
    fn round_axis_tops_and_steps() {
        assert_eq!(nice_ceiling(2.0), 2.0);
        assert_eq!(nice_ceiling(1.3), 2.0);
        assert_eq!(nice_ceiling(23.0), 25.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(nice_ceiling(2000.0), 2000.0);
        assert_eq!(nice_step(100.0, 3.0), 50.0);
        assert_eq!(nice_step(1.0, 3.0), 0.5);
        assert_eq!(nice_step(7.0, 3.0), 5.0);
    }

    #[test]
    fn ticks_are_round_and_within_the_axis() {
        let linear = ValueAxis {
            max: 2.0,
            log: false,
        };
        assert_eq!(linear.ticks(), vec![0.0, 1.0, 2.0]);
        let linear = ValueAxis {
            max: 87.0,
            log: false,
        };
        assert_eq!(linear.ticks(), vec![0.0, 50.0]);
        let log = ValueAxis {
            max: 2000.0,
            log: true,
        };
        assert_eq!(log.ticks(), vec![0.0, 1.0, 10.0, 100.0, 1000.0]);
        let log = ValueAxis {
            max: 500.0,
            log: true,
        };
        assert_eq!(log.ticks(), vec![0.0, 1.0, 10.0, 100.0, 500.0]);
    }

    #[test]
    fn an_attack_that_dwarfs_the_baseline_gets_a_log_axis() {
        let mut points: Vec<Point> = (0..200).map(|b| point(b, 10.0)).collect();
        assert!(!ValueAxis::log_when_dwarfed(&points).log);
        points[20].observed = 2000.0;
        let axis = ValueAxis::log_when_dwarfed(&points);
        assert!(axis.log);
        assert_eq!(axis.max, 2000.0);
        // The report's axis follows the bulk instead, and clips the attack.
        assert!(ValueAxis::bulk(&points).max < 100.0);
    }

    #[test]
    fn thinning_keeps_the_most_deviating_observation() {
        let mut run: Vec<Point> = (0..300).map(|b| point(b, 10.0)).collect();
        run[1].observed = 0.0; // a drop
        run[4].observed = 90.0; // a spike
        let thinned = thin(&run, 100);
        assert!(thinned.len() <= 100);
        assert_eq!(thinned[0].observed, 0.0);
        assert_eq!(thinned[1].observed, 90.0);
        assert_eq!(thin(&run[..50], 100), run[..50].to_vec());
    }

    #[test]
    fn time_steps_are_round() {
        let hour = 3_600_000;
        assert_eq!(time_step_ms(48 * hour, 8), 6 * hour);
        assert_eq!(time_step_ms(14 * 24 * hour, 16), 24 * hour);
        assert_eq!(time_step_ms(2 * hour, 8), 15 * 60_000);
    }
}
