//! A generation: everything built from one config — source, pipeline, alert route —
//! replaced as a whole when SIGHUP brings a new config. What outlives it is in
//! [`Shared`]: the HTTP server's health, the status board (reset), the clock and, on
//! disk, the ledger and the outbox.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::http::Health;
use super::source_health::SourceHealth;
use super::status::{Board, Phase};
use super::systemd::Notifier;
use super::DaemonError;
use crate::alert::{fingerprint, Alert, SOURCE_UNAVAILABLE};
use crate::aws;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::notify::{Progress, Route, RouteConfig, RuleProgress};
use crate::pipeline::{Pipeline, PipelineStats};
use crate::series::{Labels, RuleId};
use crate::source::cloudwatch::CloudWatchSource;
use crate::source::config::SourceKind;
use crate::source::file::FileSource;
use crate::source::insights::Querier;
use crate::source::{Source, SourceError, SourceEvent};

/// How long the source gets to stop (its queries are stopped with `StopQuery`) before
/// its task is aborted; with delivery's grace and the HTTP server's this keeps the exit
/// within 10 s of SIGTERM.
const SOURCE_STOP_GRACE: Duration = Duration::from_secs(2);

/// What every generation reports to.
pub struct Shared {
    pub health: Arc<Health>,
    pub board: Arc<Board>,
    pub clock: SharedClock,
    /// The current route's stopper, for the stop watcher (see `daemon::run`).
    pub route_stop: Arc<Mutex<Option<watch::Sender<bool>>>>,
    /// The operator's silences and the notification history: every route uses them.
    pub silences: crate::notify::silence::Silences,
    pub journal: crate::notify::journal::Journal,
    /// `[ha]`: this replica's view of the shared table (outlives generations).
    pub ha: Option<Arc<crate::ha::replica::Replica>>,
}

pub struct Generation {
    pub config: Config,
    pipeline: Pipeline,
    route: Route,
    pub rx: mpsc::Receiver<SourceEvent>,
    source_stop: watch::Sender<bool>,
    source_task: tokio::task::JoinHandle<Result<(), SourceError>>,
    source_health: SourceHealth,
    pub caught_up: bool,
    /// The source ended (a file source without `follow`, or an error).
    pub source_done: bool,
    last_poll_ms: Option<i64>,
    /// Pipeline counters already exported as metrics.
    counted: PipelineStats,
    /// Source events since the last housekeeping tick: history loading makes progress.
    pub progressed: bool,
    /// `[ha]`: bumped when this replica gains or loses a rule, or its coordination.
    pub leadership: Option<watch::Receiver<u64>>,
}

/// The route's slice of the config.
fn route_config(config: &Config, shared: &Shared) -> RouteConfig {
    RouteConfig {
        store: shared
            .ha
            .clone()
            .map(|r| r as Arc<dyn crate::notify::store::AlertStore>),
        state_dir: config.daemon.state_dir.clone(),
        sinks: config.sinks.clone(),
        rules: config.rules.clone(),
        mutes: config.mutes.clone(),
        enrichment: config.enrichment.clone(),
        source: config.source.clone(),
        // The file source is its own clock (a replay is the point): it passes everything.
        page_history: (config.source.kind == SourceKind::Cloudwatch)
            .then_some(config.daemon.page_history),
        silences: shared.silences.clone(),
        journal: shared.journal.clone(),
    }
}

async fn build_source(config: &Config, shared: &Shared) -> Box<dyn Source> {
    let s = &config.source;
    match s.kind {
        SourceKind::File => Box::new(FileSource {
            path: s.path.clone().unwrap_or_default(),
            rules: config.rules.clone(),
            settle: s.settle,
            follow: s.follow,
        }),
        SourceKind::Cloudwatch => {
            let sdk = aws::sdk_config(s.region.clone(), s.endpoint_url.clone()).await;
            let client = aws_sdk_cloudwatchlogs::Client::new(&sdk);
            Box::new(CloudWatchSource {
                querier: Querier::new(
                    client,
                    s.log_groups.clone(),
                    s.max_concurrent_queries,
                    s.query_timeout,
                ),
                rules: config.rules.clone(),
                config: s.clone(),
                clock: shared.clock.clone(),
                exchange: shared
                    .ha
                    .clone()
                    .map(|r| r as Arc<dyn crate::source::exchange::BinExchange>),
            })
        }
    }
}

/// What the route needs to know of the pipeline.
fn progress(pipeline: &Pipeline) -> Progress {
    Progress {
        rules: pipeline
            .rules()
            .enumerate()
            .map(|(i, r)| RuleProgress {
                name: r.name.clone(),
                bin_ms: r.bin_ms(),
                next_bin: pipeline.next_bin(RuleId(i)),
            })
            .collect(),
        firing: pipeline
            .lifecycle()
            .firing()
            .map(|(fp, _)| fp.to_string())
            .collect(),
    }
}

impl Generation {
    /// The route (sinks, outbox, ledger) starts before the source: undelivered
    /// notifications from an earlier run are retried at once.
    pub async fn start(config: Config, shared: &Shared) -> Result<Generation, DaemonError> {
        if let Some(ha) = &shared.ha {
            ha.set_rules(config.rules.iter().map(|r| r.name.clone()).collect());
        }
        let route = Route::start(route_config(&config, shared), shared.clock.clone()).await?;
        let mut leadership = route.leadership();
        if let Some(rx) = &mut leadership {
            // Whatever changed before this generation subscribed is applied at once.
            rx.mark_changed();
        }
        if let Ok(mut slot) = shared.route_stop.lock() {
            *slot = Some(route.stopper());
        }
        shared.board.reset(&config);
        shared.health.set_ready(false);
        let pipeline = Pipeline::new(config.rules.clone());
        let (tx, rx) = mpsc::channel(64);
        let (source_stop, stop_rx) = watch::channel(false);
        let source = build_source(&config, shared).await;
        // A `source_unavailable` notified as firing before a restart (or reload) is still
        // open: its `resolved` is owed, and the status page lists it.
        let owed: Vec<bool> = config
            .rules
            .iter()
            .map(|r| {
                let fp = fingerprint(&r.name, SOURCE_UNAVAILABLE, &Labels::new());
                let notice = route.firing_notice(&fp);
                if let Some(alert) = notice {
                    shared.board.alerts(std::slice::from_ref(alert));
                }
                notice.is_some()
            })
            .collect();
        let source_health = SourceHealth::new(owed, config.source.unavailable_after);
        let source_task = tokio::spawn(source.run(tx, stop_rx));
        tracing::info!(
            rules = config.rules.len(),
            sinks = route.sink_count(),
            source = ?config.source.kind,
            "authpulse running"
        );
        Ok(Generation {
            config,
            pipeline,
            route,
            rx,
            source_stop,
            source_task,
            source_health,
            caught_up: false,
            source_done: false,
            last_poll_ms: None,
            counted: PipelineStats::default(),
            progressed: false,
            leadership,
        })
    }

    /// Alerts firing now: the pipeline's and the source's own (`source_unavailable`).
    fn firing(&self) -> usize {
        self.pipeline.lifecycle().firing_count() + self.source_health.firing_count()
    }

    /// The `STATUS=` line `systemctl status` shows.
    pub fn status_line(&self) -> String {
        let rules = match self.config.rules.len() {
            1 => "1 rule".to_string(),
            n => format!("{n} rules"),
        };
        let last = self
            .last_poll_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(|| "never".to_string(), |t| t.format("%H:%M:%S").to_string());
        if !self.caught_up {
            return format!(
                "loading history: {rules}, {} bins so far",
                self.pipeline.stats().bins_closed
            );
        }
        let alerts = match self.firing() {
            1 => "1 alert".to_string(),
            n => format!("{n} alerts"),
        };
        let state = if self.source_done {
            "source finished"
        } else {
            "watching"
        };
        format!("{state} {rules}; {alerts} firing; last poll {last} UTC")
    }

    /// The one way an alert leaves the daemon: shown on the status page, then down the
    /// route.
    async fn page(&mut self, alerts: Vec<Alert>, shared: &Shared) {
        shared.board.alerts(&alerts);
        self.route
            .submit(alerts, &progress(&self.pipeline), self.caught_up)
            .await;
    }

    pub async fn handle(
        &mut self,
        event: Option<SourceEvent>,
        shared: &Shared,
        notify: &mut Notifier,
    ) {
        self.progressed = true;
        match event {
            Some(SourceEvent::Updates(updates)) => {
                let mut alerts = Vec::new();
                {
                    let mut tracer = shared.board.tracer();
                    for u in updates {
                        self.pipeline.apply_observed(u, &mut alerts, &mut tracer);
                    }
                }
                self.export_pipeline_counters();
                if self.config.source.kind == SourceKind::File {
                    // The file source has no polls: fresh lines are its heartbeat.
                    self.polled(shared);
                }
                self.page(alerts, shared).await;
            }
            Some(SourceEvent::CaughtUp) => self.caught_up(shared, notify).await,
            Some(SourceEvent::Health {
                rule: RuleId(rule),
                failures,
                error,
            }) => {
                if failures == 0 {
                    self.polled(shared);
                }
                let now = shared.clock.now_ms();
                let raised = self.config.rules.get(rule).and_then(|spec| {
                    self.source_health
                        .record(spec, rule, failures, error.as_deref(), now)
                });
                if let Some(alert) = raised {
                    self.page(vec![alert], shared).await;
                }
                self.set_ready(shared);
            }
            None => {
                self.source_done = true;
                shared.board.set_phase(Phase::SourceFinished);
                match (&mut self.source_task).await {
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "source stopped with an error; waiting for a signal")
                    }
                    _ => tracing::info!("source finished; waiting for a signal"),
                }
            }
        }
        metrics::gauge!("authpulse_alerts_firing").set(self.firing() as f64);
    }

    async fn caught_up(&mut self, shared: &Shared, notify: &mut Notifier) {
        self.caught_up = true;
        let ongoing = self.route.caught_up(&progress(&self.pipeline)).await;
        shared.board.alerts(&ongoing);
        shared.board.set_phase(Phase::Watching);
        self.set_ready(shared);
        notify.ready(&self.status_line());
        tracing::info!(
            bins = self.pipeline.stats().bins_closed,
            firing = self.firing(),
            ready = self.source_health.all_healthy(),
            "history loaded"
        );
    }

    /// Ready: history loaded, the source's polls succeed and, with `[ha]`, this replica
    /// coordinates through the table (a warm standby is ready too).
    fn set_ready(&self, shared: &Shared) {
        let ready = self.caught_up && self.source_health.all_healthy() && self.route.coordinating();
        shared.health.set_ready(ready);
    }

    /// `[ha]`: this replica gained or lost a rule, or its coordination changed.
    pub async fn leadership_changed(&mut self, shared: &Shared) {
        self.route
            .leadership_changed(&progress(&self.pipeline))
            .await;
        if let Some(ha) = &shared.ha {
            let leaders = ha
                .leaders()
                .into_iter()
                .map(|l| (l.rule, l.owner, l.me))
                .collect();
            shared.board.set_leaders(ha.id(), leaders);
        }
        self.set_ready(shared);
    }

    fn polled(&mut self, shared: &Shared) {
        let ms = shared.clock.now_ms();
        self.last_poll_ms = Some(ms);
        shared.board.set_last_poll(ms);
    }

    /// The pipeline counts what it does; export what it counted since the last call.
    fn export_pipeline_counters(&mut self) {
        let now = self.pipeline.stats();
        let before = std::mem::replace(&mut self.counted, now);
        let delta = |a: u64, b: u64| a.saturating_sub(b);
        metrics::counter!("authpulse_bins_evaluated_total").increment(delta(
            now.series_bins_evaluated,
            before.series_bins_evaluated,
        ));
        metrics::counter!("authpulse_bins_unknown_total")
            .increment(delta(now.unknown_bins, before.unknown_bins));
        metrics::counter!("authpulse_bin_revisions_total")
            .increment(delta(now.revisions, before.revisions));
    }

    /// Stop the source (its queries are stopped) and the route (in-flight sends get a
    /// grace period; undelivered notifications stay in the outbox), and save the state.
    pub async fn stop(self) {
        let _ = self.source_stop.send(true);
        if !self.source_done {
            let abort = self.source_task.abort_handle();
            match tokio::time::timeout(SOURCE_STOP_GRACE, self.source_task).await {
                Ok(Ok(Err(e))) => tracing::error!(error = %e, "source stopped with an error"),
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!("the source did not stop in time; abandoning its queries");
                    abort.abort();
                }
            }
        }
        self.route.shutdown().await;
    }
}
