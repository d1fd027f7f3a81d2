//! The command line: one file per subcommand, each `run(args) -> Result<(), Failure>`;
//! [`main`](crate) prints a failure and turns it into the exit code in one place.

mod backtest;
mod check_config;
mod demo;
mod evaluate;
mod healthcheck;
mod query;
mod run;
mod silence;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use authpulse::config::{self, Config, LogFormat};

/// Print to stdout, ignoring a closed pipe (`authpulse backtest ... | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
pub(crate) use out;

#[derive(Parser)]
#[command(
    name = "authpulse",
    version,
    about = "Watches Okta sign-in outcomes in CloudWatch Logs and pages security when they deviate",
    after_help = "Start here:  authpulse demo   (replays a bundled 14-day sample; no AWS account needed)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Replay the bundled 14-day sample (a credential-stuffing burst, an outage, ...) and
    /// print the alerts it raises.
    #[command(
        after_help = "Example:\n  authpulse demo\n  authpulse demo --quiet   # summary only"
    )]
    Demo(demo::DemoArgs),
    /// Replay an export (NDJSON, optionally .gz) or a CSV of binned counts through the
    /// daemon's pipeline and report every alert it would have sent; optionally draw it
    /// (--report) and suggest thresholds (--suggest).
    #[command(
        after_help = "Examples:\n  authpulse backtest --events okta-export.ndjson.gz\n  authpulse backtest --config config/authpulse.example.toml --events export.ndjson --alerts-out alerts.jsonl\n  authpulse backtest --events export.ndjson.gz --report report.html --suggest --pages-per-week 1\n  authpulse backtest --events export.ndjson.gz --explain 2026-10-29T13:00:00Z..2026-10-29T15:00:00Z   # why it paged, or not\n  authpulse backtest --events dashboard.csv    # timestamp,total,failure[,success] or timestamp,value"
    )]
    Backtest(backtest::BacktestArgs),
    /// Validate a config file: exit 0 when good, 2 with one line per problem when not.
    #[command(after_help = "Example:\n  authpulse check-config /etc/authpulse/authpulse.toml")]
    CheckConfig(check_config::CheckConfigArgs),
    /// Print each rule's Logs Insights query, ready to paste into the console.
    #[command(
        after_help = "Examples:\n  authpulse query\n  authpulse query --config /etc/authpulse/authpulse.toml"
    )]
    Query(query::QueryArgs),
    /// Write realistic, labelled Okta traffic (EventBridge-wrapped NDJSON) for backtests,
    /// demos and evaluation. The same seed always gives the same bytes.
    #[command(
        after_help = "Examples:\n  authpulse simulate --out traffic.ndjson.gz --labels labels.jsonl\n  authpulse simulate --days 28 --users 5000 --difficulty hard --seed 7 --out hard.ndjson.gz --labels hard.labels.jsonl"
    )]
    Simulate(simulate::SimulateArgs),
    /// Score backtest alerts against a simulation's labels: incidents detected per kind,
    /// detection latency, false pages per week and pages on benign events. Give several
    /// `--alerts`/`--labels` pairs (in the same order) to add up runs of several seeds.
    #[command(
        after_help = "Examples:\n  authpulse simulate --seed 1 --out t.ndjson.gz --labels t.labels.jsonl\n  authpulse backtest --events t.ndjson.gz --alerts-out t.alerts.jsonl\n  authpulse evaluate --alerts t.alerts.jsonl --labels t.labels.jsonl\n  scripts/detection-bench.sh   # easy and hard, several seeds: the README table"
    )]
    Evaluate(evaluate::EvaluateArgs),
    /// Run the daemon.
    #[command(after_help = "Example:\n  authpulse run --config /etc/authpulse/authpulse.toml")]
    Run(run::RunArgs),
    /// Probe a running daemon's HTTP endpoint: exit 0 when it answers 200, 1 otherwise.
    /// For container health checks (the image has no shell and no curl).
    #[command(
        after_help = "Examples:\n  authpulse healthcheck\n  authpulse healthcheck --url http://127.0.0.1:9750/readyz --timeout 2s"
    )]
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Silence a rule, detector or series on a running daemon for a while, without
    /// editing the config (through its HTTP API): add, list, expire.
    #[command(
        after_help = "Examples:\n  export AUTHPULSE_API_TOKEN=...   # the daemon's token (daemon.api_token_env)\n  authpulse silence add --rule okta-sign-ins --series client.ipAddress=203.0.113.9 --for 2h --reason \"office NAT rebooting\"\n  authpulse silence list\n  authpulse silence expire 3f2a9c0d1b7e4a11"
    )]
    Silence(silence::SilenceArgs),
}

/// Why a command did not succeed: the message for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// The command could not do its work (exit 1).
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }

    /// A bad config (exit 2; the message lists every problem).
    pub fn config(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
        }
    }

    /// Bad arguments (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::config(message)
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

/// Run one subcommand.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Backtest(args) => backtest::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Query(args) => query::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Run(args) => run::run(args),
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::Silence(args) => silence::run(args),
    }
}

/// The config at `path`, or the built-in one without a path.
fn config_or_builtin(path: Option<PathBuf>) -> Result<Config, Failure> {
    match path {
        Some(path) => config::load(&path).map_err(|e| Failure::config(e.to_string())),
        None => Ok(Config::builtin()),
    }
}

/// A Tokio runtime: multi-threaded for the daemon, one thread for a probe.
fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, Failure> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
