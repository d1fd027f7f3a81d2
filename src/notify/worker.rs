//! One delivery worker per sink: it sends the sink's queue first in, first out, one at a
//! time, so a down webhook holds its own `resolved` behind its `firing` and delays no
//! other sink. Transient errors are retried with backoff and jitter (and never sooner
//! than the receiver asked, e.g. PagerDuty's 429); a permanent error, or an item still
//! failing `give_up_after` after it was queued, goes to the queue's `dead/`. Before
//! each send the store confirms that this process may send it ([`AlertStore::claim`]:
//! always for one instance; with `[ha]`, only while it holds the rule's lease).

use std::collections::VecDeque;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};

use super::delivery::blocking;
use super::journal::{Delivery, Journal};
use super::outbox::Entry;
use super::store::{AlertStore, StoreError};
use crate::clock::SharedClock;
use crate::retry::{backoff, RemoteError, RetryPolicy};
use crate::sink::Sink;

pub struct Worker {
    sink: Arc<dyn Sink>,
    name: String,
    policy: RetryPolicy,
    outbox: Arc<dyn AlertStore>,
    clock: SharedClock,
    rng: SmallRng,
    /// Failed attempts at the item at the head of the queue.
    attempt: u32,
    /// The notification history (`None`: not kept).
    journal: Option<Journal>,
    /// Failed attempts to ask the store whether this process may send (`[ha]` only).
    unsure: u32,
}

/// What to do after one attempt at the head of the queue.
enum Next {
    /// Delivered or given up: the next item.
    Done,
    /// Wait this long, then try the same item again.
    RetryIn(std::time::Duration),
}

impl Worker {
    pub fn new(
        sink: Arc<dyn Sink>,
        policy: RetryPolicy,
        outbox: Arc<dyn AlertStore>,
        clock: SharedClock,
    ) -> Worker {
        let name = sink.name().to_string();
        let seed = clock.now_ms() as u64
            ^ name
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b));
        Worker {
            sink,
            name,
            policy,
            outbox,
            clock,
            rng: SmallRng::seed_from_u64(seed),
            attempt: 0,
            journal: None,
            unsure: 0,
        }
    }

    /// Report what becomes of each notice to the notification history.
    pub fn with_journal(mut self, journal: Journal) -> Worker {
        self.journal = Some(journal);
        self
    }

    fn record(&self, entry: &Entry, delivery: Delivery) {
        if let Some(j) = &self.journal {
            j.sink(&entry.alert, &self.name, delivery);
        }
    }

    /// Deliver `queue` and whatever arrives on `rx`, oldest first, until told to stop.
    pub async fn run(
        mut self,
        mut queue: VecDeque<Entry>,
        mut rx: mpsc::UnboundedReceiver<Entry>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            while let Ok(e) = rx.try_recv() {
                queue.push_back(e);
            }
            if *stop.borrow() {
                return;
            }
            let Some(entry) = queue.front() else {
                tokio::select! {
                    e = rx.recv() => match e {
                        Some(e) => queue.push_back(e),
                        None => return,
                    },
                    _ = stop.wait_for(|s| *s) => return,
                }
                continue;
            };
            match self.attempt_once(entry, queue.len()).await {
                Next::Done => {
                    queue.pop_front();
                    self.attempt = 0;
                }
                Next::RetryIn(delay) => {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
            metrics::gauge!("authpulse_outbox_depth").set(self.outbox.depth() as f64);
        }
    }

    /// Send the head of the queue once (or give it up when it is too old).
    async fn attempt_once(&mut self, entry: &Entry, pending: usize) -> Next {
        let age_ms = self.clock.now_ms() - entry.enqueued_ms;
        if self.attempt > 0 && age_ms > self.policy.give_up_after.as_millis() as i64 {
            let why = "retried for longer than give_up_after";
            give_up(&self.outbox, entry, &self.name, why, self.attempt).await;
            self.record(
                entry,
                Delivery::DeadLettered {
                    attempts: self.attempt,
                    reason: why.to_string(),
                },
            );
            return Next::Done;
        }
        // Fencing: a replica that lost the rule's lease never sends.
        let claim = {
            let (store, e) = (self.outbox.clone(), entry.clone());
            tokio::task::spawn_blocking(move || store.claim(&e))
                .await
                .unwrap_or_else(|e| Err(StoreError::Io(e.to_string())))
        };
        match claim {
            Ok(true) => self.unsure = 0,
            Ok(false) => {
                tracing::info!(sink = %self.name, idempotency_key = %entry.alert.idempotency_key, rule = %entry.alert.rule, "not delivered from this replica: it no longer leads the rule (fenced)");
                return Next::Done;
            }
            Err(error) => {
                self.unsure += 1;
                let delay = backoff(&self.policy, self.unsure, &mut self.rng);
                tracing::warn!(sink = %self.name, idempotency_key = %entry.alert.idempotency_key, %error, retry_in_ms = delay.as_millis() as u64, "cannot confirm this replica still leads the rule; not sending yet");
                return Next::RetryIn(delay);
            }
        }
        match self.sink.send(&entry.alert).await {
            Ok(()) => {
                self.delivered(entry).await;
                Next::Done
            }
            Err(RemoteError::Permanent(error)) => {
                give_up(&self.outbox, entry, &self.name, &error, self.attempt + 1).await;
                self.record(
                    entry,
                    Delivery::DeadLettered {
                        attempts: self.attempt + 1,
                        reason: error,
                    },
                );
                Next::Done
            }
            Err(RemoteError::Transient(error)) => {
                self.attempt += 1;
                // The receiver's own "not before" (PagerDuty's 429), if longer.
                let delay = backoff(&self.policy, self.attempt, &mut self.rng)
                    .max(self.sink.retry_after().unwrap_or_default());
                metrics::counter!("authpulse_notification_retries_total", "sink" => self.name.clone())
                    .increment(1);
                tracing::warn!(
                    sink = %self.name,
                    idempotency_key = %entry.alert.idempotency_key,
                    attempt = self.attempt,
                    %error,
                    retry_in_ms = delay.as_millis() as u64,
                    pending,
                    "delivery failed; will retry"
                );
                self.record(
                    entry,
                    Delivery::Retrying {
                        attempts: self.attempt,
                        last_error: error,
                        retry_in_ms: delay.as_millis() as u64,
                    },
                );
                Next::RetryIn(delay)
            }
        }
    }

    async fn delivered(&self, entry: &Entry) {
        let key = &entry.alert.idempotency_key;
        let (done, ob) = (entry.clone(), self.outbox.clone());
        if let Err(error) = blocking(move || ob.remove(&done)).await {
            tracing::error!(sink = %self.name, idempotency_key = %key, %error, "delivered, but cannot remove it from the outbox; it will be sent again after a restart");
        }
        metrics::counter!("authpulse_notifications_sent_total", "sink" => self.name.clone())
            .increment(1);
        tracing::info!(sink = %self.name, idempotency_key = %key, attempts = self.attempt + 1, "notification delivered");
        self.record(
            entry,
            Delivery::Delivered {
                attempts: self.attempt + 1,
            },
        );
    }
}

async fn give_up(
    outbox: &Arc<dyn AlertStore>,
    entry: &Entry,
    sink: &str,
    error: &str,
    attempts: u32,
) {
    metrics::counter!("authpulse_notifications_failed_total", "sink" => sink.to_string())
        .increment(1);
    let moved = if entry.path.as_os_str().is_empty() {
        None
    } else {
        let (store, dead) = (outbox.clone(), entry.clone());
        match blocking(move || store.dead_letter(&dead)).await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(sink, idempotency_key = %entry.alert.idempotency_key, error = %e, "cannot move the record to dead/");
                None
            }
        }
    };
    tracing::error!(
        sink,
        idempotency_key = %entry.alert.idempotency_key,
        fingerprint = %entry.alert.fingerprint,
        attempts,
        %error,
        dead_letter = moved.as_deref().unwrap_or("-"),
        "delivery failed permanently; not retried"
    );
}
