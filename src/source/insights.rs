//! Running one Logs Insights query to completion: StartQuery, GetQueryResults until the
//! query is Complete, StopQuery when it takes too long or the daemon stops.
//!
//! - StartQuery answered with throttling (`ThrottlingException`, `LimitExceededException`)
//!   is retried with full-jitter exponential backoff, on top of the SDK's own retries.
//! - `Scheduled` and `Running` are waited on with growing pauses; `Failed`, `Cancelled`,
//!   `Timeout` and `Unknown` are errors.
//! - A semaphore keeps this daemon's concurrent queries well below the account's limit
//!   of 30 (shared with everyone else querying the account).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::QueryStatus;
use aws_sdk_cloudwatchlogs::Client;
use rand::Rng;
use tokio::sync::{watch, Semaphore};

use crate::aws::classify_error;
use crate::retry::RemoteError;

/// One result row: field name → value, every value a string (as the service returns).
pub type Row = Vec<(String, String)>;

/// What a finished query returned.
#[derive(Debug, Clone, Default)]
pub struct QueryOutput {
    pub rows: Vec<Row>,
    pub bytes_scanned: f64,
    pub records_scanned: f64,
    pub records_matched: f64,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum QueryError {
    #[error("StartQuery still throttled after {0} attempts: {1}")]
    Throttled(u32, String),
    #[error("CloudWatch Logs refused the query: {0}")]
    Rejected(String),
    #[error("CloudWatch Logs call failed: {0}")]
    Api(String),
    #[error("query {id} ended with status {status}")]
    Ended { id: String, status: String },
    #[error("query {0} did not complete in time and was stopped")]
    Deadline(String),
    #[error("the daemon is stopping")]
    Stopping,
}

/// Runs queries against a set of log groups.
#[derive(Clone)]
pub struct Querier {
    client: Client,
    log_groups: Vec<String>,
    permits: Arc<Semaphore>,
    timeout: Duration,
    /// Attempts at StartQuery while throttled.
    start_attempts: u32,
    /// First pause between GetQueryResults polls.
    first_poll: Duration,
}

impl Querier {
    pub fn new(
        client: Client,
        log_groups: Vec<String>,
        max_concurrent: usize,
        timeout: Duration,
    ) -> Querier {
        Querier {
            client,
            log_groups,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            timeout,
            start_attempts: 6,
            first_poll: Duration::from_millis(200),
        }
    }

    /// Run `query` over `[start_s, end_s]` (epoch seconds, both inclusive).
    pub async fn run(
        &self,
        query: &str,
        start_s: i64,
        end_s: i64,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<QueryOutput, QueryError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| QueryError::Stopping)?;
        let id = self.start(query, start_s, end_s, shutdown).await?;
        self.wait(&id, shutdown).await
    }

    async fn start(
        &self,
        query: &str,
        start_s: i64,
        end_s: i64,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<String, QueryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .start_query()
                .set_log_group_names(Some(self.log_groups.clone()))
                .query_string(query)
                .start_time(start_s)
                .end_time(end_s)
                .send()
                .await;
            match result {
                Ok(out) => {
                    return out.query_id().map(str::to_string).ok_or_else(|| {
                        QueryError::Api("StartQuery answered without a queryId".into())
                    })
                }
                Err(e) => match classify_error(&e) {
                    RemoteError::Permanent(why) => return Err(QueryError::Rejected(why)),
                    RemoteError::Transient(why) if attempt >= self.start_attempts => {
                        return Err(QueryError::Throttled(attempt, why))
                    }
                    RemoteError::Transient(why) => {
                        let pause = backoff(attempt);
                        tracing::warn!(attempt, pause_ms = pause.as_millis() as u64, error = %why, "StartQuery throttled; backing off");
                        pause_or_stop(pause, shutdown).await?;
                    }
                },
            }
        }
    }

    async fn wait(
        &self,
        id: &str,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<QueryOutput, QueryError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut pause = self.first_poll;
        let mut errors = 0;
        loop {
            if tokio::time::Instant::now() >= deadline {
                self.stop(id).await;
                return Err(QueryError::Deadline(id.to_string()));
            }
            if let Err(e) = pause_or_stop(pause, shutdown).await {
                self.stop(id).await;
                return Err(e);
            }
            pause = (pause * 3 / 2).min(Duration::from_secs(5));
            let out = match self.client.get_query_results().query_id(id).send().await {
                Ok(out) => out,
                Err(e) => match classify_error(&e) {
                    RemoteError::Transient(why) if errors < 5 => {
                        errors += 1;
                        tracing::warn!(query_id = id, error = %why, "GetQueryResults failed; retrying");
                        continue;
                    }
                    RemoteError::Transient(why) | RemoteError::Permanent(why) => {
                        self.stop(id).await;
                        return Err(QueryError::Api(why));
                    }
                },
            };
            match out.status() {
                Some(QueryStatus::Complete) => {
                    let rows = out
                        .results()
                        .iter()
                        .map(|fields| {
                            fields
                                .iter()
                                .filter_map(|f| {
                                    Some((f.field()?.to_string(), f.value()?.to_string()))
                                })
                                .collect()
                        })
                        .collect();
                    let s = out.statistics();
                    return Ok(QueryOutput {
                        rows,
                        bytes_scanned: s.map_or(0.0, |s| s.bytes_scanned()),
                        records_scanned: s.map_or(0.0, |s| s.records_scanned()),
                        records_matched: s.map_or(0.0, |s| s.records_matched()),
                    });
                }
                Some(QueryStatus::Scheduled) | Some(QueryStatus::Running) => continue,
                other => {
                    let status =
                        other.map_or_else(|| "missing".to_string(), |s| s.as_str().to_string());
                    return Err(QueryError::Ended {
                        id: id.to_string(),
                        status,
                    });
                }
            }
        }
    }

    /// Best effort: a query we gave up on should not keep using the account's capacity.
    async fn stop(&self, id: &str) {
        if let Err(e) = self.client.stop_query().query_id(id).send().await {
            tracing::debug!(query_id = id, error = %crate::aws::aws_error_text(&e), "StopQuery failed");
        }
    }
}

/// Full-jitter exponential backoff: a random pause up to 0.5 s · 2^attempt, capped at 20 s.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (500u64 << attempt.min(10)).min(20_000);
    Duration::from_millis(rand::rng().random_range(cap_ms / 4..=cap_ms))
}

async fn pause_or_stop(
    pause: Duration,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), QueryError> {
    let mut shutdown = shutdown.clone();
    if *shutdown.borrow() {
        return Err(QueryError::Stopping);
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => Ok(()),
        _ = shutdown.wait_for(|stop| *stop) => Err(QueryError::Stopping),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(20));
            assert!(d >= Duration::from_millis(250));
        }
        assert!(backoff(1) <= Duration::from_millis(1000));
    }
}
