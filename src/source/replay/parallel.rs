//! Parsing on a second thread: the fast path of a replay, for NDJSON.
//!
//! The calling thread reads lines (with the [`LineReader`]'s cap) into chunks of about
//! 1 MB and hands each to a parser thread; the parser turns every line that holds one
//! JSON object into an [`EventRef`] — the event's fields as ranges of the chunk, so
//! nothing is allocated per event — and hands the chunk back. The calling thread then
//! takes the lines in their order (binning, duplicates, the time window, lateness), so
//! the result is exactly that of [`super::each_piece`] on one thread. Lines that
//! are not one object (arrays, junk) go back unparsed and are split and parsed on the
//! calling thread as before: they are rare. At most [`IN_FLIGHT`] chunks are out at a
//! time, so memory stays bounded.

use std::borrow::Cow;
use std::io::{self, Read};
use std::sync::mpsc;

use super::{Line, LineReader, Piece, Pos};
use crate::event::Event;

/// Bytes of lines per chunk.
const CHUNK_BYTES: usize = 1 << 20;
/// Lines per chunk, at most: a parsed line takes a few hundred bytes whatever its length,
/// so a megabyte of blank lines must not make a million of them (found by the fuzz
/// driver: 460 kB of mostly newlines held 138 MiB).
const CHUNK_LINES: usize = 16 << 10;
/// Chunks handed out and not yet taken back.
const IN_FLIGHT: usize = 4;
/// Parser threads: on two cores, two parsers keep both busy while this thread reads and
/// bins (parsing is most of the work).
const PARSERS: usize = 2;

/// A field of an event: a range of the chunk, or text that needed unescaping.
#[derive(Debug, Clone)]
enum Text {
    None,
    Range(usize, usize),
    Owned(Box<str>),
}

impl Text {
    fn of(base: &str, value: Option<&Cow<'_, str>>) -> Text {
        match value {
            None => Text::None,
            Some(Cow::Borrowed(s)) => {
                let start = (s.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
                if start <= base.len() && start + s.len() <= base.len() {
                    Text::Range(start, start + s.len())
                } else {
                    Text::Owned((*s).into())
                }
            }
            Some(Cow::Owned(s)) => Text::Owned(s.as_str().into()),
        }
    }

    fn get<'a>(&'a self, line: &'a str) -> Option<Cow<'a, str>> {
        match self {
            Text::None => None,
            Text::Range(a, b) => line.get(*a..*b).map(Cow::Borrowed),
            Text::Owned(s) => Some(Cow::Borrowed(s)),
        }
    }
}

/// A parsed event whose strings point into its line.
#[derive(Debug, Clone)]
struct EventRef {
    published_ms: i64,
    event_type: Text,
    result: Text,
    reason: Text,
    ip: Text,
    user: Text,
    country: Text,
    browser: Text,
    uuid: Text,
    actor_id: Text,
    threat_suspected: Text,
}

impl EventRef {
    fn of(line: &str, e: &Event<'_>) -> EventRef {
        EventRef {
            published_ms: e.published_ms,
            event_type: Text::of(line, Some(&e.event_type)),
            result: Text::of(line, Some(&e.result)),
            reason: Text::of(line, e.reason.as_ref()),
            ip: Text::of(line, e.ip.as_ref()),
            user: Text::of(line, e.user.as_ref()),
            country: Text::of(line, e.country.as_ref()),
            browser: Text::of(line, e.browser.as_ref()),
            uuid: Text::of(line, e.uuid.as_ref()),
            actor_id: Text::of(line, e.actor_id.as_ref()),
            threat_suspected: Text::of(line, e.threat_suspected.as_ref()),
        }
    }

    fn event<'a>(&'a self, line: &'a str) -> Event<'a> {
        Event {
            published_ms: self.published_ms,
            event_type: self.event_type.get(line).unwrap_or_default(),
            result: self.result.get(line).unwrap_or_default(),
            reason: self.reason.get(line),
            ip: self.ip.get(line),
            user: self.user.get(line),
            country: self.country.get(line),
            browser: self.browser.get(line),
            uuid: self.uuid.get(line),
            actor_id: self.actor_id.get(line),
            threat_suspected: self.threat_suspected.get(line),
        }
    }
}

/// One line of a chunk.
enum Entry {
    Text { start: usize, end: usize },
    TooLong { len: u64 },
}

/// What the parser made of a line. Kept inline (the vector is reused chunk after chunk):
/// a box per event would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Event(EventRef),
    Bad(String),
    /// Not one object: split and parsed by the caller.
    Other,
}

struct Chunk {
    /// The lines, back to back, as read.
    buf: Vec<u8>,
    /// The same bytes once the parser found them valid UTF-8 as a whole (the usual
    /// case; `buf` is then empty): its lines are text as they are, with no second check
    /// on the reading thread.
    text: String,
    lines: Vec<Entry>,
    parsed: Vec<Parsed>,
    first_line: u64,
    /// Bytes of the input read once this chunk is done.
    consumed: u64,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            buf: Vec::with_capacity(CHUNK_BYTES + (64 << 10)),
            text: String::new(),
            lines: Vec::new(),
            parsed: Vec::new(),
            first_line: 0,
            consumed: 0,
        }
    }
}

impl Chunk {
    /// The bytes of one line.
    fn bytes(&self, start: usize, end: usize) -> &[u8] {
        let all = if self.buf.is_empty() {
            self.text.as_bytes()
        } else {
            &self.buf
        };
        all.get(start..end).unwrap_or_default()
    }

    /// One line as text, if it is UTF-8.
    fn line(&self, start: usize, end: usize) -> Result<&str, std::str::Utf8Error> {
        match self.text.get(start..end) {
            Some(line) => Ok(line),
            None => std::str::from_utf8(self.bytes(start, end)),
        }
    }
}

fn parse_chunk(chunk: &mut Chunk) {
    chunk.parsed.clear();
    match String::from_utf8(std::mem::take(&mut chunk.buf)) {
        Ok(text) => chunk.text = text,
        Err(e) => chunk.buf = e.into_bytes(),
    }
    for entry in &chunk.lines {
        let Entry::Text { start, end } = entry else {
            chunk.parsed.push(Parsed::Other);
            continue;
        };
        let bytes = chunk.bytes(*start, *end);
        let first = bytes.iter().position(|c| !c.is_ascii_whitespace());
        if first.map(|i| bytes[i]) != Some(b'{') {
            chunk.parsed.push(Parsed::Other);
            continue;
        }
        chunk.parsed.push(match chunk.line(*start, *end) {
            Err(e) => Parsed::Bad(format!("not UTF-8: {e}")),
            Ok(line) => match Event::parse(line) {
                Ok(e) => Parsed::Event(EventRef::of(line, &e)),
                Err(e) => Parsed::Bad(e.to_string()),
            },
        });
    }
}

/// What reading a source found (as [`super::ReadCounts`]).
pub struct Counts {
    pub lines: u64,
    pub bytes: u64,
}

/// What [`each_line`] hands out, in input order.
pub enum Item<'a> {
    /// An event the parser thread read from a line.
    Event(&'a Event<'a>, Pos),
    /// Anything else, as [`super::each_piece`] gives it.
    Piece(Piece<'a>),
}

/// Read `reader` line by line, parsing on a second thread, and hand every event and
/// every other piece to `f` in input order.
pub fn each_line<R: Read, E: From<io::Error>>(
    reader: R,
    max_line: usize,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(Item<'_>) -> Result<(), E>,
) -> Result<Counts, E> {
    std::thread::scope(|scope| {
        // Chunks go round the parsers in turn and come back in the same turn: in order.
        let (to_parser, from_parser): (Vec<_>, Vec<_>) =
            (0..PARSERS).map(|_| parser(scope)).unzip();
        let stopped = || io::Error::other("the parser thread stopped");
        let (mut sent, mut received) = (0usize, 0usize);
        let mut lines = LineReader::with_max_line(reader, max_line);
        let mut line_no = 0u64;
        let mut spare: Vec<Chunk> = Vec::new();
        let mut done = false;
        loop {
            // Fill the parsers' queues, then take back the oldest chunk.
            while !done && sent - received < IN_FLIGHT {
                let mut chunk = spare.pop().unwrap_or_else(Chunk::new);
                done = fill(&mut chunk, &mut lines, &mut line_no)?;
                if chunk.lines.is_empty() {
                    break;
                }
                to_parser[sent % PARSERS]
                    .send(chunk)
                    .map_err(|_| stopped())?;
                sent += 1;
            }
            if sent == received {
                break;
            }
            let chunk = from_parser[received % PARSERS]
                .recv()
                .map_err(|_| stopped())?;
            received += 1;
            take(&chunk, max_line, f)?;
            progress(chunk.consumed);
            spare.push(chunk);
        }
        drop(to_parser);
        Ok(Counts {
            lines: line_no,
            bytes: lines.consumed,
        })
    })
}

/// A parser thread: chunks in, parsed chunks out.
fn parser<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
) -> (mpsc::SyncSender<Chunk>, mpsc::Receiver<Chunk>) {
    let (to, parser_in) = mpsc::sync_channel::<Chunk>(IN_FLIGHT);
    let (parser_out, from) = mpsc::sync_channel::<Chunk>(IN_FLIGHT);
    scope.spawn(move || {
        for mut chunk in parser_in {
            parse_chunk(&mut chunk);
            if parser_out.send(chunk).is_err() {
                return;
            }
        }
    });
    (to, from)
}

/// Fill `chunk` with about [`CHUNK_BYTES`] of lines; true at the end of the input.
fn fill<R: Read>(
    chunk: &mut Chunk,
    lines: &mut LineReader<R>,
    line_no: &mut u64,
) -> io::Result<bool> {
    if chunk.buf.is_empty() {
        chunk.buf = std::mem::take(&mut chunk.text).into_bytes();
    }
    chunk.buf.clear();
    chunk.lines.clear();
    chunk.first_line = *line_no + 1;
    let mut done = false;
    while chunk.buf.len() < CHUNK_BYTES && chunk.lines.len() < CHUNK_LINES {
        match lines.next_line()? {
            None => {
                done = true;
                break;
            }
            Some(Line::Text(text)) => {
                let start = chunk.buf.len();
                chunk.buf.extend_from_slice(text);
                chunk.lines.push(Entry::Text {
                    start,
                    end: chunk.buf.len(),
                });
            }
            Some(Line::TooLong { len }) => chunk.lines.push(Entry::TooLong { len }),
        }
        *line_no += 1;
    }
    chunk.consumed = lines.consumed;
    Ok(done)
}

/// Hand a parsed chunk's lines to the caller, in order.
fn take<E>(
    chunk: &Chunk,
    max_line: usize,
    f: &mut dyn FnMut(Item<'_>) -> Result<(), E>,
) -> Result<(), E> {
    for (i, (entry, parsed)) in chunk.lines.iter().zip(&chunk.parsed).enumerate() {
        let line_no = chunk.first_line + i as u64;
        let at = Pos {
            line: line_no,
            element: None,
        };
        match (entry, parsed) {
            (Entry::TooLong { len }, _) => f(Item::Piece(Piece::Bad {
                at,
                why: format!(
                    "a line of {len} bytes, over the limit of {max_line} (--max-line-bytes): skipped"
                ),
            }))?,
            (Entry::Text { start, end }, Parsed::Event(r)) => {
                // Parsed from valid UTF-8: usually this only checks the bounds.
                let line = chunk.line(*start, *end).unwrap_or_default();
                f(Item::Event(&r.event(line), at))?;
            }
            (Entry::Text { .. }, Parsed::Bad(why)) => f(Item::Piece(Piece::Bad {
                at,
                why: why.clone(),
            }))?,
            (Entry::Text { start, end }, Parsed::Other) => {
                super::split_line(chunk.bytes(*start, *end), line_no, &mut |p| {
                    f(Item::Piece(p))
                })?
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Everything each_line hands out, as text.
    fn run(input: &[u8], max_line: usize) -> (Vec<String>, u64, u64) {
        let mut out = Vec::new();
        let counts = each_line::<_, io::Error>(input, max_line, &mut |_| {}, &mut |item| {
            out.push(match item {
                Item::Event(e, at) => format!("{at}: {e:?}"),
                Item::Piece(p) => describe(p),
            });
            Ok(())
        })
        .unwrap();
        (out, counts.lines, counts.bytes)
    }

    /// One piece as text: its event, or why it is bad.
    fn describe(p: Piece) -> String {
        match p {
            Piece::Blank => "blank".into(),
            Piece::Event { text, at } => match std::str::from_utf8(text)
                .map_err(|e| e.to_string())
                .and_then(|t| Event::parse(t).map_err(|e| e.to_string()))
            {
                Ok(e) => format!("{at}: {e:?}"),
                Err(why) => format!("{at}: bad: {why}"),
            },
            Piece::Bad { at, why } => format!("{at}: bad: {why}"),
        }
    }

    /// The same on one thread.
    fn sequential(input: &[u8], max_line: usize) -> (Vec<String>, u64, u64) {
        let mut out = Vec::new();
        let counts = super::super::each_piece::<_, io::Error>(
            input,
            max_line,
            true,
            &mut |_| {},
            &mut |p| {
                out.push(describe(p));
                Ok(())
            },
        )
        .unwrap();
        (out, counts.lines, counts.bytes)
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("not json".to_string()),
            Just(r#"{"eventType":"user.session.start","published":"2026-11-25T10:15:03Z","outcome":{"result":"FAILURE"},"client":{"ipAddress":"192.0.2.1"},"uuid":"u\"1"}"#.to_string()),
            Just(r#"[{"eventType":"a","published":"2026-11-25T10:15:03Z"},{"x":1}]"#.to_string()),
            Just(r#"{"eventType":5}"#.to_string()),
            Just(format!(r#"{{"eventType":"long","published":"2026-11-25T10:15:03Z","pad":"{}"}}"#, "x".repeat(300))),
            // Never a first line that opens a multi-line document.
            "[a-z :,\"]{0,40}".prop_map(String::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_same_pieces_in_the_same_order_as_on_one_thread(
            lines in proptest::collection::vec(line(), 0..60),
            repeat in 1usize..400,
        ) {
            // Repeat to cross chunk boundaries.
            let mut text = String::new();
            for _ in 0..repeat {
                for l in &lines {
                    text.push_str(l);
                    text.push('\n');
                }
            }
            prop_assert_eq!(run(text.as_bytes(), 256), sequential(text.as_bytes(), 256));
        }
    }
}
