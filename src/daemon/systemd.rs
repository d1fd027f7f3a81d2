//! Telling systemd how the daemon is doing (`Type=notify`, see `systemd/authpulse.service`).
//!
//! ```text
//!   start ──STATUS=loading history──▶ backfill ──READY=1──▶ running (STATUS= now and then)
//!   main loop, every WATCHDOG_USEC/2 ──WATCHDOG=1──▶ systemd (silence for WatchdogSec = restart)
//!   SIGHUP ──RELOADING=1 + MONOTONIC_USEC──▶ reload ──READY=1
//!   SIGTERM ──STOPPING=1──▶ exit
//! ```
//!
//! systemd passes the socket in `NOTIFY_SOCKET` and the watchdog period in
//! `WATCHDOG_USEC`; without them (a terminal, a container, a test) every call is a no-op.
//! A failed send is logged once and otherwise ignored: the daemon's job is paging, not
//! talking to its supervisor.

use std::time::Duration;

use sd_notify::NotifyState;

pub struct Notifier {
    /// `NOTIFY_SOCKET` is set: there is someone to talk to.
    enabled: bool,
    /// The watchdog period systemd expects pings within, if it set one.
    watchdog: Option<Duration>,
    /// The last `STATUS=` sent, so an unchanged line is not sent again.
    last_status: String,
    warned: bool,
}

impl Notifier {
    /// Read `NOTIFY_SOCKET` and `WATCHDOG_USEC` (and `WATCHDOG_PID`, which must be ours).
    /// A notifier that tells nobody: for tests and for a daemon not under systemd.
    pub fn disabled() -> Notifier {
        Notifier {
            enabled: false,
            watchdog: None,
            last_status: String::new(),
            warned: false,
        }
    }

    pub fn from_env() -> Notifier {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled(),
            last_status: String::new(),
            warned: false,
        }
    }

    /// How often the main loop must send `WATCHDOG=1`: half the period systemd allows,
    /// the customary margin for a busy loop. `None` when no watchdog is configured.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
            .filter(|d| !d.is_zero())
            .map(|d| (d / 2).max(Duration::from_millis(10)))
    }

    /// Start-up (or a reload) is complete.
    pub fn ready(&mut self, status: &str) {
        self.last_status = status.to_string();
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A `STATUS=` line for `systemctl status`; sent only when it changed.
    pub fn status(&mut self, status: &str) {
        if self.last_status != status {
            self.last_status = status.to_string();
            self.send(&[NotifyState::Status(status)]);
        }
    }

    /// The main loop is alive.
    pub fn watchdog(&mut self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// Loading history takes as long as it takes: while it makes progress, push systemd's
    /// start timeout (`TimeoutStartSec=`) out by `by` from now.
    pub fn extend_timeout(&mut self, by: Duration) {
        let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
        self.send(&[NotifyState::ExtendTimeoutUsec(usec)]);
    }

    /// A reload begins. systemd ≥ 253 requires `MONOTONIC_USEC` with `RELOADING=1`.
    pub fn reloading(&mut self) {
        self.last_status = "reloading the configuration".to_string();
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status(&self.last_status.clone()),
            ]),
            Err(e) => tracing::debug!(error = %e, "no monotonic clock; RELOADING=1 not sent"),
        }
    }

    /// Shutdown begins.
    pub fn stopping(&mut self) {
        self.last_status = "stopping".to_string();
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    fn send(&mut self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            if !self.warned {
                self.warned = true;
                tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET); carrying on without it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_pinged_at_half_its_period() {
        let n = Notifier {
            enabled: true,
            watchdog: Some(Duration::from_secs(60)),
            last_status: String::new(),
            warned: false,
        };
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(30)));
        let off = Notifier {
            watchdog: None,
            ..n
        };
        assert_eq!(off.watchdog_interval(), None);
    }
}
