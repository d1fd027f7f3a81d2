//! The history gate: on a start with a backfilling source, days of history replay
//! through the pipeline. Incidents that are over do not page at 3 a.m. because the
//! daemon restarted: alerts about bins older than `daemon.page_history` are held back
//! while the history loads, and only the incidents still firing once it is loaded page
//! (once). A source that is its own clock (a file replay) passes everything.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Progress;
use crate::alert::{Alert, Status, Timestamp};
use crate::series::BinIndex;

pub struct HistoryGate {
    /// `None`: everything passes.
    max_age_ms: Option<i64>,
    /// Held-back firing alerts, by fingerprint (the latest notice of each incident).
    held: BTreeMap<String, Alert>,
}

impl HistoryGate {
    pub fn new(page_history: Option<Duration>) -> HistoryGate {
        HistoryGate {
            max_age_ms: page_history.map(|d| d.as_millis() as i64),
            held: BTreeMap::new(),
        }
    }

    /// The alerts to deliver now, at wall-clock `now_ms`.
    pub fn filter(&mut self, alerts: Vec<Alert>, caught_up: bool, now_ms: i64) -> Vec<Alert> {
        let Some(max_age_ms) = self.max_age_ms.filter(|_| !caught_up) else {
            return alerts;
        };
        let horizon = now_ms - max_age_ms;
        let mut recent = Vec::with_capacity(alerts.len());
        for a in alerts {
            if a.bin_end.ms() >= horizon {
                recent.push(a);
                continue;
            }
            metrics::counter!("authpulse_notifications_suppressed_total", "reason" => "history")
                .increment(1);
            tracing::info!(rule = %a.rule, detector = %a.detector, bin_start = %a.bin_start, status = ?a.status, "historic alert from the backfill: logged, not paged");
            match a.status {
                Status::Firing => {
                    self.held.insert(a.fingerprint.clone(), a);
                }
                Status::Resolved => {
                    self.held.remove(&a.fingerprint);
                }
            }
        }
        recent
    }

    /// Held-back incidents the pipeline still has firing once history is loaded, as
    /// notices about the bin now in progress (every closed bin is already recorded as
    /// handled), keeping the numbers of the bin that fired.
    pub fn still_firing(&mut self, progress: &Progress) -> Vec<Alert> {
        let firing: BTreeSet<&str> = progress.firing.iter().map(String::as_str).collect();
        let held = std::mem::take(&mut self.held);
        held.into_values()
            .filter(|a| firing.contains(a.fingerprint.as_str()))
            .filter_map(|mut a| {
                let rule = progress.rule(&a.rule)?;
                let BinIndex(next) = rule.next_bin?;
                a.summary = format!(
                    "Under way since {} (before authpulse started) and still firing. When it began: {}",
                    a.started_at, a.summary
                );
                a.bin_start = Timestamp::from_ms(next * rule.bin_ms);
                a.bin_end = Timestamp::from_ms((next + 1) * rule.bin_ms);
                tracing::warn!(rule = %a.rule, detector = %a.detector, started_at = %a.started_at, "an incident from before the start is still under way: paging");
                Some(a.with_idempotency_key())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::RuleProgress;
    use crate::sink::render::tests::sample_alert;

    const BIN: i64 = 900_000;

    fn progress(next_bin: i64, firing: &[&str]) -> Progress {
        Progress {
            rules: vec![RuleProgress {
                name: "okta-sign-ins".into(),
                bin_ms: BIN,
                next_bin: Some(BinIndex(next_bin)),
            }],
            firing: firing.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn old_alerts_wait_for_the_history_and_page_only_if_still_firing() {
        let mut gate = HistoryGate::new(Some(Duration::from_secs(3600)));
        let old = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        let now = old.bin_end.ms() + 2 * 3_600_000;
        assert!(gate.filter(vec![old.clone()], false, now).is_empty());
        let next = now / BIN;
        let ongoing = gate.still_firing(&progress(next, &[old.fingerprint.as_str()]));
        assert_eq!(ongoing.len(), 1);
        assert_eq!(ongoing[0].bin_start.ms(), next * BIN);
        assert!(ongoing[0].summary.starts_with("Under way since"));
        // Once loaded, everything passes.
        assert_eq!(gate.filter(vec![old], true, now).len(), 1);
    }

    #[test]
    fn an_incident_that_ended_during_the_backfill_never_pages() {
        let mut gate = HistoryGate::new(Some(Duration::from_secs(3600)));
        let old = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        let now = old.bin_end.ms() + 2 * 3_600_000;
        gate.filter(vec![old.clone()], false, now);
        assert!(gate.still_firing(&progress(now / BIN, &[])).is_empty());
    }

    #[test]
    fn without_a_horizon_everything_passes() {
        let mut gate = HistoryGate::new(None);
        let old = sample_alert(Status::Firing, "2020-01-01T00:00:00Z");
        assert_eq!(gate.filter(vec![old], false, i64::MAX / 2).len(), 1);
    }
}
