//! What the soak writes into the log group: steady sign-ins in 5-second bins and, at
//! seeded random places in the live part, incidents (credential stuffing, traffic
//! surges), as the EventBridge rule writes them. The same lines go to a file for the
//! backtest.

use std::ops::Range;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::support::okta_line;

/// The rule's bin: short, so a few minutes cover dozens of bins and several incidents.
pub const BIN_MS: i64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    /// Failures from one address against many accounts (failure_spike, volume_spike).
    Stuffing,
    /// Many more successful sign-ins than usual (volume_spike).
    Surge,
}

#[derive(Debug, Clone)]
pub struct Incident {
    pub bins: Range<i64>,
    pub kind: IncidentKind,
}

/// The events of the whole soak, in time order.
pub struct Plan {
    pub incidents: Vec<Incident>,
    /// (timestamp ms, line), in time order.
    pub lines: Vec<(i64, String)>,
}

/// Quiet history in `history`, then `live` bins with incidents (none in the last few
/// bins, so each resolves before the end), then `tail` quiet bins. Bins are absolute
/// (`ms / BIN_MS`). The same seed gives the same lines.
pub fn plan(seed: u64, history: Range<i64>, live: Range<i64>, tail: i64) -> Plan {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut incidents = Vec::new();
    let mut start = live.start + rng.random_range(4..=8);
    while start + 6 < live.end {
        let len = rng.random_range(2..=4);
        let kind = if rng.random_bool(0.7) {
            IncidentKind::Stuffing
        } else {
            IncidentKind::Surge
        };
        incidents.push(Incident {
            bins: start..start + len,
            kind,
        });
        start += len + rng.random_range(9..=15);
    }
    let mut lines = Vec::new();
    for b in history.start..live.end + tail {
        let incident = incidents
            .iter()
            .enumerate()
            .find(|(_, i)| i.bins.contains(&b));
        bin_lines(b, incident, &mut lines);
    }
    Plan { incidents, lines }
}

/// One bin: 16-24 sign-ins with 1-3 failures, plus the incident's events.
fn bin_lines(b: i64, incident: Option<(usize, &Incident)>, out: &mut Vec<(i64, String)>) {
    let n = 16 + (b * 7).rem_euclid(9);
    let failures = 1 + b.rem_euclid(3);
    let mut events: Vec<(&str, String, String)> = (0..n)
        .map(|i| {
            let ok = i >= failures;
            (
                if ok { "SUCCESS" } else { "FAILURE" },
                format!("user{}@example.com", (b * 13 + i).rem_euclid(200)),
                if ok { "198.51.100.7" } else { "198.51.100.8" }.to_string(),
            )
        })
        .collect();
    match incident {
        Some((k, i)) if i.kind == IncidentKind::Stuffing => {
            events.extend((0..150).map(|v| {
                (
                    "FAILURE",
                    format!("victim{v}@example.com"),
                    format!("203.0.113.{}", 1 + k % 250),
                )
            }));
        }
        Some((k, _)) => {
            events.extend((0..120).map(|v| {
                (
                    "SUCCESS",
                    format!("user{}@example.com", (v * 7 + k as i64) % 200),
                    "198.51.100.7".to_string(),
                )
            }));
        }
        None => {}
    }
    let step = BIN_MS / events.len() as i64;
    for (i, (result, user, ip)) in events.into_iter().enumerate() {
        let t = b * BIN_MS + i as i64 * step;
        let mut line: serde_json::Value =
            serde_json::from_str(&okta_line(t, "user.session.start", result, &ip, &user))
                .expect("okta_line writes JSON");
        // Okta's event id: duplicates by uuid are removed, so each event has its own.
        line["detail"]["uuid"] = serde_json::Value::String(format!("soak-{b}-{i}"));
        out.push((t, line.to_string()));
    }
}

#[test]
fn the_same_seed_gives_the_same_events_and_incidents_stay_in_the_live_part() {
    let a = plan(7, 0..40, 40..100, 12);
    let b = plan(7, 0..40, 40..100, 12);
    assert_eq!(a.lines, b.lines);
    assert!(a.incidents.len() >= 2, "{:?}", a.incidents);
    for i in &a.incidents {
        assert!(i.bins.start >= 40 && i.bins.end + 6 <= 100, "{i:?}");
    }
    assert!(a.lines.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_ne!(a.lines, plan(8, 0..40, 40..100, 12).lines);
}
