//! The silences and the incidents they held back, as plain data: what a silence
//! matches, when it is active, and which notifications of a batch it holds back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::alert::{rfc3339, Alert, Status};
use crate::series::Labels;

/// Expired silences stay listed this long.
pub(super) const EXPIRED_KEPT_MS: i64 = 24 * 3_600_000;
/// Incidents whose firing was held back, at most (the oldest are forgotten first).
const MAX_HELD: usize = 10_000;

/// What a silence matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    /// Every one of these must be among the alert's series labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub series: Labels,
}

impl Matcher {
    pub fn matches(&self, alert: &Alert) -> bool {
        alert.rule == self.rule
            && self.detector.as_deref().is_none_or(|d| alert.detector == d)
            && self
                .series
                .iter()
                .all(|(k, v)| alert.series.get(k) == Some(v))
    }

    /// `rule=okta-sign-ins detector=failure_spike client.ipAddress=203.0.113.9`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("rule={}", self.rule)];
        if let Some(d) = &self.detector {
            parts.push(format!("detector={d}"));
        }
        parts.extend(self.series.iter().map(|(k, v)| format!("{k}={v}")));
        parts.join(" ")
    }
}

/// One silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matcher: Matcher,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub created_by: String,
    pub reason: String,
    /// Who ended it early, if anyone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_by: Option<String>,
}

/// Where a silence is in its life at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts_ms {
            SilenceState::Pending
        } else if now_ms < self.ends_ms {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn is_active(&self, now_ms: i64) -> bool {
        self.state(now_ms) == SilenceState::Active
    }

    /// The API's view: the stored fields plus RFC 3339 times and the state at `now_ms`.
    pub fn to_json(&self, now_ms: i64) -> Value {
        json!({
            "id": self.id,
            "state": self.state(now_ms).as_str(),
            "rule": self.matcher.rule,
            "detector": self.matcher.detector,
            "series": self.matcher.series,
            "starts_at": rfc3339(self.starts_ms),
            "ends_at": rfc3339(self.ends_ms),
            "created_by": self.created_by,
            "reason": self.reason,
            "expired_by": self.expired_by,
        })
    }
}

/// An incident whose firing a silence held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldIncident {
    pub silence: String,
    pub since_ms: i64,
}

/// Everything the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceSet {
    pub silences: Vec<Silence>,
    /// Fingerprint → the silence that held its firing back.
    #[serde(default)]
    pub held: BTreeMap<String, HeldIncident>,
}

/// Why a notification was held back by this stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// An active silence matches it.
    Silenced {
        id: String,
        by: String,
        reason: String,
    },
    /// A resolve of an incident whose firing a silence held back and that was not
    /// notified since.
    SilencedIncident { id: String },
}

impl Hold {
    /// For logs and the notification history.
    pub fn describe(&self) -> String {
        match self {
            Hold::Silenced { id, by, reason } => {
                format!("silence {id} by {by}: {reason}")
            }
            Hold::SilencedIncident { id } => format!(
                "resolve of an incident whose firing silence {id} held back (nobody was paged for it)"
            ),
        }
    }
}

impl SilenceSet {
    /// The first silence active at `now_ms` that matches `alert`.
    pub fn covering(&self, alert: &Alert, now_ms: i64) -> Option<&Silence> {
        self.silences
            .iter()
            .find(|s| s.is_active(now_ms) && s.matcher.matches(alert))
    }

    pub fn active(&self, now_ms: i64) -> usize {
        self.silences.iter().filter(|s| s.is_active(now_ms)).count()
    }

    /// Drop silences expired more than a day ago.
    pub(super) fn prune(&mut self, now_ms: i64) {
        self.silences
            .retain(|s| s.ends_ms > now_ms - EXPIRED_KEPT_MS);
    }

    /// Split `alerts` into those to send and those held back. `notified_firing(fp)`:
    /// the ledger's last notice of the incident is a firing. Returns whether the set
    /// changed (to be saved).
    pub fn apply(
        &mut self,
        alerts: Vec<Alert>,
        now_ms: i64,
        notified_firing: impl Fn(&str) -> bool,
    ) -> (Vec<Alert>, Vec<(Alert, Hold)>, bool) {
        let (mut send, mut held, mut changed) =
            (Vec::with_capacity(alerts.len()), Vec::new(), false);
        for a in alerts {
            if let Some(s) = self.covering(&a, now_ms) {
                let hold = Hold::Silenced {
                    id: s.id.clone(),
                    by: s.created_by.clone(),
                    reason: s.reason.clone(),
                };
                let id = s.id.clone();
                match a.status {
                    Status::Firing => {
                        if !self.held.contains_key(&a.fingerprint) {
                            self.held.insert(
                                a.fingerprint.clone(),
                                HeldIncident {
                                    silence: id,
                                    since_ms: now_ms,
                                },
                            );
                            changed = true;
                        }
                    }
                    Status::Resolved => changed |= self.held.remove(&a.fingerprint).is_some(),
                }
                held.push((a, hold));
                continue;
            }
            if a.status == Status::Resolved {
                if let Some(h) = self.held.remove(&a.fingerprint) {
                    changed = true;
                    if !notified_firing(&a.fingerprint) {
                        held.push((a, Hold::SilencedIncident { id: h.silence }));
                        continue;
                    }
                }
            }
            send.push(a);
        }
        if self.held.len() > MAX_HELD {
            let mut by_age: Vec<(i64, String)> = self
                .held
                .iter()
                .map(|(fp, h)| (h.since_ms, fp.clone()))
                .collect();
            by_age.sort();
            for (_, fp) in by_age.into_iter().take(self.held.len() - MAX_HELD) {
                self.held.remove(&fp);
            }
        }
        (send, held, changed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sink::render::tests::sample_alert;
    use proptest::prelude::*;

    pub(crate) fn matcher(rule: &str, detector: Option<&str>, series: &[(&str, &str)]) -> Matcher {
        Matcher {
            rule: rule.into(),
            detector: detector.map(str::to_string),
            series: series
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_matcher_takes_rule_detector_and_series_labels() {
        let a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        assert!(matcher("okta-sign-ins", None, &[]).matches(&a));
        assert!(matcher("okta-sign-ins", Some("failure_spike"), &[]).matches(&a));
        assert!(matcher(
            "okta-sign-ins",
            None,
            &[("client.ipAddress", "203.0.113.9")]
        )
        .matches(&a));
        assert!(!matcher("vpn", None, &[]).matches(&a));
        assert!(!matcher("okta-sign-ins", Some("volume_drop"), &[]).matches(&a));
        assert!(!matcher(
            "okta-sign-ins",
            None,
            &[("client.ipAddress", "203.0.113.10")]
        )
        .matches(&a));
        assert!(!matcher("okta-sign-ins", None, &[("country", "US")]).matches(&a));
    }

    fn arb_labels() -> impl Strategy<Value = Labels> {
        proptest::collection::btree_map("[ab]{1,2}", "[xy]{1,2}", 0..4)
    }

    proptest! {
        /// The matcher is exactly: same rule, same detector when given, and the silence's
        /// labels a subset of the alert's.
        #[test]
        fn matching_is_rule_detector_and_label_subset(
            rule in "[rs]", alert_rule in "[rs]",
            detector in proptest::option::of(prop_oneof![Just("failure_spike"), Just("volume_drop")]),
            alert_detector in prop_oneof![Just("failure_spike"), Just("volume_drop")],
            wanted in arb_labels(), labels in arb_labels(),
        ) {
            let mut a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
            a.rule = alert_rule.clone();
            a.detector = alert_detector.parse().unwrap();
            a.series = labels.clone();
            let m = Matcher { rule: rule.clone(), detector: detector.map(str::to_string), series: wanted.clone() };
            let subset = wanted.iter().all(|(k, v)| labels.get(k) == Some(v));
            let expect = rule == alert_rule && detector.is_none_or(|d| d == alert_detector) && subset;
            prop_assert_eq!(m.matches(&a), expect);
            // Fewer labels never match less.
            let mut fewer = m.clone();
            fewer.series.pop_first();
            prop_assert!(!m.matches(&a) || fewer.matches(&a));
            let mut any_detector = m.clone();
            any_detector.detector = None;
            prop_assert!(!m.matches(&a) || any_detector.matches(&a));
        }
    }
}
