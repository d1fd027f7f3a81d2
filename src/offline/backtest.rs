//! `authpulse backtest` (and `demo`): replay an export through the same pipeline the
//! daemon runs, and report what would have paged.
//!
//! Input is an export of events — in any order and any of the shapes
//! [`crate::source::replay`] reads — or a CSV of binned counts (see
//! [`crate::source::csv`]); both end up as the pipeline's own updates. With an
//! [`Observer`] (`--report`, `--suggest`) the replay also shows every evaluated bin.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::alert::Alert;
use crate::pipeline::{Observer, Pipeline};
use crate::rule::RuleSpec;
use crate::series::Update;
use crate::source::csv::{self as binned_csv, BadRow, Skipped};
use crate::source::replay::{self as input, ReplayStats};

mod summary;

pub use summary::summary;

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
    /// Each rule's warm-up: what was learned but not judged.
    pub warmup: Vec<crate::pipeline::WarmUp>,
    /// Pages held as retry waves (not written; see `pipeline::retry_wave`), and the
    /// first of them.
    pub held_waves: u64,
    pub held: Vec<crate::pipeline::HeldPage>,
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
    let (alerts, stats, pipeline) = replay_reader(
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
        warmup: pipeline.warmup(),
        held_waves: pipeline.stats().held_waves,
        held: pipeline.held_pages().to_vec(),
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
    let (alerts, stats, pipeline) = replay_sources(
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
        warmup: pipeline.warmup(),
        held_waves: pipeline.stats().held_waves,
        held: pipeline.held_pages().to_vec(),
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
        feed(&mut pipeline, u, &mut alerts, observer.as_deref_mut());
    }
    pipeline.finish(&mut alerts);
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
        warmup: pipeline.warmup(),
        held_waves: pipeline.stats().held_waves,
        held: pipeline.held_pages().to_vec(),
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

/// The pipeline as a replay's [`input::UpdateSink`]: updates in, alerts out.
struct PipelineSink<'a, 'o> {
    rules: &'a [RuleSpec],
    pipeline: Pipeline,
    alerts: Vec<Alert>,
    observer: Option<&'a mut (dyn Observer + 'o)>,
}

impl input::UpdateSink for PipelineSink<'_, '_> {
    fn updates(&mut self, updates: std::vec::Drain<'_, Update>) -> std::io::Result<()> {
        for u in updates {
            feed(
                &mut self.pipeline,
                u,
                &mut self.alerts,
                self.observer.as_deref_mut(),
            );
        }
        Ok(())
    }

    fn restart(&mut self) {
        self.pipeline = Pipeline::new(self.rules.to_vec());
        self.alerts.clear();
        if let Some(o) = self.observer.as_deref_mut() {
            o.reset();
        }
    }
}

impl<'a, 'o> PipelineSink<'a, 'o> {
    /// End of input: the pipeline judges what still waits, and hands everything over.
    fn finish(mut self) -> (Vec<Alert>, Pipeline) {
        self.pipeline.finish(&mut self.alerts);
        (self.alerts, self.pipeline)
    }

    fn new(rules: &'a [RuleSpec], observer: Option<&'a mut (dyn Observer + 'o)>) -> Self {
        PipelineSink {
            rules,
            pipeline: Pipeline::new(rules.to_vec()),
            alerts: Vec::new(),
            observer,
        }
    }
}

/// Replay `sources` through a pipeline, in time order whatever their order (see
/// [`input::replay_sources`]); `progress` gets bytes read so far and `observer`, when
/// given, every evaluated bin (see [`Observer`]).
///
/// Without an observer the two halves run on two threads: this one reads, parses and bins,
/// the other runs the pipeline (baselines, detectors, lifecycle) on the updates in the
/// order they were made, so the alerts are the same as on one thread.
pub fn replay_sources(
    sources: &[input::Source<'_>],
    rules: &[RuleSpec],
    opts: &input::ReplayOptions,
    progress: &mut dyn FnMut(u64),
    observer: Option<&mut dyn Observer>,
) -> std::io::Result<(Vec<Alert>, ReplayStats, Pipeline)> {
    if observer.is_some() || !opts.two_threads {
        let mut sink = PipelineSink::new(rules, observer);
        let stats = input::replay_sources(sources, rules, opts, progress, &mut sink)?;
        let (alerts, pipeline) = sink.finish();
        return Ok((alerts, stats, pipeline));
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(PIPELINE_QUEUE);
        let worker = scope.spawn(move || {
            let mut sink = PipelineSink::new(rules, None);
            for batch in rx {
                match batch {
                    Batch::Updates(updates) => {
                        for u in updates {
                            feed(&mut sink.pipeline, u, &mut sink.alerts, None);
                        }
                    }
                    Batch::Restart => input::UpdateSink::restart(&mut sink),
                }
            }
            sink.finish()
        });
        let mut sink = ThreadedSink { tx };
        let stats = input::replay_sources(sources, rules, opts, progress, &mut sink);
        drop(sink);
        let (alerts, pipeline) = worker
            .join()
            .map_err(|_| std::io::Error::other("the pipeline thread panicked"))?;
        Ok((alerts, stats?, pipeline))
    })
}

/// Batches of updates waiting for the pipeline thread. A batch is the updates of 4,096
/// lines — with thousands of active users, thousands of updates, each with its labels on
/// the heap — and the pipeline thread is the slower side, so the queue stays full: 32 made the
/// peak memory grow with the number of users and with how the threads happened to be
/// scheduled (26–68 MB at 394 MB, against 28–31 MB with 2), and left the pipeline a
/// long tail to work through alone on one core after the input was read.
const PIPELINE_QUEUE: usize = 2;

/// What the reading thread hands the pipeline thread.
enum Batch {
    Updates(Vec<Update>),
    Restart,
}

/// The pipeline on another thread, fed over a bounded channel (the reader waits when the
/// pipeline falls behind: memory stays bounded).
struct ThreadedSink {
    tx: std::sync::mpsc::SyncSender<Batch>,
}

impl input::UpdateSink for ThreadedSink {
    fn updates(&mut self, updates: std::vec::Drain<'_, Update>) -> std::io::Result<()> {
        let batch: Vec<Update> = updates.collect();
        if batch.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Batch::Updates(batch))
            .map_err(|_| std::io::Error::other("the pipeline thread stopped"))
    }

    fn restart(&mut self) {
        // A failed send means the pipeline thread is gone; the join reports it.
        let _ = self.tx.send(Batch::Restart);
    }
}

/// Replay a reader that can be read only once through a pipeline (sorted).
pub fn replay_reader(
    reader: impl Read,
    rules: &[RuleSpec],
    opts: &input::ReplayOptions,
    progress: &mut dyn FnMut(u64),
    observer: Option<&mut dyn Observer>,
) -> std::io::Result<(Vec<Alert>, ReplayStats, Pipeline)> {
    let mut sink = PipelineSink::new(rules, observer);
    let stats = input::replay_reader(reader, rules, opts, progress, &mut sink)?;
    let (alerts, pipeline) = sink.finish();
    Ok((alerts, stats, pipeline))
}

/// [`replay_reader`] with the default limits.
pub fn replay_all(
    reader: impl Read,
    rules: &[RuleSpec],
    lateness: Duration,
    mut progress: impl FnMut(u64),
    observer: Option<&mut dyn Observer>,
) -> std::io::Result<(Vec<Alert>, ReplayStats, Pipeline)> {
    replay_reader(
        reader,
        rules,
        &input::ReplayOptions::new(lateness),
        &mut progress,
        observer,
    )
}

/// Apply one update, observed or not.
pub fn feed(
    pipeline: &mut Pipeline,
    update: Update,
    alerts: &mut Vec<Alert>,
    observer: Option<&mut (dyn Observer + '_)>,
) {
    match observer {
        Some(o) => pipeline.apply_observed(update, alerts, o),
        None => pipeline.apply(update, alerts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::replay::{ReplayOptions, Source};

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let input = b"not json\n{\"eventType\":\"user.session.start\",\"published\":\"2026-11-25T10:15:03Z\",\"outcome\":{\"result\":\"SUCCESS\"}}\n\n\xff\xfe\n";
        let (alerts, stats, _) = replay_all(
            &input[..],
            &[RuleSpec::named("okta-sign-ins")],
            Duration::ZERO,
            |_| {},
            None,
        )
        .unwrap();
        assert!(alerts.is_empty());
        assert_eq!(stats.lines, 4);
        assert_eq!(stats.blank, 1);
        assert_eq!(stats.malformed, 2);
        assert_eq!(stats.bins.matched, 1);
    }

    const EVENT: &str = r#"{"eventType":"user.session.start","published":"2026-11-25T10:15:03Z","outcome":{"result":"SUCCESS"}}"#;

    #[test]
    fn without_a_window_a_gap_of_two_thousand_years_is_skipped_in_one_step() {
        let old = EVENT.replace("2026-11-25T10:15:03Z", "0001-01-01T00:00:00Z");
        let input = format!("{old}\n{EVENT}\n");
        let opts = ReplayOptions {
            max_skew: None,
            ..ReplayOptions::new(Duration::ZERO)
        };
        let source = Source::Bytes {
            name: "t".into(),
            data: input.as_bytes(),
        };
        let (_, stats, pipeline) = replay_sources(
            &[source],
            &[RuleSpec::named("okta-sign-ins")],
            &opts,
            &mut |_| {},
            None,
        )
        .unwrap();
        assert_eq!(stats.bins.matched, 2);
        // One day of silence evaluated bin by bin, the rest unknown at once.
        let p = pipeline.stats();
        assert_eq!(p.series_bins_evaluated, 96 + 2);
        assert!(p.unknown_bins > 70_000_000, "{p:?}");
    }

    #[test]
    fn the_summary_says_which_rules_were_warming_up_and_until_when() {
        let input = b"{\"eventType\":\"user.session.start\",\"published\":\"2026-11-25T10:15:03Z\",\"outcome\":{\"result\":\"SUCCESS\"}}\n";
        let rules = [
            RuleSpec::named("okta-sign-ins"),
            RuleSpec::signal(
                "okta-threats-blocked",
                &["security.threat.detected"],
                crate::rule::Conditions::default(),
            ),
            RuleSpec::password_spraying(),
        ];
        let o = run(&input[..], input.len() as u64, &rules, Duration::ZERO).unwrap();
        let text = summary(&o, &rules);
        assert!(
            text.contains("warm-up (bins learned, not judged)"),
            "{text}"
        );
        assert!(
            text.contains(
                "okta-sign-ins            from 2026-11-25T10:15:00Z until 2026-11-27T10:15:00Z"
            ),
            "{text}"
        );
        assert!(
            text.contains("nothing judged after the warm-up above"),
            "{text}"
        );
        assert!(!text.contains("pages held"), "{text}");
        // Pages held as a retry wave are said out loud, not silently missing.
        let page = crate::pipeline::HeldPage {
            rule: "okta-sign-ins".into(),
            detector: "failure_spike",
            kind: crate::alert_kind::AlertKind::CredentialStuffing,
            bin_start_ms: 1_792_593_000_000,
            retries: crate::pipeline::Retries {
                retried: 64,
                failures: 77,
            },
        };
        let held = Outcome {
            held_waves: 3,
            held: vec![page],
            ..o
        };
        let text = summary(&held, &rules);
        for line in [
            "3 pages held (not written): most of their failures came from addresses that got in",
            "okta-sign-ins failure_spike (credential_stuffing) at 2026-10-21T14:30:00Z: 64 of 77 failures from addresses that got in",
            "... and 2 more",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
    }
}
