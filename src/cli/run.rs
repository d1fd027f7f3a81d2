//! `authpulse run`: the daemon, with the process's signals, clock, metrics recorder and
//! systemd notifier.

use std::path::PathBuf;

use clap::Args;
use metrics_exporter_prometheus::PrometheusBuilder;

use super::{init_logging, runtime, Failure};
use authpulse::config;
use authpulse::daemon::{self, signals, systemd::Notifier, Context};

#[derive(Args)]
pub struct RunArgs {
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(args: RunArgs) -> Result<(), Failure> {
    let path = args.config;
    let cfg = config::load(&path).map_err(|e| {
        Failure::config(format!(
            "{e}\nauthpulse: not starting: {} has problems (see above)",
            path.display()
        ))
    })?;
    init_logging(cfg.daemon.log_format, &cfg.daemon.log_level);
    let metrics = match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed");
            None
        }
    };
    let result = runtime(true)?.block_on(async {
        let control = signals::install()?;
        let cx = Context {
            config_path: path,
            clock: authpulse::clock::system(),
            metrics,
            systemd: Notifier::from_env(),
        };
        daemon::run(cfg, control, cx).await
    });
    result.map_err(|e| {
        tracing::error!(error = %e, "authpulse stopped");
        Failure::failed(format!("authpulse stopped: {e}"))
    })
}
