//! Maintenance windows: `[[mute]]` periods in which alerts are not sent.
//!
//! A planned Okta upgrade or a network change makes sign-ins drop or fail for reasons
//! everyone already knows about. A mute names the period — once (`start`/`end`) or every
//! week (`weekly = "Sun 02:00-04:00"`, may wrap past midnight or the end of the week) —
//! and optionally which `rules` and `detectors` it silences.
//!
//! Times are read in the mute's `timezone`, an IANA name such as `"Europe/Berlin"`
//! (default `"UTC"`). A weekly window follows the wall clock there, daylight saving time
//! included: `"Sun 01:00-04:00"` in Berlin is 00:00-03:00 UTC in winter and 23:00-02:00
//! UTC in summer. On the night the clocks go forward, the skipped hour is in no window;
//! on the night they go back, the repeated hour is in the window both times. `start` and
//! `end` are RFC 3339 times with their own offset (`2026-12-24T18:00:00Z`), or local
//! times without one (`2026-12-24T18:00`) read in `timezone`; a local time the clocks
//! skip is refused, and one they repeat counts from its first occurrence (`start`) or to
//! its second (`end`).
//!
//! An alert is muted when its bin, or the start of its incident, falls inside a window:
//! so every notice about an incident that began during maintenance stays quiet, even a
//! resolve that comes after the window closed. Muted alerts are not sent, but they are
//! logged and counted (`authpulse_alerts_muted_total`), and the pipeline's state moves
//! on as usual: when the window closes, an incident still going on pages as a new one
//! only if it started after the window.

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;
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
    /// Minutes since Monday 00:00 on the wall clock of `tz`, `[start, end)`; `end <
    /// start` wraps the week.
    Weekly { start: i64, end: i64, tz: Tz },
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
            Window::Weekly { start, end, tz } => {
                let Some(t) = DateTime::from_timestamp_millis(ms) else {
                    return false;
                };
                let t = t.with_timezone(&tz);
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

/// `Sun 02:00-04:00` or `Sat 23:00-Sun 01:00`, on the wall clock of `tz`.
fn parse_weekly(s: &str, tz: Tz) -> Option<Window> {
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
        tz,
    })
}

/// Which occurrence of a repeated local time to take.
#[derive(Clone, Copy)]
enum Fold {
    Earliest,
    Latest,
}

/// A point in time: RFC 3339 with an offset, or a local time (`2026-12-24T18:00`,
/// seconds optional, `T` or a space) on the wall clock of `tz`.
fn instant(s: &str, tz: Tz, fold: Fold) -> Result<i64, String> {
    if let Some(ms) = parse_rfc3339_ms(s) {
        return Ok(ms);
    }
    let local = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
        .ok_or_else(|| {
            format!(
                "{s:?} is not a time such as \"2026-12-24T18:00:00Z\" (RFC 3339) or \"2026-12-24T18:00\" (in timezone)"
            )
        })?;
    match (tz.from_local_datetime(&local), fold) {
        (LocalResult::Single(t), _) | (LocalResult::Ambiguous(t, _), Fold::Earliest) => {
            Ok(t.timestamp_millis())
        }
        (LocalResult::Ambiguous(_, t), Fold::Latest) => Ok(t.timestamp_millis()),
        (LocalResult::None, _) => Err(format!(
            "{s:?} does not exist in {tz}: the clocks skip it (daylight saving time)"
        )),
    }
}

impl Mute {
    /// Read one `[[mute]]` table.
    pub fn read(path: &str, value: &Value, problems: &mut Problems) -> Option<Mute> {
        let mut t = Table::new(path, Some(value), problems);
        let start = t.string("start", problems);
        let end = t.string("end", problems);
        let weekly = t.string("weekly", problems);
        let tz = match t.string("timezone", problems) {
            None => Tz::UTC,
            Some(name) => match name.trim().parse::<Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    problems.push(
                        t.key_path("timezone"),
                        format!("{name:?} is not an IANA time zone such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\""),
                    );
                    Tz::UTC
                }
            },
        };
        let time = |key: &'static str, v: &str, fold: Fold, problems: &mut Problems| match instant(
            v, tz, fold,
        ) {
            Ok(ms) => Some(ms),
            Err(why) => {
                problems.push(t.key_path(key), why);
                None
            }
        };
        let window = match (start, end, weekly) {
            (Some(s), Some(e), None) => {
                let (s, e) = (
                    time("start", &s, Fold::Earliest, problems),
                    time("end", &e, Fold::Latest, problems),
                );
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
                let parsed = parse_weekly(&w, tz);
                if parsed.is_none() {
                    problems.push(
                        t.key_path("weekly"),
                        format!("{w:?} is not a weekly window such as \"Sun 02:00-04:00\" or \"Sat 23:00-Sun 01:00\" (in timezone, default UTC)"),
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
            && (self.detectors.is_empty()
                || self.detectors.iter().any(|d| alert.detector == d.as_str()));
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
        let w = parse_weekly("Sun 23:00-01:00", Tz::UTC).unwrap();
        assert!(w.contains(ms("2026-11-29T23:30:00Z")));
        assert!(w.contains(ms("2026-11-30T00:59:00Z")));
        assert!(!w.contains(ms("2026-11-30T01:00:00Z")));
        assert!(!w.contains(ms("2026-11-29T22:59:00Z")));
        let w = parse_weekly("Sat 22:00-Sun 02:00", Tz::UTC).unwrap();
        assert!(w.contains(ms("2026-11-29T01:00:00Z")));
        assert!(!w.contains(ms("2026-11-27T23:00:00Z")));
        assert_eq!(parse_weekly("Sun 02:00-02:00", Tz::UTC), None);
        assert_eq!(parse_weekly("Someday 02:00-03:00", Tz::UTC), None);
    }

    #[test]
    fn weekly_windows_follow_the_wall_clock_across_dst() {
        // Berlin: CET (UTC+1) until 2026-03-29 02:00, then CEST (UTC+2) until
        // 2026-10-25 03:00.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let w = parse_weekly("Sun 01:00-04:00", berlin).unwrap();
        // The Sunday before: 00:00-03:00 UTC.
        assert!(w.contains(ms("2026-03-22T00:00:00Z")));
        assert!(w.contains(ms("2026-03-22T02:30:00Z")));
        assert!(!w.contains(ms("2026-03-22T03:00:00Z")));
        assert!(!w.contains(ms("2026-03-21T23:59:00Z")));
        // The night the clocks go forward: 01:00 CET to 04:00 CEST is 00:00-02:00 UTC.
        assert!(w.contains(ms("2026-03-29T00:00:00Z")));
        assert!(w.contains(ms("2026-03-29T01:59:00Z")));
        assert!(!w.contains(ms("2026-03-29T02:30:00Z")));
        // Summer: 23:00-02:00 UTC, starting on Saturday in UTC.
        assert!(w.contains(ms("2026-07-04T23:00:00Z")));
        assert!(!w.contains(ms("2026-07-04T22:59:00Z")));
        assert!(!w.contains(ms("2026-07-05T02:00:00Z")));
        // The night the clocks go back: 01:00 CEST to 04:00 CET is 23:00-03:00 UTC.
        assert!(w.contains(ms("2026-10-24T23:00:00Z")));
        assert!(w.contains(ms("2026-10-25T02:59:00Z")));
        assert!(!w.contains(ms("2026-10-25T03:00:00Z")));

        // The hour the clocks skip is in no window; the hour they repeat, twice.
        let w = parse_weekly("Sun 02:00-03:00", berlin).unwrap();
        for t in [
            "2026-03-29T00:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T01:30:00Z",
        ] {
            assert!(!w.contains(ms(t)), "{t}");
        }
        assert!(w.contains(ms("2026-10-25T00:30:00Z")), "02:30 CEST");
        assert!(w.contains(ms("2026-10-25T01:30:00Z")), "02:30 CET");
        assert!(!w.contains(ms("2026-10-25T02:00:00Z")), "03:00 CET");

        // America/New_York goes forward on 2026-03-08: 09:00-17:00 on Monday is
        // 14:00-22:00 UTC before and 13:00-21:00 UTC after.
        let ny: Tz = "America/New_York".parse().unwrap();
        let w = parse_weekly("Mon 09:00-17:00", ny).unwrap();
        assert!(w.contains(ms("2026-03-02T14:00:00Z")));
        assert!(!w.contains(ms("2026-03-02T13:30:00Z")));
        assert!(w.contains(ms("2026-03-09T13:30:00Z")));
        assert!(!w.contains(ms("2026-03-09T21:30:00Z")));
    }

    #[test]
    fn once_windows_take_local_times_in_their_timezone() {
        let (m, p) = read(serde_json::json!({
            "start": "2026-10-25T02:30", "end": "2026-10-25 02:45",
            "timezone": "Europe/Berlin"
        }));
        assert!(p.is_empty(), "{p:?}");
        // 02:30 happens twice that night: from the first (CEST) to the second 02:45 (CET).
        assert_eq!(
            m.unwrap().window,
            Window::Once {
                start_ms: ms("2026-10-25T00:30:00Z"),
                end_ms: ms("2026-10-25T01:45:00Z")
            }
        );
        // An offset wins over the timezone.
        let (m, _) = read(serde_json::json!({
            "start": "2026-12-24T18:00:00Z", "end": "2026-12-24T20:00:00+01:00",
            "timezone": "America/New_York"
        }));
        assert_eq!(
            m.unwrap().window,
            Window::Once {
                start_ms: ms("2026-12-24T18:00:00Z"),
                end_ms: ms("2026-12-24T19:00:00Z")
            }
        );
        // Without a timezone, local times are UTC.
        let (m, _) =
            read(serde_json::json!({"start": "2026-12-24T18:00", "end": "2026-12-24T19:00"}));
        assert_eq!(
            m.unwrap().window,
            Window::Once {
                start_ms: ms("2026-12-24T18:00:00Z"),
                end_ms: ms("2026-12-24T19:00:00Z")
            }
        );
    }

    #[test]
    fn timezone_problems_name_their_key() {
        let (_, p) = read(serde_json::json!({"weekly": "Sun 02:00-04:00", "timezone": "CEST+2"}));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("mute[0].timezone: \"CEST+2\" is not an IANA time zone"),
            "{p:?}"
        );
        let (_, p) = read(serde_json::json!({
            "start": "2026-03-29T02:30", "end": "2026-03-29T05:00", "timezone": "Europe/Berlin"
        }));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("mute[0].start: \"2026-03-29T02:30\" does not exist in Europe/Berlin"),
            "{p:?}"
        );
        let (_, p) = read(serde_json::json!({"start": "soon", "end": "2026-03-29T05:00"}));
        assert!(
            p[0].starts_with("mute[0].start: \"soon\" is not a time"),
            "{p:?}"
        );
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
        other.detector = "flatline".parse().unwrap();
        let (send, muted) = apply(&[m], vec![resolve, outside.clone(), other.clone()]);
        assert_eq!(muted.len(), 1);
        assert_eq!(send, vec![outside, other]);
    }

    proptest! {
        /// A weekly window covers the same minutes every week.
        #[test]
        fn weekly_is_periodic(t in 0i64..4_000_000_000_000, start in 0i64..10_080, len in 1i64..10_079) {
            let w = Window::Weekly { start, end: (start + len) % MINUTES_PER_WEEK, tz: Tz::UTC };
            prop_assert_eq!(w.contains(t), w.contains(t + 7 * 86_400_000));
        }
    }
}
