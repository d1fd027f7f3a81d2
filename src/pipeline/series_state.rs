//! One series' memory: its history, learned dispersion and alert fingerprints.

use crate::alert::fingerprint;
use crate::detect::baseline::Expected;
use crate::detect::Dispersion;
use crate::rule::RuleSpec;
use crate::series::{Counts, History, Labels};
use crate::stats::dispersion::ByLevel;

const INITIAL_DISPERSION: Dispersion = Dispersion {
    total: 0.05,
    success: 0.05,
    failure: 0.1,
};

/// The length of an alert fingerprint (see [`fingerprint`]).
const FINGERPRINT_LEN: usize = 16;

#[derive(Debug, Clone)]
pub struct SeriesState {
    pub history: History,
    pub dispersion: Learned,
    /// Consecutive anomalous bins; a shift that lasts a day becomes the new normal.
    pub anomalous_run: u32,
    pub last_active_bin: i64,
    /// Sliding windows start no earlier than this bin: the bin after an alert of this
    /// series last resolved, so evidence that already paged is not added up again.
    pub evidence_since: i64,
    /// One fingerprint per detector, in the rule's detector order, back to back in one
    /// string (each is 16 hex digits): one allocation per series instead of one per
    /// detector, which matters with thousands of split series.
    fingerprints: String,
}

impl SeriesState {
    pub fn new(spec: &RuleSpec, labels: &Labels) -> SeriesState {
        SeriesState {
            history: History::new(spec.window_bins().max(8)),
            dispersion: Learned::new(),
            anomalous_run: 0,
            last_active_bin: 0,
            evidence_since: i64::MIN,
            fingerprints: spec
                .detectors
                .iter()
                .map(|d| fingerprint(&spec.name, d.detector.kind().name(), labels))
                .collect::<String>(),
        }
    }

    pub fn fingerprints(&self) -> impl Iterator<Item = &str> {
        // Fingerprints are ASCII hex, so every 16-byte chunk is a char boundary.
        (0..self.fingerprints.len() / FINGERPRINT_LEN).filter_map(|i| {
            self.fingerprints
                .get(i * FINGERPRINT_LEN..(i + 1) * FINGERPRINT_LEN)
        })
    }
}

/// Each metric's dispersion, learned per level of its expected count (see
/// [`ByLevel`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    total: ByLevel,
    success: ByLevel,
    failure: ByLevel,
}

impl Learned {
    fn new() -> Learned {
        Learned {
            total: ByLevel::new(INITIAL_DISPERSION.total),
            success: ByLevel::new(INITIAL_DISPERSION.success),
            failure: ByLevel::new(INITIAL_DISPERSION.failure),
        }
    }

    /// The dispersion to judge a bin with: each metric's at the level it expects
    /// (the lowest level while nothing is expected yet).
    pub fn at(&self, e: Option<&Expected>) -> Dispersion {
        let (total, success, failure) =
            e.map_or((0.0, 0.0, 0.0), |e| (e.total, e.success, e.failure));
        Dispersion {
            total: self.total.at(total),
            success: self.success.at(success),
            failure: self.failure.at(failure),
        }
    }

    /// Learn from one clean bin (see [`crate::stats::dispersion::learn`]).
    pub fn learn(&mut self, e: &Expected, c: Counts) {
        self.total.learn(e.total, c.total);
        self.success.learn(e.success, c.success);
        self.failure.learn(e.failure, c.failure);
    }
}
