//! `authpulse run`: the long-running service.
//!
//! One loop owns the pipeline. The source task sends it bin updates; it applies them,
//! and every alert that comes out goes to every sink. Signals: SIGTERM/SIGINT stop it
//! cleanly.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::alert::Alert;
use crate::config::{Config, SourceKind};
use crate::http::{self, Health};
use crate::pipeline::Pipeline;
use crate::sink::{self, Sink};
use crate::source::file::FileSource;
use crate::source::{Source, SourceEvent};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot set up sink: {0}")]
    Sink(#[from] sink::SinkError),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("source.kind = \"cloudwatch\" is not available in this build yet")]
    SourceUnavailable,
    #[error("source failed: {0}")]
    Source(#[from] crate::source::SourceError),
}

fn build_source(config: &Config) -> Result<Box<dyn Source>, DaemonError> {
    match config.source.kind {
        SourceKind::File => Ok(Box::new(FileSource {
            path: config.source.path.clone().unwrap_or_default(),
            rules: config.rules.clone(),
            settle: config.source.settle,
            follow: config.source.follow,
        })),
        SourceKind::Cloudwatch => Err(DaemonError::SourceUnavailable),
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
    let sinks = sink::build_all(&config.sinks).await?;
    let mut pipeline = Pipeline::new(config.rules.clone());

    let (tx, mut rx) = mpsc::channel(64);
    let source = build_source(&config)?;
    let source_task = tokio::spawn(source.run(tx, stop_rx.clone()));

    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut alerts = Vec::new();
    tracing::info!(
        rules = config.rules.len(),
        sinks = sinks.len(),
        "authpulse running"
    );

    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(SourceEvent::Updates(updates)) => {
                    for u in updates {
                        pipeline.apply(u, &mut alerts);
                    }
                    for a in alerts.drain(..) {
                        deliver(&sinks, &a).await;
                    }
                    metrics::gauge!("authpulse_alerts_firing").set(pipeline.lifecycle().firing_count() as f64);
                }
                Some(SourceEvent::CaughtUp) => {
                    health.set_ready(true);
                    tracing::info!("history loaded; ready");
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
    let _ = server.await;
    Ok(())
}

/// Send one alert to every sink; a failing sink is logged and counted, not fatal.
async fn deliver(sinks: &[Arc<dyn Sink>], alert: &Alert) {
    for s in sinks {
        match s.send(alert).await {
            Ok(()) => {
                metrics::counter!("authpulse_notifications_sent_total", "sink" => s.name().to_string()).increment(1);
            }
            Err(e) => {
                metrics::counter!("authpulse_notifications_failed_total", "sink" => s.name().to_string()).increment(1);
                tracing::error!(sink = s.name(), fingerprint = %alert.fingerprint, error = %e, "delivery failed");
            }
        }
    }
}
