//! Enrichment: who is behind a failure-type alert.
//!
//! With the CloudWatch source, a firing `failure_spike` or `failure_ratio` alert gets a
//! follow-up Logs Insights query over its anomalous bin, restricted to the rule's event
//! types, the alert's series and failed outcomes, that finds the top source IPs, users,
//! countries and `outcome.reason` values (`top`, default 5, each), plus a console link
//! to the rule's query over the incident's window. The four "top" queries run at once.
//!
//! It is time-boxed: the alert waits at most `[enrichment] timeout` (default 20 s) for
//! it. If the query fails or is slow the alert goes out without the `enrichment` field,
//! with a warning in the log and `authpulse_enrichment_failures_total` counted. The alert
//! is enriched before it is written to the outbox, so every sink and every retry sends
//! the same document.
//!
//! ```toml
//! [enrichment]
//! enabled = true        # default: on with source.kind = "cloudwatch"
//! timeout = "20s"
//! top = 5
//! log_groups = [...]    # default: source.log_groups
//! ```

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::alert::{Alert, Enrichment, Status, TopValue};
use crate::config_reader::{Problems, Table};
use crate::detect::DetectorKind;
use crate::rule::{RuleSpec, OTHER_SERIES};
use crate::source::config::{SourceConfig, SourceKind};
use crate::source::insights::Querier;

/// The validated `[enrichment]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichSpec {
    pub enabled: bool,
    pub timeout: Duration,
    pub top: usize,
    /// Where to query; empty means `source.log_groups`.
    pub log_groups: Vec<String>,
}

impl Default for EnrichSpec {
    fn default() -> Self {
        EnrichSpec {
            enabled: true,
            timeout: Duration::from_secs(20),
            top: 5,
            log_groups: Vec::new(),
        }
    }
}

impl EnrichSpec {
    /// Read the `[enrichment]` table (the caller reports unknown keys).
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> EnrichSpec {
        let mut s = EnrichSpec::default();
        if let Some(b) = t.bool("enabled", problems) {
            s.enabled = b;
        }
        if let Some(d) = t.duration("timeout", problems) {
            if d.is_zero() {
                problems.push(t.key_path("timeout"), "must be greater than 0");
            } else {
                s.timeout = d;
            }
        }
        if let Some(n) = t.count("top", 1, problems) {
            if n > 100 {
                problems.push(t.key_path("top"), "must be at most 100");
            } else {
                s.top = n as usize;
            }
        }
        if let Some(groups) = t.strings("log_groups", problems) {
            if groups.iter().any(|g| g.trim().is_empty()) {
                problems.push(t.key_path("log_groups"), "contains an empty log group name");
            }
            s.log_groups = groups;
        }
        s
    }
}

/// Runs the follow-up queries.
pub struct Enricher {
    querier: Querier,
    spec: EnrichSpec,
    region: String,
    log_groups: Vec<String>,
}

/// The dimensions reported, as (Okta field path, what they fill).
const DIMENSIONS: [&str; 4] = [
    "client.ipAddress",
    "actor.alternateId",
    "client.geographicalContext.country",
    "outcome.reason",
];

/// A Logs Insights string literal.
fn literal(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// The query for the top values of `field` among the failed sign-ins of `alert`'s series.
pub fn top_query(rule: &RuleSpec, alert: &Alert, field: &str, top: usize) -> String {
    let types: Vec<String> = rule.event_types.iter().map(|t| literal(t)).collect();
    let mut filter = format!(
        "filter detail.eventType in [{}] and detail.outcome.result = \"FAILURE\"",
        types.join(", ")
    );
    for (k, v) in &alert.series {
        if v != OTHER_SERIES {
            filter.push_str(&format!(" and detail.{k} = {}", literal(v)));
        }
    }
    format!("{filter}\n| stats count(*) as n by detail.{field}\n| sort n desc\n| limit {top}")
}

/// JavaScript's `encodeURIComponent` (which the console uses) with `esc` instead of `%`:
/// everything but ASCII letters, digits and `-_.!~*'()` is escaped.
fn encode(s: &str, esc: char) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push(esc);
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// A CloudWatch Logs Insights console link with `query` over `[start_ms, end_ms)` on
/// `log_groups`, in the console's own URL encoding: a `queryDetail` fragment in the
/// console's `~(key~'value)` notation, values URI-encoded with `*` for `%`, the whole
/// fragment URI-encoded again with `$` for `%`.
pub fn console_url(
    region: &str,
    log_groups: &[String],
    query: &str,
    start_ms: i64,
    end_ms: i64,
) -> String {
    let iso = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    };
    let sources: String = log_groups
        .iter()
        .map(|g| format!("~'{}", encode(g, '*')))
        .collect();
    let detail = format!(
        "~(end~'{}~start~'{}~timeType~'ABSOLUTE~tz~'UTC~editorString~'{}~source~({sources}))",
        encode(&iso(end_ms), '*'),
        encode(&iso(start_ms), '*'),
        encode(query, '*'),
    );
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:logs-insights{}",
        encode(&format!("?queryDetail={detail}"), '$')
    )
}

impl Enricher {
    /// An enricher when the source is CloudWatch and enrichment is not disabled.
    pub async fn new(s: &SourceConfig, spec: &EnrichSpec) -> Option<Arc<Enricher>> {
        if s.kind != SourceKind::Cloudwatch || !spec.enabled {
            return None;
        }
        let sdk = crate::aws::sdk_config(s.region.clone(), s.endpoint_url.clone()).await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        let log_groups = if spec.log_groups.is_empty() {
            s.log_groups.clone()
        } else {
            spec.log_groups.clone()
        };
        let client = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        // The querier stops its queries a little before the hard deadline, so they do
        // not linger in the account's concurrency budget.
        let querier = Querier::new(
            client,
            log_groups.clone(),
            DIMENSIONS.len(),
            spec.timeout.mul_f64(0.8),
        );
        Some(Arc::new(Enricher {
            querier,
            spec: spec.clone(),
            region,
            log_groups,
        }))
    }

    /// Failure-type firing alerts are enriched; resolved ones and other detectors not.
    pub fn wants(alert: &Alert) -> bool {
        alert.status == Status::Firing
            && matches!(
                alert.detector.pipeline(),
                Some(DetectorKind::FailureSpike | DetectorKind::FailureRatio)
            )
    }

    /// Query the top values for `alert` (no time box here: see [`enrich_all`]).
    pub async fn query(
        &self,
        alert: &Alert,
        rule: &RuleSpec,
        stop: &watch::Receiver<bool>,
    ) -> Result<Enrichment, String> {
        let (start_ms, end_ms) = (alert.bin_start.ms(), alert.bin_end.ms());
        // Logs Insights times are whole seconds, both ends inclusive.
        let (start_s, end_s) = (start_ms / 1000, end_ms / 1000 - 1);
        let queries: Vec<String> = DIMENSIONS
            .iter()
            .map(|f| top_query(rule, alert, f, self.spec.top))
            .collect();
        let (ips, users, countries, reasons) = tokio::join!(
            self.querier.run(&queries[0], start_s, end_s, stop),
            self.querier.run(&queries[1], start_s, end_s, stop),
            self.querier.run(&queries[2], start_s, end_s, stop),
            self.querier.run(&queries[3], start_s, end_s, stop),
        );
        let top = |field: &str, out: Result<crate::source::insights::QueryOutput, _>| {
            let out: crate::source::insights::QueryOutput =
                out.map_err(|e: crate::source::insights::QueryError| e.to_string())?;
            let column = format!("detail.{field}");
            let mut values: Vec<TopValue> = out
                .rows
                .iter()
                .filter_map(|row| {
                    let value = row.iter().find(|(k, _)| *k == column)?.1.clone();
                    let count = row.iter().find(|(k, _)| k == "n")?.1.parse::<f64>().ok()?;
                    Some(TopValue {
                        value,
                        count: count as u64,
                    })
                })
                .filter(|t| !t.value.is_empty())
                .collect();
            values.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
            values.truncate(self.spec.top);
            Ok::<_, String>(values)
        };
        let started = alert.started_at.ms().min(start_ms);
        Ok(Enrichment {
            top_ips: top(DIMENSIONS[0], ips)?,
            top_users: top(DIMENSIONS[1], users)?,
            top_countries: top(DIMENSIONS[2], countries)?,
            top_reasons: top(DIMENSIONS[3], reasons)?,
            console_url: console_url(
                &self.region,
                &self.log_groups,
                &rule.insights_query(),
                started,
                end_ms,
            ),
        })
    }
}

/// Enrich every alert that wants it, all at once, waiting at most the configured
/// timeout; an alert whose query fails or is late goes on without enrichment.
pub async fn enrich_all(
    enricher: &Arc<Enricher>,
    alerts: &mut [Alert],
    rules: &[RuleSpec],
    stop: &watch::Receiver<bool>,
) {
    let mut set = JoinSet::new();
    for (i, alert) in alerts.iter().enumerate() {
        if !Enricher::wants(alert) {
            continue;
        }
        let Some(rule) = rules.iter().find(|r| r.name == alert.rule).cloned() else {
            continue;
        };
        let (e, a, stop) = (enricher.clone(), alert.clone(), stop.clone());
        set.spawn(async move { (i, e.query(&a, &rule, &stop).await) });
    }
    if set.is_empty() {
        return;
    }
    let deadline = tokio::time::Instant::now() + enricher.spec.timeout;
    let mut pending: Vec<usize> = (0..alerts.len())
        .filter(|&i| alerts.get(i).is_some_and(Enricher::wants))
        .collect();
    loop {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(Some(Ok((i, result)))) => {
                pending.retain(|&p| p != i);
                let Some(alert) = alerts.get_mut(i) else {
                    continue;
                };
                match result {
                    Ok(e) => alert.enrichment = Some(e),
                    Err(error) => {
                        metrics::counter!("authpulse_enrichment_failures_total").increment(1);
                        tracing::warn!(idempotency_key = %alert.idempotency_key, %error, "enrichment query failed; sending the alert without it");
                    }
                }
            }
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "enrichment task failed");
            }
            Ok(None) => return,
            Err(_) => {
                set.abort_all();
                for i in pending {
                    if let Some(alert) = alerts.get(i) {
                        metrics::counter!("authpulse_enrichment_failures_total").increment(1);
                        tracing::warn!(
                            idempotency_key = %alert.idempotency_key,
                            timeout_ms = enricher.spec.timeout.as_millis() as u64,
                            "enrichment too slow; sending the alert without it"
                        );
                    }
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::render::tests::sample_alert;

    #[test]
    fn top_query_filters_failures_of_the_series() {
        let rule = RuleSpec::named("okta-sign-ins");
        let a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        let q = top_query(&rule, &a, "client.ipAddress", 5);
        assert_eq!(
            q,
            "filter detail.eventType in [\"user.session.start\"] and detail.outcome.result = \"FAILURE\" and detail.client.ipAddress = \"203.0.113.9\"\n| stats count(*) as n by detail.client.ipAddress\n| sort n desc\n| limit 5"
        );
    }

    #[test]
    fn console_url_is_escaped_the_console_way() {
        let u = console_url(
            "eu-west-1",
            &["/aws/events/okta".to_string()],
            "fields @timestamp | limit 5",
            1_795_601_700_000,
            1_795_602_600_000,
        );
        assert!(u.starts_with(
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:logs-insights$3FqueryDetail$3D~(end~'2026-11-25T10*3A30*3A00.000Z~start~'2026-11-25T10*3A15*3A00.000Z~timeType~'ABSOLUTE~tz~'UTC~editorString~'fields*20*40timestamp*20*7C*20limit*205~source~(~'*2Faws*2Fevents*2Fokta))"
        ), "{u}");
        assert!(!u.contains(' ') && !u.contains('|'), "{u}");
    }

    #[test]
    fn only_failure_type_firing_alerts_are_enriched() {
        let mut a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        assert!(Enricher::wants(&a));
        a.detector = "volume_spike".parse().unwrap();
        assert!(!Enricher::wants(&a));
        let r = sample_alert(Status::Resolved, "2026-11-25T10:15:00Z");
        assert!(!Enricher::wants(&r));
    }
}
