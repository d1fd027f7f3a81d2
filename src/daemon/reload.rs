//! SIGHUP: read the config file again and swap the generation when it is good.

use std::path::Path;

use super::generation::{Generation, Shared};
use super::systemd::Notifier;
use super::DaemonError;
use crate::config::{self, Config};

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
    if d.api_token_env != old.api_token_env {
        ignored.push("daemon.api_token_env");
        d.api_token_env = old.api_token_env.clone();
    }
    if new.ha != running.ha {
        // The table, the lease and this replica's name hold for the process's life.
        ignored.push("ha");
        new.ha = running.ha.clone();
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
pub async fn reload(
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
            shared.board.reloaded(shared.clock.now_ms(), false);
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
            shared.board.reloaded(shared.clock.now_ms(), true);
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
            shared.board.reloaded(shared.clock.now_ms(), false);
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
