//! The `authpulse` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use authpulse::backtest;
use authpulse::config::{self, Config, LogFormat};
use authpulse::pipeline::Observer;
use authpulse::tune::Recorder;

#[derive(Parser)]
#[command(
    name = "authpulse",
    version,
    about = "Watches Okta sign-in outcomes in CloudWatch Logs and pages security when they deviate",
    after_help = "Start here:  authpulse demo   (replays a bundled 14-day sample; no AWS account needed)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay the bundled 14-day sample (a credential-stuffing burst, an outage, ...) and
    /// print the alerts it raises.
    #[command(
        after_help = "Example:\n  authpulse demo\n  authpulse demo --quiet   # summary only"
    )]
    Demo {
        /// Print only the summary, not the alert JSON.
        #[arg(long)]
        quiet: bool,
    },
    /// Replay an export (NDJSON, optionally .gz) or a CSV of binned counts through the
    /// daemon's pipeline and report every alert it would have sent; optionally draw it
    /// (--report) and suggest thresholds (--suggest).
    #[command(
        after_help = "Examples:\n  authpulse backtest --events okta-export.ndjson.gz\n  authpulse backtest --config config/authpulse.example.toml --events export.ndjson --alerts-out alerts.jsonl\n  authpulse backtest --events export.ndjson.gz --report report.html --suggest --pages-per-week 1\n  authpulse backtest --events dashboard.csv    # timestamp,total,failure[,success] or timestamp,value"
    )]
    Backtest {
        /// Config whose rules to use (default: the built-in rules).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The export: one event per line (EventBridge envelope, bare Okta event, or a
        /// CloudWatch export line with `@message`), JSON arrays of events (Okta API pages),
        /// gzip or not, in any order; or a CSV of binned counts. Repeat it, or name a
        /// folder, to read several files as one export.
        #[arg(long, required = true)]
        events: Vec<PathBuf>,
        /// Exit 0 even when events were dropped (late, or published outside the time
        /// window); by default a run that dropped any exits 3.
        #[arg(long)]
        allow_late: bool,
        /// Refuse events published further than this from the median of the first
        /// events read (`0` turns the window off).
        #[arg(long, default_value = "3years 1day", value_parser = humantime::parse_duration, value_name = "DURATION")]
        max_time_skew: std::time::Duration,
        /// Refuse (and skip) any line longer than this many bytes.
        #[arg(long, default_value_t = authpulse::input::DEFAULT_MAX_LINE_BYTES, value_name = "BYTES")]
        max_line_bytes: usize,
        /// What --events holds (default: csv for a .csv or .csv.gz file, else ndjson).
        #[arg(long, value_enum)]
        format: Option<backtest::Format>,
        /// Write alerts here as JSON lines instead of to stdout.
        #[arg(long)]
        alerts_out: Option<PathBuf>,
        /// Write a self-contained HTML page: per series, observed vs expected and the
        /// normal band with alert markers, and a table of the alerts.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Print, per detector, the threshold that would have paged at most
        /// --pages-per-week on this history, what it would have caught, and the config.
        #[arg(long)]
        suggest: bool,
        /// The paging budget --suggest aims for.
        #[arg(long, default_value_t = 0.5, value_name = "N")]
        pages_per_week: f64,
        /// Labelled incidents (JSON lines: kind, start, end, expect_page; what `simulate
        /// --labels` writes): --suggest then names the incident of each page and counts
        /// what each setting catches.
        #[arg(long, value_name = "FILE", requires = "suggest")]
        labels: Option<PathBuf>,
    },
    /// Validate a config file: exit 0 when good, 2 with one line per problem when not.
    #[command(after_help = "Example:\n  authpulse check-config /etc/authpulse/authpulse.toml")]
    CheckConfig { file: PathBuf },
    /// Print each rule's Logs Insights query, ready to paste into the console.
    #[command(
        after_help = "Examples:\n  authpulse query\n  authpulse query --config /etc/authpulse/authpulse.toml"
    )]
    Query {
        /// Config whose rules to use (default: the built-in rules).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write realistic, labelled Okta traffic (EventBridge-wrapped NDJSON) for backtests,
    /// demos and evaluation. The same seed always gives the same bytes.
    #[command(
        after_help = "Examples:\n  authpulse simulate --out traffic.ndjson.gz --labels labels.jsonl\n  authpulse simulate --days 28 --users 5000 --difficulty hard --seed 7 --out hard.ndjson.gz --labels hard.labels.jsonl"
    )]
    Simulate {
        /// Events file; `.gz` compresses it.
        #[arg(long)]
        out: PathBuf,
        /// Labels file: one JSON line per incident (kind, start, end, expect_page).
        #[arg(long)]
        labels: PathBuf,
        #[arg(long, default_value_t = 14)]
        days: u32,
        #[arg(long, default_value_t = 2000)]
        users: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// `easy` (attacks well above the noise) or `hard` (close to it).
        #[arg(long, default_value = "easy")]
        difficulty: authpulse::simulate::Difficulty,
        /// First day (UTC, RFC 3339). Fixed by default so output is reproducible.
        #[arg(long, default_value = "2026-11-02T00:00:00Z")]
        start: chrono::DateTime<chrono::Utc>,
        /// Background traffic only, no incidents.
        #[arg(long)]
        no_incidents: bool,
    },
    /// Score backtest alerts against a simulation's labels: incidents detected per kind,
    /// detection latency, false pages per week and pages on benign events. Give several
    /// `--alerts`/`--labels` pairs (in the same order) to add up runs of several seeds.
    #[command(
        after_help = "Examples:\n  authpulse simulate --seed 1 --out t.ndjson.gz --labels t.labels.jsonl\n  authpulse backtest --events t.ndjson.gz --alerts-out t.alerts.jsonl\n  authpulse evaluate --alerts t.alerts.jsonl --labels t.labels.jsonl\n  scripts/detection-bench.sh   # easy and hard, several seeds: the README table"
    )]
    Evaluate {
        /// Alerts from `backtest --alerts-out` (repeat for several runs).
        #[arg(long, required = true)]
        alerts: Vec<PathBuf>,
        /// The matching labels from `simulate --labels` (repeat, same order).
        #[arg(long, required = true)]
        labels: Vec<PathBuf>,
        /// Days of traffic in each run (for false pages per week).
        #[arg(long, default_value_t = 14.0)]
        days: f64,
        /// Bin width of the rules, in minutes (an alert may start one bin early).
        #[arg(long, default_value_t = 15)]
        bin_minutes: i64,
        /// Title of the Markdown summary.
        #[arg(long, default_value = "authpulse detection")]
        title: String,
    },
    /// Run the daemon.
    #[command(after_help = "Example:\n  authpulse run --config /etc/authpulse/authpulse.toml")]
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Probe a running daemon's HTTP endpoint: exit 0 when it answers 200, 1 otherwise.
    /// For container health checks (the image has no shell and no curl).
    #[command(
        after_help = "Examples:\n  authpulse healthcheck\n  authpulse healthcheck --url http://127.0.0.1:9750/readyz --timeout 2s"
    )]
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:9750/healthz")]
        url: String,
        /// Give up (exit 1) when there is no answer within this long.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

/// Print to stdout, ignoring a closed pipe (`authpulse backtest ... | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The bundled sample: 14 days from `authpulse simulate` (see README).
const DEMO_SAMPLE: &[u8] = include_bytes!("../samples/demo.ndjson.gz");
/// What the sample contains: one labelled incident per line.
const DEMO_LABELS: &str = include_str!("../samples/demo.labels.jsonl");

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { quiet } => demo(quiet),
        Command::Backtest {
            config,
            events,
            allow_late,
            max_time_skew,
            max_line_bytes,
            format,
            alerts_out,
            report,
            suggest,
            pages_per_week,
            labels,
        } => backtest_cmd(BacktestArgs {
            config,
            events,
            allow_late,
            max_time_skew,
            max_line_bytes,
            format,
            alerts_out,
            report,
            suggest,
            pages_per_week,
            labels,
        }),
        Command::CheckConfig { file } => match config::load(&file) {
            Ok(c) => {
                out!(
                    "{}: ok ({} rules, {} sinks)",
                    file.display(),
                    c.rules.len(),
                    c.sinks.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Query { config } => {
            let cfg = match config_or_builtin(config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            for rule in &cfg.rules {
                out!(
                    "# rule {:?}: bin {}\n{}\n",
                    rule.name,
                    rule.bin_literal(),
                    rule.insights_query()
                );
            }
            ExitCode::SUCCESS
        }
        Command::Run { config } => run(config),
        Command::Evaluate {
            alerts,
            labels,
            days,
            bin_minutes,
            title,
        } => evaluate(&alerts, &labels, days, bin_minutes, &title),
        Command::Healthcheck { url, timeout } => healthcheck(&url, timeout),
        Command::Simulate {
            out,
            labels,
            days,
            users,
            seed,
            difficulty,
            start,
            no_incidents,
        } => {
            let mut cfg = authpulse::simulate::SimConfig::with_default_incidents(
                seed, start, days, users, difficulty,
            );
            if no_incidents {
                cfg.incidents.clear();
            }
            match simulate(&cfg, &out, &labels) {
                Ok(stats) => {
                    out!(
                        "wrote {} events ({:.1} MB) to {} and {} incidents to {}",
                        stats.events,
                        stats.bytes as f64 / 1e6,
                        out.display(),
                        stats.incidents,
                        labels.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("simulate failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn evaluate(
    alerts: &[PathBuf],
    labels: &[PathBuf],
    days: f64,
    bin_minutes: i64,
    title: &str,
) -> ExitCode {
    use authpulse::evaluate;
    if alerts.len() != labels.len() {
        eprintln!(
            "give one --labels per --alerts (found {} and {})",
            alerts.len(),
            labels.len()
        );
        return ExitCode::from(2);
    }
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let mut summary = evaluate::Summary::default();
    for (a, l) in alerts.iter().zip(labels) {
        let scored = read(a)
            .and_then(|t| evaluate::read_alerts(&t))
            .and_then(|alerts| {
                let incidents = read(l).and_then(|t| evaluate::read_labels(&t))?;
                Ok(evaluate::score(
                    &alerts,
                    &incidents,
                    bin_minutes.max(1) * 60_000,
                    days,
                ))
            });
        match scored {
            Ok(score) => {
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
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    out!("{}", summary.markdown(title));
    ExitCode::SUCCESS
}

fn simulate(
    cfg: &authpulse::simulate::SimConfig,
    out: &std::path::Path,
    labels: &std::path::Path,
) -> std::io::Result<authpulse::simulate::SimStats> {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let mut labels_out = std::io::BufWriter::new(std::fs::File::create(labels)?);
    let stats = if out.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let stats = authpulse::simulate::generate(cfg, &mut gz, &mut labels_out)?;
        gz.finish()?.flush()?;
        stats
    } else {
        let mut plain = file;
        let stats = authpulse::simulate::generate(cfg, &mut plain, &mut labels_out)?;
        plain.flush()?;
        stats
    };
    labels_out.flush()?;
    Ok(stats)
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

fn demo(quiet: bool) -> ExitCode {
    init_logging(LogFormat::Text, "warn");
    let rules = Config::builtin().rules;
    match backtest::run(
        DEMO_SAMPLE,
        DEMO_SAMPLE.len() as u64,
        &rules,
        std::time::Duration::from_secs(120),
    ) {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            if !quiet && backtest::write_alerts(&outcome.alerts, &mut out).is_err() {
                return ExitCode::FAILURE;
            }
            let _ = writeln!(out, "{}", backtest::summary(&outcome, &rules));
            match authpulse::evaluate::read_labels(DEMO_LABELS) {
                Ok(incidents) => {
                    let bin_ms = rules.first().map_or(900_000, |r| r.bin_ms());
                    let score =
                        authpulse::evaluate::score(&outcome.alerts, &incidents, bin_ms, 14.0);
                    let _ = writeln!(
                        out,
                        "What happened in the sample, and what authpulse said:\n{}",
                        score.table()
                    );
                }
                Err(e) => eprintln!("demo labels unreadable: {e}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

struct BacktestArgs {
    config: Option<PathBuf>,
    events: Vec<PathBuf>,
    allow_late: bool,
    max_time_skew: std::time::Duration,
    max_line_bytes: usize,
    format: Option<backtest::Format>,
    alerts_out: Option<PathBuf>,
    report: Option<PathBuf>,
    suggest: bool,
    pages_per_week: f64,
    labels: Option<PathBuf>,
}

/// The config at `path`, or the built-in one without a path; a bad config prints its
/// problems and means exit code 2.
fn config_or_builtin(path: Option<PathBuf>) -> Result<Config, ExitCode> {
    match path {
        Some(path) => config::load(&path).map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(2)
        }),
        None => Ok(Config::builtin()),
    }
}

fn backtest_cmd(args: BacktestArgs) -> ExitCode {
    let cfg = match config_or_builtin(args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !(args.pages_per_week.is_finite() && args.pages_per_week >= 0.0) {
        eprintln!(
            "--pages-per-week: must be a number of pages, 0 or more, found {}",
            args.pages_per_week
        );
        return ExitCode::from(2);
    }
    let incidents = match &args.labels {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| authpulse::evaluate::read_labels(&text))
        {
            Ok(incidents) => incidents,
            Err(e) => {
                eprintln!("--labels {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Vec::new(),
    };
    init_logging(LogFormat::Text, "warn");
    let format = match args.events.as_slice() {
        [one] => backtest::Format::of(one, args.format),
        _ => args.format.unwrap_or(backtest::Format::Ndjson),
    };
    let opts = authpulse::input::ReplayOptions {
        max_skew: (!args.max_time_skew.is_zero()).then_some(args.max_time_skew),
        max_line_bytes: args.max_line_bytes,
        ..authpulse::input::ReplayOptions::new(cfg.source.settle)
    };
    let events_name = args
        .events
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    // Only --report and --suggest look inside the pipeline; a plain backtest records nothing.
    let mut recorder = (args.report.is_some() || args.suggest).then(|| Recorder::new(&cfg.rules));
    let observer = recorder.as_mut().map(|r| r as &mut dyn Observer);
    let mut outcome = match backtest::run_files(&args.events, format, &cfg.rules, &opts, observer) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cannot read {events_name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Maintenance windows apply to a replay as they would to the daemon.
    let (send, muted) = authpulse::mute::apply(&cfg.mutes, std::mem::take(&mut outcome.alerts));
    outcome.alerts = send;
    let written = match &args.alerts_out {
        Some(path) => std::fs::File::create(path)
            .and_then(|f| backtest::write_alerts(&outcome.alerts, &mut std::io::BufWriter::new(f))),
        None => backtest::write_alerts(&outcome.alerts, &mut std::io::stdout().lock()),
    };
    if let Err(e) = written {
        eprintln!("cannot write alerts: {e}");
        return ExitCode::FAILURE;
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
    }
    if let (Some(path), Some(rec)) = (&args.report, &mut recorder) {
        rec.keep_marks_of(&outcome.alerts);
        let html = authpulse::tune::report::render(rec, &outcome.alerts, &events_name, &summary);
        match std::fs::write(path, html) {
            Ok(()) => out!("  report written to {}", path.display()),
            Err(e) => {
                eprintln!("cannot write the report to {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if let (true, Some(rec)) = (args.suggest, &recorder) {
        out!(
            "{}",
            authpulse::tune::suggest::suggest(rec, args.pages_per_week).table(&incidents)
        );
    }
    let dropped = outcome.stats.dropped();
    if dropped > 0 && !args.allow_late {
        eprintln!(
            "authpulse: {dropped} events could not be placed (see the summary); exiting 3. \
             Give --allow-late to accept that."
        );
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

fn run(path: PathBuf) -> ExitCode {
    let cfg = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "authpulse: not starting: {} has problems (see above)",
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    init_logging(cfg.daemon.log_format, &cfg.daemon.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(authpulse::daemon::run(cfg, path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "authpulse stopped");
            ExitCode::FAILURE
        }
    }
}

fn healthcheck(url: &str, timeout: std::time::Duration) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(authpulse::http::probe(url, timeout)) {
        Ok(200) => {
            out!("{url}: 200 OK");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("{url}: HTTP {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            ExitCode::FAILURE
        }
    }
}
