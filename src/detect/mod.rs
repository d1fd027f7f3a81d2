//! Detectors: given one bin of one series and its baseline, is the bin anomalous?
//!
//! Each detector is a small struct implementing [`Detector`], configured by its own
//! `[rules.detectors.<name>]` table. A detector only judges a single bin; whether that
//! becomes a page (M of N bins, resolution, repeats) is the alert lifecycle's job
//! (the pipeline's lifecycle).

pub mod baseline;
mod distinct_users;
mod distributed_spraying;
mod failing_sources;
mod flatline;
pub mod long_run;
mod push_fatigue;
mod ratio;
mod spike;
mod success_drop;
mod volume_drop;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config_reader::{Problems, Table};
use crate::detect::baseline::{Expected, LocalTime};
use crate::series::{Counts, History};

pub use distinct_users::DistinctUsers;
pub use distributed_spraying::DistributedSpraying;
pub use failing_sources::FailingSources;
pub use flatline::Flatline;
pub use push_fatigue::PushFatigue;
pub use ratio::FailureRatio;
pub(crate) use spike::beyond_retry_storm;
pub use spike::{CountSpike, SpikeMetric};
pub use success_drop::SuccessDrop;
pub use volume_drop::VolumeDrop;

/// Everything a detector may look at for one bin.
pub struct BinContext<'a> {
    pub counts: Counts,
    /// `None` during warm-up or with too little history.
    pub expected: Option<Expected>,
    pub dispersion: Dispersion,
    /// The series' bins before this one.
    pub history: &'a History,
    pub bin: i64,
    pub bin_ms: i64,
    /// The bins in the organisation's local time.
    pub local: LocalTime,
    /// This series is the `(other)` remainder of a split rule: many sources merged, so
    /// per-source tests (`distinct_users`, `push_fatigue`) do not apply to it.
    pub aggregate: bool,
    /// This series is a split rule's `(failing-only sources)` or `(locked-out sources)`
    /// count (see `failing_sources`), not a source: only `failing_sources` judges it.
    pub sources: bool,
    /// Of those, the `(locked-out sources)` count.
    pub locked_out: bool,
    /// This series is a split rule's `(slow sprayers)` count (see
    /// `distributed_spraying`): only `distributed_spraying` judges it.
    pub sprayers: bool,
    /// Sliding windows reach back no further than this bin (the bin after this series'
    /// last alert resolved): what already paged is not added up again.
    pub evidence_since: i64,
}

/// Which kind of series a bin belongs to (the flags of [`BinContext`] of the same names):
/// one source (all false), or one of a split rule's summary counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesKind {
    pub aggregate: bool,
    pub sources: bool,
    pub locked_out: bool,
    pub sprayers: bool,
}

impl BinContext<'_> {
    /// The kind of series this bin is of.
    pub fn kind(&self) -> SeriesKind {
        SeriesKind {
            aggregate: self.aggregate,
            sources: self.sources,
            locked_out: self.locked_out,
            sprayers: self.sprayers,
        }
    }

    /// The counts of this bin and the `bins - 1` known bins before it, added up: what a
    /// detector over a trailing window sees.
    pub fn window_sum(&self, bins: u32) -> Counts {
        let mut sum = self.counts;
        for back in 1..i64::from(bins.max(1)) {
            if let Some(c) = self.history.counts(self.bin - back) {
                sum.merge(&c);
            }
        }
        sum
    }
}

/// Learned over-dispersion of each metric (see [`crate::stats::dispersion`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dispersion {
    pub total: f64,
    pub success: f64,
    pub failure: f64,
    /// Of the total from one bin to the next, scaled by the season: what a test that
    /// conditions on the bins before must tolerate (`flatline`'s weight of recent bins).
    pub step: f64,
    /// The same step learned only from bins expecting at least
    /// [`crate::stats::dispersion::STEP_LEARN_MIN_MEAN`], those `volume_drop` judges:
    /// the small hours' scatter does not carry into the busy hours it tests.
    pub busy_step: f64,
}

/// A detector's verdict on one bin.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub anomalous: bool,
    pub observed: f64,
    pub expected: f64,
    /// The band of normal values: a bin outside [lower, upper] is flagged.
    pub lower: f64,
    pub upper: f64,
    pub p_value: f64,
    pub severity: Severity,
    /// What was measured, for a human: "failed sign-ins", "failure share".
    pub measure: &'static str,
    /// How many bins (this one and those before it) `observed` and `expected` add up:
    /// 1 for a single bin, more when a sliding window paged ("62 failed sign-ins in the
    /// last 90 min, expected 3").
    pub window_bins: u32,
    /// How many of those bins the lifecycle may count as anomalous towards
    /// `bins_to_fire` when this finding is anomalous (1: this bin only). A detector
    /// sets more only when its test pooled the bins *and* they share the anomaly
    /// (`volume_drop`: the attempts themselves fell in one step), so a partial outage
    /// that is proof only over three bins together pages on that proof instead of
    /// waiting for a second such window.
    pub evidence_bins: u32,
}

impl Finding {
    /// Whether this bin itself lies outside the band of normal values, on the side
    /// `kind` pages on (a rebound after an outage is no reason to hold a drop's alert
    /// open): such a bin does not resolve an open alert (the alert lifecycle's
    /// `Reading::OffBand`). Only the tests of a rule's totals on this bin alone: a
    /// window's sum carries the bins before it, and the per-source tests and
    /// `distributed_spraying` count trailing windows that hold an attack's sources for
    /// hours after it ends, and resolve after a run of quiet bins by design.
    pub fn off_band(&self, kind: DetectorKind) -> bool {
        if self.window_bins != 1 || !DetectorKind::TOTALS.contains(&kind) {
            return false;
        }
        if kind.pages_low() {
            self.observed < self.lower
        } else {
            self.observed > self.upper
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// One detector. Implementations are pure: same context, same finding.
pub trait Detector: Send + Sync + fmt::Debug {
    fn kind(&self) -> DetectorKind;
    /// The verdict on this bin, or `None` when the detector cannot judge it (no baseline
    /// yet, or the baseline expects too little for the test to mean anything).
    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding>;
    /// True when [`Detector::evaluate`] never flags an empty bin (all its counts zero) of
    /// a series of this `kind`, whatever the history and the expectation: the pipeline
    /// then leaves the detector out for an empty bin of a series no alert is open or
    /// pending for (nothing could fire, repeat or resolve), and may put off teaching the
    /// baseline such bins until the series is seen again (it asks before computing the
    /// expectation). False, the default, is always safe: the bin is judged.
    fn quiet_on_empty_bin(&self, _kind: SeriesKind) -> bool {
        false
    }
    /// How many bins (this one included) a verdict looks at; a rule's history must hold
    /// at least that many.
    fn window_bins(&self) -> u32 {
        1
    }

    /// The configured `p_value` threshold, for `backtest --suggest`.
    fn p_value(&self) -> Option<f64> {
        None
    }

    /// The same detector with another `p_value` threshold, everything else unchanged.
    /// `backtest --suggest` evaluates such a copy to learn which bins a looser threshold
    /// would flag; a detector without it can only be tuned tighter.
    fn with_p_value(&self, _p_value: f64) -> Option<Arc<dyn Detector>> {
        None
    }

    /// The configured `min_count` floor, for `backtest --suggest`.
    fn min_count(&self) -> Option<u64> {
        None
    }

    /// This detector as `distributed_spraying`, whose `(slow sprayers)` series the
    /// pipeline counts for it.
    fn as_distributed_spraying(&self) -> Option<&DistributedSpraying> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DetectorKind {
    FailureSpike,
    FailureRatio,
    SuccessDrop,
    VolumeSpike,
    VolumeDrop,
    Flatline,
    DistinctUsers,
    FailingSources,
    PushFatigue,
    DistributedSpraying,
}

impl DetectorKind {
    pub const ALL: [DetectorKind; 10] = [
        DetectorKind::FailureSpike,
        DetectorKind::FailureRatio,
        DetectorKind::SuccessDrop,
        DetectorKind::VolumeSpike,
        DetectorKind::VolumeDrop,
        DetectorKind::Flatline,
        DetectorKind::DistinctUsers,
        DetectorKind::FailingSources,
        DetectorKind::PushFatigue,
        DetectorKind::DistributedSpraying,
    ];

    /// What a rule over totals gets when it names no detectors. The per-source tests
    /// (`distinct_users`, `push_fatigue`) belong to split rules and are asked for by name.
    pub const TOTALS: [DetectorKind; 6] = [
        DetectorKind::FailureSpike,
        DetectorKind::FailureRatio,
        DetectorKind::SuccessDrop,
        DetectorKind::VolumeSpike,
        DetectorKind::VolumeDrop,
        DetectorKind::Flatline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DetectorKind::FailureSpike => "failure_spike",
            DetectorKind::FailureRatio => "failure_ratio",
            DetectorKind::SuccessDrop => "success_drop",
            DetectorKind::VolumeSpike => "volume_spike",
            DetectorKind::VolumeDrop => "volume_drop",
            DetectorKind::Flatline => "flatline",
            DetectorKind::DistinctUsers => "distinct_users",
            DetectorKind::FailingSources => "failing_sources",
            DetectorKind::PushFatigue => "push_fatigue",
            DetectorKind::DistributedSpraying => "distributed_spraying",
        }
    }

    pub fn from_name(name: &str) -> Option<DetectorKind> {
        DetectorKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this detector pages when a value falls (a drop, a silence) rather than
    /// when it rises.
    pub fn pages_low(self) -> bool {
        matches!(
            self,
            DetectorKind::SuccessDrop | DetectorKind::VolumeDrop | DetectorKind::Flatline
        )
    }

    /// When a run of anomalous bins becomes a page, by default. A failure spike pages on
    /// its first bin (attacks are short); drops and ratios wait for a second bin out of
    /// three, which costs one bin of latency and saves many false pages. The per-source
    /// tests already look at a trailing window, so one bin is enough; low-and-slow
    /// attacks leave bins empty now and then, so they resolve only after an hour of quiet
    /// (four 15m bins) instead of paging again on the next attempt — two hours for
    /// distributed spraying, whose sources stay in its four-hour window.
    fn default_fire(self) -> FirePolicy {
        let (bins_to_fire, bins_window, bins_to_resolve) = match self {
            DetectorKind::FailureSpike | DetectorKind::Flatline | DetectorKind::FailingSources => {
                (1, 1, 2)
            }
            DetectorKind::FailureRatio
            | DetectorKind::SuccessDrop
            | DetectorKind::VolumeSpike
            | DetectorKind::VolumeDrop => (2, 3, 2),
            DetectorKind::DistinctUsers | DetectorKind::PushFatigue => (1, 1, 4),
            // Its sources stay in the four-hour window after a run ends, and any of them
            // failing again is a bin it flags: two hours of quiet before it resolves, so
            // a run's stragglers do not page it a second time.
            DetectorKind::DistributedSpraying => (1, 1, 8),
        };
        FirePolicy {
            bins_to_fire,
            bins_window,
            bins_to_resolve,
            repeat_interval: Duration::from_secs(4 * 3600),
        }
    }
}

/// When anomalous bins become a firing alert, and when it resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirePolicy {
    /// Fire once this many of the last `bins_window` bins are anomalous (M of N).
    pub bins_to_fire: u32,
    pub bins_window: u32,
    /// Resolve after this many consecutive normal bins.
    pub bins_to_resolve: u32,
    /// While firing, notify again after this long.
    pub repeat_interval: Duration,
}

/// A configured detector: what judges a bin, and when judgements become pages.
#[derive(Debug, Clone)]
pub struct DetectorSpec {
    pub detector: Arc<dyn Detector>,
    pub fire: FirePolicy,
}

impl DetectorSpec {
    /// The detector with default thresholds.
    pub fn default_for(kind: DetectorKind) -> DetectorSpec {
        let mut problems = Problems::default();
        let mut empty = Table::new("", None, &mut problems);
        DetectorSpec::read(kind, &mut empty, &mut problems)
    }

    /// Read a `[rules.detectors.<name>]` table (the caller reports unknown keys).
    pub fn read(kind: DetectorKind, t: &mut Table<'_>, problems: &mut Problems) -> DetectorSpec {
        let detector: Arc<dyn Detector> = match kind {
            DetectorKind::FailureSpike => {
                Arc::new(CountSpike::read(SpikeMetric::Failure, t, problems))
            }
            DetectorKind::VolumeSpike => {
                Arc::new(CountSpike::read(SpikeMetric::Total, t, problems))
            }
            DetectorKind::FailureRatio => Arc::new(FailureRatio::read(t, problems)),
            DetectorKind::SuccessDrop => Arc::new(SuccessDrop::read(t, problems)),
            DetectorKind::Flatline => Arc::new(Flatline::read(t, problems)),
            DetectorKind::VolumeDrop => Arc::new(VolumeDrop::read(t, problems)),
            DetectorKind::DistinctUsers => Arc::new(DistinctUsers::read(t, problems)),
            DetectorKind::FailingSources => Arc::new(FailingSources::read(t, problems)),
            DetectorKind::PushFatigue => Arc::new(PushFatigue::read(t, problems)),
            DetectorKind::DistributedSpraying => Arc::new(DistributedSpraying::read(t, problems)),
        };
        let mut fire = kind.default_fire();
        if let Some(n) = t.count("bins_to_fire", 1, problems) {
            fire.bins_to_fire = n.min(1000) as u32;
        }
        if let Some(n) = t.count("bins_window", 1, problems) {
            fire.bins_window = n.min(1000) as u32;
        }
        if fire.bins_window < fire.bins_to_fire {
            // Only one of the two was probably set: widen the window to fit.
            if t.raw("bins_window").is_some() {
                problems.push(
                    t.key_path("bins_window"),
                    format!(
                        "must be at least bins_to_fire ({}), found {}",
                        fire.bins_to_fire, fire.bins_window
                    ),
                );
            }
            fire.bins_window = fire.bins_to_fire;
        }
        if let Some(n) = t.count("bins_to_resolve", 1, problems) {
            fire.bins_to_resolve = n.min(1000) as u32;
        }
        if let Some(d) = t.duration("repeat_interval", problems) {
            fire.repeat_interval = d;
        }
        DetectorSpec { detector, fire }
    }
}

/// The p-value threshold every detector reads, checked to lie in (0, 1).
pub(crate) fn read_p_value(t: &mut Table<'_>, default: f64, problems: &mut Problems) -> f64 {
    match t.f64("p_value", problems) {
        Some(p) if p > 0.0 && p < 1.0 => p,
        Some(p) => {
            problems.push(
                t.key_path("p_value"),
                format!("must be between 0 and 1 (exclusive), found {p}"),
            );
            default
        }
        None => default,
    }
}

/// A ratio threshold (`min_ratio`, `max_fraction`) checked to be positive.
pub(crate) fn read_positive(
    t: &mut Table<'_>,
    key: &'static str,
    default: f64,
    problems: &mut Problems,
) -> f64 {
    match t.f64(key, problems) {
        Some(x) if x > 0.0 => x,
        Some(x) => {
            problems.push(
                t.key_path(key),
                format!("must be greater than 0, found {x}"),
            );
            default
        }
        None => default,
    }
}

/// A share in [0, 1] (`min_failure_share`, ...), checked.
pub(crate) fn read_share(
    t: &mut Table<'_>,
    key: &'static str,
    default: f64,
    problems: &mut Problems,
) -> f64 {
    match t.f64(key, problems) {
        Some(x) if (0.0..=1.0).contains(&x) => x,
        Some(x) => {
            problems.push(
                t.key_path(key),
                format!("must be between 0 and 1, found {x}"),
            );
            default
        }
        None => default,
    }
}

/// A window length in bins, at least 1.
pub(crate) fn read_bins(
    t: &mut Table<'_>,
    key: &'static str,
    default: u32,
    problems: &mut Problems,
) -> u32 {
    t.count(key, 1, problems)
        .map_or(default, |n| n.min(10_000) as u32)
}

/// Severity from how far past the threshold a finding is.
pub(crate) fn severity_from(p_value: f64, threshold: f64, magnitude: f64) -> Severity {
    if p_value <= threshold * 1e-6 && magnitude >= 5.0 {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

/// The names of all detectors, for messages.
fn detector_names() -> String {
    DetectorKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Read one `[rules.detectors.<name>]` table.
pub fn read_detector(
    path: &str,
    name: &str,
    value: &Value,
    problems: &mut Problems,
) -> Option<DetectorSpec> {
    let Some(kind) = DetectorKind::from_name(name) else {
        problems.push(
            path,
            format!("unknown detector (known: {})", detector_names()),
        );
        return None;
    };
    let mut t = Table::new(path, Some(value), problems);
    let spec = DetectorSpec::read(kind, &mut t, problems);
    t.finish(problems);
    Some(spec)
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::series::BinRecord;
    use proptest::prelude::*;

    #[test]
    fn off_band_is_this_bin_beyond_the_side_a_detector_pages_on() {
        let f = |observed: f64, window_bins: u32| Finding {
            anomalous: false,
            observed,
            expected: 10.0,
            lower: 5.0,
            upper: 15.0,
            p_value: 0.5,
            severity: Severity::Warning,
            measure: "m",
            window_bins,
            evidence_bins: 1,
        };
        assert!(f(16.0, 1).off_band(DetectorKind::FailureRatio));
        assert!(!f(15.0, 1).off_band(DetectorKind::FailureRatio));
        // A drop's alert is not held by a rebound, only by a bin still below the band.
        assert!(!f(16.0, 1).off_band(DetectorKind::VolumeDrop));
        assert!(f(4.0, 1).off_band(DetectorKind::VolumeDrop));
        assert!(!f(4.0, 1).off_band(DetectorKind::FailureSpike));
        // A window's sum, and the trailing windows of the per-source tests, do not hold.
        assert!(!f(16.0, 4).off_band(DetectorKind::FailureRatio));
        assert!(!f(16.0, 1).off_band(DetectorKind::DistinctUsers));
        assert!(!f(16.0, 16).off_band(DetectorKind::DistributedSpraying));
    }

    proptest! {
        /// What `quiet_on_empty_bin` promises: whatever the history, the expectation and
        /// the kind of series, a detector that says so never flags an empty bin.
        #[test]
        fn quiet_on_empty_bin_never_flags_an_empty_bin(
            bins in proptest::collection::vec((0u32..40, 0u32..40, 0u32..40), 0..20),
            e in proptest::option::of((0.0f64..50.0, 0.0f64..50.0, 0.0f64..50.0)),
            kind in 0usize..3,
        ) {
            let mut h = History::new(16);
            for (i, (success, failure, users)) in bins.iter().enumerate() {
                h.push(i as i64, BinRecord {
                    total: success + failure,
                    success: *success,
                    failure: *failure,
                    failed_users: *users,
                    failed_ips: 1,
                    known: true,
                    ..BinRecord::default()
                });
            }
            let mut c = ctx(&h, Counts::default(), e.map(|(t, s, f)| expected(t, s, f)));
            c.bin = bins.len() as i64;
            (c.aggregate, c.sources, c.sprayers) = [(true, false, false), (false, true, false), (false, false, true)][kind];
            let plain = BinContext { aggregate: false, sources: false, locked_out: false, sprayers: false, ..ctx(&h, c.counts, c.expected) };
            for k in DetectorKind::ALL {
                let d = DetectorSpec::default_for(k).detector;
                for c in [&c, &plain] {
                    if d.quiet_on_empty_bin(c.kind()) {
                        prop_assert!(!d.evaluate(c).is_some_and(|f| f.anomalous), "{k:?}");
                    }
                }
            }
        }
    }
}
