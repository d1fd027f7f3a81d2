//! Silences: an operator holds back the notifications of one rule, detector or series for
//! a while, without editing the config (`authpulse silence add`, through the daemon's
//! HTTP API in `daemon::api`).
//!
//! A silence matches a rule, optionally a detector, and optionally series labels (every
//! `key=value` given must be among the alert's series labels), so one noisy office
//! address can be silenced without silencing the rule. It holds back every notification
//! *sent while it is active* on the wall clock (the injected clock), whatever bin the
//! notification is about, as Alertmanager's silences do: a daemon replaying an old file
//! is silenced too. Backtests never see silences.
//!
//! # Where it sits, and what a silenced firing means for its resolve
//!
//! The stage runs after the maintenance windows (`mute`) and before the ledger. A
//! silenced notification never reaches the ledger, so the ledger does not record the
//! incident as notified: when the silence ends while the incident still fires, its next
//! reminder (after the detector's `repeat_interval`) pages as a fresh notice, as an
//! Alertmanager notifies an alert still firing when its silence expires.
//!
//! Like Alertmanager, which keeps a silenced alert and never sends a "resolved" for an
//! alert it never notified, this stage remembers each incident whose firing it held back
//! (persisted with the silences). Its resolve is held back too when no firing of it was
//! notified since: a resolve of an incident nobody was paged for would page alone. If a
//! reminder did page after the silence ended, the resolve goes out as usual.
//!
//! # Persistence
//!
//! `state_dir/silences.json`, written atomically (temporary file, `fsync`, rename,
//! `fsync` the directory) with a SHA-256 header like the ledger's ([`crate::state_file`]); a corrupt file is moved
//! aside as `silences.json.corrupt-<ms>` with an error log line and the daemon starts
//! without silences. Expired silences are kept for a day (`silence list` shows them),
//! then dropped.
//!
//! Metrics: `authpulse_silences_active` (gauge) and
//! `authpulse_notifications_silenced_total{rule}`.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::alert::{rfc3339, Alert, AlertDetector, Status};
use crate::clock::SharedClock;
use crate::series::Labels;
use crate::state_file::{Format, Loaded, StateFile};

pub const SILENCES_FILE: &str = "silences.json";
const HEADER: &str = "authpulse-silences v1 sha256=";
/// Expired silences stay listed this long.
const EXPIRED_KEPT_MS: i64 = 24 * 3_600_000;
/// Silences not yet expired, at most.
pub const MAX_SILENCES: usize = 1000;
/// Incidents whose firing was held back, at most (the oldest are forgotten first).
const MAX_HELD: usize = 10_000;
/// The longest silence: longer ones belong in the config (`[[mute]]`).
pub const MAX_DURATION_MS: i64 = 90 * 86_400_000;
/// Longest `reason` and `created_by`, in characters.
const MAX_TEXT: usize = 1000;

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

/// A request for a new silence (validated by [`Silences::add`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSilence {
    pub matcher: Matcher,
    pub duration_ms: i64,
    pub created_by: String,
    pub reason: String,
}

/// Why a silence cannot be added or expired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("{0}")]
    Invalid(String),
    #[error("no silence has id {0:?}")]
    NotFound(String),
    #[error("{MAX_SILENCES} silences are already in force: expire some first")]
    Full,
    #[error("cannot save the silences: {0}")]
    Save(String),
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

/// Check an operator's silence request.
fn validate(new: &NewSilence) -> Result<(), SilenceError> {
    let bad = |m: String| Err(SilenceError::Invalid(m));
    if new.matcher.rule.trim().is_empty() {
        return bad("rule: must name a rule".into());
    }
    if let Some(d) = &new.matcher.detector {
        if AlertDetector::from_name(d).is_none() {
            let known: Vec<&str> = crate::detect::DetectorKind::ALL
                .iter()
                .map(|k| k.name())
                .collect();
            return bad(format!(
                "detector: {d:?} is not a detector (known: {}, {})",
                known.join(", "),
                crate::alert::SOURCE_UNAVAILABLE
            ));
        }
    }
    for (k, v) in &new.matcher.series {
        if k.trim().is_empty() || v.is_empty() {
            return bad(format!(
                "series: {k:?}={v:?} needs a label name and a value (key=value)"
            ));
        }
    }
    if new.duration_ms <= 0 {
        return bad("duration: must be greater than 0".into());
    }
    if new.duration_ms > MAX_DURATION_MS {
        return bad(
            "duration: at most 90 days (a longer silence is a config change: use [[mute]])".into(),
        );
    }
    if new.reason.trim().is_empty() {
        return bad("reason: say why (it is shown on the status page)".into());
    }
    if new.created_by.trim().is_empty() {
        return bad("created_by: say who is silencing".into());
    }
    if new.reason.chars().count() > MAX_TEXT || new.created_by.chars().count() > MAX_TEXT {
        return bad(format!(
            "reason and created_by: at most {MAX_TEXT} characters"
        ));
    }
    Ok(())
}

/// A short id that does not repeat: a hash of the time, the process and a counter.
fn new_id(now_ms: i64, matcher: &Matcher) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(now_ms.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(matcher.describe().as_bytes());
    hex::encode(&h.finalize()[..8])
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
    fn prune(&mut self, now_ms: i64) {
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

/// The silences' file (`state_dir/silences.json`, see the module doc).
pub fn silence_file(state_dir: &Path, clock: SharedClock) -> StateFile<SilenceSet> {
    StateFile::new(
        state_dir.join(SILENCES_FILE),
        Format {
            header: HEADER,
            what: "silences",
            if_lost: "no silences: add them again with `authpulse silence add`",
            legacy: None,
        },
        clock,
    )
}

struct Inner {
    set: SilenceSet,
    /// `None`: in memory only (tests, a route without a daemon).
    file: Option<StateFile<SilenceSet>>,
}

/// The silences, shared by the HTTP API (which adds and expires them), the route (which
/// applies them) and the status page. Methods do blocking file I/O when a file is
/// attached: async callers run them on the blocking pool.
#[derive(Clone)]
pub struct Silences {
    inner: Arc<Mutex<Inner>>,
    clock: SharedClock,
}

impl std::fmt::Debug for Silences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Silences")
    }
}

impl Silences {
    /// No silences, kept in memory only.
    pub fn in_memory(clock: SharedClock) -> Silences {
        Silences {
            inner: Arc::new(Mutex::new(Inner {
                set: SilenceSet::default(),
                file: None,
            })),
            clock,
        }
    }

    /// Load `state_dir/silences.json` (creating the directory).
    pub fn open(state_dir: &Path, clock: SharedClock) -> io::Result<Silences> {
        std::fs::create_dir_all(state_dir)?;
        let file = silence_file(state_dir, clock.clone());
        let (set, loaded) = file.load()?;
        if loaded == Loaded::Restored {
            tracing::info!(
                file = %file.path().display(),
                active = set.active(clock.now_ms()),
                "silences restored"
            );
        }
        let s = Silences {
            inner: Arc::new(Mutex::new(Inner {
                set,
                file: Some(file),
            })),
            clock,
        };
        s.export_gauge();
        Ok(s)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The set is only ever replaced whole: a panic elsewhere cannot leave it torn.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn export_gauge(&self) {
        let n = self.lock().set.active(self.clock.now_ms());
        metrics::gauge!("authpulse_silences_active").set(n as f64);
    }

    /// Save `next` and make it the set; on a failed save nothing changes.
    fn commit(inner: &mut Inner, next: SilenceSet) -> Result<(), SilenceError> {
        if let Some(file) = &inner.file {
            file.save(&next)
                .map_err(|e| SilenceError::Save(format!("{}: {e}", file.path().display())))?;
        }
        inner.set = next;
        Ok(())
    }

    /// Add a silence starting now; returns it.
    pub fn add(&self, new: NewSilence) -> Result<Silence, SilenceError> {
        validate(&new)?;
        let now = self.clock.now_ms();
        let silence = Silence {
            id: new_id(now, &new.matcher),
            matcher: new.matcher,
            starts_ms: now,
            ends_ms: now.saturating_add(new.duration_ms),
            created_by: new.created_by.trim().to_string(),
            reason: new.reason.trim().to_string(),
            expired_by: None,
        };
        {
            let mut inner = self.lock();
            let mut next = inner.set.clone();
            next.prune(now);
            if next.silences.iter().filter(|s| s.ends_ms > now).count() >= MAX_SILENCES {
                return Err(SilenceError::Full);
            }
            next.silences.push(silence.clone());
            Self::commit(&mut inner, next)?;
        }
        tracing::info!(
            silence = %silence.id,
            matches = %silence.matcher.describe(),
            until = %rfc3339(silence.ends_ms),
            created_by = %silence.created_by,
            reason = %silence.reason,
            "silence added"
        );
        self.export_gauge();
        Ok(silence)
    }

    /// End silence `id` now (one already over stays as it was); returns it.
    pub fn expire(&self, id: &str, by: &str) -> Result<Silence, SilenceError> {
        let now = self.clock.now_ms();
        let silence = {
            let mut inner = self.lock();
            let mut next = inner.set.clone();
            let Some(s) = next.silences.iter_mut().find(|s| s.id == id) else {
                return Err(SilenceError::NotFound(id.to_string()));
            };
            if s.ends_ms <= now {
                return Ok(s.clone());
            }
            s.ends_ms = now.max(s.starts_ms);
            if !by.trim().is_empty() {
                s.expired_by = Some(by.trim().chars().take(MAX_TEXT).collect());
            }
            let silence = s.clone();
            Self::commit(&mut inner, next)?;
            silence
        };
        tracing::info!(
            silence = %silence.id,
            matches = %silence.matcher.describe(),
            expired_by = silence.expired_by.as_deref().unwrap_or("-"),
            "silence expired"
        );
        self.export_gauge();
        Ok(silence)
    }

    /// Every silence still kept (active, pending, expired in the last day), newest first.
    pub fn list(&self) -> Vec<Silence> {
        let now = self.clock.now_ms();
        let mut all: Vec<Silence> = self
            .lock()
            .set
            .silences
            .iter()
            .filter(|s| s.ends_ms > now - EXPIRED_KEPT_MS)
            .cloned()
            .collect();
        all.sort_by(|a, b| b.starts_ms.cmp(&a.starts_ms).then_with(|| a.id.cmp(&b.id)));
        all
    }

    /// The silences active now.
    pub fn active(&self) -> Vec<Silence> {
        let now = self.clock.now_ms();
        self.list()
            .into_iter()
            .filter(|s| s.is_active(now))
            .collect()
    }

    /// The silence active now that holds `alert` back, if any.
    pub fn covering(&self, alert: &Alert) -> Option<Silence> {
        self.lock()
            .set
            .covering(alert, self.clock.now_ms())
            .cloned()
    }

    /// The route's stage: split `alerts` into those to send and those held back (logged
    /// and counted). `notified_firing(fp)`: the ledger's last notice of that incident is
    /// a firing.
    pub fn apply(
        &self,
        alerts: Vec<Alert>,
        notified_firing: impl Fn(&str) -> bool,
    ) -> (Vec<Alert>, Vec<(Alert, Hold)>) {
        // Silences also end by themselves: the gauge follows every batch.
        self.export_gauge();
        if alerts.is_empty() {
            return (alerts, Vec::new());
        }
        let now = self.clock.now_ms();
        let (send, held) = {
            let mut inner = self.lock();
            if inner.set.silences.is_empty() && inner.set.held.is_empty() {
                return (alerts, Vec::new());
            }
            let mut next = inner.set.clone();
            let (send, held, changed) = next.apply(alerts, now, notified_firing);
            if changed {
                if let Err(e) = Self::commit(&mut inner, next.clone()) {
                    // Keep applying in memory: the next save may work.
                    tracing::error!(error = %e, "cannot save which incidents silences held back; a restart may send the resolve of a silenced incident");
                    inner.set = next;
                }
            }
            (send, held)
        };
        for (a, why) in &held {
            tracing::info!(
                rule = %a.rule,
                detector = %a.detector,
                fingerprint = %a.fingerprint,
                status = ?a.status,
                bin = %a.bin_start,
                held_by = %why.describe(),
                "notification silenced"
            );
            metrics::counter!("authpulse_notifications_silenced_total", "rule" => a.rule.clone())
                .increment(1);
        }
        (send, held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::sink::render::tests::sample_alert;
    use proptest::prelude::*;

    const HOUR: i64 = 3_600_000;
    const T0: i64 = 1_795_600_000_000;

    fn matcher(rule: &str, detector: Option<&str>, series: &[(&str, &str)]) -> Matcher {
        Matcher {
            rule: rule.into(),
            detector: detector.map(str::to_string),
            series: series
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn new(m: Matcher, hours: i64) -> NewSilence {
        NewSilence {
            matcher: m,
            duration_ms: hours * HOUR,
            created_by: "alice".into(),
            reason: "office NAT rebooting".into(),
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

    #[test]
    fn silences_hold_back_while_active_on_the_wall_clock_whatever_the_bin() {
        let clock = ManualClock::at(T0);
        let s = Silences::in_memory(clock.clone());
        let ip = matcher(
            "okta-sign-ins",
            None,
            &[("client.ipAddress", "203.0.113.9")],
        );
        let silence = s.add(new(ip, 2)).unwrap();
        // An alert about a bin from years ago is silenced too: what counts is now.
        let old = sample_alert(Status::Firing, "2020-01-01T00:00:00Z");
        let mut other = old.clone();
        other
            .series
            .insert("client.ipAddress".into(), "198.51.100.1".into());
        other.fingerprint = "other".into();
        let (send, held) = s.apply(vec![old.clone(), other.clone()], |_| false);
        assert_eq!(send, vec![other.clone()]);
        assert_eq!(held.len(), 1);
        assert!(matches!(&held[0].1, Hold::Silenced { id, .. } if *id == silence.id));
        // Two hours later it has expired by itself.
        clock.advance(2 * HOUR);
        assert!(s.active().is_empty());
        assert_eq!(s.list()[0].id, silence.id);
        let mut later = old.clone();
        later.fingerprint = "another".into();
        let (send, _) = s.apply(vec![later.clone()], |_| false);
        assert_eq!(send, vec![later]);
        // A day after it ended, it is no longer listed.
        clock.advance(25 * HOUR);
        assert!(s.list().is_empty());
    }

    #[test]
    fn the_resolve_of_a_silenced_incident_does_not_page_alone() {
        let clock = ManualClock::at(T0);
        let s = Silences::in_memory(clock.clone());
        let silence = s.add(new(matcher("okta-sign-ins", None, &[]), 1)).unwrap();
        let fire = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        let resolve = sample_alert(Status::Resolved, "2026-11-25T12:00:00Z");
        assert!(s.apply(vec![fire.clone()], |_| false).0.is_empty());
        s.expire(&silence.id, "bob").unwrap();
        assert_eq!(s.list()[0].expired_by.as_deref(), Some("bob"));
        // Nobody was paged for it: its resolve stays quiet, once.
        let (send, held) = s.apply(vec![resolve.clone()], |_| false);
        assert!(send.is_empty());
        assert_eq!(
            held[0].1,
            Hold::SilencedIncident {
                id: silence.id.clone()
            }
        );
        // The next incident of the same series pages and resolves as usual.
        assert_eq!(s.apply(vec![fire.clone()], |_| false).0.len(), 1);
        assert_eq!(s.apply(vec![resolve.clone()], |_| true).0.len(), 1);

        // A reminder paged after the silence ended: its resolve goes out.
        let silence = s.add(new(matcher("okta-sign-ins", None, &[]), 1)).unwrap();
        assert!(s.apply(vec![fire.clone()], |_| false).0.is_empty());
        s.expire(&silence.id, "").unwrap();
        assert_eq!(s.apply(vec![resolve.clone()], |_| true).0.len(), 1);
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let s = Silences::in_memory(ManualClock::at(T0));
        let cases = [
            (new(matcher(" ", None, &[]), 1), "rule: must name a rule"),
            (
                new(matcher("r", Some("spikes"), &[]), 1),
                "detector: \"spikes\" is not a detector",
            ),
            (
                new(matcher("r", None, &[("ip", "")]), 1),
                "series: \"ip\"=\"\" needs",
            ),
            (
                new(matcher("r", None, &[]), 0),
                "duration: must be greater than 0",
            ),
            (
                new(matcher("r", None, &[]), 24 * 91),
                "duration: at most 90 days",
            ),
        ];
        for (req, want) in cases {
            let e = s.add(req).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
        let mut no_reason = new(matcher("r", None, &[]), 1);
        no_reason.reason = "  ".into();
        assert!(s
            .add(no_reason)
            .unwrap_err()
            .to_string()
            .starts_with("reason:"));
        assert_eq!(
            s.expire("nope", "x").unwrap_err(),
            SilenceError::NotFound("nope".into())
        );
    }

    #[test]
    fn silences_persist_and_a_corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(T0);
        let s = Silences::open(dir.path(), clock.clone()).unwrap();
        let kept = s.add(new(matcher("okta-sign-ins", None, &[]), 2)).unwrap();
        s.apply(
            vec![sample_alert(Status::Firing, "2026-11-25T10:15:00Z")],
            |_| false,
        );
        drop(s);
        let s = Silences::open(dir.path(), clock.clone()).unwrap();
        assert_eq!(s.active(), vec![kept]);
        assert_eq!(
            s.lock().set.held.len(),
            1,
            "held incidents survive a restart"
        );

        let path = dir.path().join(SILENCES_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let (set, how) = silence_file(dir.path(), clock.clone()).load().unwrap();
        assert_eq!(set, SilenceSet::default());
        assert!(matches!(how, Loaded::MovedAside { to, .. } if to.exists()));
        assert!(!path.exists());
        let s = Silences::open(dir.path(), clock).unwrap();
        assert!(s.list().is_empty());
    }

    /// A file written before the format moved to `state_file` still loads.
    #[test]
    fn a_file_written_by_an_earlier_version_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SILENCES_FILE),
            include_bytes!("../../tests/fixtures/state/silences-v1.json"),
        )
        .unwrap();
        let s = Silences::open(dir.path(), ManualClock::at(T0)).unwrap();
        let active = s.active();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].id, "f2433c9cec751048");
        assert_eq!(
            active[0].matcher.describe(),
            "rule=okta-sign-ins detector=failure_spike client.ipAddress=203.0.113.9"
        );
        assert_eq!(
            s.lock().set.held["3fa19c0d2b7e4a11"].silence,
            "f2433c9cec751048"
        );
    }
}
