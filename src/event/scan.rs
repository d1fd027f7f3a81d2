//! The fast path of [`Event::parse`]: one pass over the bytes that checks the whole text
//! is JSON and picks out the few fields a rule reads, allocating nothing.
//!
//! It takes the common shape only — an EventBridge envelope or a bare Okta event, every
//! field it keeps a plain string (no escapes) or `null`. Anything else it is not sure of —
//! an escape in a key or a kept field, a kept field of another type, an `@message`, a
//! `detail` inside `detail`, very deep nesting, any error at all — it hands back to the
//! serde path ([`super::raw`]), which then gives the exact result or error. So when
//! [`event`] returns `Some(e)`, `raw::parse` returns `Ok(e)` for the same text (a property
//! test holds the two to it), and every message stays the serde path's.
//!
//! Values it skips are checked as serde_json checks them when it ignores a value: JSON
//! grammar, numbers, literals, escapes, no control characters in strings.

use std::borrow::Cow;

use super::{known, parse_rfc3339_ms, Event};

/// "Not sure: ask the serde path."
struct Fallback;

type Scan<T> = Result<T, Fallback>;

/// Nesting deeper than this is left to serde_json.
const MAX_DEPTH: usize = 64;

/// The Okta fields of one object (the envelope's `detail`, or a bare event). A field that
/// appears twice keeps its last value, as serde's visitors do; an object field (`client`)
/// that appears again replaces everything read from it before.
#[derive(Default)]
struct Fields<'a> {
    event_type: Option<&'a str>,
    published: Option<&'a str>,
    uuid: Option<&'a str>,
    result: Option<&'a str>,
    reason: Option<&'a str>,
    user: Option<&'a str>,
    actor_id: Option<&'a str>,
    ip: Option<&'a str>,
    country: Option<&'a str>,
    browser: Option<&'a str>,
    threat_suspected: Option<&'a str>,
}

/// The event in `text`, or `None` when the serde path must decide.
pub(super) fn event(text: &str) -> Option<Event<'_>> {
    let mut s = Scanner {
        b: text.as_bytes(),
        text,
        i: 0,
    };
    let top = s.top().ok()?;
    s.ws();
    if s.i != s.b.len() {
        return None;
    }
    match top.detail {
        Some(detail) => detail.into_event(top.time),
        None if top.okta.event_type.is_some() => top.okta.into_event(top.time),
        None => None,
    }
}

impl<'a> Fields<'a> {
    fn into_event(self, envelope_time: Option<&'a str>) -> Option<Event<'a>> {
        let event_type = self.event_type?;
        let published_ms = parse_rfc3339_ms(self.published.or(envelope_time)?)?;
        let cow = |v: Option<&'a str>| v.map(Cow::Borrowed);
        Some(Event {
            published_ms,
            event_type: Cow::Borrowed(event_type),
            result: Cow::Borrowed(self.result.unwrap_or("UNKNOWN")),
            reason: cow(self.reason),
            ip: known(cow(self.ip)),
            user: cow(self.user),
            country: known(cow(self.country)),
            browser: known(cow(self.browser)),
            uuid: cow(self.uuid),
            actor_id: cow(self.actor_id),
            threat_suspected: cow(self.threat_suspected),
        })
    }
}

/// The top-level object: the envelope and export fields next to the Okta ones.
#[derive(Default)]
struct Top<'a> {
    okta: Fields<'a>,
    detail: Option<Fields<'a>>,
    time: Option<&'a str>,
}

struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` that are `"`, `\` or a control character, as their high bits; the
/// lowest one set is exact (the usual SWAR test for bytes below `n`: its borrows only run
/// upwards). `"` (0x22) xor 0x02 is 0x20 while control characters stay under 0x20 (and
/// space and `!` become 0x22 and 0x23), so one test below 0x21 finds both.
fn specials(w: u64) -> u64 {
    let below = |v: u64, n: u64| v.wrapping_sub(LO * n) & !v & HI;
    below(w ^ (LO * 0x02), 0x21) | below(w ^ (LO * u64::from(b'\\')), 1)
}

/// Eight bytes as one little-endian word.
fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Skip whitespace and take `c`.
    fn take(&mut self, c: u8) -> Scan<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// A string starting at its opening quote: its raw text and whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Scan<(&'a str, bool)> {
        let start = self.i + 1;
        let (end, escaped) = self.string_end()?;
        Ok((self.text.get(start..end).ok_or(Fallback)?, escaped))
    }

    /// Past a string starting at its opening quote: where its text ends (the closing
    /// quote) and whether it has escapes. Inlined where it is called: most strings are
    /// short keys and values, so the call, not the bytes, was most of their cost. The
    /// loop leaves for [`Scanner::string_rest`] only at an escape, a control character
    /// or the last bytes of the text.
    #[inline(always)]
    fn string_end(&mut self) -> Scan<(usize, bool)> {
        self.i += 1;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let hits = specials(word(chunk));
            if hits != 0 {
                self.i += (hits.trailing_zeros() / 8) as usize;
                if self.b.get(self.i) == Some(&b'"') {
                    self.i += 1;
                    return Ok((self.i - 1, false));
                }
                break;
            }
            self.i += 8;
        }
        self.string_rest()
    }

    /// The rest of a string from `i` (inside it): escapes, and the last bytes of the
    /// text, which are fewer than a word.
    #[inline(never)]
    fn string_rest(&mut self) -> Scan<(usize, bool)> {
        let mut escaped = false;
        loop {
            // Eight bytes at a time to the next quote, backslash or control character.
            while let Some(chunk) = self.b.get(self.i..self.i + 8) {
                let hits = specials(word(chunk));
                if hits != 0 {
                    self.i += (hits.trailing_zeros() / 8) as usize;
                    break;
                }
                self.i += 8;
            }
            match self.peek().ok_or(Fallback)? {
                b'"' => {
                    self.i += 1;
                    return Ok((self.i - 1, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                c if c < 0x20 => return Err(Fallback),
                _ => self.i += 1,
            }
        }
    }

    /// An escape, as serde_json checks one in a value it ignores.
    fn escape(&mut self) -> Scan<()> {
        match self.b.get(self.i + 1).ok_or(Fallback)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
            b'u' => {
                let hex = self.b.get(self.i + 2..self.i + 6).ok_or(Fallback)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(Fallback);
                }
                self.i += 6;
            }
            _ => return Err(Fallback),
        }
        Ok(())
    }

    /// A key and its colon; keys with escapes are left to serde (it unescapes them).
    #[inline(always)]
    fn key(&mut self) -> Scan<&'a str> {
        self.ws();
        let start = self.i + 1;
        let end = self.key_end()?;
        self.text.get(start..end).ok_or(Fallback)
    }

    /// Past a key and its colon, where only its end matters (an object being skipped):
    /// the end of its text.
    #[inline(always)]
    fn key_end(&mut self) -> Scan<usize> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(Fallback);
        }
        let (end, escaped) = self.string_end()?;
        if escaped {
            return Err(Fallback);
        }
        self.take(b':')?;
        Ok(end)
    }

    /// The keys of an object whose `{` is next, calling `f` with each key and the scanner
    /// at its value (which `f` must consume).
    fn object<F: FnMut(&mut Self, &'a str) -> Scan<()>>(&mut self, f: F) -> Scan<()> {
        self.object_with(Self::key, f)
    }

    /// [`Scanner::object`] with the keys read by `key` (the skip reads only their ends).
    #[inline(always)]
    fn object_with<K, F: FnMut(&mut Self, K) -> Scan<()>>(
        &mut self,
        key: fn(&mut Self) -> Scan<K>,
        mut f: F,
    ) -> Scan<()> {
        self.take(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let k = key(self)?;
            f(self, k)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Fallback),
            }
        }
    }

    /// Is the next value `null`? (Consumed if so.)
    fn null(&mut self) -> bool {
        self.ws();
        if self.b.get(self.i..self.i + 4) == Some(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// A kept field: `null`, or a string with no escapes.
    #[inline]
    fn opt_str(&mut self) -> Scan<Option<&'a str>> {
        if self.null() {
            return Ok(None);
        }
        if self.peek() != Some(b'"') {
            return Err(Fallback);
        }
        match self.string()? {
            (s, false) => Ok(Some(s)),
            (_, true) => Err(Fallback),
        }
    }

    /// Read a kept field with `read` into `slot` (the last one wins, as with serde).
    fn put(
        &mut self,
        slot: &mut Option<&'a str>,
        read: fn(&mut Self) -> Scan<Option<&'a str>>,
    ) -> Scan<()> {
        *slot = read(self)?;
        Ok(())
    }

    /// `threatSuspected`: a string or a boolean (or `null`).
    fn str_or_bool(&mut self) -> Scan<Option<&'a str>> {
        self.ws();
        match self.b.get(self.i..) {
            Some([b't', b'r', b'u', b'e', ..]) => {
                self.i += 4;
                Ok(Some("true"))
            }
            Some([b'f', b'a', b'l', b's', b'e', ..]) => {
                self.i += 5;
                Ok(Some("false"))
            }
            _ => self.opt_str(),
        }
    }

    /// A kept object (`null` reads as absent): `f` takes each key.
    fn opt_object<F: FnMut(&mut Self, &'a str) -> Scan<()>>(&mut self, f: F) -> Scan<()> {
        if self.null() {
            return Ok(());
        }
        self.object(f)
    }

    /// Skip any value, checking it as serde_json does.
    #[inline(always)]
    fn skip(&mut self) -> Scan<()> {
        self.skip_value(0)
    }

    /// A value inside `depth` objects and arrays being skipped: a string (most of them)
    /// is read in place, anything else by [`Scanner::skip_at`]. (A string adds no depth:
    /// serde_json's limit counts objects and arrays.)
    #[inline(always)]
    fn skip_value(&mut self, depth: usize) -> Scan<()> {
        self.ws();
        if self.peek() == Some(b'"') {
            return self.string_end().map(|_| ());
        }
        self.skip_at(depth)
    }

    fn skip_at(&mut self, depth: usize) -> Scan<()> {
        if depth > MAX_DEPTH {
            return Err(Fallback);
        }
        self.ws();
        match self.peek().ok_or(Fallback)? {
            b'"' => self.string_end().map(|_| ()),
            b'{' => self.object_with(Self::key_end, |s, _| s.skip_value(depth + 1)),
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(Fallback),
                    }
                }
            }
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Fallback),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Scan<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(Fallback);
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Fallback),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(Fallback);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(Fallback);
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn top(&mut self) -> Scan<Top<'a>> {
        let mut top = Top::default();
        self.ws();
        self.object(|s, key| match key {
            "detail" => {
                top.detail = None;
                if !s.null() {
                    let mut d = Fields::default();
                    s.object(|s, key| s.okta_field(&mut d, key, true))?;
                    top.detail = Some(d);
                }
                Ok(())
            }
            "time" => {
                top.time = s.opt_str()?;
                Ok(())
            }
            // A CloudWatch export wraps the event in a string: left to serde.
            "@message" => match s.null() {
                true => Ok(()),
                false => Err(Fallback),
            },
            _ => s.okta_field(&mut top.okta, key, false),
        })?;
        Ok(top)
    }

    /// One key of an Okta event object and its value.
    fn okta_field(&mut self, f: &mut Fields<'a>, key: &str, nested: bool) -> Scan<()> {
        match key {
            "eventType" => f.event_type = self.opt_str()?,
            "published" => f.published = self.opt_str()?,
            "uuid" => f.uuid = self.opt_str()?,
            "outcome" => {
                (f.result, f.reason) = (None, None);
                self.opt_object(|s, k| match k {
                    "result" => s.put(&mut f.result, Self::opt_str),
                    "reason" => s.put(&mut f.reason, Self::opt_str),
                    _ => s.skip(),
                })?
            }
            "actor" => {
                (f.user, f.actor_id) = (None, None);
                self.opt_object(|s, k| match k {
                    "alternateId" => s.put(&mut f.user, Self::opt_str),
                    "id" => s.put(&mut f.actor_id, Self::opt_str),
                    _ => s.skip(),
                })?
            }
            "client" => {
                (f.ip, f.country, f.browser) = (None, None, None);
                self.opt_object(|s, k| match k {
                    "ipAddress" => s.put(&mut f.ip, Self::opt_str),
                    "geographicalContext" => {
                        f.country = None;
                        s.opt_object(|s, k| match k {
                            "country" => s.put(&mut f.country, Self::opt_str),
                            _ => s.skip(),
                        })
                    }
                    "userAgent" => {
                        f.browser = None;
                        s.opt_object(|s, k| match k {
                            "browser" => s.put(&mut f.browser, Self::opt_str),
                            _ => s.skip(),
                        })
                    }
                    _ => s.skip(),
                })?
            }
            "debugContext" => {
                f.threat_suspected = None;
                self.opt_object(|s, k| match k {
                    "debugData" => {
                        f.threat_suspected = None;
                        s.opt_object(|s, k| match k {
                            "threatSuspected" => s.put(&mut f.threat_suspected, Self::str_or_bool),
                            _ => s.skip(),
                        })
                    }
                    _ => s.skip(),
                })?
            }
            // The envelope's fields inside `detail` are read (and type-checked) by serde
            // but not used: rare enough to leave to it.
            "detail" | "@message" | "time" if nested => return Err(Fallback),
            _ => self.skip()?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
