//! Persisted alert state: what was notified, so a restarted daemon neither pages twice
//! for one incident nor forgets to resolve it.
//!
//! # The problem
//!
//! The pipeline rebuilds itself on every start: the file source replays its file from
//! the first line, the CloudWatch source backfills the baseline window. Replaying is
//! how the baseline gets its history back, and the lifecycle (firing / resolved) comes
//! back with it, because it is a pure function of the bins. But replaying also
//! regenerates every notification those bins ever produced, and most were sent before
//! the restart.
//!
//! # The design: a watermark per rule plus a ledger per fingerprint
//!
//! `state_dir/alert-state.json` holds:
//!
//! - **`watermarks`**: per rule, the start of the first bin *not yet closed* when the
//!   state was saved. Every notification of an earlier bin was already queued in the
//!   durable outbox before that save (the daemon writes the outbox first, then this file),
//!   so a replayed notification with `bin_start` before the watermark is recognised as
//!   already handled and suppressed. With a deterministic source (a file), the replay
//!   regenerates exactly the notifications sent before, and this rule alone is exact.
//! - **`notified`**: per fingerprint, the last notification queued (status, bin, the alert
//!   itself). It answers what the watermark cannot:
//!   - the watermark is saved lazily (every few seconds) when nothing was notified, so a
//!     notification between the last save and a crash is recognised by its bin being no
//!     later than the fingerprint's last notified bin;
//!   - a source that does not replay exactly (CloudWatch revises late bins) may re-derive
//!     a `Fire` for an incident already paged: a `firing` within the detector's
//!     `repeat_interval` of the last `firing` is suppressed, and a `resolved` after a
//!     `resolved` is too;
//!   - after a restart, an incident recorded as firing that the rebuilt pipeline no longer
//!     sees firing (a config change, a revised bin) would never resolve: once the replay
//!     has passed the rule's watermark, [`AlertState::orphans`] yields a `resolved` for it,
//!     so receivers are told exactly once.
//!
//! Notifications past the watermark that are not in the ledger are new: they are sent.
//! An incident that is still firing after the restart is thus never paged again (its
//! `Fire` is before the watermark, its repeats follow `repeat_interval` as before), and
//! its `resolved` is a new notification, sent once.
//!
//! The file is written atomically (temporary file, `fsync`, rename, `fsync` the
//! directory) and starts with a header line carrying a SHA-256 of the body
//! ([`crate::state_file`]). A file that
//! fails the check (torn by a file system without ordered writes, truncated, edited) is
//! moved aside as `alert-state.json.corrupt-<ms>` with an error log line, and the daemon
//! starts with empty state: it rebuilds the lifecycle by replay, and at worst sends again
//! what it sent before (receivers drop repeats by idempotency key).
//!
//! Resolved fingerprints are pruned a week (of bin time) behind their rule's watermark,
//! which covers them from then on.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::{idempotency_key, Alert, Status, Timestamp};
use crate::clock::SharedClock;
use crate::state_file::{Format, StateFile};

pub const STATE_FILE: &str = "alert-state.json";
const HEADER: &str = "authpulse-alert-state v1 sha256=";
const PRUNE_BEHIND_MS: i64 = 7 * 86_400_000;

/// The last notification queued for one fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notified {
    pub status: Status,
    pub bin_start_ms: i64,
    pub alert: Alert,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// Rule name → start (ms) of the first bin not closed yet.
    pub watermarks: BTreeMap<String, i64>,
    /// Fingerprint → last notification queued.
    pub notified: BTreeMap<String, Notified>,
}

/// Why a notification is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Its bin was closed before the restart: it was handled then.
    Replayed,
    /// This or a later notification of the fingerprint was already queued.
    AlreadySent,
    /// The incident is already paged and `repeat_interval` has not passed.
    StillFiring,
    /// The incident is already resolved.
    AlreadyResolved,
}

impl Suppressed {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppressed::Replayed => "replayed",
            Suppressed::AlreadySent => "already_sent",
            Suppressed::StillFiring => "still_firing",
            Suppressed::AlreadyResolved => "already_resolved",
        }
    }
}

fn bin_len_ms(alert: &Alert) -> i64 {
    (alert.bin_end.ms() - alert.bin_start.ms()).max(1000)
}

impl AlertState {
    /// Decide whether `alert` goes out, recording it when it does. `repeat` is the
    /// detector's `repeat_interval` (`None` when unknown: a firing is then never repeated
    /// across a restart).
    pub fn admit(&mut self, alert: &Alert, repeat: Option<Duration>) -> Result<(), Suppressed> {
        let bin = alert.bin_start.ms();
        if self.watermarks.get(&alert.rule).is_some_and(|&w| bin < w) {
            return Err(Suppressed::Replayed);
        }
        if let Some(last) = self.notified.get(&alert.fingerprint) {
            // Earlier bins were handled. In the same bin only a resolve may follow a
            // firing (an alert raised and cleared on the wall clock, like the source's
            // health, can do that; the pipeline steps one transition per bin).
            let resolves_same_bin = bin == last.bin_start_ms
                && last.status == Status::Firing
                && alert.status == Status::Resolved;
            if bin <= last.bin_start_ms && !resolves_same_bin {
                return Err(Suppressed::AlreadySent);
            }
            match (last.status, alert.status) {
                (Status::Firing, Status::Firing)
                    if repeat.is_none_or(|r| {
                        bin.saturating_sub(last.bin_start_ms) < r.as_millis() as i64
                    }) =>
                {
                    return Err(Suppressed::StillFiring);
                }
                (Status::Resolved, Status::Resolved) => return Err(Suppressed::AlreadyResolved),
                _ => {}
            }
        }
        self.notified.insert(
            alert.fingerprint.clone(),
            Notified {
                status: alert.status,
                bin_start_ms: bin,
                alert: alert.clone(),
            },
        );
        Ok(())
    }

    /// Every bin of `rule` before `next_bin_start_ms` is closed (and its notifications
    /// queued). Watermarks only move forward: a replay behind it changes nothing.
    pub fn advance(&mut self, rule: &str, next_bin_start_ms: i64) -> bool {
        match self.watermarks.get_mut(rule) {
            Some(w) if *w >= next_bin_start_ms => false,
            Some(w) => {
                *w = next_bin_start_ms;
                true
            }
            None => {
                self.watermarks.insert(rule.to_string(), next_bin_start_ms);
                true
            }
        }
    }

    pub fn watermark(&self, rule: &str) -> Option<i64> {
        self.watermarks.get(rule).copied()
    }

    /// Incidents recorded as firing that the pipeline no longer has firing, for rules
    /// where `ready(rule)` says the pipeline has caught up with the state: each yields
    /// the `resolved` notification to send (not yet admitted). `still_firing(fp)` asks
    /// the pipeline's lifecycle; `next_bin(rule)` gives the bin to date it in.
    pub fn orphans(
        &self,
        ready: impl Fn(&str) -> bool,
        still_firing: impl Fn(&str) -> bool,
        next_bin: impl Fn(&str) -> Option<i64>,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for (fp, n) in &self.notified {
            if n.status != Status::Firing || !ready(&n.alert.rule) || still_firing(fp) {
                continue;
            }
            let len = bin_len_ms(&n.alert);
            // The last closed bin, but never at or before the last notice.
            // Saturating: the numbers come from a file (or the [ha] table) and may be
            // anything (found by the fuzz driver).
            let bin = next_bin(&n.alert.rule)
                .map(|next| next.saturating_sub(len))
                .unwrap_or(0)
                .max(n.bin_start_ms.saturating_add(len));
            let mut a = n.alert.clone();
            a.status = Status::Resolved;
            a.bin_start = Timestamp::from_ms(bin);
            a.bin_end = Timestamp::from_ms(bin.saturating_add(len));
            a.summary = format!(
                "Resolved: {} {} is no longer firing (authpulse restarted and no longer sees the anomaly that started at {}).",
                a.rule, a.detector, a.started_at
            );
            a.idempotency_key = idempotency_key(fp, Status::Resolved, bin);
            out.push(a);
        }
        out
    }

    /// Drop resolved fingerprints well behind their rule's watermark.
    pub fn prune(&mut self) {
        let watermarks = &self.watermarks;
        self.notified.retain(|_, n| {
            n.status == Status::Firing
                || watermarks
                    .get(&n.alert.rule)
                    .is_none_or(|&w| n.bin_start_ms >= w.saturating_sub(PRUNE_BEHIND_MS))
        });
    }

    pub fn firing(&self) -> usize {
        self.notified
            .values()
            .filter(|n| n.status == Status::Firing)
            .count()
    }
}

/// The ledger's file (`state_dir/alert-state.json`, see the module doc).
pub fn state_file(state_dir: &Path, clock: SharedClock) -> StateFile<AlertState> {
    StateFile::new(
        state_dir.join(STATE_FILE),
        Format {
            header: HEADER,
            what: "alert state",
            if_lost:
                "alerts sent before may be sent again; receivers drop repeats by idempotency key",
            legacy: None,
        },
        clock,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::sink::render::tests::sample_alert;
    use crate::state_file::Loaded;

    const HOUR: i64 = 3_600_000;

    fn alert(status: Status, bin: &str) -> Alert {
        sample_alert(status, bin)
    }

    #[test]
    fn replayed_notifications_before_the_watermark_are_suppressed() {
        let mut s = AlertState::default();
        let fire = alert(Status::Firing, "2026-11-25T10:00:00Z");
        assert_eq!(s.admit(&fire, Some(Duration::from_secs(3600))), Ok(()));
        s.advance("okta-sign-ins", fire.bin_start.ms() + 900_000);
        // Restart: everything is replayed from the start.
        let mut s2 = s.clone();
        s2.notified.clear();
        assert_eq!(s2.admit(&fire, None), Err(Suppressed::Replayed));
        // The resolve comes after the watermark: sent once.
        let resolve = alert(Status::Resolved, "2026-11-25T11:00:00Z");
        assert_eq!(s.admit(&resolve, None), Ok(()));
        assert_eq!(s.admit(&resolve, None), Err(Suppressed::AlreadySent));
    }

    #[test]
    fn ledger_covers_what_the_watermark_missed() {
        let mut s = AlertState::default();
        let repeat = Some(Duration::from_secs(4 * 3600));
        let fire = alert(Status::Firing, "2026-11-25T10:00:00Z");
        s.admit(&fire, repeat).unwrap();
        // The same notification regenerated (watermark not saved yet).
        assert_eq!(s.admit(&fire, repeat), Err(Suppressed::AlreadySent));
        // A re-derived Fire of the same incident an hour later: not a new page.
        let again = alert(Status::Firing, "2026-11-25T11:00:00Z");
        assert_eq!(s.admit(&again, repeat), Err(Suppressed::StillFiring));
        // After repeat_interval it is a legitimate reminder.
        let later = alert(Status::Firing, "2026-11-25T14:00:00Z");
        assert_eq!(s.admit(&later, repeat), Ok(()));
        let res = alert(Status::Resolved, "2026-11-25T15:00:00Z");
        s.admit(&res, repeat).unwrap();
        let res2 = alert(Status::Resolved, "2026-11-25T16:00:00Z");
        assert_eq!(s.admit(&res2, repeat), Err(Suppressed::AlreadyResolved));
        // A new incident fires again.
        let new = alert(Status::Firing, "2026-11-25T17:00:00Z");
        assert_eq!(s.admit(&new, repeat), Ok(()));
    }

    #[test]
    fn a_resolve_in_the_bin_of_its_firing_is_sent() {
        let mut s = AlertState::default();
        let fire = alert(Status::Firing, "2026-11-25T10:15:00Z");
        s.admit(&fire, None).unwrap();
        let resolve = alert(Status::Resolved, "2026-11-25T10:15:00Z");
        assert_eq!(s.admit(&resolve, None), Ok(()));
        assert_eq!(s.admit(&resolve, None), Err(Suppressed::AlreadySent));
        // Firing again in that bin would reuse the first firing's idempotency key.
        assert_eq!(s.admit(&fire, None), Err(Suppressed::AlreadySent));
    }

    #[test]
    fn orphaned_firing_incidents_resolve_once_caught_up() {
        let mut s = AlertState::default();
        let fire = alert(Status::Firing, "2026-11-25T10:00:00Z");
        s.admit(&fire, None).unwrap();
        let start = fire.bin_start.ms();
        let none = s.orphans(|_| false, |_| false, |_| Some(start + 5 * HOUR));
        assert!(none.is_empty(), "not caught up yet");
        let none = s.orphans(|_| true, |_| true, |_| Some(start + 5 * HOUR));
        assert!(none.is_empty(), "still firing");
        let r = s.orphans(|_| true, |_| false, |_| Some(start + 5 * HOUR));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, Status::Resolved);
        assert!(r[0].idempotency_key.contains("-resolved-"));
        assert_eq!(r[0].bin_start.ms(), start + 5 * HOUR - bin_len_ms(&fire));
        assert_eq!(s.admit(&r[0], None), Ok(()));
        assert!(s.orphans(|_| true, |_| false, |_| None).is_empty());
    }

    #[test]
    fn prune_keeps_firing_and_recent() {
        let mut s = AlertState::default();
        s.admit(&alert(Status::Resolved, "2026-11-01T10:00:00Z"), None)
            .unwrap();
        let mut other = alert(Status::Firing, "2026-11-01T10:00:00Z");
        other.fingerprint = "other".into();
        s.admit(&other, None).unwrap();
        s.advance("okta-sign-ins", other.bin_start.ms() + 10 * 86_400_000);
        s.prune();
        assert_eq!(s.notified.len(), 1);
        assert_eq!(s.firing(), 1);
    }

    #[test]
    fn state_round_trips_and_corruption_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let f = state_file(dir.path(), ManualClock::at(1_795_600_000_000));
        assert_eq!(f.load().unwrap(), (AlertState::default(), Loaded::Fresh));
        let mut s = AlertState::default();
        s.admit(&alert(Status::Firing, "2026-11-25T10:00:00Z"), None)
            .unwrap();
        s.advance("okta-sign-ins", 42);
        f.save(&s).unwrap();
        assert_eq!(f.load().unwrap(), (s.clone(), Loaded::Restored));

        // A torn write: the first half of the file.
        let bytes = std::fs::read(f.path()).unwrap();
        std::fs::write(f.path(), &bytes[..bytes.len() / 2]).unwrap();
        let (empty, how) = f.load().unwrap();
        assert_eq!(empty, AlertState::default());
        let Loaded::MovedAside { to, reason } = how else {
            panic!("{how:?}")
        };
        assert_eq!(
            to,
            dir.path().join("alert-state.json.corrupt-1795600000000")
        );
        assert!(reason.starts_with("checksum mismatch"), "{reason}");
        assert!(to.exists());
        assert!(!f.path().exists());
    }

    /// A file the ledger wrote before its format moved to `state_file` still loads.
    #[test]
    fn a_file_written_by_an_earlier_version_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(STATE_FILE),
            include_bytes!("../../tests/fixtures/state/alert-state-v1.json"),
        )
        .unwrap();
        let (state, how) = state_file(dir.path(), ManualClock::at(0)).load().unwrap();
        assert_eq!(how, Loaded::Restored);
        assert_eq!(state.watermark("okta-sign-ins"), Some(1_795_600_800_000));
        let mut want = AlertState::default();
        want.admit(&alert(Status::Firing, "2026-11-25T10:00:00Z"), None)
            .unwrap();
        assert_eq!(state.notified, want.notified);
    }

    /// Found by the fuzz driver: a state read back (a file, or the `[ha]` table's body,
    /// which has no checksum) may hold any number; the arithmetic on it must not
    /// overflow.
    #[test]
    fn extreme_numbers_in_a_loaded_state_do_not_overflow() {
        let fire = alert(Status::Firing, "2026-11-25T10:00:00Z");
        let mut s = AlertState::default();
        s.watermarks.insert(fire.rule.clone(), i64::MIN);
        let mut resolved = fire.clone();
        resolved.status = Status::Resolved;
        s.notified.insert(
            "old".into(),
            Notified {
                status: Status::Resolved,
                bin_start_ms: 0,
                alert: resolved,
            },
        );
        s.prune();
        for extreme in [i64::MIN, i64::MAX] {
            let mut s = AlertState::default();
            s.notified.insert(
                fire.fingerprint.clone(),
                Notified {
                    status: Status::Firing,
                    bin_start_ms: extreme,
                    alert: fire.clone(),
                },
            );
            assert_eq!(s.orphans(|_| true, |_| false, |_| Some(i64::MIN)).len(), 1);
            let _ = s.admit(&fire, Some(Duration::from_secs(3600)));
        }
    }
}
