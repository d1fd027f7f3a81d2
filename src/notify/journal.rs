//! The notification history: the last [`CAPACITY`] notices the route handled, each with
//! what became of it — held back (by the history gate, a maintenance window, a silence,
//! the ledger) or, per sink, queued, delivered, retrying (attempts, last error),
//! dead-lettered (why) or not routed there. Served at `/api/notifications` and on the
//! status page.
//!
//! Memory is bounded: at most [`CAPACITY`] notices (the oldest go first), a state per
//! sink each, and texts cut to [`MAX_TEXT`] characters. It lives in memory only: a
//! restart starts an empty history (the outbox, the ledger and the logs are the record).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::{json, Value};

use crate::alert::{rfc3339, Alert, Status};
use crate::clock::SharedClock;
use crate::series::Labels;

/// Notices kept.
pub const CAPACITY: usize = 300;
/// Longest summary or error kept, in characters.
const MAX_TEXT: usize = 300;

/// Which stage held a notice back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The history gate: a backfill's old incident.
    History,
    /// A maintenance window (`[[mute]]`).
    Muted,
    /// A silence (`authpulse silence add`).
    Silenced,
    /// The ledger: already sent, still firing, already resolved.
    Suppressed,
}

/// What became of a notice at one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Delivery {
    Queued,
    Delivered {
        attempts: u32,
    },
    Retrying {
        attempts: u32,
        last_error: String,
        retry_in_ms: u64,
    },
    DeadLettered {
        attempts: u32,
        reason: String,
    },
    /// The sink's `route` does not take it.
    NotRouted,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkState {
    pub sink: String,
    #[serde(flatten)]
    pub delivery: Delivery,
    #[serde(serialize_with = "as_time")]
    pub updated_at: i64,
}

/// One notice and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub idempotency_key: String,
    pub fingerprint: String,
    pub status: Status,
    pub rule: String,
    pub detector: String,
    pub series: Labels,
    pub bin_start: String,
    pub severity: String,
    pub summary: String,
    /// When the route took it (wall clock).
    #[serde(serialize_with = "as_time")]
    pub at: i64,
    /// Held back before any sink: by which stage, and what there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    pub sinks: Vec<SinkState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    pub stage: Stage,
    pub by: String,
}

fn as_time<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_TEXT - 1).collect();
    out.push('…');
    out
}

impl Notice {
    fn new(alert: &Alert, at: i64) -> Notice {
        Notice {
            idempotency_key: alert.idempotency_key.clone(),
            fingerprint: alert.fingerprint.clone(),
            status: alert.status,
            rule: alert.rule.clone(),
            detector: alert.detector.name().to_string(),
            series: alert.series.clone(),
            bin_start: alert.bin_start.to_string(),
            severity: alert.severity.to_string(),
            summary: cut(&alert.summary),
            at,
            held: None,
            sinks: Vec::new(),
        }
    }
}

/// The history, shared by the route, the delivery workers, the HTTP API and the page.
#[derive(Clone)]
pub struct Journal {
    notices: Arc<Mutex<VecDeque<Notice>>>,
    clock: SharedClock,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

impl Journal {
    pub fn new(clock: SharedClock) -> Journal {
        Journal {
            notices: Arc::new(Mutex::new(VecDeque::with_capacity(CAPACITY))),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Notice>> {
        // Every change is one small update: a panic elsewhere cannot tear it.
        self.notices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The notice for `alert`, created (evicting the oldest) when it is not kept.
    fn with_notice(&self, alert: &Alert, f: impl FnOnce(&mut Notice, i64)) {
        let now = self.clock.now_ms();
        let mut notices = self.lock();
        let found = notices
            .iter()
            .rposition(|n| n.idempotency_key == alert.idempotency_key);
        let i = match found {
            Some(i) => i,
            None => {
                if notices.len() >= CAPACITY {
                    notices.pop_front();
                }
                notices.push_back(Notice::new(alert, now));
                notices.len() - 1
            }
        };
        if let Some(n) = notices.get_mut(i) {
            f(n, now);
        }
    }

    /// A stage held `alert` back; `by` says what there.
    pub fn held(&self, alert: &Alert, stage: Stage, by: &str) {
        self.with_notice(alert, |n, _| n.held = Some(Held { stage, by: cut(by) }));
    }

    /// What became of `alert` at `sink`.
    pub fn sink(&self, alert: &Alert, sink: &str, delivery: Delivery) {
        let delivery = match delivery {
            Delivery::Retrying {
                attempts,
                last_error,
                retry_in_ms,
            } => Delivery::Retrying {
                attempts,
                last_error: cut(&last_error),
                retry_in_ms,
            },
            Delivery::DeadLettered { attempts, reason } => Delivery::DeadLettered {
                attempts,
                reason: cut(&reason),
            },
            other => other,
        };
        self.with_notice(alert, |n, now| {
            let state = SinkState {
                sink: sink.to_string(),
                delivery,
                updated_at: now,
            };
            match n.sinks.iter_mut().find(|s| s.sink == sink) {
                Some(s) => *s = state,
                None => n.sinks.push(state),
            }
        });
    }

    /// Every kept notice, newest first.
    pub fn snapshot(&self) -> Vec<Notice> {
        self.lock().iter().rev().cloned().collect()
    }

    /// `/api/notifications`.
    pub fn to_json(&self) -> Value {
        json!({
            "capacity": CAPACITY,
            "notifications": self.snapshot(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::sink::render::tests::sample_alert;

    #[test]
    fn each_notice_follows_its_sinks_and_the_history_is_bounded() {
        let clock = ManualClock::at(1_795_600_000_000);
        let j = Journal::new(clock.clone());
        let a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        j.sink(&a, "file[0]", Delivery::Queued);
        j.sink(&a, "webhook[1]", Delivery::Queued);
        j.sink(&a, "stdout[2]", Delivery::NotRouted);
        clock.advance(1000);
        j.sink(
            &a,
            "webhook[1]",
            Delivery::Retrying {
                attempts: 1,
                last_error: "x".repeat(1000),
                retry_in_ms: 500,
            },
        );
        j.sink(&a, "file[0]", Delivery::Delivered { attempts: 1 });
        j.sink(
            &a,
            "webhook[1]",
            Delivery::DeadLettered {
                attempts: 2,
                reason: "HTTP 400".into(),
            },
        );
        let v = j.to_json();
        let n = &v["notifications"][0];
        assert_eq!(n["idempotency_key"], a.idempotency_key);
        assert_eq!(n["status"], "firing");
        assert_eq!(n["sinks"][0]["sink"], "file[0]");
        assert_eq!(n["sinks"][0]["state"], "delivered");
        assert_eq!(n["sinks"][1]["state"], "dead_lettered");
        assert_eq!(n["sinks"][1]["reason"], "HTTP 400");
        assert_eq!(n["sinks"][1]["attempts"], 2);
        assert_eq!(n["sinks"][2]["state"], "not_routed");
        assert_eq!(n["sinks"][1]["updated_at"], "2026-11-25T09:46:41Z");

        let mut b = sample_alert(Status::Resolved, "2026-11-25T11:00:00Z");
        b.summary = "é".repeat(2000);
        j.held(&b, Stage::Silenced, "silence 1 by alice: noisy");
        let n = &j.snapshot()[0];
        assert_eq!(n.summary.chars().count(), MAX_TEXT);
        assert_eq!(
            serde_json::to_value(&n.held).unwrap(),
            json!({"stage": "silenced", "by": "silence 1 by alice: noisy"})
        );

        for i in 0..(CAPACITY + 50) {
            let mut x = a.clone();
            x.idempotency_key = format!("k{i}");
            j.sink(&x, "file[0]", Delivery::Queued);
        }
        let all = j.snapshot();
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].idempotency_key, format!("k{}", CAPACITY + 49));
        assert_eq!(all[CAPACITY - 1].idempotency_key, "k50");
    }
}
