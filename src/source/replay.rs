//! Reading exports: NDJSON files, optionally gzip-compressed, one event per line.
//!
//! [`Replay`] runs lines through the whole local pipeline (parse → bin → detect →
//! lifecycle) and is what both `backtest` and the daemon's file source use, so the two
//! cannot drift apart.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::event::Event;
use crate::rule::RuleSpec;
use crate::series::Update;
use crate::source::binner::{Binner, BinnerStats};

/// Open a file for reading, decompressing it when it starts with the gzip magic bytes.
pub fn open(path: &Path) -> io::Result<(Box<dyn Read + Send>, u64)> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    let head = io::Cursor::new(magic[..n].to_vec());
    let chained = head.chain(f);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok((
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                1 << 16,
                chained,
            ))),
            len,
        ))
    } else {
        Ok((Box::new(chained), len))
    }
}

/// Splits a byte stream into lines with a large reusable buffer (no allocation per line).
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes handed out so far (including newlines).
    pub consumed: u64,
    /// Return a last line that has no newline at end of input. A follower turns this
    /// off: a line without its newline may still be being written.
    pub emit_partial: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: vec![0; 1 << 20],
            start: 0,
            end: 0,
            eof: false,
            consumed: 0,
            emit_partial: true,
        }
    }

    /// The next line without its newline, or `None` at end of input. A final line
    /// without a newline is returned too.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let (s, e) = (self.start, self.start + i);
                self.start = e + 1;
                self.consumed += (i + 1) as u64;
                return Ok(Some(trim_cr(&self.buf[s..e])));
            }
            if self.eof {
                if self.emit_partial && self.start < self.end {
                    let (s, e) = (self.start, self.end);
                    self.start = self.end;
                    self.consumed += (e - s) as u64;
                    return Ok(Some(trim_cr(&self.buf[s..e])));
                }
                return Ok(None);
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A line longer than the buffer: grow it.
            let n = self.buf.len();
            self.buf.resize(n * 2, 0);
        }
        let n = self.inner.read(&mut self.buf[self.end..])?;
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        Ok(())
    }

    /// Forget end-of-input so a follower can read what was appended since.
    pub fn clear_eof(&mut self) {
        self.eof = false;
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Counts of what a replay read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    pub lines: u64,
    pub blank: u64,
    pub malformed: u64,
    pub bins: BinnerStats,
}

/// Logs bad lines without flooding: the first few in full, then one line per
/// `EVERY` further bad lines.
struct BadLineLog {
    seen: u64,
}

impl BadLineLog {
    const FIRST: u64 = 5;
    const EVERY: u64 = 10_000;

    fn record(&mut self, line_no: u64, why: &dyn std::fmt::Display) {
        self.seen += 1;
        if self.seen <= Self::FIRST {
            tracing::warn!(line = line_no, reason = %why, "skipping a line that is not an Okta event");
        } else if self.seen.is_multiple_of(Self::EVERY) {
            tracing::warn!(skipped = self.seen, last_line = line_no, reason = %why, "still skipping bad lines");
        }
    }
}

/// Parse → bin, feeding updates to a closure (the pipeline, directly or over a channel).
pub struct Replay {
    binner: Binner,
    stats: ReplayStats,
    bad: BadLineLog,
    updates: Vec<Update>,
}

impl Replay {
    pub fn new(rules: &[RuleSpec], lateness: std::time::Duration) -> Replay {
        Replay {
            binner: Binner::new(rules, lateness),
            stats: ReplayStats::default(),
            bad: BadLineLog { seen: 0 },
            updates: Vec::new(),
        }
    }

    pub fn stats(&self) -> ReplayStats {
        ReplayStats {
            bins: self.binner.stats(),
            ..self.stats
        }
    }

    /// Take in one line. Bad lines are counted and logged, never fatal.
    pub fn line(&mut self, line: &[u8]) {
        self.stats.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            self.stats.blank += 1;
            return;
        }
        let parsed = match std::str::from_utf8(line) {
            Ok(text) => Event::parse(text).map_err(|e| e.to_string()),
            Err(e) => Err(format!("not UTF-8: {e}")),
        };
        match parsed {
            Ok(event) => self.binner.add(&event),
            Err(why) => {
                self.stats.malformed += 1;
                metrics::counter!("authpulse_malformed_lines_total").increment(1);
                self.bad.record(self.stats.lines, &why);
            }
        }
    }

    /// Updates for every bin that is final so far.
    pub fn ready_updates(&mut self) -> std::vec::Drain<'_, Update> {
        self.binner.flush_ready(&mut self.updates);
        self.updates.drain(..)
    }

    /// Updates for everything left (end of input).
    pub fn final_updates(&mut self) -> std::vec::Drain<'_, Update> {
        self.binner.flush_all(&mut self.updates);
        self.updates.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_split_on_newlines_with_crlf_and_no_final_newline() {
        let mut r = LineReader::new(&b"a\r\nbb\n\nccc"[..]);
        let mut got = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            got.push(String::from_utf8(l.to_vec()).unwrap());
        }
        assert_eq!(got, vec!["a", "bb", "", "ccc"]);
        assert_eq!(r.consumed, 10);
        let mut follower = LineReader::new(&b"a\nhalf"[..]);
        follower.emit_partial = false;
        assert_eq!(follower.next_line().unwrap(), Some(&b"a"[..]));
        assert_eq!(follower.next_line().unwrap(), None);
    }

    #[test]
    fn gzip_is_detected() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ndjson.gz");
        let mut enc = GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        enc.write_all(b"line1\nline2\n").unwrap();
        enc.finish().unwrap();
        let (reader, _) = open(&path).unwrap();
        let mut r = LineReader::new(reader);
        assert_eq!(r.next_line().unwrap(), Some(&b"line1"[..]));
        assert_eq!(r.next_line().unwrap(), Some(&b"line2"[..]));
        assert_eq!(r.next_line().unwrap(), None);
    }

    proptest! {
        #[test]
        fn line_reader_matches_split(chunks in proptest::collection::vec("[a-z\\n]{0,50}", 0..20)) {
            let text: String = chunks.concat();
            let mut r = LineReader::new(text.as_bytes());
            r.buf = vec![0; 8]; // tiny buffer: exercise refills and growth
            let mut got = Vec::new();
            while let Some(l) = r.next_line().unwrap() {
                got.push(String::from_utf8(l.to_vec()).unwrap());
            }
            let mut want: Vec<String> = text.split('\n').map(String::from).collect();
            if want.last().is_some_and(|s| s.is_empty()) {
                want.pop();
            }
            prop_assert_eq!(got, want);
        }
    }
}
