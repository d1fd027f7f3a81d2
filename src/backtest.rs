//! `authpulse backtest` (and `demo`): replay an export through the same pipeline the
//! daemon runs, and report what would have paged.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::alert::{Alert, Status};
use crate::input::{self, ReplayStats};
use crate::rule::RuleSpec;

/// The result of one replay.
pub struct Outcome {
    pub alerts: Vec<Alert>,
    pub stats: ReplayStats,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Replay `reader` (of `size` bytes on disk, for progress) through `rules`.
pub fn run(
    reader: impl Read,
    size: u64,
    rules: &[RuleSpec],
    lateness: Duration,
) -> std::io::Result<Outcome> {
    let started = Instant::now();
    let mut progress = Progress::new(size);
    let mut bytes = 0;
    let (alerts, stats, _) = input::replay_all(reader, rules, lateness, |b| {
        bytes = b;
        progress.update(b);
    })?;
    progress.finish();
    Ok(Outcome {
        alerts,
        stats,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Replay a file (plain or gzip).
pub fn run_file(path: &Path, rules: &[RuleSpec], lateness: Duration) -> std::io::Result<Outcome> {
    let (reader, size) = input::open(path)?;
    run(reader, size, rules, lateness)
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
    t.push_str(&format!(
        "\nauthpulse backtest summary\n  read {} lines ({:.1} MB uncompressed) in {:.2} s: {:.0} MB/s, {:.0} events/s\n",
        s.lines,
        o.bytes as f64 / 1e6,
        secs,
        o.bytes as f64 / 1e6 / secs,
        s.bins.events as f64 / secs
    ));
    t.push_str(&format!(
        "  events counted by rules: {}   malformed lines skipped: {}   blank: {}   late events dropped: {}\n",
        s.bins.matched, s.malformed, s.blank, s.bins.late
    ));
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
