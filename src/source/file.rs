//! `source.kind = "file"`: replay an export from its start — sorted, so its order does
//! not matter — then follow lines appended to it (like `tail -F`) with the live `settle`
//! semantics.
//!
//! The clock of a file source is the events in it: a bin closes once events `settle` past
//! its end have been read. So a file that stops growing does not raise `flatline`, and
//! `run` over a file makes exactly the decisions `backtest` makes over it. With
//! `follow = false` the last bins are closed at end of file, as the backtest does.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{Source, SourceError, SourceEvent};
use std::io::Read;

use crate::retry::BoxFuture;
use crate::rule::RuleSpec;
use crate::source::replay::{self as input, Line, LineReader, Replay};

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
        let (replay, offset) = self.replay_file(tx)?;
        if !self.follow {
            return Ok(());
        }
        self.follow(replay, offset, tx, shutdown)
    }

    fn io_err(&self, error: std::io::Error) -> SourceError {
        SourceError::Io {
            path: self.path.display().to_string(),
            error,
        }
    }

    /// The file as it is now: sorted, so its order does not matter (a replay makes the
    /// decisions a backtest makes), then `CaughtUp`. Returns the replay to go on with and
    /// the bytes read.
    fn replay_file(&self, tx: &mpsc::Sender<SourceEvent>) -> Result<(Replay, u64), SourceError> {
        let opts = input::ReplayOptions::new(self.settle);
        let (mut replay, offset) = input::sorted_file_updates(
            &self.path,
            &self.rules,
            &opts,
            self.follow,
            &mut |updates| {
                tx.blocking_send(SourceEvent::Updates(updates))
                    .map_err(|_| std::io::Error::other("the daemon stopped listening"))
            },
        )
        .map_err(|e| self.io_err(e))?;
        let mut updates: Vec<_> = replay.ready_updates().collect();
        if !self.follow {
            updates.extend(final_updates(&mut replay).map_err(|e| self.io_err(e))?);
        }
        let s = replay.stats();
        tracing::info!(
            path = %self.path.display(),
            lines = s.lines,
            events = s.bins.events,
            malformed = s.malformed,
            duplicates = s.bins.duplicates,
            outside_window = s.outside_window,
            "file replayed"
        );
        if !updates.is_empty() {
            send(tx, SourceEvent::Updates(updates))?;
        }
        send(tx, SourceEvent::CaughtUp)?;
        Ok((replay, offset))
    }

    /// Lines appended after `offset`, as they come, with the live `settle` semantics.
    fn follow(
        &self,
        mut replay: Replay,
        offset: u64,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        // Open again and skip what the first pass read.
        let (mut reader, _) = input::open(&self.path).map_err(|e| self.io_err(e))?;
        std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink())
            .map_err(|e| self.io_err(e))?;
        let mut lines = LineReader::new(reader);
        lines.emit_partial = false;
        let mut line_no = replay.stats().lines;
        let mut since_flush = 0u64;
        loop {
            // Stop when told to, and also when the daemon is gone (its stop sender or its
            // receiver dropped without a word): a follower must never outlive it.
            if *shutdown.borrow() || shutdown.has_changed().is_err() || tx.is_closed() {
                return Ok(());
            }
            let line = lines.next_line().map_err(|e| self.io_err(e))?;
            let at_end = line.is_none();
            if let Some(line) = line {
                line_no += 1;
                match line {
                    Line::Text(text) => replay.line(text, line_no),
                    Line::TooLong { len } => replay.too_long(line_no, len),
                }
                since_flush += 1;
            }
            if at_end || since_flush >= BATCH_LINES {
                since_flush = 0;
                let updates: Vec<_> = replay.ready_updates().collect();
                if !updates.is_empty() {
                    send(tx, SourceEvent::Updates(updates))?;
                }
            }
            if at_end {
                std::thread::sleep(FOLLOW_POLL);
                lines.clear_eof();
            }
        }
    }
}

fn send(tx: &mpsc::Sender<SourceEvent>, event: SourceEvent) -> Result<(), SourceError> {
    tx.blocking_send(event).map_err(|_| SourceError::Closed)
}

fn final_updates(replay: &mut Replay) -> std::io::Result<Vec<crate::series::Update>> {
    match replay.final_updates() {
        Ok(u) => Ok(u.collect()),
        Err(input::Stop::Io(e)) => Err(e),
        Err(input::Stop::Disordered { .. }) => {
            Err(std::io::Error::other("an event out of order after sorting"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Update;

    fn updates_of(path: &std::path::Path) -> Vec<Update> {
        let source = FileSource {
            path: path.to_path_buf(),
            rules: crate::rule::RuleSpec::builtin(),
            settle: Duration::from_secs(120),
            follow: false,
        };
        let (tx, mut rx) = mpsc::channel(1 << 16);
        let (_stop, shutdown) = watch::channel(false);
        source.read_blocking(&tx, &shutdown).unwrap();
        drop(tx);
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if let SourceEvent::Updates(u) = e {
                out.extend(u);
            }
        }
        out
    }

    #[test]
    fn a_file_replays_the_same_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = Vec::new();
        for i in 0..3000i64 {
            let t = chrono::DateTime::from_timestamp(1_795_600_000 + i * 67, 0).unwrap();
            let result = if i % 7 == 0 { "FAILURE" } else { "SUCCESS" };
            lines.push(format!(
                r#"{{"eventType":"user.session.start","published":"{}","outcome":{{"result":"{result}"}},"client":{{"ipAddress":"192.0.2.{}"}},"actor":{{"alternateId":"u{}"}}}}"#,
                t.to_rfc3339(),
                i % 13,
                i % 17
            ));
        }
        let ordered = dir.path().join("ordered.ndjson");
        std::fs::write(&ordered, lines.join("\n")).unwrap();
        lines.reverse();
        let reversed = dir.path().join("reversed.ndjson");
        std::fs::write(&reversed, lines.join("\n")).unwrap();
        // The same updates; within a bin, split series come in hash order.
        let normal = |u: Vec<Update>| {
            let mut v: Vec<String> = u.iter().map(|u| format!("{u:?}")).collect();
            v.sort();
            v
        };
        let a = updates_of(&ordered);
        assert!(a.iter().any(|u| matches!(u, Update::Observe { .. })));
        let (a, b) = (normal(a), normal(updates_of(&reversed)));
        assert!(a == b, "{} and {} updates differ", a.len(), b.len());
    }
}
