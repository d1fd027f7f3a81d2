//! `authpulse run`: the long-running service.
//!
//! One loop owns the pipeline. The source task sends it bin updates; it applies them,
//! and every alert that comes out goes to every sink. Signals: SIGTERM/SIGINT stop it
//! cleanly.

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::alert::{Alert, Status};
use crate::aws;
use crate::config::{Config, SourceKind};
use crate::http::{self, Health};
use crate::pipeline::Pipeline;
use crate::rule::RuleSpec;
use crate::sink::delivery::{Delivery, DeliveryError};
use crate::source::cloudwatch::{now_ms, CloudWatchSource};
use crate::source::file::FileSource;
use crate::source::insights::Querier;
use crate::source::{Source, SourceEvent};

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
    fn new(rules: usize, unavailable_after: u32) -> SourceHealth {
        SourceHealth {
            failing: vec![(0, 0); rules],
            firing: vec![false; rules],
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
}

/// Run the daemon until a stop signal (or the end of a non-following file source).
pub async fn run(config: Config) -> Result<(), DaemonError> {
    let metrics = match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed");
            None
        }
    };
    let health = Health::new(metrics);
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = http::serve(config.daemon.http_listen, health.clone(), stop_rx.clone())
        .await
        .map_err(|error| DaemonError::Listen {
            addr: config.daemon.http_listen,
            error,
        })?;
    // Delivery (sinks, outbox, alert state) starts before the source: undelivered
    // notifications from an earlier run are retried at once.
    let mut delivery = Delivery::start(&config).await?;
    let mut pipeline = Pipeline::new(config.rules.clone());

    let (tx, mut rx) = mpsc::channel(64);
    let source = build_source(&config).await;
    let mut source_health = SourceHealth::new(config.rules.len(), config.source.unavailable_after);
    let mut caught_up = false;
    let source_task = tokio::spawn(source.run(tx, stop_rx.clone()));

    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut alerts = Vec::new();
    tracing::info!(
        rules = config.rules.len(),
        sinks = delivery.sink_count(),
        "authpulse running"
    );

    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(SourceEvent::Updates(updates)) => {
                    for u in updates {
                        pipeline.apply(u, &mut alerts);
                    }
                    let (send, _muted) = crate::mute::apply(&config.mutes, std::mem::take(&mut alerts));
                    deliver(&mut delivery, &pipeline, send).await;
                    metrics::gauge!("authpulse_alerts_firing").set(pipeline.lifecycle().firing_count() as f64);
                }
                Some(SourceEvent::CaughtUp) => {
                    caught_up = true;
                    delivery.caught_up(&pipeline).await;
                    health.set_ready(source_health.all_healthy());
                    tracing::info!("history loaded; ready");
                }
                Some(SourceEvent::Health { rule, failures, error }) => {
                    if let Some(spec) = config.rules.get(rule) {
                        if let Some(alert) = source_health.record(spec, rule, failures, error.as_deref()) {
                            let (send, _muted) = crate::mute::apply(&config.mutes, vec![alert]);
                            deliver(&mut delivery, &pipeline, send).await;
                        }
                    }
                    health.set_ready(caught_up && source_health.all_healthy());
                }
                None => {
                    tracing::info!("source finished; waiting for a stop signal");
                    tokio::select! { _ = sigterm.recv() => (), _ = sigint.recv() => () }
                    break;
                }
            },
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
        }
    }
    let _ = stop_tx.send(true);
    if let Ok(Err(e)) = source_task.await {
        tracing::error!(error = %e, "source stopped with an error");
    }
    delivery.shutdown().await;
    let _ = server.await;
    Ok(())
}

/// Hand alerts to delivery: suppressed if already sent before a restart, otherwise
/// written to the durable outbox and sent by each sink's worker with retries (see
/// [`crate::sink::delivery`]). Never blocks on a sink.
async fn deliver(delivery: &mut Delivery, pipeline: &Pipeline, alerts: Vec<Alert>) {
    delivery.submit(alerts, pipeline).await;
}
