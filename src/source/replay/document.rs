//! Pretty-printed documents: a JSON array or a run of values over many lines, split into
//! values without parsing them.

use std::io::{self, Read};

use super::lines::read_some;
use super::pieces::{Piece, Pos, ReadCounts};

/// Splits a JSON document into values without parsing them: a top-level array into its
/// elements, a run of top-level values into each. Tracks only nesting and strings, keeps
/// at most `max` bytes of a value, and resynchronises at the next line after a byte
/// that cannot start a value.
pub(super) struct DocumentSplitter<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
    value: Vec<u8>,
    too_long: bool,
    line: u64,
    consumed: u64,
    /// Nesting inside the current value.
    depth: usize,
    /// Inside the top-level array.
    in_array: bool,
    in_str: bool,
    esc: bool,
    in_value: bool,
    /// After a byte that cannot start a value: skipping to the next line.
    skipping_line: bool,
    /// Values started so far.
    element: u64,
    /// Where the current value (or the top-level array) starts.
    start: Pos,
}

impl<R: Read> DocumentSplitter<R> {
    pub(super) fn new(inner: R, max: usize) -> Self {
        DocumentSplitter {
            inner,
            buf: vec![0; 1 << 16],
            max,
            value: Vec::new(),
            too_long: false,
            line: 1,
            consumed: 0,
            depth: 0,
            in_array: false,
            in_str: false,
            esc: false,
            in_value: false,
            skipping_line: false,
            element: 0,
            start: Pos::default(),
        }
    }

    pub(super) fn run<E: From<io::Error>>(
        &mut self,
        progress: &mut dyn FnMut(u64),
        f: &mut dyn FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<ReadCounts, E> {
        loop {
            let n = read_some(&mut self.inner, &mut self.buf)?;
            if n == 0 {
                break;
            }
            self.consumed += n as u64;
            for i in 0..n {
                let c = self.buf[i];
                self.byte(c, f)?;
            }
            progress(self.consumed);
        }
        if self.in_value {
            f(Piece::Bad {
                at: self.start,
                why: "the input ends inside this value (truncated)".into(),
            })?;
        }
        Ok(ReadCounts {
            lines: self.line,
            bytes: self.consumed,
        })
    }

    fn byte<E>(&mut self, c: u8, f: &mut dyn FnMut(Piece<'_>) -> Result<(), E>) -> Result<(), E> {
        if c == b'\n' {
            self.line += 1;
            if self.skipping_line {
                self.skipping_line = false;
                return Ok(());
            }
        }
        if self.skipping_line {
            Ok(())
        } else if self.in_value {
            self.inside_value(c, f)
        } else {
            self.between_values(c, f)
        }
    }

    /// A byte of a value: kept, and followed for strings and nesting to find its end.
    fn inside_value<E>(
        &mut self,
        c: u8,
        f: &mut dyn FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.keep(c);
        if self.in_str {
            match (self.esc, c) {
                (true, _) => self.esc = false,
                (false, b'\\') => self.esc = true,
                (false, b'"') => self.in_str = false,
                _ => {}
            }
            return Ok(());
        }
        match c {
            b'"' => self.in_str = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.in_value = false;
                    return self.emit(self.start, f);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A byte between values: the top-level array's brackets and commas, the start of a
    /// value, or a byte that cannot start one (reported; the rest of its line skipped).
    fn between_values<E>(
        &mut self,
        c: u8,
        f: &mut dyn FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match c {
            c if c.is_ascii_whitespace() => {}
            b',' if self.in_array => {}
            b'[' if !self.in_array && self.element == 0 && self.start.line == 0 => {
                self.in_array = true;
                self.start.line = self.line;
            }
            b']' if self.in_array => self.in_array = false,
            b'{' | b'[' => {
                self.element += 1;
                self.start = Pos {
                    line: self.line,
                    element: self.in_array.then_some(self.element),
                };
                self.in_value = true;
                self.depth = 1;
                self.value.clear();
                self.too_long = false;
                self.keep(c);
            }
            other => {
                self.element += 1;
                f(Piece::Bad {
                    at: Pos {
                        line: self.line,
                        element: self.in_array.then_some(self.element),
                    },
                    why: format!(
                        "expected an Okta event (a JSON object), found `{}`; skipped to the next line",
                        char::from(other).escape_default()
                    ),
                })?;
                self.skipping_line = true;
            }
        }
        Ok(())
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
