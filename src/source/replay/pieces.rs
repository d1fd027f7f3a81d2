//! Pieces of input: where each event candidate is, and the lines or values it comes in.

use std::io::{self, Read};

use super::document::DocumentSplitter;
use super::lines::{read_some, trim_cr, Line, LineReader};
use super::BATCH_LINES;

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
pub(super) fn peek<R: Read>(mut r: R) -> io::Result<(Vec<u8>, R)> {
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
pub(super) fn is_multiline_document(head: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    proptest! {
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
