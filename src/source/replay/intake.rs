//! [`Replay`]: pieces of input in, bin updates out — parse, check the time window, bin —
//! with the counts of what could not be used.

use std::io;
use std::time::Duration;

use super::pieces::{split_line, Piece, Pos};
use super::window::{fmt_ms, TimeWindow};
use crate::event::Event;
use crate::rule::RuleSpec;
use crate::series::Update;
use crate::source::binner::{Added, Binner, BinnerStats};

/// Counts of what a replay read, and what it could not use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayStats {
    pub lines: u64,
    pub blank: u64,
    /// Pieces of input that hold no usable event (bad JSON, wrong types, lines over the
    /// cap, …).
    pub malformed: u64,
    /// Events refused for a publication time outside the window.
    pub outside_window: u64,
    pub bins: BinnerStats,
    /// The input was out of order and was replayed sorted.
    pub sorted: bool,
    /// Bytes the sort wrote to temporary files.
    pub spilled_bytes: u64,
    /// The first few problems, with where they were.
    pub examples: Vec<String>,
}

impl ReplayStats {
    /// Events that were read but could not be placed in a bin (late or outside the time
    /// window): a backtest that dropped any fails unless told it is fine.
    pub fn dropped(&self) -> u64 {
        self.bins.late + self.outside_window
    }
}

/// How many problems [`ReplayStats::examples`] keeps.
pub const EXAMPLES: usize = 5;

/// Logs bad input without flooding: the first few in full, then one line per `EVERY`.
#[derive(Debug, Default)]
pub(super) struct BadLineLog {
    seen: u64,
}

impl BadLineLog {
    const EVERY: u64 = 10_000;

    fn record(&mut self, examples: &mut Vec<String>, source: &str, at: Pos, why: &str) {
        self.seen += 1;
        if self.seen <= EXAMPLES as u64 {
            tracing::warn!(source, position = %at, reason = why, "skipping input that is not a usable Okta event");
            examples.push(if source.is_empty() {
                format!("{at}: {why}")
            } else {
                format!("{source} {at}: {why}")
            });
        } else if self.seen.is_multiple_of(Self::EVERY) {
            tracing::warn!(skipped = self.seen, source, last = %at, reason = why, "still skipping bad input");
        }
    }
}

/// The input turned out to be out of order (in a replay that must not drop events).
#[derive(Debug)]
pub enum Stop {
    Disordered { source: String, at: Pos },
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

/// Parse → bin, feeding updates to a closure (the pipeline, directly or over a channel).
pub struct Replay {
    binner: Binner,
    pub(super) stats: ReplayStats,
    pub(super) bad: BadLineLog,
    pub(super) window: TimeWindow,
    /// Events held until the window is anchored.
    waiting: Vec<(Event<'static>, Pos)>,
    /// Stop at the first late event instead of dropping it.
    pub(super) strict: bool,
    /// The source being read, for messages.
    source: String,
    updates: Vec<Update>,
}

impl Replay {
    /// A replay with no time window (the daemon's follower, tests).
    pub fn new(rules: &[RuleSpec], lateness: Duration) -> Replay {
        Replay::with_window(rules, lateness, TimeWindow::new(None))
    }

    pub fn with_window(rules: &[RuleSpec], lateness: Duration, window: TimeWindow) -> Replay {
        Replay {
            binner: Binner::new(rules, lateness),
            stats: ReplayStats::default(),
            bad: BadLineLog::default(),
            window,
            waiting: Vec::new(),
            strict: false,
            source: String::new(),
            updates: Vec::new(),
        }
    }

    pub fn stats(&self) -> ReplayStats {
        ReplayStats {
            bins: self.binner.stats(),
            ..self.stats.clone()
        }
    }

    /// Name the source being read (for messages).
    pub fn set_source(&mut self, name: &str) {
        self.source = name.to_string();
    }

    pub(super) fn problem(&mut self, at: Pos, why: &str) {
        self.bad
            .record(&mut self.stats.examples, &self.source, at, why);
    }

    /// Take in one line. Bad lines are counted and logged, never fatal.
    pub fn line(&mut self, line: &[u8], line_no: u64) {
        self.stats.lines += 1;
        let _ = split_line::<Stop>(line, line_no, &mut |p| self.piece(p));
    }

    /// A line over the length cap was skipped.
    pub fn too_long(&mut self, line_no: u64, len: u64) {
        self.stats.lines += 1;
        let at = Pos {
            line: line_no,
            element: None,
        };
        self.malformed(
            at,
            &format!("a line of {len} bytes, over the length limit: skipped"),
        );
    }

    /// Take in one piece of input; `Err` only in strict mode, at the first late event.
    pub fn piece(&mut self, piece: Piece<'_>) -> Result<(), Stop> {
        match piece {
            Piece::Blank => {
                self.stats.blank += 1;
                Ok(())
            }
            Piece::Bad { at, why } => {
                self.malformed(at, &why);
                Ok(())
            }
            Piece::Event { text, at } => {
                let parsed = match std::str::from_utf8(text) {
                    Ok(text) => Event::parse(text).map_err(|e| e.to_string()),
                    Err(e) => Err(format!("not UTF-8: {e}")),
                };
                match parsed {
                    Ok(event) => self.event(event, at),
                    Err(why) => {
                        self.malformed(at, &why);
                        Ok(())
                    }
                }
            }
        }
    }

    pub(super) fn malformed(&mut self, at: Pos, why: &str) {
        self.stats.malformed += 1;
        metrics::counter!("authpulse_malformed_lines_total").increment(1);
        self.problem(at, why);
    }

    fn event(&mut self, event: Event<'_>, at: Pos) -> Result<(), Stop> {
        if self.window.sampling() {
            let full = self.window.sample(event.published_ms);
            self.waiting.push((event.into_owned(), at));
            if full {
                self.end_sampling()?;
            }
            return Ok(());
        }
        self.place(&event, at)
    }

    /// [`Replay::event`] for an event borrowed from elsewhere (copied only while the
    /// window is still sampling).
    pub(super) fn event_ref(&mut self, event: &Event<'_>, at: Pos) -> Result<(), Stop> {
        if self.window.sampling() {
            return self.event(event.clone().into_owned(), at);
        }
        self.place(event, at)
    }

    fn end_sampling(&mut self) -> Result<(), Stop> {
        self.window.anchor();
        for (event, at) in std::mem::take(&mut self.waiting) {
            self.place(&event, at)?;
        }
        Ok(())
    }

    pub(super) fn place(&mut self, event: &Event<'_>, at: Pos) -> Result<(), Stop> {
        if let Err(why) = self.window.check(event.published_ms) {
            self.stats.outside_window += 1;
            metrics::counter!("authpulse_events_dropped_total", "reason" => "outside_window")
                .increment(1);
            self.problem(at, &why);
            return Ok(());
        }
        match self.binner.add(event) {
            Added::Late if self.strict => Err(Stop::Disordered {
                source: self.source.clone(),
                at,
            }),
            Added::Late => {
                metrics::counter!("authpulse_events_dropped_total", "reason" => "late")
                    .increment(1);
                let why = format!(
                    "published {}, in a bin already closed (late by more than the lateness allowed)",
                    fmt_ms(event.published_ms)
                );
                self.problem(at, &why);
                Ok(())
            }
            Added::Counted | Added::Duplicate => Ok(()),
        }
    }

    /// Updates for every bin that is final so far.
    pub fn ready_updates(&mut self) -> std::vec::Drain<'_, Update> {
        self.binner.flush_ready(&mut self.updates);
        self.updates.drain(..)
    }

    /// Updates for everything left (end of input).
    pub fn final_updates(&mut self) -> Result<std::vec::Drain<'_, Update>, Stop> {
        self.end_sampling()?;
        self.binner.flush_all(&mut self.updates);
        Ok(self.updates.drain(..))
    }

    /// End of what is there for now: place the events held for the window.
    pub fn caught_up(&mut self) {
        let _ = self.end_sampling();
    }
}
