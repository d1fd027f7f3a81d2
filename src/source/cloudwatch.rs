//! `source.kind = "cloudwatch"`: binned outcomes from CloudWatch Logs Insights, the
//! daemon's production input.
//!
//! Per rule, on bin boundaries:
//!
//! ```text
//!   start:  backfill the baseline window in chunks (each under the 10,000-row limit)
//!   then:   every poll, read the bins that closed at least `settle` ago and were not read
//!           yet; `revise_after` later, read them once more (late logs) and revise them
//! ```
//!
//! With `[ha]` only the leader of a rule queries; the other replicas follow the bins it
//! publishes (see [`super::exchange`]).
//!
//! Counts are absolute, so a revision replaces a bin's counts instead of adding to them.
//! A query that fails makes its bins *unknown* (never zero): after `unavailable_after`
//! failed polls in a row the bins are given up as unknown and the daemon raises
//! `source_unavailable`. A future bin is never queried.
//!
//! ## The query contract
//! The generated query (see [`RuleSpec::insights_query`]) is
//! `filter detail.eventType in [..] | stats count(*) as n by bin(15m), detail.outcome.result[, detail.<split_by>]`.
//! A rule's raw `query` must produce the same columns: a `bin(..)` field holding bin
//! starts as the service writes them (`2026-11-25 10:15:00.000`, UTC), a count `n`, and
//! optionally `detail.outcome.result` (rows without it count as neither success nor
//! failure), `detail.<split_by>`, and `users` / `ips` (distinct `actor.alternateId` and
//! `client.ipAddress` values; read on failure rows, 0 when absent).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::NaiveDateTime;
use tokio::sync::{mpsc, watch};

use super::config::SourceConfig;
use super::exchange::{BinExchange, SharedBin};
use super::insights::{Querier, QueryError, QueryOutput, Row};
use super::{Source, SourceError, SourceEvent};
use crate::clock::SharedClock;
use crate::retry::BoxFuture;
use crate::rule::RuleSpec;
use crate::series::Update;
use crate::series::{Counts, Labels, OutcomeClass};

/// The service's row limit; a result this long may be truncated.
const MAX_ROWS: usize = 10_000;

pub struct CloudWatchSource {
    pub querier: Querier,
    pub rules: Vec<RuleSpec>,
    pub config: SourceConfig,
    /// Bins are due by the wall clock.
    pub clock: SharedClock,
    /// `[ha]`: the leader of a rule publishes its bins here, the others read them
    /// instead of querying (see [`super::exchange`]). `None`: one instance.
    pub exchange: Option<Arc<dyn BinExchange>>,
}

/// Per-rule scheduling state.
pub(super) struct RuleCursor {
    /// The first bin not yet read.
    pub(super) next_bin: i64,
    /// Ranges already read once, waiting for their revision: (first, end, due at ms).
    pub(super) revisions: VecDeque<(i64, i64, i64)>,
    failures: u32,
    /// `[ha]`: bins read but not yet published (retried at the next poll).
    pub(super) unpublished: Vec<SharedBin>,
    /// `[ha]`: the last poll followed the exchange (a standby); the first poll after a
    /// takeover reads the exchange once more before querying.
    pub(super) following: bool,
    /// `[ha]`: read the exchange at the next follow even if no bin is due.
    pub(super) catch_up: bool,
}

impl Source for CloudWatchSource {
    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<SourceEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move { self.run_loop(tx, shutdown).await })
    }
}

impl CloudWatchSource {
    async fn run_loop(
        self,
        tx: mpsc::Sender<SourceEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        let send = |e: SourceEvent| async { tx.send(e).await.map_err(|_| SourceError::Closed) };
        let now = self.clock.now_ms();
        let mut cursors = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let b = rule.bin_ms();
            let window = self.config.backfill.unwrap_or(rule.baseline_window);
            let first = (now - window.as_millis() as i64).div_euclid(b);
            let end = self.settled_end(rule, now);
            let (next_bin, loaded) = self.load_history(i, first, end, &tx, &shutdown).await;
            match loaded {
                Ok(()) => {}
                Err(QueryError::Stopping) => return Ok(()),
                Err(e) => {
                    tracing::error!(rule = %rule.name, error = %e, "backfill incomplete");
                    send_health(&tx, i, 1, Some(e.to_string())).await;
                }
            }
            cursors.push(RuleCursor {
                next_bin,
                revisions: VecDeque::new(),
                failures: 0,
                unpublished: Vec::new(),
                following: false,
                catch_up: false,
            });
        }
        send(SourceEvent::CaughtUp).await?;

        let mut stop = shutdown.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            for (i, cursor) in cursors.iter_mut().enumerate() {
                match self.poll_or_follow(i, cursor, &tx, &shutdown).await {
                    Err(QueryError::Stopping) => return Ok(()),
                    Err(e) => tracing::debug!(error = %e, "poll ended early"),
                    Ok(()) => {}
                }
                if tx.is_closed() {
                    return Err(SourceError::Closed);
                }
            }
        }
    }

    /// The end (exclusive) of the bins of `rule` that are closed and settled at `now`.
    pub(super) fn settled_end(&self, rule: &RuleSpec, now: i64) -> i64 {
        (now - self.config.settle.as_millis() as i64).div_euclid(rule.bin_ms())
    }

    /// Load `[first, end)` in chunks that stay under the row limit.
    pub(super) async fn backfill(
        &self,
        rule: usize,
        first: i64,
        end: i64,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), QueryError> {
        let spec = &self.rules[rule];
        // Rows per bin: a few outcome values, times the series a split can produce.
        let series = if spec.split_by.is_some() {
            spec.max_series.min(50)
        } else {
            1
        };
        let mut chunk = (MAX_ROWS / (6 * series)).max(1) as i64;
        let mut start = first;
        let mut last_error = None;
        let mut unpublished = Vec::new();
        while start < end {
            let stop = (start + chunk).min(end);
            match self.read_range(rule, start, stop, shutdown).await {
                Ok(ReadResult::Counts(updates)) => {
                    let mut updates = updates;
                    let bins = self.shareable(&updates, start, stop, 0);
                    self.publish(rule, &mut unpublished, bins).await;
                    updates.push(Update::Close {
                        rule,
                        end_bin: stop,
                    });
                    let _ = tx.send(SourceEvent::Updates(updates)).await;
                    start = stop;
                }
                Ok(ReadResult::Truncated) if chunk > 1 => {
                    chunk = (chunk / 2).max(1);
                    tracing::info!(rule = %spec.name, chunk_bins = chunk, "result hit the row limit; narrowing backfill chunks");
                }
                Ok(ReadResult::Truncated) => {
                    tracing::warn!(rule = %spec.name, bin = start, "one bin exceeds the 10,000-row limit; its counts are partial");
                    start = stop;
                }
                Err(QueryError::Stopping) => return Err(QueryError::Stopping),
                Err(e) => {
                    // History we cannot read stays unknown; the baseline does without it.
                    let mut updates: Vec<Update> = (start..stop)
                        .map(|bin| Update::Unknown { rule, bin })
                        .collect();
                    updates.push(Update::Close {
                        rule,
                        end_bin: stop,
                    });
                    let _ = tx.send(SourceEvent::Updates(updates)).await;
                    last_error = Some(e);
                    start = stop;
                }
            }
        }
        match last_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// One poll of one rule: new bins first, then revisions that are due.
    pub(super) async fn poll_rule(
        &self,
        rule: usize,
        cursor: &mut RuleCursor,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), QueryError> {
        let now = self.clock.now_ms();
        let end = self.settled_end(&self.rules[rule], now);
        if cursor.next_bin < end {
            self.read_new(rule, cursor, end, now, tx, shutdown).await?;
        }
        self.revise_due(rule, cursor, now, tx, shutdown).await
    }

    /// Read the bins that settled since the last poll, up to `end`.
    pub(super) async fn read_new(
        &self,
        rule: usize,
        cursor: &mut RuleCursor,
        end: i64,
        now: i64,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), QueryError> {
        let spec = &self.rules[rule];
        let first = cursor.next_bin;
        let result = match self.read_range(rule, first, end, shutdown).await {
            Ok(result) => result,
            Err(QueryError::Stopping) => return Err(QueryError::Stopping),
            Err(e) => return self.read_failed(rule, cursor, end, now, tx, e).await,
        };
        let mut updates = match result {
            ReadResult::Counts(u) => u,
            ReadResult::Truncated => {
                tracing::warn!(rule = %spec.name, "poll result hit the row limit; counts are partial");
                Vec::new()
            }
        };
        let bins = self.shareable(&updates, first, end, 0);
        updates.push(Update::Close { rule, end_bin: end });
        tx.send(SourceEvent::Updates(updates))
            .await
            .map_err(|_| QueryError::Stopping)?;
        self.advance(cursor, first, end, now);
        self.publish(rule, &mut cursor.unpublished, bins).await;
        if cursor.failures > 0 {
            tracing::info!(rule = %spec.name, after_failures = cursor.failures, "source recovered");
        }
        cursor.failures = 0;
        metrics::gauge!("authpulse_last_successful_poll_timestamp_seconds", "rule" => spec.name.clone())
            .set(now as f64 / 1000.0);
        send_health(tx, rule, 0, None).await;
        Ok(())
    }

    /// The cursor moves past `first..end`, which is read once more `revise_after` later.
    pub(super) fn advance(&self, cursor: &mut RuleCursor, first: i64, end: i64, now: i64) {
        cursor.next_bin = end;
        if !self.config.revise_after.is_zero() {
            let due = now + self.config.revise_after.as_millis() as i64;
            cursor.revisions.push_back((first, end, due));
        }
    }

    /// A poll failed: count it, say so, and after `unavailable_after` failures give the
    /// bins up as unknown so that later bins can be judged (a revision may still fill
    /// them in).
    async fn read_failed(
        &self,
        rule: usize,
        cursor: &mut RuleCursor,
        end: i64,
        now: i64,
        tx: &mpsc::Sender<SourceEvent>,
        e: QueryError,
    ) -> Result<(), QueryError> {
        let spec = &self.rules[rule];
        let first = cursor.next_bin;
        cursor.failures += 1;
        metrics::counter!("authpulse_query_failures_total", "rule" => spec.name.clone())
            .increment(1);
        tracing::warn!(rule = %spec.name, failures = cursor.failures, error = %e, "poll failed; bins stay unread");
        if cursor.failures >= self.config.unavailable_after {
            let mut updates: Vec<Update> = (first..end)
                .map(|bin| Update::Unknown { rule, bin })
                .collect();
            let bins = self.shareable(&updates, first, end, 0);
            updates.push(Update::Close { rule, end_bin: end });
            tx.send(SourceEvent::Updates(updates))
                .await
                .map_err(|_| QueryError::Stopping)?;
            self.advance(cursor, first, end, now);
            self.publish(rule, &mut cursor.unpublished, bins).await;
        }
        send_health(tx, rule, cursor.failures, Some(e.to_string())).await;
        Err(e)
    }

    /// Read again the ranges whose revision is due (late logs); counts are absolute.
    async fn revise_due(
        &self,
        rule: usize,
        cursor: &mut RuleCursor,
        now: i64,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), QueryError> {
        while let Some(&(first, end, due)) = cursor.revisions.front() {
            if due > now {
                break;
            }
            cursor.revisions.pop_front();
            match self.read_range(rule, first, end, shutdown).await {
                Ok(ReadResult::Counts(updates)) => {
                    let bins = self.shareable(&updates, first, end, 1);
                    tx.send(SourceEvent::Updates(updates))
                        .await
                        .map_err(|_| QueryError::Stopping)?;
                    self.publish(rule, &mut cursor.unpublished, bins).await;
                }
                Ok(ReadResult::Truncated) => {}
                Err(QueryError::Stopping) => return Err(QueryError::Stopping),
                Err(e) => {
                    tracing::warn!(rule = %self.rules[rule].name, error = %e, "revision failed; keeping first counts")
                }
            }
        }
        Ok(())
    }

    /// Query `[first, end)` and turn the rows into observations.
    async fn read_range(
        &self,
        rule: usize,
        first: i64,
        end: i64,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<ReadResult, QueryError> {
        let spec = &self.rules[rule];
        let b = spec.bin_ms();
        let (start_s, end_s) = ((first * b).div_euclid(1000), (end * b).div_euclid(1000) - 1);
        let out = self
            .querier
            .run(&spec.insights_query(), start_s, end_s, shutdown)
            .await?;
        record_statistics(spec, end - first, &out);
        if out.rows.len() >= MAX_ROWS {
            return Ok(ReadResult::Truncated);
        }
        let counts = parse_rows(spec, &out.rows, first, end).map_err(QueryError::Api)?;
        let mut updates = Vec::with_capacity(counts.len() + (end - first) as usize);
        if spec.split_by.is_none() {
            // Make silence explicit: a bin with no rows held zero events.
            for bin in first..end {
                if !counts.contains_key(&(bin, Labels::new())) {
                    updates.push(Update::Observe {
                        rule,
                        bin,
                        labels: Labels::new(),
                        counts: Counts::default(),
                    });
                }
            }
        }
        updates.extend(
            counts
                .into_iter()
                .map(|((bin, labels), counts)| Update::Observe {
                    rule,
                    bin,
                    labels,
                    counts,
                }),
        );
        Ok(ReadResult::Counts(updates))
    }
}

enum ReadResult {
    Counts(Vec<Update>),
    Truncated,
}

pub(super) async fn send_health(
    tx: &mpsc::Sender<SourceEvent>,
    rule: usize,
    failures: u32,
    error: Option<String>,
) {
    let _ = tx
        .send(SourceEvent::Health {
            rule,
            failures,
            error,
        })
        .await;
}

fn record_statistics(spec: &RuleSpec, bins: i64, out: &QueryOutput) {
    metrics::counter!("authpulse_query_bytes_scanned_total", "rule" => spec.name.clone())
        .increment(out.bytes_scanned.max(0.0) as u64);
    metrics::counter!("authpulse_query_records_scanned_total", "rule" => spec.name.clone())
        .increment(out.records_scanned.max(0.0) as u64);
    metrics::counter!("authpulse_polls_total", "rule" => spec.name.clone()).increment(1);
    tracing::info!(
        rule = %spec.name,
        bins,
        rows = out.rows.len(),
        bytes_scanned = out.bytes_scanned,
        records_scanned = out.records_scanned,
        records_matched = out.records_matched,
        "query complete"
    );
}

/// Parse a bin value as the service writes it: `2026-11-25 10:15:00.000` (UTC).
pub fn parse_bin_ms(value: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// Turn result rows into counts per (bin, labels), keeping only bins in `[first, end)`.
pub fn parse_rows(
    spec: &RuleSpec,
    rows: &[Row],
    first: i64,
    end: i64,
) -> Result<BTreeMap<(i64, Labels), Counts>, String> {
    let b = spec.bin_ms();
    let split_field = spec.split_by.as_ref().map(|f| format!("detail.{f}"));
    let mut out: BTreeMap<(i64, Labels), Counts> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let get = |name: &str| row.iter().find(|(f, _)| f == name).map(|(_, v)| v.as_str());
        let bin_value = row
            .iter()
            .find(|(f, _)| f.starts_with("bin(") || f == "bin")
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                format!(
                    "result row {i} has no bin(...) field (fields: {})",
                    field_names(row)
                )
            })?;
        let bin_ms = parse_bin_ms(bin_value)
            .ok_or_else(|| format!("result row {i}: bin value {bin_value:?} is not a time like 2026-11-25 10:15:00.000"))?;
        if bin_ms.rem_euclid(b) != 0 {
            return Err(format!(
                "result row {i}: bin {bin_value} does not start on a {} boundary: does the query bin match the rule's bin?",
                spec.bin_literal()
            ));
        }
        let bin = bin_ms / b;
        if bin < first || bin >= end {
            continue;
        }
        let n_text = get("n").ok_or_else(|| {
            format!(
                "result row {i} has no count field n (fields: {})",
                field_names(row)
            )
        })?;
        let n = n_text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("result row {i}: count n = {n_text:?} is not a number"))?
            .round() as u64;
        let class = OutcomeClass::of(get("detail.outcome.result").unwrap_or("UNKNOWN"));
        let mut labels = Labels::new();
        if let (Some(field), Some(path)) = (&spec.split_by, &split_field) {
            // `null`, `"null"` and `""` are an unknown source, as in the local binner.
            let value = get(path)
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("null"))
                .unwrap_or("(none)");
            labels.insert(field.clone(), value.to_string());
        }
        let counts = out.entry((bin, labels)).or_default();
        counts.add(class, n);
        if class == OutcomeClass::Failure {
            // Optional columns (a hand-written query may leave them out).
            let distinct = |name: &str| {
                get(name)
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map_or(0, |v| v.round() as u64)
            };
            counts.failed_users = counts.failed_users.saturating_add(distinct("users"));
            counts.failed_ips = counts.failed_ips.saturating_add(distinct("ips"));
        }
    }
    Ok(out)
}

fn field_names(row: &Row) -> String {
    row.iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(fields: &[(&str, &str)]) -> Row {
        fields
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rows_become_counts() {
        let spec = RuleSpec::named("r");
        let base = parse_bin_ms("2026-11-25 10:15:00.000").unwrap() / spec.bin_ms();
        let rows = vec![
            row(&[
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", "SUCCESS"),
                ("n", "40"),
            ]),
            row(&[
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", "FAILURE"),
                ("n", "3"),
            ]),
            row(&[("bin(15m)", "2026-11-25 10:30:00.000"), ("n", "2")]),
            // Outside the range asked for: ignored.
            row(&[
                ("bin(15m)", "2026-11-25 11:00:00.000"),
                ("detail.outcome.result", "SUCCESS"),
                ("n", "9"),
            ]),
        ];
        let c = parse_rows(&spec, &rows, base, base + 2).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[&(base, Labels::new())],
            Counts {
                total: 43,
                success: 40,
                failure: 3,
                ..Counts::default()
            }
        );
        assert_eq!(
            c[&(base + 1, Labels::new())],
            Counts {
                total: 2,
                success: 0,
                failure: 0,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn split_values_become_labels() {
        let mut spec = RuleSpec::named("r");
        spec.split_by = Some("client.ipAddress".into());
        let rows = vec![row(&[
            ("bin(15m)", "2026-11-25 10:15:00.000"),
            ("detail.outcome.result", "FAILURE"),
            ("detail.client.ipAddress", "203.0.113.9"),
            ("n", "12"),
            ("users", "11"),
            ("ips", "1"),
        ])];
        let c = parse_rows(&spec, &rows, 0, i64::MAX).unwrap();
        let (key, counts) = c.iter().next().unwrap();
        assert_eq!(key.1["client.ipAddress"], "203.0.113.9");
        assert_eq!(counts.failure, 12);
        assert_eq!((counts.failed_users, counts.failed_ips), (11, 1));
    }

    #[test]
    fn a_null_address_is_the_unknown_source() {
        let mut spec = RuleSpec::named("r");
        spec.split_by = Some("client.ipAddress".into());
        let at = |ip: Option<&str>| {
            let mut fields = vec![
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", "FAILURE"),
                ("n", "1"),
            ];
            if let Some(ip) = ip {
                fields.push(("detail.client.ipAddress", ip));
            }
            row(&fields)
        };
        let rows = vec![at(Some("null")), at(Some("")), at(None), at(Some("NULL"))];
        let c = parse_rows(&spec, &rows, 0, i64::MAX).unwrap();
        let values: Vec<&str> = c
            .keys()
            .map(|(_, l)| l["client.ipAddress"].as_str())
            .collect();
        assert_eq!(values, vec!["(none)"]);
        assert_eq!(c.values().next().map(|c| c.failure), Some(4));
    }

    #[test]
    fn bad_answers_are_named_errors() {
        let spec = RuleSpec::named("r");
        let no_bin = parse_rows(&spec, &[row(&[("n", "1")])], 0, i64::MAX).unwrap_err();
        assert!(no_bin.contains("no bin(...) field"), "{no_bin}");
        let bad_time = parse_rows(
            &spec,
            &[row(&[("bin(15m)", "1764066900000"), ("n", "1")])],
            0,
            i64::MAX,
        )
        .unwrap_err();
        assert!(bad_time.contains("is not a time"), "{bad_time}");
        let off = parse_rows(
            &spec,
            &[row(&[("bin(15m)", "2026-11-25 10:05:00.000"), ("n", "1")])],
            0,
            i64::MAX,
        )
        .unwrap_err();
        assert!(off.contains("boundary"), "{off}");
        let nan = parse_rows(
            &spec,
            &[row(&[
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("n", "lots"),
            ])],
            0,
            i64::MAX,
        )
        .unwrap_err();
        assert!(nan.contains("not a number"), "{nan}");
    }

    proptest! {
        #[test]
        fn bin_values_round_trip(secs in 0i64..4_102_444_800) {
            let ms = secs * 1000;
            let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
            let text = t.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
            prop_assert_eq!(parse_bin_ms(&text), Some(ms));
        }

        #[test]
        fn any_row_text_is_an_error_or_counts_never_a_panic(a in ".{0,30}", v in ".{0,30}", n in ".{0,10}") {
            let spec = RuleSpec::named("r");
            let _ = parse_rows(&spec, &[row(&[(a.as_str(), v.as_str()), ("n", n.as_str())])], 0, i64::MAX);
        }
    }
}
