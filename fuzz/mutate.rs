//! The seeded PRNG and the mutation operators: byte-level (flips, inserts, deletes,
//! duplicated chunks, splices between inputs), token-level (dictionary tokens at random
//! places or in place of a number or a string), and JSON-aware (one value of a parsed
//! document replaced: a null, a huge number, a deep nest, a long string, another type).

use serde_json::Value;

/// xorshift64*: small, fast, and the same stream on every machine for the same seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so near seeds give unrelated streams (and never 0).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability 1 in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Tokens any parser here may choke on: punctuation of JSON, TOML and CSV, numbers at
/// and past every limit, extreme and malformed times, keywords, escapes.
pub const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "=",
    "\n",
    "\r\n",
    "\t",
    " ",
    "#",
    "'",
    "'''",
    "\"\"\"",
    "[[",
    "]]",
    "null",
    "true",
    "false",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "-0",
    "0",
    "-1",
    "1e308",
    "1e309",
    "-1e309",
    "4.9e-324",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "4294967295",
    "4294967296",
    "99999999999999999999999999999999",
    "0.000000000000000000000000001",
    "1_000",
    "0x7f",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999999Z",
    "+275760-09-13T00:00:00Z",
    "-000001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "2026-11-25T10:15:00.000+14:00",
    "2026-11-25T10:15:00-23:59",
    "2026-11-25 10:15:00.000",
    "2026-11-25T24:00:00Z",
    "2026-13-01",
    "00:00",
    "23:59",
    "24:00",
    "-1s",
    "0s",
    "0m",
    "1ns",
    "584942417355y",
    "18446744073709551615s",
    "1d",
    "2h",
    "30m",
    "\\u0000",
    "\\ud800",
    "\\udfff\\ud800",
    "\\uDBFF\\uDFFF",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "é",
    "日本",
    "\"\"",
    "{}",
    "[]",
    "[null]",
    "{\"a\":null}",
    "\"@message\"",
    "\"detail\"",
    "\"eventType\"",
    "\"published\"",
    "\"outcome\"",
    "\"client\"",
    "\"ipAddress\"",
    "\"uuid\"",
    "\"time\"",
    "\"version\"",
    "\"alert\"",
    "\"series\"",
    "\"bin_start\"",
    "\"fingerprint\"",
    "user.session.start",
    "FAILURE",
    "SUCCESS",
    "bin(5m)",
    "bin(0m)",
    "bin(1000000000m)",
    "detail.outcome.result",
    "n",
    "users",
    "ips",
    "%",
    "%s",
    "%n",
    "..",
    "../",
    "/",
    "\\\\",
    "\u{7f}",
];

/// Mutate `data` in place with 1–4 stacked operators; `others` feeds splices.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>], max_len: usize) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(16) {
            0 => flip_bit(rng, data),
            1 => set_byte(rng, data),
            2 => insert_bytes(rng, data),
            3 => delete_range(rng, data),
            4 => duplicate_range(rng, data),
            5 => {
                let other = rng_pick_other(rng, others);
                splice(rng, data, other)
            }
            6 | 7 => insert_token(rng, data),
            8 | 9 => replace_number_or_string(rng, data),
            10 | 11 => json_value(rng, data),
            12 => deep_nesting(rng, data),
            13 => long_run(rng, data),
            14 => invalid_utf8(rng, data),
            _ => truncate(rng, data),
        }
    }
    data.truncate(max_len);
}

fn rng_pick_other<'a>(rng: &mut Rng, others: &'a [Vec<u8>]) -> &'a [u8] {
    if others.is_empty() {
        &[]
    } else {
        &others[rng.below(others.len())]
    }
}

fn at(rng: &mut Rng, data: &[u8]) -> usize {
    rng.below(data.len() + 1)
}

fn flip_bit(rng: &mut Rng, data: &mut [u8]) {
    if !data.is_empty() {
        let i = rng.below(data.len());
        data[i] ^= 1 << rng.below(8);
    }
}

fn set_byte(rng: &mut Rng, data: &mut [u8]) {
    const INTERESTING: &[u8] = b"\x00\x01\x7f\x80\xff\"\\{}[],:=\n\r #'.-+eE09";
    if !data.is_empty() {
        let i = rng.below(data.len());
        data[i] = if rng.one_in(2) {
            *rng.pick(INTERESTING)
        } else {
            rng.next() as u8
        };
    }
}

fn insert_bytes(rng: &mut Rng, data: &mut Vec<u8>) {
    let i = at(rng, data);
    let n = 1 + rng.below(8);
    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    data.splice(i..i, bytes);
}

fn delete_range(rng: &mut Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let i = rng.below(data.len());
    let n = 1 + rng.below((data.len() - i).min(64));
    data.drain(i..i + n);
}

fn duplicate_range(rng: &mut Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let i = rng.below(data.len());
    let n = 1 + rng.below((data.len() - i).min(256));
    let chunk = data[i..i + n].to_vec();
    let to = at(rng, data);
    for _ in 0..1 + rng.below(4) {
        data.splice(to..to, chunk.iter().copied());
    }
}

/// A prefix of `data` and a suffix of `other`, or `other`'s piece inserted.
fn splice(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    if other.is_empty() {
        return;
    }
    let from = rng.below(other.len());
    if rng.one_in(2) {
        data.truncate(at(rng, data));
        data.extend_from_slice(&other[from..]);
    } else {
        let end = from + 1 + rng.below(other.len() - from);
        let to = at(rng, data);
        data.splice(to..to, other[from..end].iter().copied());
    }
}

fn insert_token(rng: &mut Rng, data: &mut Vec<u8>) {
    let token = rng.pick(DICTIONARY).as_bytes();
    let i = at(rng, data);
    data.splice(i..i, token.iter().copied());
}

/// Replace one run of digits, or the inside of one quoted string, by a dictionary token.
fn replace_number_or_string(rng: &mut Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let start = rng.below(data.len());
    let token = rng.pick(DICTIONARY).as_bytes().to_vec();
    if let Some(d) = data[start..].iter().position(u8::is_ascii_digit) {
        let s = start + d;
        let e = s + data[s..]
            .iter()
            .position(|c| !(c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+')))
            .unwrap_or(data.len() - s);
        if rng.one_in(2) {
            data.splice(s..e, token);
            return;
        }
    }
    if let Some(q) = data[start..].iter().position(|&c| c == b'"') {
        let s = start + q + 1;
        if let Some(len) = data[s..].iter().position(|&c| c == b'"') {
            data.splice(s..s + len, token);
        }
    }
}

/// Parse as JSON (the whole input, or one line of it), replace one value anywhere in
/// the tree, write it back.
fn json_value(rng: &mut Rng, data: &mut Vec<u8>) {
    let lines: Vec<(usize, usize)> = line_spans(data);
    let spans: Vec<(usize, usize)> = if serde_json::from_slice::<Value>(data).is_ok() {
        vec![(0, data.len())]
    } else {
        lines
    };
    if spans.is_empty() {
        return;
    }
    let (s, e) = *rng.pick(&spans);
    let Ok(mut v) = serde_json::from_slice::<Value>(&data[s..e]) else {
        return;
    };
    let count = count_nodes(&v);
    let target = rng.below(count);
    let mut seen = 0;
    replace_nth(&mut v, target, &mut seen, rng);
    let pretty = e - s > 0 && data[s..e].contains(&b'\n');
    let out = if pretty {
        serde_json::to_vec_pretty(&v)
    } else {
        serde_json::to_vec(&v)
    };
    if let Ok(out) = out {
        data.splice(s..e, out);
    }
}

fn line_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut s = 0;
    for (i, &c) in data.iter().enumerate() {
        if c == b'\n' {
            if i > s {
                out.push((s, i));
            }
            s = i + 1;
        }
    }
    if data.len() > s {
        out.push((s, data.len()));
    }
    out
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn replace_nth(v: &mut Value, target: usize, seen: &mut usize, rng: &mut Rng) -> bool {
    if *seen == target {
        *v = odd_value(rng, v);
        return true;
    }
    *seen += 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| replace_nth(x, target, seen, rng)),
        Value::Object(o) => o.values_mut().any(|x| replace_nth(x, target, seen, rng)),
        _ => false,
    }
}

/// A value a parser should refuse or survive in place of `old`.
fn odd_value(rng: &mut Rng, old: &Value) -> Value {
    use serde_json::json;
    match rng.below(14) {
        0..=2 => Value::Null,
        3 => json!(u64::MAX),
        4 => json!(i64::MIN),
        5 => json!(1e300),
        6 => json!(-0.000_001),
        7 => Value::String(rng.pick(DICTIONARY).to_string()),
        8 => Value::String("x".repeat(1 + rng.below(100_000))),
        9 => {
            let mut v = json!(null);
            for _ in 0..rng.below(200) {
                v = json!([v]);
            }
            v
        }
        10 => json!({}),
        11 => json!([old.clone(), old.clone()]),
        12 => Value::Bool(rng.one_in(2)),
        _ => match old {
            // The same text, another type: "5" for 5, 5 for "5".
            Value::String(s) => s.parse::<f64>().map(|f| json!(f)).unwrap_or(json!(0)),
            other => Value::String(other.to_string()),
        },
    }
}

fn deep_nesting(rng: &mut Rng, data: &mut Vec<u8>) {
    let depth = 1 + rng.below(5_000);
    let (open, close): (&[u8], &[u8]) = match rng.below(4) {
        0 => (b"[", b"]"),
        1 => (b"{\"a\":", b"}"),
        2 => (b"[[", b"]]"),
        _ => (b"{\"detail\":", b"}"),
    };
    let i = at(rng, data);
    let mut nest = open.repeat(depth);
    if rng.one_in(2) {
        nest.extend_from_slice(b"null");
        nest.extend(close.repeat(depth));
    }
    data.splice(i..i, nest);
}

fn long_run(rng: &mut Rng, data: &mut Vec<u8>) {
    let most = if rng.one_in(8) { 1 << 20 } else { 4096 };
    let n = 1 + rng.below(most);
    let byte = *rng.pick(b"a0 \"\\,\n9{[");
    let i = at(rng, data);
    data.splice(i..i, std::iter::repeat_n(byte, n));
}

fn invalid_utf8(rng: &mut Rng, data: &mut Vec<u8>) {
    const BAD: &[&[u8]] = &[
        b"\xff",
        b"\xc3",
        b"\xe2\x82",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\xaf",
        b"\x80",
    ];
    let i = at(rng, data);
    data.splice(i..i, rng.pick(BAD).iter().copied());
}

fn truncate(rng: &mut Rng, data: &mut Vec<u8>) {
    let i = at(rng, data);
    data.truncate(i);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..5).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(8).next(), xs[0]);
    }

    #[test]
    fn mutations_respect_the_length_cap() {
        let mut rng = Rng::new(1);
        let seed = br#"{"a":[1,2,{"b":"c"}]}"#.to_vec();
        for _ in 0..2000 {
            let mut d = seed.clone();
            mutate(&mut rng, &mut d, std::slice::from_ref(&seed), 4096);
            assert!(d.len() <= 4096);
        }
    }
}
