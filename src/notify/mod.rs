//! The alert route: every notification the daemon sends takes this one path.
//!
//! ```text
//!   alerts ─▶ history gate ─▶ mute ─▶ ledger ─▶ enrich ─▶ outbox ─▶ one worker per sink
//!   (pipeline,  hold back the   maintenance  already sent?   who is   fsync'd   retries with
//!    source     backfill's old  windows      repeat too      behind   per sink  backoff, dead
//!    health)    incidents                    soon? resolve            queue     letters
//!                                            orphans
//! ```
//!
//! [`Route`] owns the stages and has one entry, [`Route::submit`], which takes alerts and
//! plain data about how far the pipeline got ([`Progress`]); it never sees the pipeline.
//! The stages: [`history`] (a restart does not page for incidents that ended while
//! authpulse was down), [`mute`] (maintenance windows), [`ledger`] (what was notified, per
//! fingerprint and rule watermark, persisted), [`enrich`] (follow-up queries),
//! [`outbox`] (durable per-sink queues) and [`delivery`] (the workers that drain them);
//! [`store`] says where the ledger and the outbox live (files in `state_dir`, or a table
//! shared by replicas, where this process pages only the rules whose lease it holds).
//! Backtests use only [`mute`]: the rest is about a daemon's life across restarts.

pub mod delivery;
pub mod enrich;
pub mod history;
pub mod ledger;
pub mod mute;
pub mod outbox;
pub mod store;
mod worker;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::alert::Alert;
use crate::clock::SharedClock;
use crate::rule::RuleSpec;
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
    pub next_bin: Option<i64>,
}

impl RuleProgress {
    /// Start of the next bin to close, in ms.
    pub fn next_bin_ms(&self) -> Option<i64> {
        self.next_bin.map(|b| b * self.bin_ms)
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
            delivery,
            clock,
        })
    }

    /// Send `alerts` down the route. `caught_up`: the source has loaded its history.
    pub async fn submit(&mut self, alerts: Vec<Alert>, progress: &Progress, caught_up: bool) {
        let alerts = self.history.filter(alerts, caught_up, self.clock.now_ms());
        let (alerts, _muted) = mute::apply(&self.mutes, alerts);
        self.delivery.submit(alerts, progress).await;
    }

    /// The source has loaded its history: incidents held back while it loaded that are
    /// still firing page now (returned, for the status page), and incidents notified as
    /// firing before a restart that no longer fire are resolved.
    pub async fn caught_up(&mut self, progress: &Progress) -> Vec<Alert> {
        let ongoing = self.history.still_firing(progress);
        let (send, _muted) = mute::apply(&self.mutes, ongoing.clone());
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
