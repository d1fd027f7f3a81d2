//! `authpulse evaluate`: backtest alerts scored against simulation labels.

use std::path::PathBuf;

use clap::Args;

use super::{out, Failure};
use authpulse::offline::evaluate;

#[derive(Args)]
pub struct EvaluateArgs {
    /// Alerts from `backtest --alerts-out` (repeat for several runs).
    #[arg(long, required = true)]
    pub alerts: Vec<PathBuf>,
    /// The matching labels from `simulate --labels` (repeat, same order).
    #[arg(long, required = true)]
    pub labels: Vec<PathBuf>,
    /// Days of traffic in each run (for false pages per week).
    #[arg(long, default_value_t = 14.0)]
    pub days: f64,
    /// Bin width of the rules, in minutes (an alert may start one bin early).
    #[arg(long, default_value_t = 15)]
    pub bin_minutes: i64,
    /// Title of the Markdown summary.
    #[arg(long, default_value = "authpulse detection")]
    pub title: String,
}

fn read(p: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

pub fn run(args: EvaluateArgs) -> Result<(), Failure> {
    if args.alerts.len() != args.labels.len() {
        return Err(Failure::usage(format!(
            "give one --labels per --alerts (found {} and {})",
            args.alerts.len(),
            args.labels.len()
        )));
    }
    let mut summary = evaluate::Summary::default();
    for (a, l) in args.alerts.iter().zip(&args.labels) {
        let alerts = read(a).and_then(|t| evaluate::read_alerts(&t));
        let incidents = read(l).and_then(|t| evaluate::read_labels(&t));
        let (alerts, incidents) = alerts
            .and_then(|a| Ok((a, incidents?)))
            .map_err(Failure::usage)?;
        let bin_ms = args.bin_minutes.max(1) * 60_000;
        let score = evaluate::score(&alerts, &incidents, bin_ms, args.days);
        out!("{}:\n{}", a.display(), score.table());
        for fp in &score.false_pages {
            out!(
                "  false page: {} {} {} at {}",
                fp.rule,
                fp.detector,
                fp.kind,
                fp.started_at
            );
        }
        summary.add(&score);
    }
    out!("{}", summary.markdown(&args.title));
    Ok(())
}
