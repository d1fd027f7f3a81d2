//! The window of plausible publication times.

use std::time::Duration;

/// Events whose median time anchors the window.
const WINDOW_SAMPLE: usize = 1001;

/// The window of plausible publication times: `max_skew` either side of the median of the
/// first events read. One event dated `0001-01-01` or `9999-12-31` is refused instead of
/// stretching the replay over millennia.
#[derive(Debug, Clone)]
pub struct TimeWindow {
    max_skew_ms: Option<i64>,
    sample: Vec<i64>,
    bounds: Option<(i64, i64)>,
}

impl TimeWindow {
    pub fn new(max_skew: Option<Duration>) -> TimeWindow {
        TimeWindow {
            max_skew_ms: max_skew.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            sample: Vec::new(),
            bounds: None,
        }
    }

    /// Explicit bounds (a second pass that must decide as the first did).
    pub fn fixed(bounds: Option<(i64, i64)>) -> TimeWindow {
        TimeWindow {
            max_skew_ms: None,
            sample: Vec::new(),
            bounds,
        }
    }

    /// Still collecting the events that anchor it?
    pub fn sampling(&self) -> bool {
        self.max_skew_ms.is_some() && self.bounds.is_none()
    }

    /// Add an event time to the sample; true once the sample is full.
    pub fn sample(&mut self, ms: i64) -> bool {
        self.sample.push(ms);
        self.sample.len() >= WINDOW_SAMPLE
    }

    /// Fix the window around the median of the sample.
    pub fn anchor(&mut self) {
        let Some(skew) = self.max_skew_ms else {
            return;
        };
        if self.bounds.is_some() || self.sample.is_empty() {
            return;
        }
        self.sample.sort_unstable();
        let median = self.sample[self.sample.len() / 2];
        self.bounds = Some((median.saturating_sub(skew), median.saturating_add(skew)));
        self.sample = Vec::new();
    }

    pub fn bounds(&self) -> Option<(i64, i64)> {
        self.bounds
    }

    /// `Err(why)` for a time outside the window.
    pub fn check(&self, ms: i64) -> Result<(), String> {
        match self.bounds {
            Some((lo, hi)) if ms < lo || ms > hi => Err(format!(
                "published {} is outside the time window {} to {} (the median of the first events ± --max-time-skew)",
                fmt_ms(ms),
                fmt_ms(lo),
                fmt_ms(hi)
            )),
            _ => Ok(()),
        }
    }
}

pub(super) fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}
