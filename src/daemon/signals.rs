//! The process's signals as a [`Control`]: SIGTERM and SIGINT stop the daemon, SIGHUP
//! reloads its config. Only `authpulse run` installs them; tests drive [`Control`]
//! directly.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use super::{Control, DaemonError};

/// Install the handlers (inside a Tokio runtime) and forward what they see.
pub fn install() -> Result<Control, DaemonError> {
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let (stop_tx, stop) = watch::channel(None);
    let (reload_tx, reload) = mpsc::channel(4);
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        };
        let _ = stop_tx.send(Some(name));
    });
    tokio::spawn(async move {
        while sighup.recv().await.is_some() {
            tracing::info!("SIGHUP");
            // A reload already waiting covers this one too.
            let _ = reload_tx.try_send(());
        }
    });
    Ok(Control { stop, reload })
}
