//! `authpulse backtest`: an export through the daemon's pipeline; optionally drawn
//! (`--report`) and tuned (`--suggest`).

use std::path::{Path, PathBuf};

use clap::Args;

use super::{config_or_builtin, init_logging, out, Failure};
use authpulse::alert::Alert;
use authpulse::config::{Config, LogFormat};
use authpulse::notify::mute;
use authpulse::offline::tune::explain::{Explainer, Span};
use authpulse::offline::tune::{report, suggest, Recorder};
use authpulse::offline::{backtest, evaluate};
use authpulse::pipeline::Observer;
use authpulse::simulate::Incident;
use authpulse::source::replay;

#[derive(Args)]
pub struct BacktestArgs {
    /// Config whose rules to use (default: the built-in rules).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The export: one event per line (EventBridge envelope, bare Okta event, or a
    /// CloudWatch export line with `@message`), JSON arrays of events (Okta API pages),
    /// gzip or not, in any order; or a CSV of binned counts. Repeat it, or name a
    /// folder, to read several files as one export.
    #[arg(long, required = true)]
    pub events: Vec<PathBuf>,
    /// Exit 0 even when events were dropped (late, or published outside the time
    /// window); by default a run that dropped any exits 3.
    #[arg(long)]
    pub allow_late: bool,
    /// Refuse events published further than this from the median of the first
    /// events read (`0` turns the window off).
    #[arg(long, default_value = "3years 1day", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_time_skew: std::time::Duration,
    /// Threads for an NDJSON replay: 2 parses on one thread, bins on another and runs
    /// the detectors on a third (the machine's cores share them); 1 does it all in turn.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub threads: u8,
    /// Refuse (and skip) any line longer than this many bytes.
    #[arg(long, default_value_t = replay::DEFAULT_MAX_LINE_BYTES, value_name = "BYTES")]
    pub max_line_bytes: usize,
    /// What --events holds (default: csv for a .csv or .csv.gz file, else ndjson).
    #[arg(long, value_enum)]
    pub format: Option<backtest::Format>,
    /// Write alerts here as JSON lines instead of to stdout (with --explain or
    /// --suggest, the only way to keep them: stdout is theirs).
    #[arg(long)]
    pub alerts_out: Option<PathBuf>,
    /// Write a self-contained HTML page: per series, observed vs expected and the
    /// normal band with alert markers, and a table of the alerts.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print, per detector, the threshold that would have paged at most
    /// --pages-per-week on this history, what it would have caught, and the config.
    #[arg(long)]
    pub suggest: bool,
    /// The paging budget --suggest aims for.
    #[arg(long, default_value_t = 0.5, value_name = "N")]
    pub pages_per_week: f64,
    /// Labelled incidents (JSON lines: kind, start, end, expect_page; what `simulate
    /// --labels` writes): --suggest then names the incident of each page and counts
    /// what each setting catches.
    #[arg(long, value_name = "FILE", requires = "suggest")]
    pub labels: Option<PathBuf>,
    /// Print, for every bin starting in FROM..TO (RFC 3339), each rule's judgement:
    /// counts, and per detector observed vs expected, p-value, window and whether it was
    /// flagged. For "why did this page, or not?".
    #[arg(long, value_name = "FROM..TO", conflicts_with_all = ["report", "suggest"])]
    pub explain: Option<Span>,
}

pub fn run(args: BacktestArgs) -> Result<(), Failure> {
    let cfg = config_or_builtin(args.config.clone())?;
    if !(args.pages_per_week.is_finite() && args.pages_per_week >= 0.0) {
        return Err(Failure::usage(format!(
            "--pages-per-week: must be a number of pages, 0 or more, found {}",
            args.pages_per_week
        )));
    }
    let incidents = read_labels(args.labels.as_deref())?;
    init_logging(LogFormat::Text, "warn");
    let format = match args.events.as_slice() {
        [one] => backtest::Format::of(one, args.format),
        _ => args.format.unwrap_or(backtest::Format::Ndjson),
    };
    let opts = replay_options(&args, &cfg);
    let events_name = args
        .events
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    // Only --report, --suggest and --explain look inside the pipeline; a plain backtest
    // records nothing.
    let mut recorder = (args.report.is_some() || args.suggest).then(|| Recorder::new(&cfg.rules));
    let mut explainer = args.explain.map(|span| Explainer::new(&cfg.rules, span));
    let observer = match (recorder.as_mut(), explainer.as_mut()) {
        (Some(r), _) => Some(r as &mut dyn Observer),
        (None, Some(e)) => Some(e as &mut dyn Observer),
        (None, None) => None,
    };
    let mut outcome = backtest::run_files(&args.events, format, &cfg.rules, &opts, observer)
        .map_err(|e| Failure::failed(format!("cannot read {events_name}: {e}")))?;
    // Maintenance windows apply to a replay as they would to the daemon.
    let (send, muted) = mute::apply(&cfg.mutes, std::mem::take(&mut outcome.alerts));
    outcome.alerts = send;
    // --explain and --suggest print for a person: the alerts' JSON lines on the same
    // stdout would bury what was asked for, so without --alerts-out they are left out.
    let alerts_kept = args.alerts_out.is_some() || (args.explain.is_none() && !args.suggest);
    if alerts_kept {
        write_alerts(&outcome.alerts, args.alerts_out.as_ref())?;
    }
    let summary = backtest::summary(&outcome, &cfg.rules);
    out!("{summary}");
    if !muted.is_empty() {
        out!(
            "  {} alerts muted by maintenance windows (not written)",
            muted.len()
        );
    }
    if let Some(path) = &args.alerts_out {
        out!("  alerts written to {}", path.display());
    } else if !alerts_kept {
        out!("  alerts not written (give --alerts-out FILE to keep them)");
    }
    if let (Some(path), Some(rec)) = (&args.report, &mut recorder) {
        rec.keep_marks_of(&outcome.alerts);
        let html = report::render(rec, &outcome.alerts, &events_name, &summary);
        write_report(path, html)?;
    }
    if let Some(explainer) = &explainer {
        out!("{}", explainer.text());
    }
    if let (true, Some(rec)) = (args.suggest, &recorder) {
        out!(
            "{}",
            suggest::suggest(rec, args.pages_per_week).table(&incidents)
        );
    }
    let dropped = outcome.stats.dropped();
    if dropped > 0 && !args.allow_late {
        return Err(Failure {
            message: format!(
                "authpulse: {dropped} events could not be placed (see the summary); exiting 3. \
                 Give --allow-late to accept that."
            ),
            code: 3,
        });
    }
    Ok(())
}

/// `--labels`: the labelled incidents (none without the flag).
fn read_labels(path: Option<&Path>) -> Result<Vec<Incident>, Failure> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| evaluate::read_labels(&text))
        .map_err(|e| Failure::usage(format!("--labels {}: {e}", path.display())))
}

/// How the export is replayed: the skew, line length and threads asked for.
fn replay_options(args: &BacktestArgs, cfg: &Config) -> replay::ReplayOptions {
    replay::ReplayOptions {
        max_skew: (!args.max_time_skew.is_zero()).then_some(args.max_time_skew),
        max_line_bytes: args.max_line_bytes,
        two_threads: args.threads == 2,
        ..replay::ReplayOptions::new(cfg.source.settle)
    }
}

fn write_report(path: &Path, html: String) -> Result<(), Failure> {
    std::fs::write(path, html).map_err(|e| {
        Failure::failed(format!(
            "cannot write the report to {}: {e}",
            path.display()
        ))
    })?;
    out!("  report written to {}", path.display());
    Ok(())
}

fn write_alerts(alerts: &[Alert], to: Option<&PathBuf>) -> Result<(), Failure> {
    let written = match to {
        Some(path) => std::fs::File::create(path)
            .and_then(|f| backtest::write_alerts(alerts, &mut std::io::BufWriter::new(f))),
        None => backtest::write_alerts(alerts, &mut std::io::stdout().lock()),
    };
    written.map_err(|e| Failure::failed(format!("cannot write alerts: {e}")))
}
