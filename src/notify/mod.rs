//! The alert route: every notification the daemon sends takes this one path.
//!
//! ```text
//!   alerts ─▶ history gate ─▶ mute ─▶ silence ─▶ ledger ─▶ enrich ─▶ outbox ─▶ one worker per sink
//!   (pipeline,  hold back the   maintenance  operator's  already sent?   who is   fsync'd   retries with
//!    source     backfill's old  windows      silences    repeat too      behind   per sink  backoff, dead
//!    health)    incidents                    (wall       soon? resolve            queue     letters
//!                                            clock)      orphans
//! ```
//!
//! [`Route`] owns the stages and has one entry, [`Route::submit`], which takes alerts and
//! plain data about how far the pipeline got ([`Progress`]); it never sees the pipeline.
//! The stages: [`history`] (a restart does not page for incidents that ended while
//! authpulse was down), [`mute`] (maintenance windows), [`silence`] (an operator's
//! silences, added through the daemon's API), [`ledger`] (what was notified, per
//! fingerprint and rule watermark, persisted), [`enrich`] (follow-up queries),
//! [`outbox`] (durable per-sink queues) and [`delivery`] (the workers that drain them);
//! [`store`] says where the ledger and the outbox live (files in `state_dir`, or a table
//! shared by replicas, where this process pages only the rules whose lease it holds).
//! [`journal`] keeps the last notices and what became of each, per sink.
//! Backtests use only [`mute`]: the rest is about a daemon's life across restarts.

pub mod delivery;
pub mod enrich;
pub mod history;
pub mod journal;
pub mod ledger;
pub mod mute;
pub mod outbox;
pub mod silence;
pub mod store;
mod worker;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::alert::Alert;
use crate::clock::SharedClock;
use crate::rule::RuleSpec;
use crate::series::BinIndex;
use crate::sink::SinkSpec;
use crate::source::config::SourceConfig;

pub use delivery::DeliveryError;

/// The slice of the config the route uses.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Where the ledger and the outbox live.
    pub state_dir: PathBuf,
    pub sinks: Vec<SinkSpec>,
    /// For each detector's `repeat_interval` and the enrichment queries.
    pub rules: Vec<RuleSpec>,
    pub mutes: Vec<mute::Mute>,
    pub enrichment: enrich::EnrichSpec,
    /// Where enrichment queries go (CloudWatch only).
    pub source: SourceConfig,
    /// While history loads, alerts about bins older than this are logged, not paged;
    /// `None` pages everything (a file source replays on purpose).
    pub page_history: Option<Duration>,
    /// The operator's silences (shared with the HTTP API; they outlive a reload).
    pub silences: silence::Silences,
    /// The notification history (shared with the HTTP API and the status page).
    pub journal: journal::Journal,
    /// Where the ledger and the outbox live instead of `state_dir` (a table shared by
    /// replicas: the `ha` layer); `None`: the local files, locked.
    pub store: Option<std::sync::Arc<dyn store::AlertStore>>,
}

/// How far one rule's pipeline got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProgress {
    pub name: String,
    pub bin_ms: i64,
    /// The next bin the pipeline will close (`None` before its first observation).
    pub next_bin: Option<BinIndex>,
}

impl RuleProgress {
    /// Start of the next bin to close, in ms.
    pub fn next_bin_ms(&self) -> Option<i64> {
        self.next_bin.map(|b| b.start_ms(self.bin_ms))
    }
}

/// What the route needs to know of the pipeline: each rule's progress and the
/// fingerprints firing now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub rules: Vec<RuleProgress>,
    pub firing: HashSet<String>,
}

impl Progress {
    pub fn rule(&self, name: &str) -> Option<&RuleProgress> {
        self.rules.iter().find(|r| r.name == name)
    }
}

/// The alert route (see the module docs).
pub struct Route {
    history: history::HistoryGate,
    mutes: Vec<mute::Mute>,
    silences: silence::Silences,
    journal: journal::Journal,
    delivery: delivery::Delivery,
    clock: SharedClock,
}

impl Route {
    /// Open the ledger and the outbox in `state_dir` (locking it), build the sinks and
    /// start their workers, which at once retry whatever an earlier run left undelivered.
    pub async fn start(config: RouteConfig, clock: SharedClock) -> Result<Route, DeliveryError> {
        let delivery = delivery::Delivery::start(&config, clock.clone()).await?;
        Ok(Route {
            history: history::HistoryGate::new(config.page_history),
            mutes: config.mutes,
            silences: config.silences,
            journal: config.journal,
            delivery,
            clock,
        })
    }

    /// Send `alerts` down the route. `caught_up`: the source has loaded its history.
    pub async fn submit(&mut self, alerts: Vec<Alert>, progress: &Progress, caught_up: bool) {
        let keys: Vec<Alert> = alerts.clone();
        let alerts = self.history.filter(alerts, caught_up, self.clock.now_ms());
        for a in keys.iter().filter(|k| {
            !alerts
                .iter()
                .any(|a| a.idempotency_key == k.idempotency_key)
        }) {
            let by = "an incident of the backfill, older than daemon.page_history";
            self.journal.held(a, journal::Stage::History, by);
        }
        let alerts = self.mute_and_silence(alerts).await;
        self.delivery.submit(alerts, progress).await;
    }

    /// The maintenance windows, then the operator's silences; what they hold back goes
    /// to the notification history.
    async fn mute_and_silence(&self, alerts: Vec<Alert>) -> Vec<Alert> {
        let (alerts, muted) = mute::apply(&self.mutes, alerts);
        for a in &muted {
            let why = self.mutes.iter().find(|m| m.covers(a)).map(|m| &m.reason);
            let by = format!("maintenance window: {}", why.map_or("", |r| r.as_str()));
            self.journal.held(a, journal::Stage::Muted, &by);
        }
        if alerts.is_empty() {
            // Nothing to hold back; the silences' gauge still follows the clock.
            let _ = self.silences.apply(Vec::new(), |_| false);
            return alerts;
        }
        let notified: HashSet<String> = alerts
            .iter()
            .filter(|a| self.delivery.firing_notice(&a.fingerprint).is_some())
            .map(|a| a.fingerprint.clone())
            .collect();
        let silences = self.silences.clone();
        let unsilenced = alerts.clone();
        let stage =
            tokio::task::spawn_blocking(move || silences.apply(alerts, |fp| notified.contains(fp)))
                .await;
        match stage {
            Ok((send, held)) => {
                for (a, why) in &held {
                    self.journal
                        .held(a, journal::Stage::Silenced, &why.describe());
                }
                send
            }
            Err(e) => {
                // Only a panic in the stage: a page that should have been silenced
                // beats a lost one.
                tracing::error!(error = %e, "the silence stage failed; sending without it");
                unsilenced
            }
        }
    }

    /// The source has loaded its history: incidents held back while it loaded that are
    /// still firing page now (returned, for the status page), and incidents notified as
    /// firing before a restart that no longer fire are resolved.
    pub async fn caught_up(&mut self, progress: &Progress) -> Vec<Alert> {
        let ongoing = self.history.still_firing(progress);
        let send = self.mute_and_silence(ongoing.clone()).await;
        self.delivery.submit(send, progress).await;
        self.delivery.caught_up(progress).await;
        ongoing
    }

    /// Another replica took a rule over, or this one did: apply it (load the rule's
    /// shared state, deliver what the old leader owed, page what it had not handled).
    pub async fn leadership_changed(&mut self, progress: &Progress) {
        self.delivery.submit(Vec::new(), progress).await;
    }

    /// Bumped when this replica gains or loses a rule (`None`: one instance, never).
    pub fn leadership(&self) -> Option<watch::Receiver<u64>> {
        self.delivery.leadership()
    }

    /// Can this replica coordinate with the others (always true for one instance)?
    pub fn coordinating(&self) -> bool {
        self.delivery.coordinating()
    }

    pub fn sink_count(&self) -> usize {
        self.delivery.sink_count()
    }

    /// The last notification for `fingerprint` if it was a `firing`: a `resolved` is owed.
    pub fn firing_notice(&self, fingerprint: &str) -> Option<&Alert> {
        self.delivery.firing_notice(fingerprint)
    }

    /// A handle that starts the shutdown from outside (see [`delivery::Delivery::stopper`]).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.delivery.stopper()
    }

    /// Stop the workers (in-flight sends get a grace period; the rest stays in the
    /// outbox) and save the ledger.
    pub async fn shutdown(self) {
        self.delivery.shutdown().await;
    }
}
