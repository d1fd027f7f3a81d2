//! The fast path of a replay: stream the input as it comes, stopping at the first event
//! for a bin already handed over.

use std::io::{self, Read};

use super::intake::{Replay, ReplayStats, Stop};
use super::pieces::{each_piece, is_multiline_document, peek, ReadCounts};
use super::window::TimeWindow;
use super::{ReplayOptions, Source, UpdateSink, BATCH_LINES};
use crate::rule::RuleSpec;

/// The fast path: stream, stopping at the first late event.
pub(super) fn stream(
    sources: &[Source<'_>],
    rules: &[RuleSpec],
    opts: &ReplayOptions,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn UpdateSink,
) -> Result<ReplayStats, Stop> {
    let mut replay = Replay::with_window(rules, opts.lateness, TimeWindow::new(opts.max_skew));
    replay.strict = true;
    let mut done = 0u64;
    for source in sources {
        replay.set_source(&source.name());
        let (head, rest) = peek(source.open()?)?;
        let document = is_multiline_document(&head);
        let reader = io::Cursor::new(head).chain(rest);
        let mut pieces = 0u64;
        let counts = if opts.two_threads && !document {
            // NDJSON: parse on a second thread, place in order on this one.
            let counts = super::parallel::each_line::<_, Stop>(
                reader,
                opts.max_line_bytes,
                &mut |b| progress(done + b),
                &mut |item| {
                    match item {
                        super::parallel::Item::Event(e, at) => replay.event_ref(e, at)?,
                        super::parallel::Item::Piece(p) => replay.piece(p)?,
                    }
                    pieces += 1;
                    if pieces.is_multiple_of(BATCH_LINES) {
                        sink.updates(replay.ready_updates())?;
                    }
                    Ok(())
                },
            )?;
            ReadCounts {
                lines: counts.lines,
                bytes: counts.bytes,
            }
        } else {
            each_piece::<_, Stop>(
                reader,
                opts.max_line_bytes,
                true,
                &mut |b| progress(done + b),
                &mut |p| {
                    replay.piece(p)?;
                    pieces += 1;
                    if pieces.is_multiple_of(BATCH_LINES) {
                        sink.updates(replay.ready_updates())?;
                    }
                    Ok(())
                },
            )?
        };
        replay.stats.lines += counts.lines;
        done += counts.bytes;
    }
    sink.updates(replay.ready_updates())?;
    let rest = replay.final_updates()?;
    sink.updates(rest)?;
    Ok(replay.stats())
}
