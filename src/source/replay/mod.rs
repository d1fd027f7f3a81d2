//! Reading exports: every shape an Okta user has, in any order, with bounded memory.
//!
//! **Shapes.** A file (plain or gzip) holds one event per line (NDJSON), or lines that
//! are JSON arrays of events (a page of Okta's `/api/v1/logs`), or one JSON document —
//! an array of events or objects one after another — spread over many lines
//! (pretty-printed). Each event may be in any of the three wrappings [`Event::parse`]
//! takes. `--events` may name several files and folders ([`sources_of`]).
//!
//! **Order.** [`replay_sources`] first streams the input as it comes, the fast path for
//! an export in time order. If an event turns up for a bin already handed over, it starts
//! over on the same sources sorted by an external merge sort ([`crate::source::reorder`]), so the
//! alerts are the same whatever the order of the events, and nothing is dropped as late.
//!
//! **Limits.** A line (or a value of a pretty-printed document) longer than
//! `max_line_bytes` is refused without being held in memory; an event published outside a
//! window of `max_skew` around the first events read is refused; both are counted with a
//! reason. [`Replay`] turns events into bin updates (parse → bin) for an [`UpdateSink`]
//! and is what both `backtest` (whose sink is the pipeline) and the daemon's file source
//! use, so the two cannot drift apart.

use std::io::{self, Read};
use std::time::Duration;

use crate::rule::RuleSpec;
use crate::series::Update;

mod document;
mod intake;
mod lines;
mod open;
pub mod parallel;
mod pieces;
mod sorted;
mod stream;
mod window;

use sorted::sorted;
use stream::stream;

pub use intake::{Replay, ReplayStats, Stop, EXAMPLES};
pub use lines::{Line, LineReader};
pub use open::{maybe_gzip, open, sources_of, Source};
pub use pieces::{each_piece, split_line, Piece, Pos, ReadCounts};
pub use sorted::{sorted_file_updates, Opened};
pub use window::TimeWindow;

/// Default cap on one line (or one value of a pretty-printed document): a page of 1,000
/// Okta events on one line is a few MB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;
/// Default window around the first events: events published further away are refused.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(3 * 365 * 86_400 + 86_400);
/// Lines between hand-overs to the pipeline.
const BATCH_LINES: u64 = 4096;

/// How a replay reads its input.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// How far behind the newest event an event may be before its bin is handed over.
    pub lateness: Duration,
    /// Events further than this from the median of the first events are refused (`None`:
    /// no window).
    pub max_skew: Option<Duration>,
    pub max_line_bytes: usize,
    /// Memory for sorting an input that is out of order.
    pub sort_budget: usize,
    /// Parse NDJSON on a second thread ([`parallel`]) and, in a backtest,
    /// run the pipeline on another (see `offline::backtest`); off, everything runs on
    /// the calling thread.
    pub two_threads: bool,
}

impl ReplayOptions {
    pub fn new(lateness: Duration) -> ReplayOptions {
        ReplayOptions {
            lateness,
            max_skew: Some(DEFAULT_MAX_SKEW),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            sort_budget: crate::source::reorder::DEFAULT_BUDGET,
            two_threads: true,
        }
    }
}

/// Where a replay hands its updates: the pipeline of a backtest, the daemon's channel.
pub trait UpdateSink {
    fn updates(&mut self, updates: std::vec::Drain<'_, Update>) -> io::Result<()>;
    /// The replay starts over (sorted): forget every update handed over so far.
    fn restart(&mut self);
}

/// Replay `sources` into `sink`: streamed as they come while they are in time order,
/// else — at the first event for a bin already handed over — the sink is restarted and
/// the same sources are replayed sorted (see the module docs). `progress` gets the bytes
/// read so far.
pub fn replay_sources(
    sources: &[Source<'_>],
    rules: &[RuleSpec],
    opts: &ReplayOptions,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn UpdateSink,
) -> io::Result<ReplayStats> {
    match stream(sources, rules, opts, progress, sink) {
        Ok(stats) => return Ok(stats),
        Err(Stop::Io(e)) => return Err(e),
        Err(Stop::Disordered { source, at }) => {
            tracing::info!(source, position = %at, "the input is not in time order: replaying it sorted");
        }
    }
    sink.restart();
    let opened: Vec<Opened<'_>> = sources.iter().map(Opened::Later).collect();
    sorted(opened, rules, opts, progress, sink)
}

/// Replay one reader that cannot be read twice into `sink`: sorted (out-of-order input
/// is as common as ordered, and this path cannot start over).
pub fn replay_reader(
    reader: impl Read,
    rules: &[RuleSpec],
    opts: &ReplayOptions,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn UpdateSink,
) -> io::Result<ReplayStats> {
    sorted(
        vec![Opened::Now("input".into(), Box::new(reader))],
        rules,
        opts,
        progress,
        sink,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"eventType":"user.session.start","published":"2026-11-25T10:15:03Z","outcome":{"result":"SUCCESS"}}"#;

    /// Keeps the updates; a restart forgets them.
    #[derive(Default)]
    struct Collect(Vec<Update>, u32);

    impl UpdateSink for Collect {
        fn updates(&mut self, updates: std::vec::Drain<'_, Update>) -> io::Result<()> {
            self.0.extend(updates);
            Ok(())
        }
        fn restart(&mut self) {
            self.0.clear();
            self.1 += 1;
        }
    }

    fn replay_text(input: &[u8], opts: &ReplayOptions) -> ReplayStats {
        let source = Source::Bytes {
            name: "t".into(),
            data: input,
        };
        let mut sink = Collect::default();
        let stats = replay_sources(
            &[source],
            &[RuleSpec::named("okta-sign-ins")],
            opts,
            &mut |_| {},
            &mut sink,
        )
        .unwrap();
        assert_eq!(
            u32::from(stats.sorted),
            sink.1,
            "restarted exactly when sorted"
        );
        stats
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let input = format!("not json\n{EVENT}\n\n\u{1}\n");
        let mut bytes = input.into_bytes();
        bytes.extend(b"\xff\xfe\n");
        let stats = replay_text(&bytes, &ReplayOptions::new(Duration::ZERO));
        assert_eq!(stats.lines, 5);
        assert_eq!(stats.blank, 1);
        assert_eq!(stats.malformed, 3);
        assert_eq!(stats.bins.matched, 1);
        assert_eq!(stats.examples.len(), 3);
        assert!(
            stats.examples[0].starts_with("t line 1: not valid JSON"),
            "{:?}",
            stats.examples
        );
    }

    #[test]
    fn an_extreme_timestamp_is_refused_not_walked() {
        let old = EVENT.replace("2026-11-25T10:15:03Z", "0001-01-01T00:00:00Z");
        let future = EVENT.replace("2026-11-25T10:15:03Z", "9999-12-31T23:59:59Z");
        let input = format!("{old}\n{EVENT}\n{future}\n");
        let stats = replay_text(input.as_bytes(), &ReplayOptions::new(Duration::ZERO));
        assert_eq!((stats.outside_window, stats.bins.matched), (2, 1));
        assert_eq!(stats.dropped(), 2);
        assert!(
            stats.examples[0].contains("outside the time window"),
            "{:?}",
            stats.examples
        );
    }

    #[test]
    fn out_of_order_input_is_replayed_sorted_and_nothing_is_late() {
        // Newest first, a minute apart: far more than one batch, so bins are handed over
        // before the older events come.
        let start = 1_795_600_000_000i64;
        let mut input = String::new();
        for i in (0..6000).rev() {
            let t = chrono::DateTime::from_timestamp_millis(start + i * 60_000).unwrap();
            input += &EVENT.replace("2026-11-25T10:15:03Z", &t.to_rfc3339());
            input.push('\n');
        }
        let stats = replay_text(input.as_bytes(), &ReplayOptions::new(Duration::ZERO));
        assert!(stats.sorted);
        assert_eq!(
            (stats.bins.matched, stats.bins.late, stats.lines),
            (6000, 0, 6000)
        );
        // A sort budget far below the input: runs spill to disk and merge.
        let opts = ReplayOptions {
            sort_budget: 1,
            ..ReplayOptions::new(Duration::ZERO)
        };
        let spilled = replay_text(input.as_bytes(), &opts);
        assert!(spilled.spilled_bytes > 0);
        assert_eq!((spilled.bins.matched, spilled.bins.late), (6000, 0));
    }

    #[test]
    fn duplicates_by_uuid_are_removed_even_far_apart_in_the_file() {
        let with = |uuid: &str, t: &str| {
            EVENT.replace("2026-11-25T10:15:03Z", t).replace(
                "\"eventType\"",
                &format!("\"uuid\":\"{uuid}\",\"eventType\""),
            )
        };
        let a = "5b1f0b1e-6c1e-11ee-8c99-0242ac120002";
        let b = "5b1f0b1e-6c1e-11ee-8c99-0242ac120003";
        let mut input = String::new();
        input += &with(a, "2026-11-25T10:00:00Z");
        input += "\n";
        input += &with(b, "2026-11-25T10:00:00Z");
        input += "\n";
        input += &with(a, "2026-11-25T13:00:00Z");
        input += "\n";
        input += &with(a, "2026-11-25T10:00:00Z");
        input += "\n";
        let stats = replay_text(input.as_bytes(), &ReplayOptions::new(Duration::ZERO));
        // The last line repeats the first (same uuid, same time) three hours later in the
        // file; the third line has the same uuid at another time: a different event.
        assert_eq!((stats.bins.matched, stats.bins.duplicates), (3, 1));
    }
}
