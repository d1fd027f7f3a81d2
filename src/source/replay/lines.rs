//! Splitting a byte stream into lines with a bounded buffer.

use std::io::{self, Read};

use super::DEFAULT_MAX_LINE_BYTES;

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

pub(super) fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

pub(super) fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
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
    }
}
