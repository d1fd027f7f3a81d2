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

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::MultiGzDecoder;

use crate::event::{Event, ParseError};
use crate::rule::RuleSpec;
use crate::series::Update;
use crate::source::binner::{Added, Binner, BinnerStats};
use crate::source::reorder::Sorter;

/// Default cap on one line (or one value of a pretty-printed document): a page of 1,000
/// Okta events on one line is a few MB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;
/// Default window around the first events: events published further away are refused.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(3 * 365 * 86_400 + 86_400);
/// Events whose median time anchors the window.
const WINDOW_SAMPLE: usize = 1001;
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
    /// Parse NDJSON on a second thread ([`crate::source::parallel`]) and, in a backtest,
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

/// Open a file for reading, decompressing it when it starts with the gzip magic bytes.
pub fn open(path: &Path) -> io::Result<(Box<dyn Read + Send>, u64)> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    Ok((maybe_gzip(f)?, len))
}

/// `r`, decompressed when it starts with the gzip magic bytes.
pub fn maybe_gzip<'a, R: Read + Send + 'a>(mut r: R) -> io::Result<Box<dyn Read + Send + 'a>> {
    let mut magic = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match r.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let chained = io::Cursor::new(magic[..n].to_vec()).chain(r);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            chained,
        ))))
    } else {
        Ok(Box::new(chained))
    }
}

/// Where events come from: something that can be read again from the start (a replay
/// that finds its input out of order reads it a second time).
#[derive(Debug, Clone)]
pub enum Source<'a> {
    Path(PathBuf),
    /// Bytes in memory, plain or gzip, with a name for messages.
    Bytes {
        name: String,
        data: &'a [u8],
    },
}

impl Source<'_> {
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Bytes { name, .. } => name.clone(),
        }
    }

    pub fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        match self {
            Source::Path(p) => Ok(open(p)?.0),
            Source::Bytes { data, .. } => maybe_gzip(*data),
        }
    }

    /// Size on disk (for progress).
    pub fn size(&self) -> u64 {
        match self {
            Source::Path(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Source::Bytes { data, .. } => data.len() as u64,
        }
    }
}

/// The files `--events` names: files as given, folders as the files in them (sorted by
/// name; hidden files and subfolders are left out).
pub fn sources_of(paths: &[PathBuf]) -> io::Result<Vec<Source<'static>>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && !f
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: an empty folder", p.display()),
                ));
            }
            out.extend(files.into_iter().map(Source::Path));
        } else {
            // Fail early and clearly on a missing file.
            File::open(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            out.push(Source::Path(p.clone()));
        }
    }
    Ok(out)
}

/// What [`LineReader::next_line`] returns.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Text(&'a [u8]),
    /// A line longer than the cap: its bytes were skipped, not kept.
    TooLong {
        len: u64,
    },
}

/// Splits a byte stream into lines with a large reusable buffer (no allocation per line).
/// A line longer than `max_line` is skipped up to its newline with the buffer at its cap.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    max_line: usize,
    /// Bytes handed out so far (including newlines).
    pub consumed: u64,
    /// Return a last line that has no newline at end of input. A follower turns this
    /// off: a line without its newline may still be being written.
    pub emit_partial: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_max_line(inner, DEFAULT_MAX_LINE_BYTES)
    }

    pub fn with_max_line(inner: R, max_line: usize) -> Self {
        let max_line = max_line.max(16);
        LineReader {
            inner,
            buf: vec![0; (1 << 20).min(max_line + 1)],
            start: 0,
            end: 0,
            eof: false,
            max_line,
            consumed: 0,
            emit_partial: true,
        }
    }

    /// The next line without its newline, or `None` at end of input. A final line
    /// without a newline is returned too (unless `emit_partial` is off).
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let (s, e) = (self.start, self.start + i);
                self.start = e + 1;
                self.consumed += (i + 1) as u64;
                return Ok(Some(Line::Text(trim_cr(&self.buf[s..e]))));
            }
            if self.eof {
                if self.emit_partial && self.start < self.end {
                    let (s, e) = (self.start, self.end);
                    self.start = self.end;
                    self.consumed += (e - s) as u64;
                    return Ok(Some(Line::Text(trim_cr(&self.buf[s..e]))));
                }
                return Ok(None);
            }
            if self.end - self.start > self.max_line {
                return self.skip_long_line().map(Some);
            }
            self.fill()?;
        }
    }

    /// The buffer holds more than `max_line` bytes of one line: drop them and whatever
    /// follows up to the next newline, reading in buffer-sized steps.
    fn skip_long_line(&mut self) -> io::Result<Line<'static>> {
        let mut len = 0u64;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                len += i as u64;
                self.start += i + 1;
                self.consumed += len + 1;
                return Ok(Line::TooLong { len });
            }
            len += (self.end - self.start) as u64;
            self.start = 0;
            self.end = 0;
            if self.eof {
                // The input ends inside the line (for a follower the rest may still come:
                // it then reads as a line of its own, also reported).
                self.consumed += len;
                return Ok(Line::TooLong { len });
            }
            let n = read_some(&mut self.inner, &mut self.buf)?;
            if n == 0 {
                self.eof = true;
            }
            self.end = n;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A line longer than the buffer: grow it, up to just past the cap.
            let n = (self.buf.len() * 2)
                .min(self.max_line + 1)
                .max(self.buf.len() + 1);
            self.buf.resize(n, 0);
        }
        let n = read_some(&mut self.inner, &mut self.buf[self.end..])?;
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

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Where a piece of input is, for messages: line (1-based) and, inside an array, the
/// element (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub element: Option<u64>,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(e) = self.element {
            write!(f, ", element {e}")?;
        }
        Ok(())
    }
}

/// One piece of input: an event candidate or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A line with nothing on it (or an empty array).
    Blank,
    /// The text of one event (one object, or one element of an array).
    Event { text: &'a [u8], at: Pos },
    /// Input that cannot hold an event, and why.
    Bad { at: Pos, why: String },
}

/// Split one line into pieces: an object is one event, an array is one event per element.
pub fn split_line<E>(
    line: &[u8],
    line_no: u64,
    f: &mut dyn FnMut(Piece<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let at = Pos {
        line: line_no,
        element: None,
    };
    let Some(first) = line.iter().position(|c| !c.is_ascii_whitespace()) else {
        return f(Piece::Blank);
    };
    if line[first] != b'[' {
        return f(Piece::Event { text: line, at });
    }
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return f(Piece::Bad {
                at,
                why: format!("not UTF-8: {e}"),
            })
        }
    };
    match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text) {
        Ok(elements) if elements.is_empty() => f(Piece::Blank),
        Ok(elements) => {
            for (i, el) in elements.iter().enumerate() {
                let at = Pos {
                    line: line_no,
                    element: Some(i as u64 + 1),
                };
                f(Piece::Event {
                    text: el.get().as_bytes(),
                    at,
                })?;
            }
            Ok(())
        }
        Err(e) => f(Piece::Bad {
            at,
            why: format!("not a valid JSON array of events: {e}"),
        }),
    }
}

/// What reading one source found, besides its pieces.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadCounts {
    pub lines: u64,
    /// Bytes read (uncompressed).
    pub bytes: u64,
}

/// Read `reader` piece by piece: line by line, or — when its first line starts a JSON
/// value that goes on over later lines (a pretty-printed array or objects) — value by
/// value. `progress` gets the bytes read so far now and then.
pub fn each_piece<R: Read, E: From<io::Error>>(
    reader: R,
    max_line: usize,
    emit_partial: bool,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(Piece<'_>) -> Result<(), E>,
) -> Result<ReadCounts, E> {
    let (head, reader) = peek(reader)?;
    if is_multiline_document(&head) {
        let mut doc = DocumentSplitter::new(io::Cursor::new(head).chain(reader), max_line);
        return doc.run(progress, f);
    }
    let mut lines = LineReader::with_max_line(io::Cursor::new(head).chain(reader), max_line);
    lines.emit_partial = emit_partial;
    let mut n = 0u64;
    while let Some(line) = lines.next_line()? {
        n += 1;
        match line {
            Line::Text(text) => split_line(text, n, f)?,
            Line::TooLong { len } => f(Piece::Bad {
                at: Pos {
                    line: n,
                    element: None,
                },
                why: format!("a line of {len} bytes, over the limit of {max_line} (--max-line-bytes): skipped"),
            })?,
        }
        if n.is_multiple_of(BATCH_LINES) {
            progress(lines.consumed);
        }
    }
    progress(lines.consumed);
    Ok(ReadCounts {
        lines: n,
        bytes: lines.consumed,
    })
}

/// The first 64 KiB of `r` (or all of it), and a reader of the rest.
fn peek<R: Read>(mut r: R) -> io::Result<(Vec<u8>, R)> {
    let mut head = vec![0u8; 64 << 10];
    let mut n = 0;
    while n < head.len() {
        let k = read_some(&mut r, &mut head[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    head.truncate(n);
    Ok((head, r))
}

/// Does the input start with a JSON value that does not end on its first line?
fn is_multiline_document(head: &[u8]) -> bool {
    let Some(first) = head.iter().position(|c| !c.is_ascii_whitespace()) else {
        return false;
    };
    if !matches!(head[first], b'[' | b'{') {
        return false;
    }
    let Some(len) = memchr::memchr(b'\n', &head[first..]) else {
        return false;
    };
    let line = trim_cr(&head[first..first + len]);
    match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
        Ok(_) => false,
        Err(e) => e.classify() == serde_json::error::Category::Eof,
    }
}

/// Splits a JSON document into values without parsing them: a top-level array into its
/// elements, a run of top-level values into each. Tracks only nesting and strings, keeps
/// at most `max` bytes of a value, and resynchronises at the next line after a byte
/// that cannot start a value.
struct DocumentSplitter<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
    value: Vec<u8>,
    too_long: bool,
    line: u64,
    consumed: u64,
}

impl<R: Read> DocumentSplitter<R> {
    fn new(inner: R, max: usize) -> Self {
        DocumentSplitter {
            inner,
            buf: vec![0; 1 << 16],
            max,
            value: Vec::new(),
            too_long: false,
            line: 1,
            consumed: 0,
        }
    }

    fn run<E: From<io::Error>>(
        &mut self,
        progress: &mut dyn FnMut(u64),
        f: &mut dyn FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<ReadCounts, E> {
        // Nesting inside the current value; whether we are inside the top-level array.
        let mut depth = 0usize;
        let mut in_array = false;
        let (mut in_str, mut esc) = (false, false);
        let mut in_value = false;
        let mut skipping_line = false;
        let mut element = 0u64;
        let mut start = Pos::default();
        loop {
            let n = read_some(&mut self.inner, &mut self.buf)?;
            if n == 0 {
                break;
            }
            self.consumed += n as u64;
            for i in 0..n {
                let c = self.buf[i];
                if c == b'\n' {
                    self.line += 1;
                    if skipping_line {
                        skipping_line = false;
                        continue;
                    }
                }
                if skipping_line {
                    continue;
                }
                if in_value {
                    self.keep(c);
                    if in_str {
                        match (esc, c) {
                            (true, _) => esc = false,
                            (false, b'\\') => esc = true,
                            (false, b'"') => in_str = false,
                            _ => {}
                        }
                        continue;
                    }
                    match c {
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                self.emit(start, f)?;
                                in_value = false;
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                match c {
                    c if c.is_ascii_whitespace() => {}
                    b',' if in_array => {}
                    b'[' if !in_array && element == 0 && start.line == 0 => {
                        in_array = true;
                        start.line = self.line;
                    }
                    b']' if in_array => in_array = false,
                    b'{' | b'[' => {
                        element += 1;
                        start = Pos {
                            line: self.line,
                            element: in_array.then_some(element),
                        };
                        in_value = true;
                        depth = 1;
                        self.value.clear();
                        self.too_long = false;
                        self.keep(c);
                    }
                    other => {
                        element += 1;
                        f(Piece::Bad {
                            at: Pos {
                                line: self.line,
                                element: in_array.then_some(element),
                            },
                            why: format!(
                                "expected an Okta event (a JSON object), found `{}`; skipped to the next line",
                                char::from(other).escape_default()
                            ),
                        })?;
                        skipping_line = true;
                    }
                }
            }
            progress(self.consumed);
        }
        if in_value {
            f(Piece::Bad {
                at: start,
                why: "the input ends inside this value (truncated)".into(),
            })?;
        }
        Ok(ReadCounts {
            lines: self.line,
            bytes: self.consumed,
        })
    }

    fn keep(&mut self, c: u8) {
        if self.value.len() < self.max {
            self.value.push(c);
        } else {
            self.too_long = true;
        }
    }

    fn emit<E>(&mut self, at: Pos, f: &mut dyn FnMut(Piece<'_>) -> Result<(), E>) -> Result<(), E> {
        if self.too_long {
            return f(Piece::Bad {
                at,
                why: format!(
                    "a value over the limit of {} bytes (--max-line-bytes): skipped",
                    self.max
                ),
            });
        }
        f(Piece::Event {
            text: &self.value,
            at,
        })
    }
}

/// The window of plausible publication times: `max_skew` either side of the median of the
/// first events read. One event dated `0001-01-01` or `9999-12-31` is refused instead of
/// stretching the replay over millennia.
#[derive(Debug, Clone)]
pub struct TimeWindow {
    max_skew_ms: Option<i64>,
    sample: Vec<i64>,
    bounds: Option<(i64, i64)>,
}

impl TimeWindow {
    pub fn new(max_skew: Option<Duration>) -> TimeWindow {
        TimeWindow {
            max_skew_ms: max_skew.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            sample: Vec::new(),
            bounds: None,
        }
    }

    /// Explicit bounds (a second pass that must decide as the first did).
    pub fn fixed(bounds: Option<(i64, i64)>) -> TimeWindow {
        TimeWindow {
            max_skew_ms: None,
            sample: Vec::new(),
            bounds,
        }
    }

    /// Still collecting the events that anchor it?
    pub fn sampling(&self) -> bool {
        self.max_skew_ms.is_some() && self.bounds.is_none()
    }

    /// Add an event time to the sample; true once the sample is full.
    pub fn sample(&mut self, ms: i64) -> bool {
        self.sample.push(ms);
        self.sample.len() >= WINDOW_SAMPLE
    }

    /// Fix the window around the median of the sample.
    pub fn anchor(&mut self) {
        let Some(skew) = self.max_skew_ms else {
            return;
        };
        if self.bounds.is_some() || self.sample.is_empty() {
            return;
        }
        self.sample.sort_unstable();
        let median = self.sample[self.sample.len() / 2];
        self.bounds = Some((median.saturating_sub(skew), median.saturating_add(skew)));
        self.sample = Vec::new();
    }

    pub fn bounds(&self) -> Option<(i64, i64)> {
        self.bounds
    }

    /// `Err(why)` for a time outside the window.
    pub fn check(&self, ms: i64) -> Result<(), String> {
        match self.bounds {
            Some((lo, hi)) if ms < lo || ms > hi => Err(format!(
                "published {} is outside the time window {} to {} (the median of the first events ± --max-time-skew)",
                fmt_ms(ms),
                fmt_ms(lo),
                fmt_ms(hi)
            )),
            _ => Ok(()),
        }
    }
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

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
struct BadLineLog {
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
    stats: ReplayStats,
    bad: BadLineLog,
    window: TimeWindow,
    /// Events held until the window is anchored.
    waiting: Vec<(Event<'static>, Pos)>,
    /// Stop at the first late event instead of dropping it.
    strict: bool,
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

    fn problem(&mut self, at: Pos, why: &str) {
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

    fn malformed(&mut self, at: Pos, why: &str) {
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
    fn event_ref(&mut self, event: &Event<'_>, at: Pos) -> Result<(), Stop> {
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

    fn place(&mut self, event: &Event<'_>, at: Pos) -> Result<(), Stop> {
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

/// The fast path: stream, stopping at the first late event.
fn stream(
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
            let counts = crate::source::parallel::each_line::<_, Stop>(
                reader,
                opts.max_line_bytes,
                &mut |b| progress(done + b),
                &mut |item| {
                    match item {
                        crate::source::parallel::Item::Event(e, at) => replay.event_ref(e, at)?,
                        crate::source::parallel::Item::Piece(p) => replay.piece(p)?,
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

/// A source for a sorted replay: opened on demand, or a reader opened already.
pub enum Opened<'a> {
    Later(&'a Source<'a>),
    Now(String, Box<dyn Read + 'a>),
}

/// Read every source into the external sort, then replay the events in time order.
fn sorted(
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines_of(r: &mut LineReader<&[u8]>) -> Vec<String> {
        let mut got = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            got.push(match l {
                Line::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
                Line::TooLong { len } => format!("<too long: {len}>"),
            });
        }
        got
    }

    #[test]
    fn lines_split_on_newlines_with_crlf_and_no_final_newline() {
        let mut r = LineReader::new(&b"a\r\nbb\n\nccc"[..]);
        assert_eq!(lines_of(&mut r), vec!["a", "bb", "", "ccc"]);
        assert_eq!(r.consumed, 10);
        let mut follower = LineReader::new(&b"a\nhalf"[..]);
        follower.emit_partial = false;
        assert_eq!(follower.next_line().unwrap(), Some(Line::Text(&b"a"[..])));
        assert_eq!(follower.next_line().unwrap(), None);
    }

    #[test]
    fn a_line_over_the_cap_is_skipped_with_a_bounded_buffer() {
        let mut text = b"short\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 100_000));
        text.extend(b"\nafter\n");
        text.extend(std::iter::repeat_n(b'y', 50_000));
        let mut r = LineReader::with_max_line(&text[..], 1000);
        assert_eq!(
            lines_of(&mut r),
            vec!["short", "<too long: 100000>", "after", "<too long: 50000>"]
        );
        assert!(
            r.buf.len() <= 1001,
            "the buffer stayed at the cap: {}",
            r.buf.len()
        );
        assert_eq!(r.consumed, text.len() as u64);
    }

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
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(&b"line1"[..])));
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(&b"line2"[..])));
        assert_eq!(r.next_line().unwrap(), None);
    }

    fn pieces(input: &str) -> Vec<String> {
        let mut out = Vec::new();
        each_piece::<_, io::Error>(input.as_bytes(), 1 << 20, true, &mut |_| {}, &mut |p| {
            out.push(match p {
                Piece::Blank => "blank".to_string(),
                Piece::Event { text, at } => {
                    format!("{at}: {}", String::from_utf8_lossy(text))
                }
                Piece::Bad { at, why } => format!("{at}: bad: {why}"),
            });
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn arrays_on_a_line_are_one_event_per_element() {
        let got = pieces("{\"a\":1}\n[{\"b\":2}, {\"c\":[3]}]\n[]\n[1,\n");
        assert_eq!(got[0], "line 1: {\"a\":1}");
        assert_eq!(got[1], "line 2, element 1: {\"b\":2}");
        assert_eq!(got[2], "line 2, element 2: {\"c\":[3]}");
        assert_eq!(got[3], "blank");
        assert!(
            got[4].starts_with("line 4: bad: not a valid JSON array"),
            "{got:?}"
        );
    }

    #[test]
    fn a_pretty_printed_document_is_split_into_its_values() {
        let doc = "[\n  {\n    \"a\": \"x]}\\\"\",\n    \"b\": [1, {\"c\": 2}]\n  },\n  {\"d\": 3},\n  null,\n  {\"e\": 4}\n]\n";
        let got = pieces(doc);
        assert_eq!(
            got,
            vec![
                "line 2, element 1: {\n    \"a\": \"x]}\\\"\",\n    \"b\": [1, {\"c\": 2}]\n  }",
                "line 6, element 2: {\"d\": 3}",
                "line 7, element 3: bad: expected an Okta event (a JSON object), found `n`; skipped to the next line",
                "line 8, element 4: {\"e\": 4}",
            ]
        );
        // jq's default output: objects one after another, each over several lines.
        let got = pieces("{\n \"a\": 1\n}\n{\n \"b\": 2\n}\n");
        assert_eq!(
            got,
            vec!["line 1: {\n \"a\": 1\n}", "line 4: {\n \"b\": 2\n}"]
        );
        let got = pieces("[\n {\"a\": 1},\n {\"b\": ");
        assert_eq!(
            got[1],
            "line 3, element 2: bad: the input ends inside this value (truncated)"
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

    proptest! {
        #[test]
        fn line_reader_matches_split(chunks in proptest::collection::vec("[a-z\\n]{0,50}", 0..20)) {
            let text: String = chunks.concat();
            let mut r = LineReader::new(text.as_bytes());
            r.buf = vec![0; 8]; // tiny buffer: exercise refills and growth
            let got = lines_of(&mut r);
            let mut want: Vec<String> = text.split('\n').map(String::from).collect();
            if want.last().is_some_and(|s| s.is_empty()) {
                want.pop();
            }
            prop_assert_eq!(got, want);
        }

        #[test]
        fn capped_line_reader_never_holds_more_than_the_cap(
            chunks in proptest::collection::vec("[a-z]{0,80}\\n?", 0..30),
            cap in 16usize..64,
        ) {
            let text: String = chunks.concat();
            let mut r = LineReader::with_max_line(text.as_bytes(), cap);
            let got = lines_of(&mut r);
            let mut want: Vec<String> = text.split('\n').map(|l| {
                if l.len() > cap { format!("<too long: {}>", l.len()) } else { l.to_string() }
            }).collect();
            if want.last().is_some_and(|s| s.is_empty()) {
                want.pop();
            }
            prop_assert_eq!(got, want);
            prop_assert!(r.buf.len() <= cap + 1);
        }

        #[test]
        fn any_document_splits_without_panicking(s in "[\\[\\]{}\",:a-z0-9 \\n\\\\]{0,200}") {
            let _ = pieces(&s);
        }

        #[test]
        fn compact_and_pretty_arrays_give_the_same_events(
            values in proptest::collection::vec(proptest::collection::btree_map("[a-z]{1,4}", "[a-z\"\\\\\\]\\[{}]{0,6}", 0..4), 1..6)
        ) {
            let arr = serde_json::Value::Array(values.iter().map(|m| serde_json::json!(m)).collect());
            let compact: Vec<serde_json::Value> = pieces(&format!("{arr}\n")).iter()
                .map(|p| serde_json::from_str(p.split_once(": ").unwrap().1).unwrap()).collect();
            let pretty_text = serde_json::to_string_pretty(&arr).unwrap();
            let pretty: Vec<serde_json::Value> = pieces(&pretty_text).iter()
                .map(|p| serde_json::from_str(p.split_once(": ").unwrap().1).unwrap()).collect();
            prop_assert_eq!(&compact, &pretty);
            prop_assert_eq!(compact.len(), values.len());
        }
    }
}
