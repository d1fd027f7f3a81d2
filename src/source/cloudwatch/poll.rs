//! Every poll: the bins that settled since the last one, then the revisions that are
//! due (late logs); a failed poll counts towards giving its bins up as unknown.

use tokio::sync::{mpsc, watch};

use super::read::ReadResult;
use super::{send_health, CloudWatchSource, RuleCursor};
use crate::series::{BinIndex, RuleId, Update};
use crate::source::insights::QueryError;
use crate::source::SourceEvent;

impl CloudWatchSource {
    /// One poll of one rule: new bins first, then revisions that are due.
    pub(in crate::source) async fn poll_rule(
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
    pub(in crate::source) async fn read_new(
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
        let updates = match result {
            ReadResult::Counts(u) => u,
            ReadResult::Truncated => {
                tracing::warn!(rule = %spec.name, "poll result hit the row limit; counts are partial");
                Vec::new()
            }
        };
        self.deliver(rule, cursor, updates, end, now, tx).await?;
        if cursor.failures > 0 {
            tracing::info!(rule = %spec.name, after_failures = cursor.failures, "source recovered");
        }
        cursor.failures = 0;
        metrics::gauge!("authpulse_last_successful_poll_timestamp_seconds", "rule" => spec.name.clone())
            .set(now as f64 / 1000.0);
        send_health(tx, rule, 0, None).await;
        Ok(())
    }

    /// Hand the bins from the cursor up to `end` to the pipeline, closed through `end`,
    /// move the cursor past them and publish them for the standbys (counts read, or
    /// bins given up as unknown: the same way).
    async fn deliver(
        &self,
        rule: usize,
        cursor: &mut RuleCursor,
        mut updates: Vec<Update>,
        end: i64,
        now: i64,
        tx: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), QueryError> {
        let first = cursor.next_bin;
        let bins = self.shareable(&updates, first, end, 0);
        updates.push(Update::Close {
            rule: RuleId(rule),
            end_bin: BinIndex(end),
        });
        tx.send(SourceEvent::Updates(updates))
            .await
            .map_err(|_| QueryError::Stopping)?;
        self.advance(cursor, first, end, now);
        self.publish(rule, &mut cursor.unpublished, bins).await;
        Ok(())
    }

    /// The cursor moves past `first..end`, which is read once more `revise_after` later.
    pub(in crate::source) fn advance(
        &self,
        cursor: &mut RuleCursor,
        first: i64,
        end: i64,
        now: i64,
    ) {
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
            let updates: Vec<Update> = (first..end)
                .map(|bin| Update::Unknown {
                    rule: RuleId(rule),
                    bin: BinIndex(bin),
                })
                .collect();
            self.deliver(rule, cursor, updates, end, now, tx).await?;
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
}
