//! The alert lifecycle, in one place: when detector verdicts become a page, when a page
//! repeats, and when it resolves.
//!
//! Every alert is identified by its fingerprint (rule + detector + series). Per
//! fingerprint the lifecycle keeps the last verdicts as a bit window:
//!
//! ```text
//!   inactive ──(bins_to_fire of the last bins_window anomalous)──▶ firing ──▶ notify "firing"
//!   firing ──(repeat_interval of bin time since last notice)──▶ notify "firing" again
//!   firing ──(bins_to_resolve normal bins in a row)──▶ inactive ──▶ notify "resolved"
//! ```
//!
//! "Normal" means back inside the band the alert calls normal, not merely short of
//! proof: an open alert is held through bins that are no longer anomalous but still
//! outside that band ([`Reading::OffBand`]). A detector's test weighs a bin against
//! the noise it learned, and an outage's own first bins teach it noise; outside
//! traffic seed 17's alert ("every sign-in fails") resolved "back to normal" 30
//! minutes into a 65-minute outage, at 100 % failing, because 8 failures of 8 no
//! longer proved anything on their own (p 0.03) — while the band still said at most
//! 60 %.
//!
//! Time here is bin time, never the wall clock, so a backtest and the live daemon over the
//! same events make the same decisions. A bin the detector could not judge (`None`) or
//! the source could not read changes nothing.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::detect::FirePolicy;

/// What the lifecycle decided for one bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing to send.
    Quiet,
    /// Start paging. `started_ms` is the first anomalous bin of the incident.
    Fire { started_ms: i64 },
    /// Still firing, and `repeat_interval` has passed since the last notice.
    Repeat { started_ms: i64 },
    /// Back to normal.
    Resolve { started_ms: i64 },
    /// Still firing: this bin is outside the normal band though not anomalous; nothing
    /// to send, and the bin is no evidence of normal traffic.
    Held,
}

/// What one judged bin says to an alert's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Inside the band of normal values: counts towards resolving an open alert.
    Normal,
    /// Not anomalous, yet outside the band of normal values: holds an open alert open
    /// (without paging again); otherwise the same as `Normal`.
    OffBand,
    Anomalous,
}

impl Reading {
    /// The reading of a bin a detector found `anomalous` or not, and `off_band` or not
    /// (see [`crate::detect::Finding::off_band`]).
    pub fn of(anomalous: bool, off_band: bool) -> Reading {
        match (anomalous, off_band) {
            (true, _) => Reading::Anomalous,
            (false, true) => Reading::OffBand,
            (false, false) => Reading::Normal,
        }
    }
}

/// The state of one fingerprint. Serializable: the daemon persists it so a restart does
/// not page twice for one incident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// Verdicts of the last bins, newest in bit 0 (1 = anomalous).
    pub recent: u64,
    /// Start of the earliest anomalous bin still in the window, or of the incident.
    pub started_ms: Option<i64>,
    pub firing: bool,
    /// Bin time of the last notification sent.
    pub last_notified_ms: i64,
    /// Consecutive normal bins while firing.
    pub normal_run: u32,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Lifecycle {
    states: HashMap<String, AlertState>,
}

impl Transition {
    /// How a chart marks this transition (the status page and the report draw alike).
    pub fn mark(self) -> crate::chart::Mark {
        use crate::chart::Mark;
        match self {
            Transition::Quiet => Mark::None,
            Transition::Fire { .. } => Mark::Fire,
            Transition::Repeat { .. } => Mark::Repeat,
            Transition::Resolve { .. } => Mark::Resolve,
            Transition::Held => Mark::None,
        }
    }
}

impl Lifecycle {
    /// Feed one bin's reading (`None`: not judged) for `fingerprint`. `evidence_bins` is
    /// how many bins, this one and those before it, an anomalous verdict stands for
    /// (`Finding::evidence_bins`): they count as that many anomalous bins towards
    /// `bins_to_fire`, since the detector's test already pooled them (a partial outage
    /// at half the level is proof only over three bins together, and each of them
    /// alone is not).
    pub fn step(
        &mut self,
        fingerprint: &str,
        policy: &FirePolicy,
        bin_start_ms: i64,
        reading: Option<Reading>,
        evidence_bins: u32,
    ) -> Transition {
        let Some(reading) = reading else {
            return Transition::Quiet;
        };
        let anomalous = reading == Reading::Anomalous;
        if !anomalous && (self.states.is_empty() || !self.states.contains_key(fingerprint)) {
            // The common case: nothing going on. Keep no state for it.
            return Transition::Quiet;
        }
        let st = self.states.entry(fingerprint.to_string()).or_default();
        let window = policy.bins_window.clamp(1, 64);
        let mask = low_bits(window);
        let evidence = if anomalous {
            low_bits(evidence_bins.clamp(1, window))
        } else {
            0
        };
        st.recent = ((st.recent << 1) | evidence) & mask;
        if anomalous && st.started_ms.is_none() {
            st.started_ms = Some(bin_start_ms);
        }

        let transition = if st.firing {
            if anomalous {
                st.normal_run = 0;
                let repeat_ms = policy.repeat_interval.as_millis() as i64;
                if bin_start_ms - st.last_notified_ms >= repeat_ms {
                    st.last_notified_ms = bin_start_ms;
                    Transition::Repeat {
                        started_ms: st.started_ms.unwrap_or(bin_start_ms),
                    }
                } else {
                    Transition::Quiet
                }
            } else if reading == Reading::OffBand {
                st.normal_run = 0;
                Transition::Held
            } else {
                st.normal_run += 1;
                if st.normal_run >= policy.bins_to_resolve {
                    let started_ms = st.started_ms.unwrap_or(bin_start_ms);
                    st.firing = false;
                    st.started_ms = None;
                    st.recent = 0;
                    st.normal_run = 0;
                    st.last_notified_ms = bin_start_ms;
                    Transition::Resolve { started_ms }
                } else {
                    Transition::Quiet
                }
            }
        } else if st.recent.count_ones() >= policy.bins_to_fire {
            st.firing = true;
            st.normal_run = 0;
            st.last_notified_ms = bin_start_ms;
            Transition::Fire {
                started_ms: st.started_ms.unwrap_or(bin_start_ms),
            }
        } else {
            if st.recent == 0 {
                st.started_ms = None;
            }
            Transition::Quiet
        };
        if !st.firing && st.recent == 0 {
            self.states.remove(fingerprint);
        }
        transition
    }

    /// No alert open or pending at all (the usual state): a normal bin changes nothing.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Whether any of `fingerprints` has an alert open or pending (anomalous bins in its
    /// window): then a normal bin may still change something.
    pub fn holds_any<'a>(&self, mut fingerprints: impl Iterator<Item = &'a str>) -> bool {
        !self.is_empty() && fingerprints.any(|fp| self.states.contains_key(fp))
    }

    /// Fingerprints currently firing.
    pub fn firing(&self) -> impl Iterator<Item = (&str, &AlertState)> {
        self.states
            .iter()
            .filter(|(_, s)| s.firing)
            .map(|(k, s)| (k.as_str(), s))
    }

    pub fn firing_count(&self) -> usize {
        self.states.values().filter(|s| s.firing).count()
    }
}

/// A mask of the lowest `bins` bits (1 to 64).
fn low_bits(bins: u32) -> u64 {
    if bins >= 64 {
        u64::MAX
    } else {
        (1u64 << bins) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const BIN: i64 = 900_000;
    const A: Option<Reading> = Some(Reading::Anomalous);
    const N: Option<Reading> = Some(Reading::Normal);
    const O: Option<Reading> = Some(Reading::OffBand);

    fn policy(m: u32, n: u32) -> FirePolicy {
        FirePolicy {
            bins_to_fire: m,
            bins_window: n,
            bins_to_resolve: 2,
            repeat_interval: Duration::from_secs(3600),
        }
    }

    fn run(p: &FirePolicy, verdicts: &[Option<Reading>]) -> Vec<Transition> {
        let mut l = Lifecycle::default();
        verdicts
            .iter()
            .enumerate()
            .map(|(i, v)| l.step("fp", p, i as i64 * BIN, *v, 1))
            .collect()
    }

    #[test]
    fn two_of_three_fires_on_the_second_anomalous_bin() {
        let t = run(&policy(2, 3), &[A, N, A]);
        assert_eq!(t[0], Transition::Quiet);
        assert_eq!(t[1], Transition::Quiet);
        assert_eq!(t[2], Transition::Fire { started_ms: 0 });
    }

    #[test]
    fn an_anomalous_window_counts_for_its_bins() {
        let p = policy(2, 3);
        // One anomalous verdict that pooled three bins fires at once...
        let mut l = Lifecycle::default();
        assert_eq!(l.step("w", &p, 0, A, 3), Transition::Fire { started_ms: 0 });
        // ...one that stands for its own bin does not...
        let mut l = Lifecycle::default();
        assert_eq!(l.step("b", &p, 0, A, 1), Transition::Quiet);
        // ...and a window longer than `bins_window` counts no more than the window.
        let mut l = Lifecycle::default();
        assert_eq!(
            l.step("x", &policy(4, 4), 0, A, 9),
            Transition::Fire { started_ms: 0 }
        );
        assert_eq!(l.step("y", &policy(4, 5), 0, A, 3), Transition::Quiet);
    }

    #[test]
    fn isolated_blips_do_not_fire() {
        let t = run(&policy(2, 3), &[A, N, N, A, N, N]);
        assert!(t.iter().all(|x| *x == Transition::Quiet), "{t:?}");
    }

    #[test]
    fn repeats_after_interval_and_resolves_once() {
        let mut v = vec![A; 6];
        v.extend([N, N, N]);
        let t = run(&policy(1, 1), &v);
        assert_eq!(t[0], Transition::Fire { started_ms: 0 });
        assert_eq!(t[1..4], [Transition::Quiet; 3]);
        // 4 bins of 15 minutes = the 1 h repeat interval.
        assert_eq!(t[4], Transition::Repeat { started_ms: 0 });
        assert_eq!(t[6], Transition::Quiet);
        assert_eq!(t[7], Transition::Resolve { started_ms: 0 });
        assert_eq!(t[8], Transition::Quiet);
    }

    #[test]
    fn an_open_alert_is_held_while_its_bins_stay_off_the_band() {
        // Fires, then four bins no longer anomalous but still outside the band, then
        // normal: it resolves only after two normal bins in a row, and an off-band bin
        // between two normal ones starts the count again.
        let t = run(&policy(1, 1), &[A, O, O, N, O, O, N, N]);
        assert_eq!(t[0], Transition::Fire { started_ms: 0 });
        assert_eq!(t[1..3], [Transition::Held; 2]);
        assert_eq!(t[3], Transition::Quiet);
        assert_eq!(t[4..6], [Transition::Held; 2]);
        assert_eq!(t[6], Transition::Quiet);
        assert_eq!(t[7], Transition::Resolve { started_ms: 0 });
        // Off the band is no evidence of an attack either: it neither fires nor repeats.
        let t = run(&policy(1, 1), &[O, O, O, O, O, O]);
        assert!(t.iter().all(|x| *x == Transition::Quiet), "{t:?}");
        let mut v = vec![A];
        v.extend([O; 8]);
        let t = run(&policy(1, 1), &v);
        assert!(t[1..].iter().all(|x| *x == Transition::Held), "{t:?}");
    }

    #[test]
    fn unjudged_bins_change_nothing() {
        let t = run(&policy(1, 1), &[A, None, None, N, None, N]);
        assert_eq!(t[0], Transition::Fire { started_ms: 0 });
        assert_eq!(t[5], Transition::Resolve { started_ms: 0 });
        assert!(t[1..5].iter().all(|x| *x == Transition::Quiet));
    }

    #[test]
    fn state_is_dropped_when_idle() {
        let mut l = Lifecycle::default();
        let p = policy(2, 3);
        l.step("a", &p, 0, A, 1);
        assert_eq!(l.states.len(), 1);
        for i in 1..4 {
            l.step("a", &p, i * BIN, N, 1);
        }
        assert!(l.states.is_empty());
        assert_eq!(l.firing_count(), 0);
        l.step("b", &p, 0, A, 1);
        assert!(l.holds_any(["a", "b"].into_iter()));
        assert!(!l.holds_any(["a"].into_iter()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Quiet traffic drawn from the baseline's own distribution (a season, a level of
        /// the day, Poisson or negative binomial counts) through `volume_drop` and its
        /// default policy (two bins of three): crediting a pooled window with its bins
        /// makes at most one page per anomalous verdict, so pages stay at or under the
        /// configured rate per judged bin.
        #[test]
        fn quiet_traffic_pages_no_more_than_the_configured_rate(level in 30.0f64..400.0, phi in 0.0f64..0.15, seed in 0u64..1000) {
            use crate::detect::test_support::{counts, ctx, expected, quiet_days, quiet_record};
            use crate::detect::{Detector, DetectorKind, DetectorSpec, VolumeDrop};
            use crate::series::History;
            let p_value = 0.01;
            let d = VolumeDrop { p_value, max_fraction: 1.0, min_expected: 5.0, lookback: 4, min_recent_ratio: 0.0, max_step_fraction: f64::INFINITY, windows: vec![1, 2, 3, 4], min_peak_share: 0.0 };
            let policy = DetectorSpec::default_for(DetectorKind::VolumeDrop).fire;
            let (mut h, mut l) = (History::new(64), Lifecycle::default());
            let (mut fires, mut judged) = (0u32, 0u32);
            for q in quiet_days(seed, level, phi, 8000) {
                let mut cx = ctx(&h, counts(q.count, q.count, 0), Some(expected(q.season, q.season, 0.0)));
                cx.bin = q.bin;
                cx.dispersion.busy_step = phi;
                let f = d.evaluate(&cx);
                let anomalous = f.as_ref().is_some_and(|f| f.anomalous);
                if q.bin >= 8 && f.is_some() {
                    judged += 1;
                    let evidence = f.as_ref().map_or(1, |f| f.evidence_bins);
                    let t = l.step("q", &policy, q.bin * BIN, f.as_ref().map(|f| Reading::of(f.anomalous, false)), evidence);
                    fires += u32::from(matches!(t, Transition::Fire { .. }));
                }
                h.push(q.bin, quiet_record(&q, anomalous));
            }
            let rate = f64::from(fires) / f64::from(judged);
            proptest::prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
        }
    }
}
