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

mod request;
mod set;

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::alert::{rfc3339, Alert};
use crate::clock::SharedClock;
use crate::state_file::{Format, Loaded, StateFile};

use self::request::{new_id, validate, MAX_TEXT};
pub use self::request::{NewSilence, SilenceError, MAX_DURATION_MS, MAX_SILENCES};
use self::set::EXPIRED_KEPT_MS;
pub use self::set::{HeldIncident, Hold, Matcher, Silence, SilenceSet, SilenceState};

pub const SILENCES_FILE: &str = "silences.json";
const HEADER: &str = "authpulse-silences v1 sha256=";

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
    use super::request::tests::new;
    use super::set::tests::matcher;
    use super::*;
    use crate::alert::Status;
    use crate::clock::ManualClock;
    use crate::sink::render::tests::sample_alert;

    const HOUR: i64 = 3_600_000;
    const T0: i64 = 1_795_600_000_000;

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
        assert_eq!(
            s.expire("nope", "x").unwrap_err(),
            SilenceError::NotFound("nope".into())
        );
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
            include_bytes!("../../../tests/fixtures/state/silences-v1.json"),
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
