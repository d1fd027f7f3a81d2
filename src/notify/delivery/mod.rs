//! Delivery that is never lost: the path from "the pipeline produced an alert" to "every
//! sink accepted it".
//!
//! ```text
//!   pipeline ─alerts─▶ submit ──admit (state: suppress replays and repeats)
//!                             ──outbox: one fsync'd file per sink ──▶ worker per sink
//!                             ──state: watermarks + ledger, fsync'd       │ send
//!                                                                        ▼
//!                               accepted ─▶ file removed    transient ─▶ backoff, retry
//!                               permanent or too old ─▶ dead/ (logged, counted)
//! ```
//!
//! Where the outbox and the state live is the [`AlertStore`]'s business (files, or with
//! `[ha]` a shared table): with several replicas, alerts of rules another replica leads
//! are kept for a takeover instead of admitted, and each send is preceded by a claim that
//! fails once this replica lost the rule's lease.
//!
//! Order matters for crash safety. A notification is written to the outbox *before* the
//! state records its bin as handled, so a crash in between regenerates it on restart
//! (the outbox refuses a key it already holds; a receiver drops a repeat it already got)
//! instead of losing it. See [`super::outbox`] and [`super::ledger`] for both files.
//!
//! Each sink has one worker that sends its queue first in, first out, one at a time:
//! while a webhook is down its `resolved` waits behind its `firing`, and SNS is not
//! delayed by it. Transient errors (connect errors, timeouts, 408, 429, 5xx, AWS
//! throttling) are retried with exponential backoff and jitter; a permanent error (other
//! 4xx, a missing topic) or an item still failing `give_up_after` after it was queued is
//! moved to the queue's `dead/` directory, logged and counted, never retried forever.
//!
//! Metrics: `authpulse_notifications_sent_total{sink}`,
//! `authpulse_notifications_failed_total{sink}` (given up),
//! `authpulse_notification_retries_total{sink}` (failed attempts that will be retried),
//! `authpulse_notifications_suppressed_total{reason}` (see [`Suppressed`]) and the gauge
//! `authpulse_outbox_depth` (notifications waiting, all sinks).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

mod takeover;

use super::enrich::{self, Enricher};
use super::journal::{self, Journal};
use super::ledger::{AlertState, Suppressed};
use super::outbox::Entry;
use super::store::{AlertStore, LocalStore, Locked, StoreError};
use super::worker::Worker;
use super::{Progress, RouteConfig};
use crate::alert::Alert;
use crate::clock::SharedClock;
use crate::retry::RemoteError;
use crate::rule::RuleSpec;
use crate::sink::{Sink, SinkRoute, SinkSpec};

/// Save the state at least this often while bins close without notifications.
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// How long shutdown waits for in-flight sends: the daemon must exit within 10 s of
/// SIGTERM (systemd and ECS kill it later), and stopping the source and saving state
/// need some of that.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot set up sink: {0}")]
    Sink(#[from] RemoteError),
    #[error("cannot use state directory {path}: {error}")]
    StateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("state directory {0} is in use by another authpulse (two daemons would page twice)")]
    Locked(PathBuf),
}

struct Queue {
    id: String,
    name: String,
    sink: Arc<dyn Sink>,
    /// Which alerts this sink gets (`route` in its config).
    route: crate::sink::SinkRoute,
    tx: mpsc::UnboundedSender<Entry>,
}

pub struct Delivery {
    clock: SharedClock,
    /// The ledger's and the outbox's home: local files, or a table shared by replicas.
    store: Arc<dyn AlertStore>,
    state: AlertState,
    dirty: bool,
    last_save: Instant,
    queues: Vec<Queue>,
    rules: Vec<RuleSpec>,
    stop: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    workers: Vec<JoinHandle<()>>,
    enricher: Option<Arc<Enricher>>,
    /// The notification history: what became of each notice.
    journal: Journal,
    /// The source has caught up with its history.
    caught_up: bool,
    /// Alerts of rules another replica leads: kept (a day of bins at most) so that a
    /// takeover admits what the old leader had not handled yet.
    standby: BTreeMap<String, VecDeque<Alert>>,
    /// After the source caught up: look for incidents to resolve (see
    /// [`AlertState::orphans`]) until every rule has passed its watermark.
    reconcile_pending: bool,
    suppressed_replayed: u64,
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DeliveryError + '_ {
    move |error| DeliveryError::StateDir {
        path: path.to_path_buf(),
        error,
    }
}

/// Queue ids: stable per destination; two sinks with one destination get their index
/// appended so they keep separate queues.
fn queue_ids(sinks: &[SinkSpec]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (i, spec) in sinks.iter().enumerate() {
        let id = spec.queue_id();
        ids.push(if ids.contains(&id) {
            format!("{id}-{i}")
        } else {
            id
        });
    }
    ids
}

/// The incidents `state` records as firing (of `rule`, or of every rule) that `route`
/// sends to its sink: what a sink that keeps alerts alive at its receiver resumes.
fn firing_routed(state: &AlertState, route: &SinkRoute, rule: Option<&str>) -> Vec<Alert> {
    state
        .notified
        .values()
        .filter(|n| n.status == crate::alert::Status::Firing)
        .filter(|n| rule.is_none_or(|r| n.alert.rule == r))
        .map(|n| n.alert.clone())
        .filter(|a| route.matches(a))
        .collect()
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
}

impl Delivery {
    /// Build the sinks, open the outbox and the state in `daemon.state_dir`, and start one
    /// worker per sink (which at once retries whatever an earlier run left undelivered).
    pub async fn start(
        config: &RouteConfig,
        clock: SharedClock,
    ) -> Result<Delivery, DeliveryError> {
        let dir = config.state_dir.clone();
        let store: Arc<dyn AlertStore> = match &config.store {
            Some(shared) => shared.clone(),
            None => match LocalStore::lock(&dir, clock.clone()).map_err(io_err(&dir))? {
                Ok(local) => Arc::new(local),
                Err(Locked) => return Err(DeliveryError::Locked(dir)),
            },
        };
        let sinks = crate::sink::build_all(&config.sinks, &clock).await?;
        let ids = queue_ids(&config.sinks);
        let (state, mut recovered) = {
            let (store, ids) = (store.clone(), ids.clone());
            blocking(move || store.open(&ids))
                .await
                .map_err(io_err(&dir))?
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for ((spec, sink), id) in config.sinks.iter().zip(sinks).zip(ids) {
            let pending: VecDeque<Entry> = recovered.queues.remove(&id).unwrap_or_default().into();
            if !pending.is_empty() {
                tracing::info!(
                    sink = sink.name(),
                    pending = pending.len(),
                    "undelivered notifications from an earlier run: retrying"
                );
            }
            // A sink that keeps firing alerts alive at its receiver (Alertmanager)
            // picks up the incidents still firing.
            sink.resume(firing_routed(&state, spec.route(), None)).await;
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push(Queue {
                id,
                name: sink.name().to_string(),
                sink: sink.clone(),
                route: spec.route().clone(),
                tx,
            });
            let worker = Worker::new(sink, spec.retry(), store.clone(), clock.clone())
                .with_journal(config.journal.clone());
            workers.push(tokio::spawn(worker.run(pending, rx, stop_rx.clone())));
        }
        metrics::gauge!("authpulse_outbox_depth").set(store.depth() as f64);
        let enricher = Enricher::new(&config.source, &config.enrichment).await;
        Ok(Delivery {
            clock,
            store,
            state,
            dirty: false,
            last_save: Instant::now(),
            queues,
            rules: config.rules.clone(),
            stop,
            stop_rx,
            workers,
            enricher,
            journal: config.journal.clone(),
            caught_up: false,
            standby: BTreeMap::new(),
            reconcile_pending: false,
            suppressed_replayed: 0,
        })
    }

    pub fn sink_count(&self) -> usize {
        self.queues.len()
    }

    /// The last notification for `fingerprint` (persisted across restarts), if it was a
    /// `firing`. For alerts raised outside the pipeline (the source's health), whose
    /// raiser must know after a restart that a `resolved` is still owed.
    pub fn firing_notice(&self, fingerprint: &str) -> Option<&Alert> {
        self.state
            .notified
            .get(fingerprint)
            .filter(|n| n.status == crate::alert::Status::Firing)
            .map(|n| &n.alert)
    }

    /// The detector's `repeat_interval`, if the rule and detector are configured.
    fn repeat_interval(&self, alert: &Alert) -> Option<Duration> {
        self.rules
            .iter()
            .find(|r| r.name == alert.rule)?
            .detectors
            .iter()
            .find(|d| alert.detector.pipeline() == Some(d.detector.kind()))
            .map(|d| d.fire.repeat_interval)
    }

    /// Hand over the alerts `pipeline` just produced: suppress what was already sent,
    /// queue the rest durably for every sink, then record how far the pipeline got.
    pub async fn submit(&mut self, alerts: Vec<Alert>, progress: &Progress) {
        let mut admitted = self.follow_leadership().await;
        for alert in alerts {
            if !self.store.leads(&alert.rule) {
                self.keep_for_takeover(alert);
                continue;
            }
            let repeat = self.repeat_interval(&alert);
            match self.state.admit(&alert, repeat) {
                Ok(()) => admitted.push(alert),
                Err(why) => self.count_suppressed(&alert, why),
            }
        }
        if self.reconcile_pending {
            admitted.extend(self.reconcile(progress));
        }
        // Enrich before the outbox, so every sink and every retry sends the same document.
        if let Some(e) = &self.enricher {
            enrich::enrich_all(e, &mut admitted, &self.rules, &self.stop_rx).await;
        }
        self.enqueue(admitted.clone()).await;
        for rule in &progress.rules {
            if !self.store.leads(&rule.name) {
                continue;
            }
            if let Some(next) = rule.next_bin_ms() {
                self.dirty |= self.state.advance(&rule.name, next);
            }
        }
        self.dirty |= !admitted.is_empty();
        // A notification's ledger entry is saved at once; bare progress every few seconds.
        if !admitted.is_empty() || (self.dirty && self.last_save.elapsed() >= SAVE_EVERY) {
            self.save().await;
        }
    }

    /// The source has caught up with its history: report what the replay suppressed and
    /// start resolving incidents the rebuilt pipeline no longer sees.
    pub async fn caught_up(&mut self, progress: &Progress) {
        if self.suppressed_replayed > 0 {
            tracing::info!(
                suppressed = self.suppressed_replayed,
                "history replayed: notifications already handled before the restart were not sent again"
            );
        }
        self.caught_up = true;
        self.store.set_warm(true);
        self.reconcile_pending = true;
        self.submit(Vec::new(), progress).await;
    }

    /// Can this replica coordinate with the others (always, for one instance)?
    pub fn coordinating(&self) -> bool {
        self.store.coordinating()
    }

    /// Bumped when this replica gains or loses a rule (never for one instance).
    pub fn leadership(&self) -> Option<watch::Receiver<u64>> {
        self.store.changes()
    }

    fn count_suppressed(&mut self, alert: &Alert, why: Suppressed) {
        // A restart's replay regenerates every notice it ever sent: only the rest is
        // news for the history.
        if why != Suppressed::Replayed {
            self.journal
                .held(alert, journal::Stage::Suppressed, why.as_str());
        }
        metrics::counter!("authpulse_notifications_suppressed_total", "reason" => why.as_str())
            .increment(1);
        if why == Suppressed::Replayed {
            self.suppressed_replayed += 1;
        }
        let level_info = why != Suppressed::Replayed && why != Suppressed::AlreadySent;
        if level_info {
            tracing::info!(
                idempotency_key = %alert.idempotency_key,
                reason = why.as_str(),
                "notification suppressed: this incident was already notified before a restart"
            );
        } else {
            tracing::debug!(idempotency_key = %alert.idempotency_key, reason = why.as_str(), "notification suppressed");
        }
    }

    /// Resolve incidents recorded as firing that the pipeline, having replayed past the
    /// rule's watermark, no longer has firing.
    fn reconcile(&mut self, progress: &Progress) -> Vec<Alert> {
        let firing = &progress.firing;
        let rules = &progress.rules;
        let next_ms = |name: &str| progress.rule(name).and_then(|r| r.next_bin_ms());
        let store = &self.store;
        let configured = |name: &str| progress.rule(name).is_some() && store.leads(name);
        let ready = |name: &str| {
            !configured(name)
                || match (next_ms(name), self.state.watermark(name)) {
                    (Some(now), Some(w)) => now >= w,
                    (_, None) => true,
                    (None, Some(_)) => false,
                }
        };
        let orphans = self.state.orphans(
            ready,
            // Only the pipeline's own detectors: other alerts (the source's health) are
            // resolved by whoever raised them.
            |fp| {
                firing.contains(fp)
                    || self
                        .state
                        .notified
                        .get(fp)
                        .is_some_and(|n| n.alert.detector.pipeline().is_none())
            },
            next_ms,
        );
        let all_ready = rules.iter().all(|r| ready(&r.name));
        let mut out = Vec::new();
        for alert in orphans {
            if self.state.admit(&alert, None).is_ok() {
                tracing::info!(
                    idempotency_key = %alert.idempotency_key,
                    rule = %alert.rule,
                    detector = %alert.detector,
                    "incident notified as firing before the restart is no longer firing: sending resolved"
                );
                out.push(alert);
            }
        }
        if all_ready {
            self.reconcile_pending = false;
        }
        out
    }

    /// Write each alert to the outbox queue of every sink whose route takes it, and wake
    /// the workers. If the disk
    /// fails, the notification is still handed to the worker (in memory only): a page
    /// that might be lost on a crash beats no page.
    async fn enqueue(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let store = self.store.clone();
        let ids: Vec<(String, crate::sink::SinkRoute, String)> = self
            .queues
            .iter()
            .map(|q| (q.id.clone(), q.route.clone(), q.name.clone()))
            .collect();
        let history = self.journal.clone();
        let now = self.clock.now_ms();
        let result = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for alert in &alerts {
                for (i, (id, route, name)) in ids.iter().enumerate() {
                    if !route.matches(alert) {
                        history.sink(alert, name, journal::Delivery::NotRouted);
                        tracing::debug!(queue = %id, idempotency_key = %alert.idempotency_key, "not routed to this sink");
                        continue;
                    }
                    match store.enqueue(id, alert, now) {
                        Ok(Some(entry)) => out.push((i, entry)),
                        Ok(None) => {
                            tracing::debug!(queue = %id, idempotency_key = %alert.idempotency_key, "already queued");
                        }
                        Err(StoreError::Fenced(why)) => {
                            tracing::warn!(queue = %id, idempotency_key = %alert.idempotency_key, %why, "not queued: this replica lost the rule's lease; the new leader sends it");
                        }
                        Err(error) => {
                            tracing::error!(queue = %id, idempotency_key = %alert.idempotency_key, %error, "cannot write the outbox; delivering from memory (lost if the daemon dies first)");
                            metrics::counter!("authpulse_outbox_write_errors_total").increment(1);
                            out.push((
                                i,
                                Entry {
                                    queue: id.clone(),
                                    seq: 0,
                                    path: PathBuf::new(),
                                    enqueued_ms: now,
                                    alert: alert.clone(),
                                },
                            ));
                        }
                    }
                }
            }
            out
        })
        .await;
        let entries = match result {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "outbox writer failed");
                return;
            }
        };
        for (i, entry) in entries {
            if let Some(q) = self.queues.get(i) {
                tracing::info!(
                    sink = %q.name,
                    idempotency_key = %entry.alert.idempotency_key,
                    status = ?entry.alert.status,
                    "notification queued"
                );
                self.journal
                    .sink(&entry.alert, &q.name, journal::Delivery::Queued);
                if q.tx.send(entry).is_err() {
                    tracing::error!(sink = %q.name, "delivery worker is gone; the notification stays in the outbox for the next start");
                }
            }
        }
        metrics::gauge!("authpulse_outbox_depth").set(self.store.depth() as f64);
    }

    async fn save(&mut self) {
        self.state.prune();
        let (store, state) = (self.store.clone(), self.state.clone());
        let saved = tokio::task::spawn_blocking(move || store.save(&state))
            .await
            .unwrap_or_else(|e| Err(StoreError::Io(e.to_string())));
        match saved {
            Ok(()) => {
                self.dirty = false;
                self.last_save = Instant::now();
            }
            Err(StoreError::Fenced(why)) => {
                // The rules whose lease went are dropped by the next `follow_leadership`.
                self.dirty = false;
                tracing::warn!(%why, "alert state not saved for a rule this replica no longer leads");
            }
            Err(error) => {
                tracing::error!(store = %self.store.describe(), %error, "cannot save alert state; a restart may notify again (receivers drop repeats by idempotency key)");
            }
        }
    }

    /// A handle that starts the shutdown from outside, e.g. from a signal handler while
    /// [`Delivery::submit`] is busy: an enrichment query in progress ends at once (the
    /// alert goes out unenriched) and the workers take no new item. [`Delivery::shutdown`]
    /// must still be called to wait for in-flight sends and save the state.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Stop the workers (an in-flight send may finish within a grace period; whatever is
    /// undelivered stays in the outbox for the next start) and save the state.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for w in self.workers.drain(..) {
            let abort = w.abort_handle();
            if tokio::time::timeout_at(deadline, w).await.is_err() {
                abort.abort();
            }
        }
        self.save().await;
        tracing::info!(
            pending = self.store.depth(),
            "delivery stopped; undelivered notifications stay in the outbox"
        );
    }
}
