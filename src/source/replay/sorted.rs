//! The sorted path of a replay: every source through an external sort
//! ([`crate::source::reorder`]), then binned in time order.

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use super::intake::{Replay, ReplayStats, Stop};
use super::open::{open, Source};
use super::pieces::{each_piece, Piece, Pos};
use super::window::TimeWindow;
use super::{ReplayOptions, UpdateSink, BATCH_LINES};
use crate::event::{Event, ParseError};
use crate::rule::RuleSpec;
use crate::series::Update;
use crate::source::reorder::Sorter;

/// A source for a sorted replay: opened on demand, or a reader opened already.
pub enum Opened<'a> {
    Later(&'a Source<'a>),
    Now(String, Box<dyn Read + 'a>),
}

/// Read every source into the external sort, then replay the events in time order.
pub(super) fn sorted(
    sources: Vec<Opened<'_>>,
    rules: &[RuleSpec],
    opts: &ReplayOptions,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn UpdateSink,
) -> io::Result<ReplayStats> {
    let (mut replay, merged) = sort_sources(sources, rules, opts, true, progress)?;
    replay_merged(&mut replay, merged, &mut |u| sink.updates(u))?;
    let rest = replay.final_updates().map_err(stop_to_io)?;
    sink.updates(rest)?;
    Ok(replay.stats())
}

fn stop_to_io(s: Stop) -> io::Error {
    match s {
        Stop::Io(e) => e,
        Stop::Disordered { source, at } => io::Error::other(format!(
            "{source} {at}: an event is out of order after sorting"
        )),
    }
}

/// Pass one of a sorted replay: read, parse and check every piece, and put the events
/// into an external sort. Returns the replay that will bin them (holding the counts of
/// this pass: lines, malformed, refused) and the events in time order.
fn sort_sources(
    sources: Vec<Opened<'_>>,
    rules: &[RuleSpec],
    opts: &ReplayOptions,
    emit_partial: bool,
    progress: &mut dyn FnMut(u64),
) -> io::Result<(Replay, crate::source::reorder::Merged)> {
    let mut check = Replay::with_window(&[], Duration::ZERO, TimeWindow::new(opts.max_skew));
    let mut sorter = Sorter::new(opts.sort_budget);
    // Events held (time, text, where) until the window is anchored.
    let mut waiting: Vec<(i64, Vec<u8>, Pos)> = Vec::new();
    let mut done = 0u64;
    for source in sources {
        let (name, reader) = match source {
            Opened::Later(s) => (s.name(), s.open()? as Box<dyn Read>),
            Opened::Now(name, r) => (name, r),
        };
        check.set_source(&name);
        let counts = each_piece::<_, io::Error>(
            reader,
            opts.max_line_bytes,
            emit_partial,
            &mut |b| progress(done + b),
            &mut |p| {
                let (text, at) = match p {
                    Piece::Event { text, at } => (text, at),
                    other => {
                        let _ = check.piece(other);
                        return Ok(());
                    }
                };
                let ms = match std::str::from_utf8(text) {
                    Ok(t) => Event::parse(t)
                        .map(|e| e.published_ms)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("not UTF-8: {e}")),
                };
                let ms = match ms {
                    Ok(ms) => ms,
                    Err(why) => {
                        check.malformed(at, &why);
                        return Ok(());
                    }
                };
                if check.window.sampling() {
                    let full = check.window.sample(ms);
                    waiting.push((ms, text.to_vec(), at));
                    if full {
                        check.window.anchor();
                        for (ms, text, at) in std::mem::take(&mut waiting) {
                            admit(&mut check, &mut sorter, ms, &text, at)?;
                        }
                    }
                    return Ok(());
                }
                admit(&mut check, &mut sorter, ms, text, at)
            },
        )?;
        check.stats.lines += counts.lines;
        done += counts.bytes;
    }
    check.window.anchor();
    for (ms, text, at) in std::mem::take(&mut waiting) {
        admit(&mut check, &mut sorter, ms, &text, at)?;
    }
    let spilled = sorter.spilled_bytes;
    tracing::debug!(events = sorter.len(), spilled, "sorted the input");
    let merged = sorter.finish()?;
    let mut replay = Replay::with_window(rules, opts.lateness, TimeWindow::fixed(None));
    replay.stats = ReplayStats {
        sorted: true,
        spilled_bytes: spilled,
        ..check.stats.clone()
    };
    replay.bad = check.bad;
    Ok((replay, merged))
}

fn admit(check: &mut Replay, sorter: &mut Sorter, ms: i64, text: &[u8], at: Pos) -> io::Result<()> {
    if let Err(why) = check.window.check(ms) {
        check.stats.outside_window += 1;
        check.problem(at, &why);
        return Ok(());
    }
    sorter.push(ms, text)
}

/// Pass two of a sorted replay: bin the events in time order, handing over updates.
fn replay_merged(
    replay: &mut Replay,
    mut merged: crate::source::reorder::Merged,
    sink: &mut dyn FnMut(std::vec::Drain<'_, Update>) -> io::Result<()>,
) -> io::Result<()> {
    let mut n = 0u64;
    while let Some((_, text)) = merged.next_event()? {
        let at = Pos::default();
        let parsed = std::str::from_utf8(text)
            .map_err(|e| e.to_string())
            .and_then(|t| Event::parse(t).map_err(|e: ParseError| e.to_string()));
        match parsed {
            Ok(event) => replay.place(&event, at).map_err(stop_to_io)?,
            // Parsed once already: only a changed file could fail here.
            Err(why) => replay.malformed(at, &why),
        }
        n += 1;
        if n.is_multiple_of(BATCH_LINES) {
            sink(replay.ready_updates())?;
        }
    }
    sink(replay.ready_updates())
}

/// The daemon's file source, first pass: the file as it is now, sorted, as updates to
/// `sink`. Returns the replay (to go on with appended lines) and the bytes read, from
/// which a follower continues.
pub fn sorted_file_updates(
    path: &Path,
    rules: &[RuleSpec],
    opts: &ReplayOptions,
    follow: bool,
    sink: &mut dyn FnMut(Vec<Update>) -> io::Result<()>,
) -> io::Result<(Replay, u64)> {
    let (reader, _) = open(path)?;
    let mut bytes = 0u64;
    let (mut replay, merged) = sort_sources(
        vec![Opened::Now(path.display().to_string(), reader)],
        rules,
        opts,
        !follow,
        &mut |b| bytes = b,
    )?;
    replay.set_source(&path.display().to_string());
    replay_merged(&mut replay, merged, &mut |updates| {
        let v: Vec<Update> = updates.collect();
        if v.is_empty() {
            Ok(())
        } else {
            sink(v)
        }
    })?;
    Ok((replay, bytes))
}
