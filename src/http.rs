//! The daemon's HTTP endpoints on `daemon.http_listen`:
//! `/healthz` (alive), `/readyz` (history loaded, source healthy), `/metrics`
//! (Prometheus text format).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

/// What the endpoints report on, shared with the daemon loop.
pub struct Health {
    pub ready: AtomicBool,
    pub metrics: Option<PrometheusHandle>,
}

impl Health {
    pub fn new(metrics: Option<PrometheusHandle>) -> Arc<Health> {
        Arc::new(Health {
            ready: AtomicBool::new(false),
            metrics,
        })
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn readyz(State(h): State<Arc<Health>>) -> (StatusCode, &'static str) {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: loading history or source failing\n",
        )
    }
}

async fn metrics(State(h): State<Arc<Health>>) -> (StatusCode, String) {
    match &h.metrics {
        Some(m) => (StatusCode::OK, m.render()),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n".into()),
    }
}

/// Bind and serve until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    Ok(tokio::spawn(async move {
        let result = axum::serve(listener, router(health))
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    }))
}
