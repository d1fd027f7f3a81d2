//! `authpulse run`: the long-running service.
//!
//! One loop owns the pipeline. The source task sends it bin updates; it applies them,
//! and every alert that comes out goes to every sink. The same loop answers signals and
//! keeps systemd informed (see [`crate::notify`]):
//!
//! ```text
//!   start ─▶ delivery, source, pipeline (a "generation") ─▶ history loaded: READY=1
//!   loop:  source events │ SIGHUP: reload │ WATCHDOG=1 │ STATUS= │ SIGTERM/SIGINT: break
//!   stop:  STOPPING=1 ─▶ source stopped (≤ 2 s) ─▶ deliveries' grace (≤ 5 s), state saved
//!          ─▶ HTTP closed (≤ 1 s) ─▶ exit 0
//! ```
//!
//! A reload (SIGHUP) reads the same file again. A config with problems is rejected, the
//! problems logged one per line as `check-config` prints them, and the running config
//! carries on. A good one replaces the generation: rules, detectors, sinks, source and
//! enrichment all change; history is loaded again as on a start (the persisted alert
//! state keeps that from paging twice). `daemon.http_listen`, `daemon.state_dir`,
//! `daemon.log_format` and `daemon.log_level` need a restart, as do changes to the
//! environment (`AUTHPULSE__*` overrides apply again, but from the process's environment,
//! which systemd's `EnvironmentFile=` set at start).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use crate::alert::{fingerprint, rfc3339, Alert, Status, SOURCE_UNAVAILABLE};
use crate::aws;
use crate::config::{self, Config, SourceKind};
use crate::http::{self, Health};
use crate::notify::Notifier;
use crate::pipeline::{Pipeline, PipelineStats};
use crate::rule::RuleSpec;
use crate::series::Labels;
use crate::sink::delivery::{Delivery, DeliveryError};
use crate::source::cloudwatch::{now_ms, CloudWatchSource};
use crate::source::file::FileSource;
use crate::source::insights::Querier;
use crate::source::{Source, SourceEvent};
use crate::status::{Board, Phase};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot set up delivery: {0}")]
    Delivery(#[from] DeliveryError),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("source failed: {0}")]
    Source(#[from] crate::source::SourceError),
}

async fn build_source(config: &Config) -> Box<dyn Source> {
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
            })
        }
    }
}

/// Tracks per rule whether the source can be read, and pages when it cannot.
struct SourceHealth {
    /// Per rule: failed polls in a row, and since when.
    failing: Vec<(u32, i64)>,
    /// Rules with a firing `source_unavailable` alert.
    firing: Vec<bool>,
    unavailable_after: u32,
}

impl SourceHealth {
    /// `firing` per rule comes from the persisted alert state, so a `resolved` owed from
    /// before a restart is still sent.
    fn new(firing: Vec<bool>, unavailable_after: u32) -> SourceHealth {
        SourceHealth {
            failing: vec![(0, 0); firing.len()],
            firing,
            unavailable_after,
        }
    }

    /// Record a poll outcome; returns the alert to send, if any.
    fn record(
        &mut self,
        rule: &RuleSpec,
        index: usize,
        failures: u32,
        error: Option<&str>,
    ) -> Option<Alert> {
        let now = now_ms();
        let (Some(state), Some(firing)) = (self.failing.get_mut(index), self.firing.get_mut(index))
        else {
            return None;
        };
        if failures > 0 && state.0 == 0 {
            state.1 = now;
        }
        state.0 = failures;
        if failures >= self.unavailable_after && !*firing {
            *firing = true;
            return Some(Alert::source_unavailable(
                Status::Firing,
                rule,
                failures,
                state.1,
                now,
                error.unwrap_or("unknown"),
            ));
        }
        if failures == 0 && *firing {
            *firing = false;
            return Some(Alert::source_unavailable(
                Status::Resolved,
                rule,
                0,
                state.1,
                now,
                "",
            ));
        }
        None
    }

    fn all_healthy(&self) -> bool {
        self.failing.iter().all(|(f, _)| *f == 0)
    }

    fn firing_count(&self) -> usize {
        self.firing.iter().filter(|f| **f).count()
    }
}

/// On a start with the CloudWatch source, the backfill replays days of history through
/// the pipeline. Incidents that are over do not page at 3 a.m. because the daemon
/// restarted: alerts about bins older than `daemon.page_history` are held back while the
/// history loads, and only the incidents still firing once it is loaded page (once).
/// The file source is its own clock (a replay is the point), so it passes everything.
struct HistoryGate {
    enabled: bool,
    max_age_ms: i64,
    /// Held-back firing alerts, by fingerprint (the latest notice of each incident).
    held: std::collections::BTreeMap<String, Alert>,
}

impl HistoryGate {
    fn new(config: &Config) -> HistoryGate {
        HistoryGate {
            enabled: config.source.kind == SourceKind::Cloudwatch,
            max_age_ms: config.daemon.page_history.as_millis() as i64,
            held: Default::default(),
        }
    }

    /// The alerts to deliver now.
    fn filter(&mut self, alerts: Vec<Alert>, caught_up: bool) -> Vec<Alert> {
        if !self.enabled || caught_up {
            return alerts;
        }
        let horizon = now_ms() - self.max_age_ms;
        let mut recent = Vec::with_capacity(alerts.len());
        for a in alerts {
            let end = chrono::DateTime::parse_from_rfc3339(&a.bin_end)
                .map_or(0, |t| t.timestamp_millis());
            if end >= horizon {
                recent.push(a);
                continue;
            }
            metrics::counter!("authpulse_notifications_suppressed_total", "reason" => "history")
                .increment(1);
            tracing::info!(rule = %a.rule, detector = %a.detector, bin_start = %a.bin_start, status = ?a.status, "historic alert from the backfill: logged, not paged");
            match a.status {
                Status::Firing => {
                    self.held.insert(a.fingerprint.clone(), a);
                }
                Status::Resolved => {
                    self.held.remove(&a.fingerprint);
                }
            }
        }
        recent
    }

    /// Held-back incidents the pipeline still has firing once history is loaded, as
    /// notices about the bin now in progress (every closed bin is already recorded as
    /// handled), keeping the numbers of the bin that fired.
    fn still_firing(&mut self, pipeline: &Pipeline) -> Vec<Alert> {
        let firing: std::collections::BTreeSet<&str> =
            pipeline.lifecycle().firing().map(|(fp, _)| fp).collect();
        let held = std::mem::take(&mut self.held);
        held.into_values()
            .filter(|a| firing.contains(a.fingerprint.as_str()))
            .filter_map(|mut a| {
                let (i, rule) = pipeline.rules().enumerate().find(|(_, r)| r.name == a.rule)?;
                let next = pipeline.next_bin(i)?;
                let bin_ms = rule.bin_ms();
                a.summary = format!(
                    "Under way since {} (before authpulse started) and still firing. When it began: {}",
                    a.started_at, a.summary
                );
                a.bin_start = rfc3339(next * bin_ms);
                a.bin_end = rfc3339((next + 1) * bin_ms);
                tracing::warn!(rule = %a.rule, detector = %a.detector, started_at = %a.started_at, "an incident from before the start is still under way: paging");
                Some(a.with_idempotency_key())
            })
            .collect()
    }
}

/// How long the source gets to stop (its queries are stopped with `StopQuery`) before
/// its task is aborted; with delivery's grace and the HTTP server's this keeps the exit
/// within 10 s of SIGTERM.
const SOURCE_STOP_GRACE: Duration = Duration::from_secs(2);
/// How long open HTTP connections get to finish at exit.
const HTTP_STOP_GRACE: Duration = Duration::from_secs(1);
/// How often the loop refreshes the `STATUS=` line and, while loading history, pushes
/// systemd's start timeout out.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// Why the daemon stops: the signal's name.
type StopRequest = watch::Receiver<Option<&'static str>>;

/// SIGTERM and SIGINT, turned into a stop request by a task of their own, so a stop is
/// noticed even while the loop is busy: the current delivery is told at once (an
/// enrichment query in progress ends instead of running to its time box), and the loop
/// breaks as soon as it is back in `select!`.
fn stop_signals(
    delivery_stop: Arc<Mutex<Option<watch::Sender<bool>>>>,
) -> Result<StopRequest, DaemonError> {
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "stopping");
        if let Some(stop) = delivery_stop
            .lock()
            .ok()
            .as_deref()
            .and_then(Option::as_ref)
        {
            let _ = stop.send(true);
        }
        let _ = tx.send(Some(name));
    });
    Ok(rx)
}

/// Everything built from one config: replaced as a whole when SIGHUP brings a new one.
/// What outlives it: the HTTP server, metrics, the status board (reset) and, on disk,
/// the alert state and the outbox.
struct Generation {
    config: Config,
    pipeline: Pipeline,
    delivery: Delivery,
    rx: mpsc::Receiver<SourceEvent>,
    source_stop: watch::Sender<bool>,
    source_task: tokio::task::JoinHandle<Result<(), crate::source::SourceError>>,
    source_health: SourceHealth,
    history: HistoryGate,
    caught_up: bool,
    /// The source ended (a file source without `follow`, or an error).
    source_done: bool,
    last_poll_ms: Option<i64>,
    /// Pipeline counters already exported as metrics.
    counted: PipelineStats,
    /// Source events since the last housekeeping tick: history loading makes progress.
    progressed: bool,
}

impl Generation {
    /// Delivery (sinks, outbox, alert state) starts before the source: undelivered
    /// notifications from an earlier run are retried at once.
    async fn start(config: Config, shared: &Shared) -> Result<Generation, DaemonError> {
        let delivery = Delivery::start(&config).await?;
        if let Ok(mut slot) = shared.delivery_stop.lock() {
            *slot = Some(delivery.stopper());
        }
        shared.board.reset(&config);
        shared.health.set_ready(false);
        let pipeline = Pipeline::new(config.rules.clone());
        let (tx, rx) = mpsc::channel(64);
        let (source_stop, stop_rx) = watch::channel(false);
        let source = build_source(&config).await;
        // A `source_unavailable` notified as firing before a restart (or reload) is still
        // open: its `resolved` is owed, and the status page lists it.
        let owed: Vec<bool> = config
            .rules
            .iter()
            .map(|r| {
                let fp = fingerprint(&r.name, SOURCE_UNAVAILABLE, &Labels::new());
                let notice = delivery.firing_notice(&fp);
                if let Some(alert) = notice {
                    shared.board.alerts(std::slice::from_ref(alert));
                }
                notice.is_some()
            })
            .collect();
        let source_health = SourceHealth::new(owed, config.source.unavailable_after);
        let history = HistoryGate::new(&config);
        let source_task = tokio::spawn(source.run(tx, stop_rx));
        tracing::info!(
            rules = config.rules.len(),
            sinks = delivery.sink_count(),
            source = ?config.source.kind,
            "authpulse running"
        );
        Ok(Generation {
            config,
            pipeline,
            delivery,
            rx,
            source_stop,
            source_task,
            source_health,
            history,
            caught_up: false,
            source_done: false,
            last_poll_ms: None,
            counted: PipelineStats::default(),
            progressed: false,
        })
    }

    /// Alerts firing now: the pipeline's and the source's own (`source_unavailable`).
    fn firing(&self) -> usize {
        self.pipeline.lifecycle().firing_count() + self.source_health.firing_count()
    }

    /// The `STATUS=` line `systemctl status` shows.
    fn status_line(&self) -> String {
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

    async fn handle(&mut self, event: Option<SourceEvent>, shared: &Shared, notify: &mut Notifier) {
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
                    self.polled(now_ms(), shared);
                }
                shared.board.alerts(&alerts);
                let alerts = self.history.filter(alerts, self.caught_up);
                // Maintenance windows: shown on the status page, logged, not sent.
                let (alerts, _muted) = crate::mute::apply(&self.config.mutes, alerts);
                self.delivery.submit(alerts, &self.pipeline).await;
            }
            Some(SourceEvent::CaughtUp) => {
                self.caught_up = true;
                let ongoing = self.history.still_firing(&self.pipeline);
                shared.board.alerts(&ongoing);
                let (ongoing, _muted) = crate::mute::apply(&self.config.mutes, ongoing);
                self.delivery.submit(ongoing, &self.pipeline).await;
                self.delivery.caught_up(&self.pipeline).await;
                shared.board.set_phase(Phase::Watching);
                shared.health.set_ready(self.source_health.all_healthy());
                notify.ready(&self.status_line());
                tracing::info!(
                    bins = self.pipeline.stats().bins_closed,
                    firing = self.firing(),
                    ready = self.source_health.all_healthy(),
                    "history loaded"
                );
            }
            Some(SourceEvent::Health {
                rule,
                failures,
                error,
            }) => {
                if failures == 0 {
                    self.polled(now_ms(), shared);
                }
                if let Some(spec) = self.config.rules.get(rule) {
                    if let Some(alert) =
                        self.source_health
                            .record(spec, rule, failures, error.as_deref())
                    {
                        shared.board.alerts(std::slice::from_ref(&alert));
                        let (send, _muted) = crate::mute::apply(&self.config.mutes, vec![alert]);
                        self.delivery.submit(send, &self.pipeline).await;
                    }
                }
                shared
                    .health
                    .set_ready(self.caught_up && self.source_health.all_healthy());
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

    fn polled(&mut self, ms: i64, shared: &Shared) {
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

    /// Stop the source (its queries are stopped) and delivery (in-flight sends get a
    /// grace period; undelivered notifications stay in the outbox), and save the state.
    async fn stop(self) {
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
        self.delivery.shutdown().await;
    }
}

/// What every generation reports to.
struct Shared {
    health: Arc<Health>,
    board: Arc<Board>,
    /// The current delivery's stopper, for the signal task (see [`stop_signals`]).
    delivery_stop: Arc<Mutex<Option<watch::Sender<bool>>>>,
}

/// Keys a reload cannot change: the listening socket, the state directory (and its lock)
/// and the logging set-up are fixed for the life of the process. The running values are
/// kept and the operator is told to restart.
fn keep_restart_only_keys(running: &Config, new: &mut Config) {
    let (old, d) = (&running.daemon, &mut new.daemon);
    let mut ignored = Vec::new();
    if d.http_listen != old.http_listen {
        ignored.push("daemon.http_listen");
        d.http_listen = old.http_listen;
    }
    if d.state_dir != old.state_dir {
        ignored.push("daemon.state_dir");
        d.state_dir = old.state_dir.clone();
    }
    if d.log_format != old.log_format {
        ignored.push("daemon.log_format");
        d.log_format = old.log_format;
    }
    if d.log_level != old.log_level {
        ignored.push("daemon.log_level");
        d.log_level = old.log_level.clone();
    }
    if !ignored.is_empty() {
        tracing::warn!(
            keys = %ignored.join(", "),
            "these keys change only on a restart; keeping the running values"
        );
    }
}

/// SIGHUP: read the config file again. A config with problems is rejected — each
/// problem logged as `check-config` prints it — and the running one carries on. A good
/// one replaces the whole generation: the source and pipeline are rebuilt and reload
/// history (as on a start; the alert state keeps that from paging twice), and delivery
/// is restarted with the new sinks (notifications still queued for a removed sink stay
/// on disk, as the start-up log says).
///
/// systemd hears `RELOADING=1`, then `READY=1` once the new config is applied — unless
/// the daemon was not ready yet (a SIGHUP while the first history loads): then `READY=1`
/// still waits for the history.
async fn reload(
    generation: Generation,
    path: &Path,
    shared: &Shared,
    notify: &mut Notifier,
    was_ready: bool,
) -> Result<Generation, DaemonError> {
    if was_ready {
        notify.reloading();
    }
    tracing::info!(config = %path.display(), "SIGHUP: reloading the configuration");
    let mut new = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            for problem in &errors.0 {
                tracing::error!(problem = %without_quoted_lines(problem), "config problem");
            }
            tracing::error!(
                config = %path.display(),
                problems = errors.0.len(),
                "config reload rejected; still running the previous configuration"
            );
            metrics::counter!("authpulse_config_reloads_total", "result" => "rejected")
                .increment(1);
            shared.board.reloaded(now_ms(), false);
            if was_ready {
                notify.ready(&generation.status_line());
            }
            return Ok(generation);
        }
    };
    keep_restart_only_keys(&generation.config, &mut new);
    let previous = generation.config.clone();
    generation.stop().await;
    let next = match Generation::start(new, shared).await {
        Ok(g) => {
            metrics::counter!("authpulse_config_reloads_total", "result" => "applied").increment(1);
            shared.board.reloaded(now_ms(), true);
            tracing::info!(
                rules = g.config.rules.len(),
                sinks = g.config.sinks.len(),
                "configuration reloaded; loading history again"
            );
            g
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot apply the new configuration; going back to the previous one");
            metrics::counter!("authpulse_config_reloads_total", "result" => "rejected")
                .increment(1);
            shared.board.reloaded(now_ms(), false);
            Generation::start(previous, shared).await?
        }
    };
    if was_ready {
        notify.ready(&next.status_line());
    }
    Ok(next)
}

/// A config problem as `check-config` prints it, minus the lines of the file a TOML
/// syntax error quotes (`3 | url = "https://hooks.example.com/T000/…`): the line with
/// the mistake may hold a webhook URL or a secret, and logs travel further than a
/// terminal. The position and the reason stay.
fn without_quoted_lines(problem: &config::Problem) -> String {
    let quoted = |line: &str| {
        let t = line.trim_start();
        t.starts_with('|')
            || t.split_once(" |")
                .is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok())
    };
    let text = problem.to_string();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !quoted(l) && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    kept.join(" ")
}

/// Wait for the next tick of an optional interval (forever without one).
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Run the daemon until SIGTERM or SIGINT. `config_path` is read again on SIGHUP.
pub async fn run(config: Config, config_path: PathBuf) -> Result<(), DaemonError> {
    let mut notify = Notifier::from_env();
    notify.status("starting");
    let metrics = match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed");
            None
        }
    };
    // After the recorder: descriptions go to whichever recorder is installed.
    http::describe_metrics();
    metrics::gauge!("authpulse_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::gauge!("authpulse_start_time_seconds").set(now_ms() as f64 / 1000.0);
    let board = Arc::new(Board::default());
    let shared = Shared {
        health: Health::new(metrics, board.clone()),
        board,
        delivery_stop: Arc::default(),
    };
    let (http_stop, http_stop_rx) = watch::channel(false);
    let server = http::serve(
        config.daemon.http_listen,
        shared.health.clone(),
        http_stop_rx,
    )
    .await
    .map_err(|error| DaemonError::Listen {
        addr: config.daemon.http_listen,
        error,
    })?;
    let mut stop = stop_signals(shared.delivery_stop.clone())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    notify.status("loading history");
    let mut generation = Generation::start(config, &shared).await?;

    // The watchdog is an arm of the loop below, not a timer task of its own: if the loop
    // hangs, the pings stop and systemd restarts the daemon.
    let mut watchdog = notify.watchdog_interval().map(|period| {
        let mut i = tokio::time::interval(period);
        i.set_missed_tick_behavior(MissedTickBehavior::Delay);
        i
    });
    let mut housekeeping = Some(tokio::time::interval(HOUSEKEEPING));
    let mut ready_once = false;
    loop {
        tokio::select! {
            _ = stop.wait_for(Option::is_some) => break,
            event = generation.rx.recv(), if !generation.source_done => {
                generation.handle(event, &shared, &mut notify).await;
                ready_once |= generation.caught_up;
            }
            _ = sighup.recv() => {
                generation = reload(generation, &config_path, &shared, &mut notify, ready_once).await?;
            }
            _ = tick(&mut watchdog) => notify.watchdog(),
            _ = tick(&mut housekeeping) => {
                if !ready_once && std::mem::take(&mut generation.progressed) {
                    // Loading history can outlast TimeoutStartSec=; while it makes
                    // progress, systemd waits longer. A stuck backfill still times out.
                    let query = generation.config.source.query_timeout;
                    notify.extend_timeout(query * 2 + Duration::from_secs(60));
                }
                notify.status(&generation.status_line());
            }
        }
    }

    let started = std::time::Instant::now();
    notify.stopping();
    generation.stop().await;
    let _ = http_stop.send(true);
    if tokio::time::timeout(HTTP_STOP_GRACE, server).await.is_err() {
        tracing::debug!("HTTP connections still open at exit");
    }
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        "stopped; state saved"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_config_problems_do_not_quote_the_file() {
        let problem = config::Problem {
            path: "bad.toml".into(),
            message: "TOML parse error at line 3, column 55\n  |\n3 | url = \"https://hooks.example.com/T000/secret-token\n  |                                                       ^\ninvalid basic string, expected `\"`\n in bad.toml".into(),
        };
        let logged = without_quoted_lines(&problem);
        assert!(!logged.contains("secret-token"), "{logged}");
        assert_eq!(
            logged,
            "bad.toml: TOML parse error at line 3, column 55 invalid basic string, expected `\"` in bad.toml"
        );
        let plain = config::Problem {
            path: "rules[0].bin".into(),
            message: "\"banana\" is not a duration".into(),
        };
        assert_eq!(without_quoted_lines(&plain), plain.to_string());
    }
}
