//! `authpulse backtest` (and `demo`): replay an export through the same pipeline the
//! daemon runs, and report what would have paged.
//!
//! Input is an NDJSON export of events (optionally gzip) or a CSV of binned counts (see
//! [`crate::binned_csv`]); both end up as the pipeline's own updates. With an
//! [`Observer`] (`--report`, `--suggest`) the replay also shows every evaluated bin.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::alert::{Alert, Status};
use crate::binned_csv::{self, BadRow, Skipped};
use crate::input::{self, ReplayStats};
use crate::pipeline::{Observer, Pipeline};
use crate::rule::RuleSpec;

/// What kind of file a backtest reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One event per line (EventBridge envelope, bare Okta event or CloudWatch export
    /// line), optionally gzip-compressed.
    Ndjson,
    /// Binned counts: `timestamp,total,failure[,success]` or `timestamp,value`.
    Csv,
}

impl Format {
    /// The format named on the command line, else the file's extension (`.csv`,
    /// `.csv.gz`), else NDJSON.
    pub fn of(path: &Path, flag: Option<Format>) -> Format {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        flag.unwrap_or(if name.ends_with(".csv") || name.ends_with(".csv.gz") {
            Format::Csv
        } else {
            Format::Ndjson
        })
    }
}

/// What a CSV backtest read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvInput {
    pub rows: u64,
    pub bad_count: u64,
    /// The first bad rows, with line numbers.
    pub bad: Vec<BadRow>,
    /// Rules the file could not feed, and why.
    pub skipped: Vec<Skipped>,
}

/// The result of one replay.
pub struct Outcome {
    pub alerts: Vec<Alert>,
    pub stats: ReplayStats,
    /// Set when the input was a CSV of counts.
    pub csv: Option<CsvInput>,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Replay an export held in memory (plain or gzip NDJSON) through `rules`: streamed
/// while it is in time order, sorted otherwise (see [`input::replay_sources`]).
pub fn run(
    data: &[u8],
    _size: u64,
    rules: &[RuleSpec],
    lateness: Duration,
) -> std::io::Result<Outcome> {
    let source = input::Source::Bytes {
        name: "input".into(),
        data,
    };
    run_sources(&[source], rules, &input::ReplayOptions::new(lateness), None)
}

/// Replay a reader that can be read only once through `rules` (always sorted, since it
/// cannot be read again), showing every evaluated bin to `observer`.
pub fn run_observed(
    reader: impl Read,
    size: u64,
    rules: &[RuleSpec],
    lateness: Duration,
    observer: Option<&mut dyn Observer>,
) -> std::io::Result<Outcome> {
    let started = Instant::now();
    let mut progress = Progress::new(size);
    let mut bytes = 0;
    let (alerts, stats, _) = input::replay_reader(
        reader,
        rules,
        &input::ReplayOptions::new(lateness),
        &mut |b| {
            bytes = b;
            progress.update(b);
        },
        observer,
    )?;
    progress.finish();
    Ok(Outcome {
        alerts,
        stats,
        csv: None,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Replay NDJSON sources (files, gzip or not, in the order given, as one export).
pub fn run_sources(
    sources: &[input::Source<'_>],
    rules: &[RuleSpec],
    opts: &input::ReplayOptions,
    observer: Option<&mut dyn Observer>,
) -> std::io::Result<Outcome> {
    let started = Instant::now();
    let mut progress = Progress::new(sources.iter().map(input::Source::size).sum());
    let mut bytes = 0;
    let (alerts, stats, _) = input::replay_sources(
        sources,
        rules,
        opts,
        &mut |b| {
            bytes = b;
            progress.update(b);
        },
        observer,
    )?;
    progress.finish();
    Ok(Outcome {
        alerts,
        stats,
        csv: None,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Replay a CSV of binned counts through `rules`. Bad rows are counted, never fatal.
pub fn run_csv(
    mut reader: impl Read,
    rules: &[RuleSpec],
    mut observer: Option<&mut dyn Observer>,
) -> std::io::Result<Outcome> {
    let started = Instant::now();
    let mut raw = Vec::new();
    let bytes = reader.read_to_end(&mut raw)? as u64;
    let parsed = binned_csv::parse(&String::from_utf8_lossy(&raw));
    let (updates, skipped) = binned_csv::updates(&parsed, rules);
    let mut pipeline = Pipeline::new(rules.to_vec());
    let mut alerts = Vec::new();
    for u in updates {
        input::feed(&mut pipeline, u, &mut alerts, observer.as_deref_mut());
    }
    let stats = ReplayStats {
        lines: parsed.lines,
        blank: parsed.blank,
        malformed: parsed.bad_count,
        ..ReplayStats::default()
    };
    Ok(Outcome {
        alerts,
        stats,
        csv: Some(CsvInput {
            rows: parsed.rows.len() as u64,
            bad_count: parsed.bad_count,
            bad: parsed.bad,
            skipped,
        }),
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Replay files in `format`: NDJSON from any number of files, a CSV of counts from one.
pub fn run_files(
    paths: &[std::path::PathBuf],
    format: Format,
    rules: &[RuleSpec],
    opts: &input::ReplayOptions,
    observer: Option<&mut dyn Observer>,
) -> std::io::Result<Outcome> {
    match format {
        Format::Ndjson => run_sources(&input::sources_of(paths)?, rules, opts, observer),
        Format::Csv => match paths {
            [path] if !path.is_dir() => run_csv(input::open(path)?.0, rules, observer),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a CSV of binned counts is read from one file: give one --events",
            )),
        },
    }
}

/// Replay a file (plain or gzip) in `format`.
pub fn run_file(
    path: &Path,
    format: Format,
    rules: &[RuleSpec],
    lateness: Duration,
    observer: Option<&mut dyn Observer>,
) -> std::io::Result<Outcome> {
    run_files(
        &[path.to_path_buf()],
        format,
        rules,
        &input::ReplayOptions::new(lateness),
        observer,
    )
}

/// Write alerts as JSON lines.
pub fn write_alerts(alerts: &[Alert], out: &mut dyn Write) -> std::io::Result<()> {
    for a in alerts {
        serde_json::to_writer(&mut *out, a)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// A plain summary: throughput, what was read, and alerts per rule and detector.
pub fn summary(o: &Outcome, rules: &[RuleSpec]) -> String {
    let secs = o.elapsed.as_secs_f64().max(1e-9);
    let s = &o.stats;
    let mut t = String::new();
    match &o.csv {
        None => {
            t.push_str(&format!(
                "\nauthpulse backtest summary\n  read {} lines ({:.1} MB uncompressed) in {:.2} s: {:.0} MB/s, {:.0} events/s\n",
                s.lines,
                o.bytes as f64 / 1e6,
                secs,
                o.bytes as f64 / 1e6 / secs,
                s.bins.events as f64 / secs
            ));
            t.push_str(&format!(
                "  events counted by rules: {}   duplicates removed: {}   malformed input skipped: {}   blank: {}\n",
                s.bins.matched, s.bins.duplicates, s.malformed, s.blank
            ));
            if s.sorted {
                t.push_str(&format!(
                    "  the input was not in time order: replayed sorted ({:.1} MB sorted on disk)\n",
                    s.spilled_bytes as f64 / 1e6
                ));
            }
            t.push_str(&format!(
                "  events dropped: {} (late: {}, outside the time window: {})\n",
                s.dropped(),
                s.bins.late,
                s.outside_window
            ));
            if !s.examples.is_empty() {
                t.push_str("  first problems:\n");
                for e in &s.examples {
                    t.push_str(&format!("    {e}\n"));
                }
            }
        }
        Some(csv) => {
            t.push_str(&format!(
                "\nauthpulse backtest summary (CSV of binned counts)\n  read {} lines in {:.2} s: {} rows of counts, {} bad rows skipped, {} blank\n",
                s.lines, secs, csv.rows, csv.bad_count, s.blank
            ));
            for bad in &csv.bad {
                t.push_str(&format!("    bad row, {bad}\n"));
            }
            if csv.bad_count > csv.bad.len() as u64 {
                t.push_str(&format!(
                    "    ... and {} more bad rows\n",
                    csv.bad_count - csv.bad.len() as u64
                ));
            }
            for skip in &csv.skipped {
                t.push_str(&format!(
                    "  rule {:?} not fed: {}\n",
                    skip.rule, skip.reason
                ));
            }
        }
    }
    let mut per: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for a in &o.alerts {
        let e = per
            .entry((a.rule.as_str(), a.detector.as_str()))
            .or_default();
        match a.status {
            Status::Firing => e.0 += 1,
            Status::Resolved => e.1 += 1,
        }
    }
    t.push_str("  alerts per rule:\n");
    for r in rules {
        let fired: usize = per
            .iter()
            .filter(|((rule, _), _)| *rule == r.name)
            .map(|(_, v)| v.0)
            .sum();
        t.push_str(&format!("    {:<24} {} firing notices\n", r.name, fired));
        for ((_, det), (f, res)) in per.iter().filter(|((rule, _), _)| *rule == r.name) {
            t.push_str(&format!(
                "      {det:<16} firing {f:>3}   resolved {res:>3}\n"
            ));
        }
    }
    if o.alerts.is_empty() {
        t.push_str("  no alerts: nothing in this history would have paged.\n");
    }
    t
}

/// Progress on stderr, only when it is a terminal.
struct Progress {
    total: u64,
    enabled: bool,
    last: Instant,
    started: Instant,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            enabled: std::io::stderr().is_terminal(),
            last: now,
            started: now,
        }
    }

    fn update(&mut self, bytes: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        let rate = bytes as f64 / 1e6 / self.started.elapsed().as_secs_f64().max(1e-9);
        // For gzip input `bytes` counts uncompressed bytes, so only show a percentage for
        // plain files.
        let line = if self.total > 0 && bytes <= self.total {
            format!(
                "\r  {:>3}%  {:.0} of {:.0} MB  {:.0} MB/s ",
                bytes * 100 / self.total,
                bytes as f64 / 1e6,
                self.total as f64 / 1e6,
                rate
            )
        } else {
            format!("\r  {:.0} MB read  {:.0} MB/s ", bytes as f64 / 1e6, rate)
        };
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn finish(&self) {
        if self.enabled && self.started.elapsed() >= Duration::from_millis(250) {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
    }
}
