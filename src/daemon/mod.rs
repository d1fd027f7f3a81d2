//! `authpulse run`: the long-running service.
//!
//! One loop owns the pipeline. The source task sends it bin updates; it applies them,
//! and every alert that comes out goes down the one alert route ([`crate::notify`]).
//! The same loop answers the operator's requests (stop, reload) and keeps systemd
//! informed ([`systemd`]):
//!
//! ```text
//!   start ─▶ route, source, pipeline (a "generation") ─▶ history loaded: READY=1
//!   loop:  source events │ reload │ WATCHDOG=1 │ STATUS= │ stop: break
//!   stop:  STOPPING=1 ─▶ source stopped (≤ 2 s) ─▶ deliveries' grace (≤ 5 s), state saved
//!          ─▶ HTTP closed (≤ 1 s) ─▶ exit 0
//! ```
//!
//! [`run`] owns no process-wide resource: the caller hands it the requests ([`Control`],
//! from signals in `authpulse run`, from a test directly), the clock, the metrics handle
//! and the systemd notifier, so the daemon runs in-process in tests.
//!
//! A reload reads the same file again ([`reload`]). A config with problems is rejected,
//! the problems logged one per line as `check-config` prints them, and the running config
//! carries on. A good one replaces the generation: rules, detectors, sinks, source and
//! enrichment all change; history is loaded again as on a start (the persisted ledger
//! keeps that from paging twice). `daemon.http_listen`, `daemon.state_dir`,
//! `daemon.log_format` and `daemon.log_level` need a restart, as do changes to the
//! environment (`AUTHPULSE__*` overrides apply again, but from the process's environment,
//! which systemd's `EnvironmentFile=` set at start).

pub mod api;
pub mod generation;
pub mod http;
pub mod reload;
pub mod signals;
pub mod source_health;
pub mod status;
pub mod systemd;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::ha::Ha;
use crate::notify::journal::Journal;
use crate::notify::silence::Silences;
use generation::{Generation, Shared};
use http::Health;
use status::Board;
use systemd::Notifier;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot set up delivery: {0}")]
    Delivery(#[from] crate::notify::DeliveryError),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("source failed: {0}")]
    Source(#[from] crate::source::SourceError),
    #[error("cannot set up high availability ([ha]): {0}")]
    Ha(String),
}

/// What the operator asks of a running daemon.
pub struct Control {
    /// Becomes `Some(why)` to stop (`"SIGTERM"`, `"SIGINT"`, `"test"`).
    pub stop: watch::Receiver<Option<&'static str>>,
    /// One message per reload request (SIGHUP).
    pub reload: mpsc::Receiver<()>,
}

/// What the daemon runs with, besides its config.
pub struct Context {
    /// Read again on every reload.
    pub config_path: PathBuf,
    pub clock: SharedClock,
    /// The installed Prometheus recorder, for `/metrics` (`None`: no metrics page).
    pub metrics: Option<PrometheusHandle>,
    pub systemd: Notifier,
}

/// How long open HTTP connections get to finish at exit.
const HTTP_STOP_GRACE: Duration = Duration::from_secs(1);
/// How often the loop refreshes the `STATUS=` line and, while loading history, pushes
/// systemd's start timeout out.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// Wait for the next change of an optional watch (forever without one, or once its
/// sender is gone).
async fn changed(rx: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = rx {
        if rx.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
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

/// A stop is noticed even while the loop is busy: the current route is told at once (an
/// enrichment query in progress ends instead of running to its time box), and the loop
/// breaks as soon as it is back in `select!`.
fn watch_stop(mut stop: watch::Receiver<Option<&'static str>>, shared: &Shared) {
    let route_stop = shared.route_stop.clone();
    tokio::spawn(async move {
        let why = match stop.wait_for(Option::is_some).await {
            Ok(why) => *why,
            Err(_) => return,
        };
        tracing::info!(reason = why.unwrap_or("stop"), "stopping");
        if let Some(stop) = route_stop.lock().ok().as_deref().and_then(Option::as_ref) {
            let _ = stop.send(true);
        }
    });
}

/// Run the daemon until `control.stop` asks it to stop.
pub async fn run(config: Config, mut control: Control, cx: Context) -> Result<(), DaemonError> {
    let Context {
        config_path,
        clock,
        metrics,
        systemd: mut notify,
    } = cx;
    notify.status("starting");
    // Descriptions go to whichever recorder is installed.
    http::describe_metrics();
    metrics::gauge!("authpulse_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::gauge!("authpulse_start_time_seconds").set(clock.now_ms() as f64 / 1000.0);
    let board = Arc::new(Board::new(clock.clone()));
    let silences = open_silences(&config.daemon.state_dir, clock.clone()).await?;
    let journal = Journal::new(clock.clone());
    board.show_route(journal.clone(), silences.clone());
    let api = api::Api::new(
        silences.clone(),
        journal.clone(),
        board.clone(),
        clock.clone(),
        &config.daemon.api_token_env,
    );
    let ha = start_ha(&config, clock.clone()).await?;
    let shared = Shared {
        health: Health::new(metrics, board.clone()),
        board,
        clock,
        route_stop: Arc::default(),
        silences,
        journal,
        ha: ha.as_ref().map(|h| h.replica.clone()),
    };
    let (http_stop, http_stop_rx) = watch::channel(false);
    let server = http::serve(
        config.daemon.http_listen,
        shared.health.clone(),
        api::router(Arc::new(api)),
        http_stop_rx,
    )
    .await
    .map_err(|error| DaemonError::Listen {
        addr: config.daemon.http_listen,
        error,
    })?;
    watch_stop(control.stop.clone(), &shared);
    notify.status("loading history");
    let generation = Generation::start(config, &shared).await?;
    let generation = serve(generation, &mut control, &config_path, &shared, &mut notify).await?;

    let started = std::time::Instant::now();
    notify.stopping();
    generation.stop().await;
    if let Some(ha) = ha {
        // After the route stopped (its last state saved): hand the rules over now.
        ha.stop().await;
    }
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

/// Load the operator's silences from `state_dir` (on the blocking pool).
async fn open_silences(state_dir: &Path, clock: SharedClock) -> Result<Silences, DaemonError> {
    let dir = state_dir.to_path_buf();
    tokio::task::spawn_blocking(move || Silences::open(&dir, clock))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        .map_err(|error| {
            DaemonError::Delivery(crate::notify::DeliveryError::StateDir {
                path: state_dir.to_path_buf(),
                error,
            })
        })
}

/// With `[ha]`: join the replicas (the leases are kept from now on).
async fn start_ha(config: &Config, clock: SharedClock) -> Result<Option<Ha>, DaemonError> {
    let Some(h) = &config.ha else {
        return Ok(None);
    };
    Ha::start(
        h,
        config.source.region.clone(),
        config.source.endpoint_url.clone(),
        config.rules.iter().map(|r| r.name.clone()).collect(),
        clock,
    )
    .await
    .map(Some)
    .map_err(DaemonError::Ha)
}

/// The loop: source events, reloads, leadership changes, the watchdog and housekeeping,
/// until a stop. Returns the generation running then.
async fn serve(
    mut generation: Generation,
    control: &mut Control,
    config_path: &Path,
    shared: &Shared,
    notify: &mut Notifier,
) -> Result<Generation, DaemonError> {
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
            _ = control.stop.wait_for(Option::is_some) => return Ok(generation),
            event = generation.rx.recv(), if !generation.source_done => {
                generation.handle(event, shared, notify).await;
                ready_once |= generation.caught_up;
            }
            Some(()) = control.reload.recv() => {
                generation = reload::reload(generation, config_path, shared, notify, ready_once).await?;
            }
            _ = changed(&mut generation.leadership) => {
                generation.leadership_changed(shared).await;
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
}
