//! Maintenance windows: `[[mute]]` periods in which alerts are not sent.
//!
//! A planned Okta upgrade or a network change makes sign-ins drop or fail for reasons
//! everyone already knows about. A mute names the period — once (`start`/`end`, RFC
//! 3339) or every week (`weekly = "Sun 02:00-04:00"`, UTC, may wrap past midnight or the
//! end of the week) — and optionally which `rules` and `detectors` it silences.
//!
//! An alert is muted when its bin, or the start of its incident, falls inside a window:
//! so every notice about an incident that began during maintenance stays quiet, even a
//! resolve that comes after the window closed. Muted alerts are not sent, but they are
//! logged and counted (`authpulse_alerts_muted_total`), and the pipeline's state moves
//! on as usual: when the window closes, an incident still going on pages as a new one
//! only if it started after the window.

use chrono::{DateTime, Datelike, Timelike};
use serde_json::Value;

use crate::alert::Alert;
use crate::config_reader::{Problems, Table};
use crate::event::parse_rfc3339_ms;

const MINUTES_PER_WEEK: i64 = 7 * 24 * 60;
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// `[start_ms, end_ms)`.
    Once { start_ms: i64, end_ms: i64 },
    /// Minutes since Monday 00:00 UTC, `[start, end)`; `end < start` wraps the week.
    Weekly { start: i64, end: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    pub window: Window,
    /// Only these rules (all when empty).
    pub rules: Vec<String>,
    /// Only these detectors (all when empty).
    pub detectors: Vec<String>,
    /// Why, for the log line.
    pub reason: String,
}

impl Window {
    pub fn contains(&self, ms: i64) -> bool {
        match *self {
            Window::Once { start_ms, end_ms } => (start_ms..end_ms).contains(&ms),
            Window::Weekly { start, end } => {
                let Some(t) = DateTime::from_timestamp_millis(ms) else {
                    return false;
                };
                let minute = i64::from(t.weekday().num_days_from_monday()) * 1440
                    + i64::from(t.hour()) * 60
                    + i64::from(t.minute());
                (minute - start).rem_euclid(MINUTES_PER_WEEK)
                    < (end - start).rem_euclid(MINUTES_PER_WEEK)
            }
        }
    }
}

/// `Sun 02:00` → minutes since Monday 00:00.
fn week_minute(s: &str) -> Option<i64> {
    let (day, time) = s.trim().split_once(' ')?;
    let prefix = day.get(..3)?;
    let d = DAYS.iter().position(|x| x.eq_ignore_ascii_case(prefix))?;
    let (h, m) = time.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(d as i64 * 1440 + h * 60 + m)
}

/// `Sun 02:00-04:00` or `Sat 23:00-Sun 01:00`.
fn parse_weekly(s: &str) -> Option<Window> {
    let (from, to) = s.split_once('-')?;
    let start = week_minute(from)?;
    let to = to.trim();
    let end = if to.contains(' ') {
        week_minute(to)?
    } else {
        // Same day as the start (or the next day, when it wraps past midnight).
        let day = start / 1440;
        let end = week_minute(&format!("{} {to}", DAYS[day as usize]))?;
        if end == start {
            return None;
        }
        if end < start {
            end + 1440
        } else {
            end
        }
    };
    (end != start).then_some(Window::Weekly {
        start,
        end: end.rem_euclid(MINUTES_PER_WEEK),
    })
}

impl Mute {
    /// Read one `[[mute]]` table.
    pub fn read(path: &str, value: &Value, problems: &mut Problems) -> Option<Mute> {
        let mut t = Table::new(path, Some(value), problems);
        let start = t.string("start", problems);
        let end = t.string("end", problems);
        let weekly = t.string("weekly", problems);
        let time = |key: &'static str, v: &str, problems: &mut Problems| {
            let ms = parse_rfc3339_ms(v);
            if ms.is_none() {
                problems.push(
                    t.key_path(key),
                    format!("{v:?} is not an RFC 3339 time such as \"2026-12-24T18:00:00Z\""),
                );
            }
            ms
        };
        let window = match (start, end, weekly) {
            (Some(s), Some(e), None) => {
                let (s, e) = (time("start", &s, problems), time("end", &e, problems));
                match (s, e) {
                    (Some(s), Some(e)) if e > s => Some(Window::Once {
                        start_ms: s,
                        end_ms: e,
                    }),
                    (Some(_), Some(_)) => {
                        problems.push(t.key_path("end"), "must be after start");
                        None
                    }
                    _ => None,
                }
            }
            (None, None, Some(w)) => {
                let parsed = parse_weekly(&w);
                if parsed.is_none() {
                    problems.push(
                        t.key_path("weekly"),
                        format!("{w:?} is not a weekly window such as \"Sun 02:00-04:00\" or \"Sat 23:00-Sun 01:00\" (UTC)"),
                    );
                }
                parsed
            }
            _ => {
                problems.push(path, "needs either start and end, or weekly (and not both)");
                None
            }
        };
        let rules = t.strings("rules", problems).unwrap_or_default();
        let detectors = t.strings("detectors", problems).unwrap_or_default();
        for d in &detectors {
            if crate::detect::DetectorKind::from_name(d).is_none()
                && d != crate::alert::SOURCE_UNAVAILABLE
            {
                problems.push(t.key_path("detectors"), format!("{d:?} is not a detector"));
            }
        }
        let reason = t.string("reason", problems).unwrap_or_default();
        t.finish(problems);
        Some(Mute {
            window: window?,
            rules,
            detectors,
            reason,
        })
    }

    /// Does this mute silence `alert`?
    pub fn covers(&self, alert: &Alert) -> bool {
        let applies = (self.rules.is_empty() || self.rules.contains(&alert.rule))
            && (self.detectors.is_empty() || self.detectors.contains(&alert.detector));
        applies
            && [alert.bin_start, alert.started_at]
                .into_iter()
                .any(|t| self.window.contains(t.ms()))
    }
}

/// Split `alerts` into those to send and those muted; every muted one is logged and
/// counted.
pub fn apply(mutes: &[Mute], alerts: Vec<Alert>) -> (Vec<Alert>, Vec<Alert>) {
    if mutes.is_empty() {
        return (alerts, Vec::new());
    }
    let (mut send, mut muted) = (Vec::with_capacity(alerts.len()), Vec::new());
    for a in alerts {
        match mutes.iter().find(|m| m.covers(&a)) {
            Some(m) => {
                tracing::info!(rule = %a.rule, detector = %a.detector, status = ?a.status, bin = %a.bin_start, reason = %m.reason, "alert muted by a maintenance window");
                metrics::counter!("authpulse_alerts_muted_total", "rule" => a.rule.clone())
                    .increment(1);
                muted.push(a);
            }
            None => send.push(a),
        }
    }
    (send, muted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Status;
    use crate::sink::render::tests::sample_alert;
    use proptest::prelude::*;

    fn ms(s: &str) -> i64 {
        parse_rfc3339_ms(s).unwrap()
    }

    fn read(v: serde_json::Value) -> (Option<Mute>, Vec<String>) {
        let mut p = Problems::default();
        let m = Mute::read("mute[0]", &v, &mut p);
        (m, p.0.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn weekly_windows_wrap_midnight_and_the_week() {
        // 2026-11-29 is a Sunday, 2026-11-30 a Monday.
        let w = parse_weekly("Sun 23:00-01:00").unwrap();
        assert!(w.contains(ms("2026-11-29T23:30:00Z")));
        assert!(w.contains(ms("2026-11-30T00:59:00Z")));
        assert!(!w.contains(ms("2026-11-30T01:00:00Z")));
        assert!(!w.contains(ms("2026-11-29T22:59:00Z")));
        let w = parse_weekly("Sat 22:00-Sun 02:00").unwrap();
        assert!(w.contains(ms("2026-11-29T01:00:00Z")));
        assert!(!w.contains(ms("2026-11-27T23:00:00Z")));
        assert_eq!(parse_weekly("Sun 02:00-02:00"), None);
        assert_eq!(parse_weekly("Someday 02:00-03:00"), None);
    }

    #[test]
    fn config_tables_are_read_and_checked() {
        let (m, p) = read(serde_json::json!({
            "start": "2026-11-25T10:00:00Z", "end": "2026-11-25T12:00:00Z",
            "rules": ["okta-sign-ins"], "detectors": ["volume_drop"], "reason": "upgrade"
        }));
        assert!(p.is_empty(), "{p:?}");
        let m = m.unwrap();
        assert_eq!(m.rules, vec!["okta-sign-ins"]);
        let (_, p) = read(serde_json::json!({"start": "2026-11-25T10:00:00Z"}));
        assert_eq!(p.len(), 1, "{p:?}");
        let (_, p) = read(serde_json::json!({"weekly": "Sun 2am", "detectors": ["nope"]}));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().any(|p| p.starts_with("mute[0].weekly")), "{p:?}");
        let (_, p) = read(
            serde_json::json!({"start": "2026-11-25T12:00:00Z", "end": "2026-11-25T10:00:00Z"}),
        );
        assert!(p[0].starts_with("mute[0].end"), "{p:?}");
    }

    #[test]
    fn an_incident_that_began_in_the_window_stays_muted() {
        let m = Mute {
            window: Window::Once {
                start_ms: ms("2026-11-25T10:00:00Z"),
                end_ms: ms("2026-11-25T11:00:00Z"),
            },
            rules: vec![],
            detectors: vec!["failure_spike".into()],
            reason: "test".into(),
        };
        let mut resolve = sample_alert(Status::Resolved, "2026-11-25T11:30:00Z");
        resolve.started_at = "2026-11-25T10:45:00Z".parse().unwrap();
        let outside = sample_alert(Status::Firing, "2026-11-25T12:00:00Z");
        let mut other = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        other.detector = "flatline".into();
        let (send, muted) = apply(&[m], vec![resolve, outside.clone(), other.clone()]);
        assert_eq!(muted.len(), 1);
        assert_eq!(send, vec![outside, other]);
    }

    proptest! {
        /// A weekly window covers the same minutes every week.
        #[test]
        fn weekly_is_periodic(t in 0i64..4_000_000_000_000, start in 0i64..10_080, len in 1i64..10_079) {
            let w = Window::Weekly { start, end: (start + len) % MINUTES_PER_WEEK };
            prop_assert_eq!(w.contains(t), w.contains(t + 7 * 86_400_000));
        }
    }
}
