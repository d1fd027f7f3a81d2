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
//! `source_unavailable`. A failed backfill chunk is tried again the same way (a poll
//! interval apart) before its bins are given up. A future bin is never queried.
//!
//! ## The query contract
//! The generated query (see [`RuleSpec::insights_query`]) is
//! `filter detail.eventType in [..] | stats count(*) as n by bin(15m), detail.outcome.result[, detail.<split_by>]`.
//! A rule's raw `query` must produce the same columns: a `bin(..)` field holding bin
//! starts as the service writes them (`2026-11-25 10:15:00.000`, UTC), a count `n`, and
//! optionally `detail.outcome.result` (rows without it count as neither success nor
//! failure), `detail.<split_by>`, and `users` / `ips` (distinct `actor.alternateId` and
//! `client.ipAddress` values; read on failure rows, 0 when absent).
//!
//! `backfill` loads the history on start, `poll` reads new bins and revises them, `read`
//! runs one query over a range of bins, `rows` turns its result rows into counts.

mod backfill;
mod poll;
mod read;
mod rows;

pub use rows::{parse_bin_ms, parse_rows};

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::config::SourceConfig;
use super::exchange::{BinExchange, SharedBin};
use super::insights::{Querier, QueryError};
use super::{Source, SourceError, SourceEvent};
use crate::clock::SharedClock;
use crate::retry::BoxFuture;
use crate::rule::RuleSpec;
use crate::series::RuleId;

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
            let window = self.config.backfill.unwrap_or(rule.history_window());
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
}

pub(super) async fn send_health(
    tx: &mpsc::Sender<SourceEvent>,
    rule: usize,
    failures: u32,
    error: Option<String>,
) {
    let _ = tx
        .send(SourceEvent::Health {
            rule: RuleId(rule),
            failures,
            error,
        })
        .await;
}
