//! `source.kind = "file"`: replay an NDJSON export from its start through the live path,
//! then follow lines appended to it (like `tail -F`).
//!
//! The clock of a file source is the events in it: a bin closes once events `settle` past
//! its end have been read. So a file that stops growing does not raise `flatline`, and
//! `run` over a file makes exactly the decisions `backtest` makes over it. With
//! `follow = false` the last bins are closed at end of file, as the backtest does.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{Source, SourceError, SourceEvent};
use crate::retry::BoxFuture;
use crate::rule::RuleSpec;
use crate::source::replay::{self, LineReader, Replay};

pub struct FileSource {
    pub path: PathBuf,
    pub rules: Vec<RuleSpec>,
    pub settle: Duration,
    pub follow: bool,
}

/// How often a follower looks for appended lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// Lines between hand-overs to the daemon while replaying.
const BATCH_LINES: u64 = 4096;

impl Source for FileSource {
    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<SourceEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            // File reading and parsing are blocking work: keep them off the async threads.
            match tokio::task::spawn_blocking(move || self.read_blocking(&tx, &shutdown)).await {
                Ok(result) => result,
                Err(_) => Err(SourceError::Closed),
            }
        })
    }
}

impl FileSource {
    fn read_blocking(
        &self,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        let io_err = |error| SourceError::Io {
            path: self.path.display().to_string(),
            error,
        };
        let (reader, _) = replay::open(&self.path).map_err(io_err)?;
        let mut lines = LineReader::new(reader);
        lines.emit_partial = !self.follow;
        let mut replay = Replay::new(&self.rules, self.settle);
        let mut caught_up = false;
        let mut since_flush = 0u64;
        let send = |events: Vec<SourceEvent>| -> Result<(), SourceError> {
            for e in events {
                tx.blocking_send(e).map_err(|_| SourceError::Closed)?;
            }
            Ok(())
        };
        loop {
            // Stop when told to, and also when the daemon is gone (its stop sender or its
            // receiver dropped without a word): a follower must never outlive it.
            if *shutdown.borrow() || shutdown.has_changed().is_err() || tx.is_closed() {
                return Ok(());
            }
            match lines.next_line().map_err(io_err)? {
                Some(line) => {
                    replay.line(line);
                    since_flush += 1;
                    if since_flush >= BATCH_LINES {
                        since_flush = 0;
                        let updates: Vec<_> = replay.ready_updates().collect();
                        if !updates.is_empty() {
                            send(vec![SourceEvent::Updates(updates)])?;
                        }
                    }
                }
                None => {
                    since_flush = 0;
                    let mut updates: Vec<_> = replay.ready_updates().collect();
                    if !self.follow {
                        updates.extend(replay.final_updates());
                    }
                    let mut events = Vec::new();
                    if !updates.is_empty() {
                        events.push(SourceEvent::Updates(updates));
                    }
                    if !caught_up {
                        caught_up = true;
                        let s = replay.stats();
                        tracing::info!(
                            path = %self.path.display(),
                            lines = s.lines,
                            events = s.bins.events,
                            malformed = s.malformed,
                            "file replayed"
                        );
                        events.push(SourceEvent::CaughtUp);
                    }
                    send(events)?;
                    if !self.follow {
                        return Ok(());
                    }
                    std::thread::sleep(FOLLOW_POLL);
                    lines.clear_eof();
                }
            }
        }
    }
}
