//! `authpulse demo`: the bundled sample through the daemon's pipeline.

use std::io::Write;

use clap::Args;

use super::{init_logging, Failure};
use authpulse::config::{Config, LogFormat};
use authpulse::offline::{backtest, evaluate};

/// The bundled sample: 14 days from `authpulse simulate` (see README).
const DEMO_SAMPLE: &[u8] = include_bytes!("../../samples/demo.ndjson.gz");
/// What the sample contains: one labelled incident per line.
const DEMO_LABELS: &str = include_str!("../../samples/demo.labels.jsonl");

#[derive(Args)]
pub struct DemoArgs {
    /// Print only the summary, not the alert JSON.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: DemoArgs) -> Result<(), Failure> {
    init_logging(LogFormat::Text, "warn");
    let rules = Config::builtin().rules;
    let outcome = backtest::run(
        DEMO_SAMPLE,
        DEMO_SAMPLE.len() as u64,
        &rules,
        std::time::Duration::from_secs(120),
    )
    .map_err(|e| Failure::failed(format!("demo failed: {e}")))?;
    let mut out = std::io::stdout().lock();
    if !args.quiet {
        backtest::write_alerts(&outcome.alerts, &mut out)
            .map_err(|e| Failure::failed(format!("cannot write alerts: {e}")))?;
    }
    let _ = writeln!(out, "{}", backtest::summary(&outcome, &rules));
    let incidents = evaluate::read_labels(DEMO_LABELS)
        .map_err(|e| Failure::failed(format!("demo labels unreadable: {e}")))?;
    let bin_ms = rules.first().map_or(900_000, |r| r.bin_ms());
    let score = evaluate::score(&outcome.alerts, &incidents, bin_ms, 14.0);
    let _ = writeln!(
        out,
        "What happened in the sample, and what authpulse said:\n{}",
        score.table()
    );
    Ok(())
}
