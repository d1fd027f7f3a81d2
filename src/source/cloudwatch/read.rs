//! One query over a range of bins, its statistics recorded, its rows made observations.

use tokio::sync::watch;

use super::rows::parse_rows;
use super::{CloudWatchSource, MAX_ROWS};
use crate::rule::RuleSpec;
use crate::series::{BinIndex, Counts, Labels, RuleId, Update};
use crate::source::insights::{QueryError, QueryOutput};

impl CloudWatchSource {
    /// Query `[first, end)` and turn the rows into observations.
    pub(super) async fn read_range(
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
                        rule: RuleId(rule),
                        bin: BinIndex(bin),
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
                    rule: RuleId(rule),
                    bin: BinIndex(bin),
                    labels,
                    counts,
                }),
        );
        Ok(ReadResult::Counts(updates))
    }
}

pub(super) enum ReadResult {
    Counts(Vec<Update>),
    Truncated,
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
