//! Bins shared between replicas (`[ha]`): the leader of a rule publishes the counts of
//! every bin it read from Logs Insights (and again when it revises it); the other
//! replicas read those instead of querying, so N replicas scan what one does.
//!
//! ```text
//!   leader:   Insights ─► pipeline            standby:  exchange ─► pipeline
//!                     └─► exchange (fenced)   takeover: the last bin in the exchange
//!                                                       is where its Insights polls start
//! ```
//!
//! At start every replica loads the baseline window from the exchange and queries Logs
//! Insights only for the bins the exchange lacks (all of them on the very first start;
//! the leader publishes what it reads, so the next replica finds them). A standby moves
//! its cursor only over bins the exchange holds, in order, so when it takes a rule over
//! its first query starts at the first bin nobody published: no gap, and no bin counted
//! twice (counts are absolute: a bin read twice replaces, never adds).
//!
//! The trait is implemented on the DynamoDB table by `ha::bins`; this file holds what the
//! CloudWatch source does with it.

use std::collections::BTreeMap;

use tokio::sync::{mpsc, watch};

use super::cloudwatch::{CloudWatchSource, RuleCursor};
use super::insights::QueryError;
use super::SourceEvent;
use crate::retry::BoxFuture;
use crate::rule::RuleSpec;
use crate::series::{BinIndex, Counts, Labels, RuleId, Update};

/// A leader this many bins behind reads them in backfill chunks (see
/// [`CloudWatchSource::catch_up`]).
const CATCH_UP_BINS: i64 = 8;

/// One bin of one rule, as the leader read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedBin {
    pub bin: i64,
    /// 0: the first read after `settle`; 1: the revision (`revise_after` later).
    pub revision: u32,
    /// The leader could not read it (unknown, never zero).
    pub unknown: bool,
    /// Absolute counts per series.
    pub series: Vec<(Labels, Counts)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Another replica leads the rule now: this one must not publish.
    #[error("fenced: {0}")]
    Fenced(String),
    #[error("{0}")]
    Unavailable(String),
}

/// Where the leader of a rule leaves its bins for the other replicas.
pub trait BinExchange: Send + Sync {
    /// Does this replica query Logs Insights for `rule`? When it holds the rule's lease
    /// (and publishes what it reads), and when it cannot coordinate at all: then every
    /// replica reads for itself (and pages nothing), so that its pipeline is current
    /// when the table answers again.
    fn queries(&self, rule: &str) -> bool;
    /// Publish bins of `rule`, in bin order; fenced by the rule's lease.
    fn publish<'a>(
        &'a self,
        rule: &'a RuleSpec,
        bins: &'a [SharedBin],
    ) -> BoxFuture<'a, Result<(), ExchangeError>>;
    /// The published bins of `rule` from `first` on, in bin order (complete bins only).
    fn read<'a>(
        &'a self,
        rule: &'a RuleSpec,
        first: i64,
    ) -> BoxFuture<'a, Result<Vec<SharedBin>, ExchangeError>>;
}

/// The bins `[first, end)` in `updates` (a read of that range), for publishing. A bin
/// without observations is known and empty (a split rule's quiet bin).
pub fn to_shared(updates: &[Update], first: i64, end: i64, revision: u32) -> Vec<SharedBin> {
    let mut bins: BTreeMap<i64, SharedBin> = (first..end)
        .map(|bin| {
            let b = SharedBin {
                bin,
                revision,
                unknown: false,
                series: Vec::new(),
            };
            (bin, b)
        })
        .collect();
    for u in updates {
        match u {
            Update::Observe {
                bin: BinIndex(bin),
                labels,
                counts,
                ..
            } => {
                if let Some(b) = bins.get_mut(bin) {
                    b.series.push((labels.clone(), *counts));
                }
            }
            Update::Unknown {
                bin: BinIndex(bin), ..
            } => {
                if let Some(b) = bins.get_mut(bin) {
                    b.unknown = true;
                }
            }
            Update::Close { .. } | Update::Skip { .. } => {}
        }
    }
    bins.into_values().collect()
}

/// Published bins as the pipeline's updates for rule index `rule`.
pub fn to_updates(rule: usize, bins: &[SharedBin]) -> Vec<Update> {
    let mut out = Vec::new();
    for b in bins {
        if b.unknown {
            out.push(Update::Unknown {
                rule: RuleId(rule),
                bin: BinIndex(b.bin),
            });
            continue;
        }
        for (labels, counts) in &b.series {
            out.push(Update::Observe {
                rule: RuleId(rule),
                bin: BinIndex(b.bin),
                labels: labels.clone(),
                counts: *counts,
            });
        }
    }
    out
}

/// The part of `[first, end)` the exchange holds, as runs: `(start, end, in_exchange)`.
pub fn runs(have: &[SharedBin], first: i64, end: i64) -> Vec<(i64, i64, bool)> {
    let held: std::collections::BTreeSet<i64> = have.iter().map(|b| b.bin).collect();
    let mut out: Vec<(i64, i64, bool)> = Vec::new();
    for bin in first..end {
        let h = held.contains(&bin);
        match out.last_mut() {
            Some(run) if run.2 == h => run.1 = bin + 1,
            _ => out.push((bin, bin + 1, h)),
        }
    }
    out
}

impl CloudWatchSource {
    /// `[ha]`: does this replica query Logs Insights for `rule` (it leads it)?
    pub(super) fn queries(&self, rule: usize) -> bool {
        self.exchange
            .as_ref()
            .is_none_or(|x| x.queries(&self.rules[rule].name))
    }

    /// One poll of one rule: the leader (or a single instance) queries, a standby
    /// follows the exchange; the first poll after a takeover follows once more first.
    pub(super) async fn poll_or_follow(
        &self,
        rule: usize,
        cursor: &mut RuleCursor,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), QueryError> {
        let queries = self.queries(rule);
        let was_following = std::mem::replace(&mut cursor.following, !queries);
        if !queries || was_following {
            cursor.catch_up = queries;
            self.follow(rule, cursor, tx, shutdown).await?;
        }
        if queries {
            self.catch_up(rule, cursor, tx, shutdown).await?;
            self.poll_rule(rule, cursor, tx, shutdown).await?;
        }
        Ok(())
    }

    /// `[ha]`: a leader far behind (nobody published for a while: every replica was cut
    /// off, or the leader ran another query) reads the stretch in backfill chunks, under
    /// the row limit, instead of one poll.
    async fn catch_up(
        &self,
        rule: usize,
        cursor: &mut RuleCursor,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), QueryError> {
        let end = self.settled_end(&self.rules[rule], self.clock.now_ms());
        if self.exchange.is_none() || end - cursor.next_bin <= CATCH_UP_BINS {
            return Ok(());
        }
        let first = cursor.next_bin;
        tracing::info!(rule = %self.rules[rule].name, bins = end - first, "catching up on bins nobody published");
        match self.backfill(rule, first, end, tx, shutdown).await {
            Err(QueryError::Stopping) => return Err(QueryError::Stopping),
            Err(e) => {
                tracing::warn!(rule = %self.rules[rule].name, error = %e, "catch-up incomplete; those bins stay unknown")
            }
            Ok(()) => {}
        }
        cursor.next_bin = end;
        Ok(())
    }

    /// `[ha]`: the bins of a read of `[first, end)`, to publish; none for one instance.
    pub(super) fn shareable(
        &self,
        updates: &[Update],
        first: i64,
        end: i64,
        revision: u32,
    ) -> Vec<SharedBin> {
        match self.exchange {
            Some(_) => to_shared(updates, first, end, revision),
            None => Vec::new(),
        }
    }

    /// The leader publishes what it read. `unpublished` keeps what could not be
    /// published, retried first at the next publish (the standbys follow bins in order).
    pub(super) async fn publish(
        &self,
        rule: usize,
        unpublished: &mut Vec<SharedBin>,
        bins: Vec<SharedBin>,
    ) {
        let Some(x) = &self.exchange else { return };
        let spec = &self.rules[rule];
        unpublished.extend(bins);
        if unpublished.is_empty() {
            return;
        }
        match x.publish(spec, unpublished).await {
            Ok(()) => unpublished.clear(),
            Err(ExchangeError::Fenced(why)) => {
                // Not (or no longer) the leader: the leader publishes its own reads.
                tracing::debug!(rule = %spec.name, %why, "not publishing bins");
                unpublished.clear();
            }
            Err(ExchangeError::Unavailable(why)) => {
                // Keep a day of bins at most; a standby reads an older hole itself.
                let keep = (86_400_000 / spec.bin_ms()).max(1) as usize;
                let excess = unpublished.len().saturating_sub(keep);
                unpublished.drain(..excess);
                tracing::warn!(rule = %spec.name, %why, pending = unpublished.len(), "cannot publish bins for the other replicas; retrying at the next poll");
            }
        }
    }

    /// At start: load `[first, end)`, from the exchange what it holds and from Logs
    /// Insights the rest, in bin order. Returns where the cursor starts: `end`, or for a
    /// standby the start of a short missing tail (the leader has not published it yet,
    /// [`CloudWatchSource::follow`] takes it), and the last backfill error.
    pub(super) async fn load_history(
        &self,
        rule: usize,
        first: i64,
        end: i64,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> (i64, Result<(), QueryError>) {
        let Some(x) = &self.exchange else {
            return (end, self.backfill(rule, first, end, tx, shutdown).await);
        };
        let spec = &self.rules[rule];
        let mut have = Vec::new();
        for attempt in 1..=3 {
            match x.read(spec, first).await {
                Ok(bins) => {
                    have = bins;
                    break;
                }
                Err(e) if attempt < 3 => {
                    tracing::info!(rule = %spec.name, error = %e, attempt, "cannot read the shared bins yet; retrying")
                }
                Err(e) => {
                    tracing::warn!(rule = %spec.name, error = %e, "cannot read the shared bins; loading the history from Logs Insights")
                }
            }
        }
        let mut runs = runs(&have, first, end);
        let mut next_bin = end;
        if let Some(&(start, stop, false)) = runs.last() {
            if stop - start <= 2 && start > first && !self.queries(rule) {
                runs.pop();
                next_bin = start;
            }
        }
        let shared = have.iter().filter(|b| b.bin < end).count();
        tracing::info!(rule = %spec.name, shared, bins = end - first, "history: the shared bins from the exchange, the rest from Logs Insights");
        let mut result = Ok(());
        for (start, stop, held) in runs {
            if !held {
                match self.backfill(rule, start, stop, tx, shutdown).await {
                    Err(QueryError::Stopping) => return (next_bin, Err(QueryError::Stopping)),
                    Err(e) => result = Err(e),
                    Ok(()) => {}
                }
                continue;
            }
            let bins: Vec<SharedBin> = have
                .iter()
                .filter(|b| b.bin >= start && b.bin < stop)
                .cloned()
                .collect();
            let mut updates = to_updates(rule, &bins);
            updates.push(Update::Close {
                rule: RuleId(rule),
                end_bin: BinIndex(stop),
            });
            let _ = tx.send(SourceEvent::Updates(updates)).await;
        }
        (next_bin, result)
    }

    /// A standby's poll of one rule: the bins (and revisions) the leader published since
    /// the last, read only when one is due. A hole the leader will never fill (bins after
    /// it are published) is read from Logs Insights.
    pub(super) async fn follow(
        &self,
        rule: usize,
        cursor: &mut RuleCursor,
        tx: &mpsc::Sender<SourceEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), QueryError> {
        let Some(x) = &self.exchange else {
            return Ok(());
        };
        let spec = &self.rules[rule];
        let now = self.clock.now_ms();
        let end = self.settled_end(spec, now);
        let revision_due = cursor.revisions.front().is_some_and(|r| r.2 <= now);
        if cursor.next_bin >= end && !revision_due && !cursor.catch_up {
            return Ok(());
        }
        cursor.catch_up = false;
        let from = cursor
            .revisions
            .front()
            .map_or(cursor.next_bin, |r| r.0.min(cursor.next_bin));
        let bins = match x.read(spec, from).await {
            Ok(bins) => bins,
            Err(e) => {
                tracing::warn!(rule = %spec.name, error = %e, "cannot read the shared bins; retrying at the next poll");
                return Ok(());
            }
        };
        self.follow_revisions(rule, cursor, &bins, now, tx).await?;
        let first = cursor.next_bin;
        let fresh: Vec<SharedBin> = bins
            .iter()
            .filter(|b| b.bin >= first && b.bin < end)
            .cloned()
            .collect();
        let Some(lowest) = fresh.first().map(|b| b.bin) else {
            return Ok(());
        };
        if lowest > first {
            // A hole: read it ourselves, then take what follows at the next poll.
            tracing::info!(rule = %spec.name, bins = lowest - first, "the shared bins have a hole; reading it from Logs Insights");
            return self.read_new(rule, cursor, lowest, now, tx, shutdown).await;
        }
        let mut stop = first;
        for b in &fresh {
            if b.bin != stop {
                break;
            }
            stop += 1;
        }
        let run: Vec<SharedBin> = fresh.into_iter().filter(|b| b.bin < stop).collect();
        let mut updates = to_updates(rule, &run);
        updates.push(Update::Close {
            rule: RuleId(rule),
            end_bin: BinIndex(stop),
        });
        tx.send(SourceEvent::Updates(updates))
            .await
            .map_err(|_| QueryError::Stopping)?;
        self.advance(cursor, first, stop, now);
        super::cloudwatch::send_health(tx, rule, 0, None).await;
        Ok(())
    }

    /// Revisions the leader published for ranges whose revision is due here; a range is
    /// given up `revise_after` (at least a minute: a takeover may come between) after it
    /// was due (its first counts stay). A standby that takes the rule over before then
    /// revises the range itself.
    async fn follow_revisions(
        &self,
        rule: usize,
        cursor: &mut RuleCursor,
        bins: &[SharedBin],
        now: i64,
        tx: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), QueryError> {
        let patience = self.config.revise_after.as_millis().max(60_000) as i64;
        let mut revised = Vec::new();
        while let Some(&(first, end, due)) = cursor.revisions.front() {
            if due > now {
                break;
            }
            let got: Vec<&SharedBin> = bins
                .iter()
                .filter(|b| b.bin >= first && b.bin < end && b.revision >= 1)
                .collect();
            if got.len() as i64 == end - first || now >= due + patience {
                revised.extend(got.into_iter().cloned());
                cursor.revisions.pop_front();
            } else {
                break;
            }
        }
        if revised.is_empty() {
            return Ok(());
        }
        tx.send(SourceEvent::Updates(to_updates(rule, &revised)))
            .await
            .map_err(|_| QueryError::Stopping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(total: u64) -> Counts {
        Counts {
            total,
            ..Counts::default()
        }
    }

    #[test]
    fn updates_become_bins_and_back() {
        let ip = |v: &str| Labels::from([("client.ipAddress".to_string(), v.to_string())]);
        let updates = vec![
            Update::Observe {
                rule: RuleId(3),
                bin: BinIndex(10),
                labels: ip("a"),
                counts: counts(4),
            },
            Update::Observe {
                rule: RuleId(3),
                bin: BinIndex(10),
                labels: ip("b"),
                counts: counts(1),
            },
            Update::Unknown {
                rule: RuleId(3),
                bin: BinIndex(12),
            },
            Update::Close {
                rule: RuleId(3),
                end_bin: BinIndex(13),
            },
        ];
        let bins = to_shared(&updates, 10, 13, 1);
        assert_eq!(bins.len(), 3, "a quiet bin is published too");
        assert_eq!(bins[0].series.len(), 2);
        assert!(bins[1].series.is_empty() && !bins[1].unknown);
        assert!(bins[2].unknown);
        assert!(bins.iter().all(|b| b.revision == 1));
        let back = to_updates(3, &bins);
        assert_eq!(back[..], updates[..3]);
    }

    #[test]
    fn runs_split_a_range_into_held_and_missing() {
        let b = |bin| SharedBin {
            bin,
            revision: 0,
            unknown: false,
            series: Vec::new(),
        };
        let have = vec![b(3), b(4), b(7), b(20)];
        assert_eq!(
            runs(&have, 2, 9),
            vec![
                (2, 3, false),
                (3, 5, true),
                (5, 7, false),
                (7, 8, true),
                (8, 9, false)
            ]
        );
        assert_eq!(runs(&[], 0, 3), vec![(0, 3, false)]);
        assert!(runs(&have, 5, 5).is_empty());
    }
}
