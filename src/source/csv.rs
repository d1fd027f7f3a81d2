//! Binned counts from a CSV file (a dashboard export, a spreadsheet, another SIEM), so
//! history from anywhere can be backtested.
//!
//! Accepted shapes, with or without a header line:
//!
//! ```text
//! timestamp,total,failure[,success]     attempts and failures (and successes) per bin
//! timestamp,value                       one count per bin: attempts, or failures or
//!                                       successes when the header names the column so
//! ```
//!
//! Timestamps are RFC 3339 (`2026-11-25T10:15:00Z`) or `YYYY-MM-DD HH:MM[:SS[.fff]]` in
//! UTC (how Logs Insights and CloudWatch dashboards write them). Without a `success`
//! column, successes are `total - failure`. A header may name its columns in any order
//! (`time`, `n`, `failed`, `successes`, ...). Fields may be quoted; a UTF-8 byte-order
//! mark is skipped.
//!
//! Rows become the pipeline's own updates: the counts of each rule's bin (rows are summed
//! into it, so a 5-minute export feeds a 15-minute rule) and a close. A bin with no row
//! had no events, as in a Logs Insights result; a row whose counts are all empty means
//! the dashboard had no data point, and the bin is *unknown* (judged by nothing). A bad
//! row is counted and reported with its line number, never fatal.

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDateTime;

use crate::event::parse_rfc3339_ms;
use crate::series::Counts;

mod bins;

pub use bins::{updates, Skipped};

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Time,
    Total,
    Failure,
    Success,
    Ignored,
}

/// One good row: the bin's start and its counts (`None`: every count cell was empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub ms: i64,
    pub counts: Option<Counts>,
}

/// A row that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// How many bad rows are kept with their reason (the rest are only counted).
pub const KEEP_BAD: usize = 20;

/// A parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub rows: Vec<Row>,
    /// The header line, when the first non-blank line was one.
    pub header: Option<u64>,
    /// Lines read, blank ones included.
    pub lines: u64,
    pub blank: u64,
    /// Every bad row is counted here; the first [`KEEP_BAD`] are kept in `bad`.
    pub bad_count: u64,
    pub bad: Vec<BadRow>,
}

impl Parsed {
    fn reject(&mut self, line: u64, reason: impl Into<String>) {
        self.bad_count += 1;
        if self.bad.len() < KEEP_BAD {
            self.bad.push(BadRow {
                line,
                reason: reason.into(),
            });
        }
    }
}

/// Split one CSV line into fields (RFC 4180: a quoted field may hold commas and `""`).
fn fields(line: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    // Whether the field so far is only whitespace: kept as a flag, not found by trimming
    // the field at every quote (quadratic: a 600 kB line of spaces and quotes took 0.9 s,
    // now 20 ms; found by the fuzz driver).
    let mut blank = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if blank && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut field).trim().to_string());
                was_quoted = false;
                blank = true;
            }
            (false, c) => {
                blank &= c.is_whitespace();
                field.push(c);
            }
        }
    }
    if quoted {
        return Err("a quoted field is not closed");
    }
    out.push(field.trim().to_string());
    Ok(out)
}

/// A timestamp in any accepted shape, as epoch milliseconds (UTC).
pub fn parse_time(s: &str) -> Option<i64> {
    if let Some(ms) = parse_rfc3339_ms(s) {
        return Some(ms);
    }
    const SHAPES: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    SHAPES.iter().find_map(|f| {
        NaiveDateTime::parse_from_str(s, f)
            .ok()
            .map(|t| t.and_utc().timestamp_millis())
    })
}

/// A count cell: a whole non-negative number (`12`, `12.0`; dashboards write floats).
/// `Ok(None)` for an empty cell.
fn parse_count(s: &str) -> Result<Option<u64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Some(n));
    }
    match s.parse::<f64>() {
        Ok(x) if x >= 0.0 && x.fract() == 0.0 && x < 9.0e15 => Ok(Some(x as u64)),
        Ok(_) => Err(format!("{s:?} is not a whole number of events")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

fn column_of(name: &str) -> Column {
    let n = name.trim().trim_start_matches('@').to_ascii_lowercase();
    match n.as_str() {
        "timestamp" | "time" | "date" | "datetime" | "period" | "bin" | "bin_start" => Column::Time,
        _ if n.starts_with("bin(") => Column::Time,
        "total" | "n" | "count" | "attempts" | "events" | "value" | "sum" => Column::Total,
        "failure" | "failures" | "failed" | "fail" => Column::Failure,
        "success" | "successes" | "succeeded" => Column::Success,
        _ => Column::Ignored,
    }
}

/// The columns of a header line, or `None` when the line is data: a header starts with
/// no timestamp and holds no number.
fn header_columns(f: &[String]) -> Option<Vec<Column>> {
    if f.first().is_some_and(|t| parse_time(t).is_some())
        || f.iter().any(|v| v.parse::<f64>().is_ok())
    {
        return None;
    }
    let mut cols: Vec<Column> = f.iter().map(|n| column_of(n)).collect();
    if !cols.contains(&Column::Time) {
        cols[0] = Column::Time;
    }
    let counts = cols
        .iter()
        .filter(|c| matches!(c, Column::Total | Column::Failure | Column::Success))
        .count();
    if counts == 0 && cols.len() >= 2 {
        // Unnamed counts: read them by position, like a file without a header.
        cols = positional(cols.len());
    }
    Some(cols)
}

/// The columns of a file without a header, by their number.
fn positional(n: usize) -> Vec<Column> {
    let mut cols = vec![
        Column::Time,
        Column::Total,
        Column::Failure,
        Column::Success,
    ];
    cols.truncate(n.min(4));
    cols
}

/// Read one data row with `cols`.
fn row(f: &[String], cols: &[Column], line: u64) -> Result<Row, String> {
    if f.len() != cols.len() {
        return Err(format!(
            "{} fields where {} were expected",
            f.len(),
            cols.len()
        ));
    }
    let (mut time, mut total, mut failure, mut success) = (None, None, None, None);
    for (value, col) in f.iter().zip(cols) {
        match col {
            Column::Time => time = Some(value.as_str()),
            Column::Total => total = parse_count(value)?,
            Column::Failure => failure = parse_count(value)?,
            Column::Success => success = parse_count(value)?,
            Column::Ignored => {}
        }
    }
    let time = time.unwrap_or_default();
    let ms = parse_time(time).ok_or_else(|| {
        format!("{time:?} is not a timestamp (RFC 3339 or YYYY-MM-DD HH:MM:SS, UTC)")
    })?;
    let has = |c: Column| cols.contains(&c);
    let cells = [
        (Column::Total, total),
        (Column::Failure, failure),
        (Column::Success, success),
    ];
    let present = cells.iter().filter(|(c, _)| has(*c));
    let empty = present.clone().filter(|(_, v)| v.is_none()).count();
    if empty == present.count() {
        return Ok(Row {
            line,
            ms,
            counts: None,
        });
    }
    if empty > 0 {
        return Err("some counts are empty and others are not".to_string());
    }
    // A single failure or success column counts events that all had that outcome.
    // Checked: a cell may hold any number up to u64::MAX (found by the fuzz driver).
    let total = match total {
        Some(t) => t,
        None => failure
            .unwrap_or(0)
            .checked_add(success.unwrap_or(0))
            .ok_or("failures and successes add up past 2^64")?,
    };
    let failure = failure.unwrap_or(0);
    if failure > total {
        return Err(format!("{failure} failures out of {total} attempts"));
    }
    let success = match success {
        Some(s) if s.checked_add(failure).is_none_or(|sum| sum > total) => {
            return Err(format!(
                "{s} successes and {failure} failures out of {total} attempts"
            ))
        }
        Some(s) => s,
        None if has(Column::Failure) => total - failure,
        // `timestamp,value`: attempts whose outcome the file does not tell.
        None => 0,
    };
    Ok(Row {
        line,
        ms,
        counts: Some(Counts {
            total,
            success,
            failure,
            ..Counts::default()
        }),
    })
}

/// Parse a whole file. Never fails: what cannot be read is counted in `bad`.
pub fn parse(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cols: Option<Vec<Column>> = None;
    let mut seen: HashMap<i64, u64> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        p.lines = line;
        if raw.trim().is_empty() {
            p.blank += 1;
            continue;
        }
        let f = match fields(raw) {
            Ok(f) => f,
            Err(why) => {
                p.reject(line, why);
                continue;
            }
        };
        let c = match &cols {
            Some(c) => c,
            None => {
                let header = header_columns(&f);
                if header.is_some() {
                    p.header = Some(line);
                }
                let c = cols.insert(header.clone().unwrap_or_else(|| positional(f.len())));
                if header.is_some() {
                    continue;
                }
                c
            }
        };
        match row(&f, c, line) {
            Ok(r) => match seen.get(&r.ms) {
                Some(first) => {
                    p.reject(line, format!("duplicate timestamp (first on line {first})"))
                }
                None => {
                    seen.insert(r.ms, line);
                    p.rows.push(r);
                }
            },
            Err(why) => p.reject(line, why),
        }
    }
    p.reject_outside_window(crate::source::replay::DEFAULT_MAX_SKEW);
    p
}

impl Parsed {
    /// Refuse rows further than `skew` from the median row time: one row dated
    /// `0001-01-01` must not stretch the replay over two thousand years.
    fn reject_outside_window(&mut self, skew: std::time::Duration) {
        if self.rows.is_empty() {
            return;
        }
        let mut times: Vec<i64> = self.rows.iter().map(|r| r.ms).collect();
        times.sort_unstable();
        let median = times[times.len() / 2];
        let skew = i64::try_from(skew.as_millis()).unwrap_or(i64::MAX);
        let (lo, hi) = (median.saturating_sub(skew), median.saturating_add(skew));
        let rows = std::mem::take(&mut self.rows);
        for r in rows {
            if (lo..=hi).contains(&r.ms) {
                self.rows.push(r);
            } else {
                let when = chrono::DateTime::from_timestamp_millis(r.ms)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default();
                self.reject(
                    r.line,
                    format!(
                        "{when} is more than {} from the median row time",
                        humantime::format_duration(std::time::Duration::from_millis(skew as u64))
                    ),
                );
            }
        }
        self.bad.sort_by_key(|b| b.line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::RuleSpec;
    use crate::series::Update;
    use proptest::prelude::*;

    const T0: i64 = 1_795_601_700_000; // 2026-11-25T10:15:00Z

    fn counts(total: u64, failure: u64, success: u64) -> Option<Counts> {
        Some(Counts {
            total,
            success,
            failure,
            ..Counts::default()
        })
    }

    #[test]
    fn a_row_from_year_one_is_refused_and_gaps_are_skipped() {
        let text = "timestamp,total,failure\n0001-01-01T00:00:00Z,5,0\n2026-11-25T10:00:00Z,10,1\n2026-11-25T10:15:00Z,10,1\n2026-12-25T10:00:00Z,10,1\n";
        let parsed = parse(text);
        assert_eq!(parsed.rows.len(), 3);
        assert_eq!(parsed.bad_count, 1);
        assert_eq!(parsed.bad[0].line, 2);
        assert!(
            parsed.bad[0].reason.contains("from the median row time"),
            "{}",
            parsed.bad[0]
        );
        let (updates, _) = updates(&parsed, &[RuleSpec::named("r")]);
        let skips = updates
            .iter()
            .filter(|u| matches!(u, Update::Skip { .. }))
            .count();
        // A month between the last two rows: one day closed, the rest skipped at once.
        assert_eq!(skips, 1);
        assert!(updates.len() < 10, "{updates:?}");
    }

    #[test]
    fn every_documented_shape_reads() {
        let p = parse(
            "timestamp,total,failure\n2026-11-25T10:15:00Z,100,5\n2026-11-25 10:30:00,90,4\n",
        );
        assert_eq!(p.header, Some(1));
        assert_eq!(p.bad_count, 0, "{:?}", p.bad);
        assert_eq!(p.rows[0].ms, T0);
        assert_eq!(p.rows[0].counts, counts(100, 5, 95));
        assert_eq!(p.rows[1].ms, T0 + 900_000);

        let p = parse("\u{feff}2026-11-25 10:15:00.000,100,5,90\n");
        assert_eq!(p.header, None);
        assert_eq!(p.rows[0].counts, counts(100, 5, 90));

        let p = parse("\"2026-11-25 10:15\",\"42\"\r\n");
        assert_eq!(p.rows[0].counts, counts(42, 0, 0));

        // A header names its columns, in any order.
        let p = parse("Failed,@timestamp\n7,2026-11-25T10:15:00Z\n");
        assert_eq!(p.rows[0].counts, counts(7, 7, 0));
        let p = parse("bin(15m),successes,n\n2026-11-25 10:15:00.000,80,90\n");
        assert_eq!(p.rows[0].counts, counts(90, 0, 80));
    }

    #[test]
    fn bad_rows_are_reported_with_line_numbers() {
        let p = parse("time,total,failure\n2026-11-25T10:15:00Z,100,5\nyesterday,1,1\n\n2026-11-25T10:30:00Z,5,9\n2026-11-25T10:45:00Z,x,1\n2026-11-25T10:15:00Z,1,1\n2026-11-25T11:00:00Z,1\n2026-11-25T11:15:00Z,,\n");
        let lines: Vec<u64> = p.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 5, 6, 7, 8], "{:?}", p.bad);
        assert!(p.bad[1].reason.contains("9 failures out of 5"));
        assert!(p.bad[3].reason.contains("first on line 2"));
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[1].counts, None, "empty counts: an unknown bin");
        assert_eq!(p.blank, 1);
    }

    /// A row as the property tests write it.
    #[derive(Debug, Clone)]
    struct Gen {
        minutes: i64,
        total: u64,
        failure: u64,
        success: u64,
        space_format: bool,
        quoted: bool,
    }

    fn gen_row() -> impl Strategy<Value = Gen> {
        // Up to ~2.7 years apart: rows beyond the time window (3 years around the median)
        // are refused, see `a_row_from_year_one_is_refused_and_gaps_are_skipped`.
        (0i64..1_400_000, 0u64..100_000, any::<bool>(), any::<bool>()).prop_flat_map(
            |(minutes, total, space_format, quoted)| {
                (0..=total).prop_flat_map(move |failure| {
                    (0..=total - failure).prop_map(move |success| Gen {
                        minutes,
                        total,
                        failure,
                        success,
                        space_format,
                        quoted,
                    })
                })
            },
        )
    }

    fn render(g: &Gen) -> String {
        let t = chrono::DateTime::from_timestamp(g.minutes * 60, 0).unwrap_or_default();
        let ts = if g.space_format {
            t.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        };
        let q = if g.quoted { "\"" } else { "" };
        format!("{q}{ts}{q},{},{q}{}{q},{}", g.total, g.failure, g.success)
    }

    proptest! {
        #[test]
        fn written_rows_read_back(rows in proptest::collection::vec(gen_row(), 0..40), header: bool, crlf: bool) {
            let mut rows = rows;
            rows.sort_by_key(|r| r.minutes);
            rows.dedup_by_key(|r| r.minutes);
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            if header {
                text.push_str("timestamp,total,failure,success");
                text.push_str(nl);
            }
            for r in &rows {
                text.push_str(&render(r));
                text.push_str(nl);
            }
            let p = parse(&text);
            prop_assert_eq!(p.bad_count, 0, "{:?}", p.bad);
            prop_assert_eq!(p.header.is_some(), header);
            prop_assert_eq!(p.rows.len(), rows.len());
            for (got, want) in p.rows.iter().zip(&rows) {
                prop_assert_eq!(got.ms, want.minutes * 60_000);
                prop_assert_eq!(got.counts, counts(want.total, want.failure, want.success));
            }
        }

        #[test]
        fn bad_lines_are_named_and_the_rest_still_reads(
            rows in proptest::collection::vec(gen_row(), 1..30),
            junk in proptest::collection::vec((any::<prop::sample::Index>(), "[a-z ;:]{1,12}"), 0..8),
        ) {
            let mut rows = rows;
            rows.sort_by_key(|r| r.minutes);
            rows.dedup_by_key(|r| r.minutes);
            let mut lines: Vec<(bool, String)> = rows.iter().map(|r| (true, render(r))).collect();
            for (at, text) in &junk {
                // Never first: a first line that is not data would be read as a header.
                let i = 1 + at.index(lines.len());
                lines.insert(i, (false, format!("2026-11-25T10:15:00Z,{text}")));
            }
            let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
            let p = parse(&text);
            let want_bad: Vec<u64> = lines
                .iter()
                .enumerate()
                .filter(|(_, (good, _))| !good)
                .map(|(i, _)| i as u64 + 1)
                .collect();
            let got_bad: Vec<u64> = p.bad.iter().map(|b| b.line).collect();
            prop_assert_eq!(p.bad_count as usize, want_bad.len());
            prop_assert_eq!(got_bad, want_bad.into_iter().take(KEEP_BAD).collect::<Vec<_>>());
            prop_assert_eq!(p.rows.len(), rows.len());
        }

        #[test]
        fn any_text_is_accounted_for_and_never_panics(text in "(([0-9a-zT:\" ,.-]{0,30})\r?\n){0,20}") {
            let p = parse(&text);
            let accounted = p.rows.len() as u64 + p.bad_count + p.blank + u64::from(p.header.is_some());
            prop_assert_eq!(accounted, p.lines);
            let _ = updates(&p, &RuleSpec::builtin());
        }

        #[test]
        fn time_shapes_agree(secs in 0i64..4_102_444_800) {
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
            let want = Some(secs * 1000);
            prop_assert_eq!(parse_time(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string()), want);
            prop_assert_eq!(parse_time(&t.format("%Y-%m-%d %H:%M:%S").to_string()), want);
            prop_assert_eq!(parse_time(&t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()), want);
            prop_assert_eq!(parse_time(&t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()), want);
        }
    }

    /// Found by the fuzz driver: a quote after a long run of spaces re-scanned the run
    /// (quadratic); the fields are the same as before.
    #[test]
    fn quotes_after_long_blank_runs_split_as_before() {
        let spaces = " ".repeat(10_000);
        let line = format!("{spaces}\"a,b\"{spaces},x\"y\",{spaces}\"\"");
        assert_eq!(
            fields(&line).unwrap(),
            ["a,b", "x\"y\"", ""].map(String::from)
        );
        assert_eq!(fields(" \"q\" , 1").unwrap(), ["q", "1"].map(String::from));
    }

    /// Found by the fuzz driver: counts near 2^64 overflowed when added up.
    #[test]
    fn counts_that_add_up_past_u64_are_refused_not_a_panic() {
        let max = u64::MAX;
        let p = parse(&format!(
            "timestamp,failure,success\n2026-11-25T10:00:00Z,{max},1\n2026-11-25T10:15:00Z,1,1\n"
        ));
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.bad[0].line, 2);
        let p = parse(&format!(
            "timestamp,total,failure,success\n2026-11-25T10:00:00Z,{max},1,{max}\n"
        ));
        assert_eq!((p.rows.len(), p.bad_count), (0, 1));
    }
}
