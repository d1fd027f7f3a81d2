//! The daemon's HTTP endpoints on `daemon.http_listen`, and the client side of them
//! (`authpulse healthcheck`):
//!
//! | path | answers |
//! | --- | --- |
//! | `/` | the status page (see [`super::status`]) |
//! | `/healthz` | 200 while the process serves requests (liveness) |
//! | `/readyz` | 200 once history is loaded and the source's last polls succeeded (with `[ha]`: and the table answers; a warm standby is ready), else 503 |
//! | `/metrics` | Prometheus text format; every metric is listed in [`describe_metrics`] |
//! | `/api/...` | silences and the notification history (see [`super::api`]) |
//!
//! Everything here is read-only; the only writes are the API's silences, behind a
//! bearer token.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use metrics::{describe_counter, describe_gauge, Unit};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::daemon::status::Board;

/// What the endpoints report on, shared with the daemon loop.
pub struct Health {
    pub ready: AtomicBool,
    pub metrics: Option<PrometheusHandle>,
    pub board: Arc<Board>,
}

impl Health {
    pub fn new(metrics: Option<PrometheusHandle>, board: Arc<Board>) -> Arc<Health> {
        Arc::new(Health {
            ready: AtomicBool::new(false),
            metrics,
            board,
        })
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        self.board.set_ready(ready);
        metrics::gauge!("authpulse_ready").set(if ready { 1.0 } else { 0.0 });
    }
}

pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn status_page(State(h): State<Arc<Health>>) -> Html<String> {
    Html(h.board.render())
}

async fn readyz(State(h): State<Arc<Health>>) -> (StatusCode, &'static str) {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: loading history, source failing, or cannot coordinate with the other replicas ([ha])\n",
        )
    }
}

async fn metrics(
    State(h): State<Arc<Health>>,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    // The Prometheus text exposition format, version 0.0.4.
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    match &h.metrics {
        Some(m) => (StatusCode::OK, content_type, m.render()),
        None => (
            StatusCode::NOT_FOUND,
            content_type,
            "metrics are not enabled\n".into(),
        ),
    }
}

/// Bind and serve until `shutdown` turns true.
/// `api`: more routes beside these (the daemon's JSON API).
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    api: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving the status page, /healthz, /readyz, /metrics and /api");
    Ok(tokio::spawn(async move {
        let result = axum::serve(listener, router(health).merge(api))
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    }))
}

/// `authpulse healthcheck`: GET `url` and return its status code, or why there is none.
/// For container health checks, where the image has no shell and no curl.
pub async fn probe(url: &str, timeout: Duration) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer within {}", humantime::format_duration(timeout))
        } else if e.is_connect() {
            "connection refused or unreachable".to_string()
        } else if e.is_builder() {
            "not a valid http(s) URL".to_string()
        } else {
            e.to_string()
        }
    })?;
    Ok(response.status().as_u16())
}

/// Register HELP text and units for every metric the daemon exports, so `/metrics` is
/// self-describing. Metrics appear once they have a first value; labels in braces.
pub fn describe_metrics() {
    describe_source_metrics();
    describe_pipeline_metrics();
    describe_route_metrics();
    describe_daemon_metrics();
    describe_ha_metrics();
}

/// `[ha]`: leases and the shared table.
fn describe_ha_metrics() {
    describe_gauge!(
        "authpulse_ha_leader",
        "1 on the replica that holds the rule's lease and pages it, 0 elsewhere, per {rule}"
    );
    describe_counter!(
        "authpulse_ha_lease_takeovers_total",
        "Leases this replica took over (expired or released by another replica), per {rule}"
    );
    describe_counter!(
        "authpulse_ha_fenced_writes_total",
        "Writes and deliveries refused because this replica no longer holds the rule's lease, per {op} (renew, state, enqueue, deliver)"
    );
    describe_gauge!(
        "authpulse_ha_coordinating",
        "1 while this replica reaches the DynamoDB table; 0: it pages nothing and /readyz answers 503"
    );
    describe_counter!(
        "authpulse_ha_requests_total",
        "DynamoDB requests made, per {op}"
    );
    describe_counter!(
        "authpulse_ha_store_errors_total",
        "DynamoDB requests that failed (after the SDK's retries), per {op}"
    );
}

/// The source (CloudWatch Logs Insights).
fn describe_source_metrics() {
    describe_counter!(
        "authpulse_polls_total",
        "Logs Insights queries completed, per rule {rule} (backfill chunks, polls and revisions)"
    );
    describe_counter!(
        "authpulse_query_failures_total",
        "Polls whose query failed, per rule {rule}"
    );
    describe_counter!(
        "authpulse_query_bytes_scanned_total",
        Unit::Bytes,
        "Bytes Logs Insights scanned for authpulse's queries (what the service bills), per rule {rule}"
    );
    describe_counter!(
        "authpulse_query_records_scanned_total",
        "Log records Logs Insights scanned, per rule {rule}"
    );
    describe_gauge!(
        "authpulse_last_successful_poll_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last poll that read new bins, per rule {rule}"
    );
    describe_counter!(
        "authpulse_malformed_lines_total",
        "Input lines that were not Okta events (file source), skipped"
    );
    describe_counter!(
        "authpulse_events_dropped_total",
        "Okta events read but not placed in a bin (file source), per {reason}: late, outside_window"
    );
}

/// The pipeline.
fn describe_pipeline_metrics() {
    describe_counter!(
        "authpulse_bins_evaluated_total",
        "Series-bins judged by the detectors (one per series per closed bin)"
    );
    describe_counter!(
        "authpulse_bins_unknown_total",
        "Bins the source could not read (unknown, never counted as zero)"
    );
    describe_counter!(
        "authpulse_bin_revisions_total",
        "Closed bins whose counts were revised by a later read (late logs)"
    );
    describe_gauge!("authpulse_alerts_firing", "Alerts firing now");
    describe_counter!(
        "authpulse_alerts_muted_total",
        "Alerts not sent because a maintenance window ([[mute]]) covers them, per {rule}"
    );
    describe_counter!(
        "authpulse_alerts_held_total",
        "Pages held because most of their failures came from addresses that got in within the same bin (a retry wave, not an attack), per {rule}"
    );
    describe_counter!(
        "authpulse_notifications_silenced_total",
        "Notifications held back by an operator's silence (authpulse silence add), per {rule}"
    );
    describe_gauge!(
        "authpulse_silences_active",
        "Silences in force now (authpulse silence list)"
    );
}

/// The alert route and delivery.
fn describe_route_metrics() {
    describe_counter!(
        "authpulse_notifications_sent_total",
        "Notifications a sink accepted, per sink {sink}"
    );
    describe_counter!(
        "authpulse_notifications_failed_total",
        "Notifications given up on (permanent error or retried too long), per sink {sink}"
    );
    describe_counter!(
        "authpulse_notification_retries_total",
        "Failed delivery attempts that will be retried, per sink {sink}"
    );
    describe_counter!(
        "authpulse_alertmanager_resend_failures_total",
        "Re-sends of firing alerts that Alertmanager did not take, per alertmanager sink {sink} (the next follows after resend_interval)"
    );
    describe_counter!(
        "authpulse_notifications_suppressed_total",
        "Notifications not sent because they were already sent or are history, per {reason}"
    );
    describe_gauge!(
        "authpulse_outbox_depth",
        "Notifications waiting in the durable outbox, all sinks"
    );
    describe_counter!(
        "authpulse_outbox_write_errors_total",
        "Notifications that could not be written to the outbox (delivered from memory)"
    );
    describe_counter!(
        "authpulse_enrichment_failures_total",
        "Alerts sent without enrichment because its query failed or was late"
    );
}

/// The daemon itself.
fn describe_daemon_metrics() {
    describe_gauge!(
        "authpulse_ready",
        "1 when history is loaded and the source is healthy (what /readyz says)"
    );
    describe_counter!(
        "authpulse_config_reloads_total",
        "SIGHUP reloads, per {result}: applied or rejected"
    );
    describe_gauge!(
        "authpulse_build_info",
        "Always 1; the {version} label is the running version"
    );
    describe_gauge!(
        "authpulse_start_time_seconds",
        Unit::Seconds,
        "Unix time the daemon started"
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `metrics::counter!`/`gauge!` name in the sources, by a plain text scan.
    fn emitted(dir: &Path, out: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                emitted(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for macro_call in ["counter!(\"", "gauge!(\"", "histogram!(\""] {
                    for (i, _) in text.match_indices(macro_call) {
                        let rest = &text[i + macro_call.len()..];
                        if let Some(end) = rest.find('"') {
                            out.insert(rest[..end].to_string());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_metric_the_daemon_exports_is_described() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut names = std::collections::BTreeSet::new();
        emitted(&src, &mut names);
        assert!(names.len() > 10, "{names:?}");
        let this = include_str!("http.rs");
        let described = this
            .split("pub fn describe_metrics")
            .nth(1)
            .unwrap_or_default();
        let missing: Vec<_> = names
            .iter()
            .filter(|n| !described.contains(&format!("\"{n}\"")))
            .collect();
        assert!(
            missing.is_empty(),
            "add these to describe_metrics: {missing:?}"
        );
    }
}
