//! The start: the baseline window loaded in chunks that stay under the row limit.

use tokio::sync::{mpsc, watch};

use super::read::ReadResult;
use super::{CloudWatchSource, MAX_ROWS};
use crate::series::{BinIndex, RuleId, Update};
use crate::source::insights::QueryError;
use crate::source::SourceEvent;

impl CloudWatchSource {
    /// Load `[first, end)` in chunks that stay under the row limit.
    pub(in crate::source) async fn backfill(
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
        // Failed chunk queries in a row: a chunk is tried again (a query failing now and
        // then must not cost the history) until `unavailable_after` in a row, as polls.
        let mut failures = 0;
        let mut unpublished = Vec::new();
        while start < end {
            let stop = (start + chunk).min(end);
            let read = self.read_range(rule, start, stop, shutdown).await;
            failures = if read.is_ok() { 0 } else { failures + 1 };
            match read {
                Err(e) if e != QueryError::Stopping && failures < self.config.unavailable_after => {
                    tracing::warn!(rule = %spec.name, failures, error = %e, "backfill query failed; trying again");
                    let mut stopping = shutdown.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = stopping.wait_for(|s| *s) => return Err(QueryError::Stopping),
                    }
                }
                Ok(ReadResult::Counts(updates)) => {
                    let mut updates = updates;
                    let bins = self.shareable(&updates, start, stop, 0);
                    self.publish(rule, &mut unpublished, bins).await;
                    updates.push(Update::Close {
                        rule: RuleId(rule),
                        end_bin: BinIndex(stop),
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
                        .map(|bin| Update::Unknown {
                            rule: RuleId(rule),
                            bin: BinIndex(bin),
                        })
                        .collect();
                    updates.push(Update::Close {
                        rule: RuleId(rule),
                        end_bin: BinIndex(stop),
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
}
