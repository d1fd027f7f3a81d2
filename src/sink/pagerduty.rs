//! `pagerduty` sink: PagerDuty Events API v2 (`POST /v2/enqueue`).
//!
//! What this relies on, from PagerDuty's developer documentation (the `events-API-v2`
//! pages "Send an Alert Event", "Events API v2 Overview" and "Events API Rate Limits"):
//!
//! - The body is a JSON object with `routing_key` (the 32-character integration key),
//!   `event_action` (`trigger`, `acknowledge` or `resolve`) and `dedup_key` (at most 255
//!   characters; events with the same key apply to the same open alert, and a `resolve`
//!   for a key with no open alert is dropped). A `trigger` carries `payload` with the
//!   required `summary` (at most 1024 characters), `source` and `severity` (`critical`,
//!   `error`, `warning` or `info`) and the optional `timestamp` (ISO 8601), `component`,
//!   `group`, `class` and `custom_details` (an object); beside it `client`, `client_url`
//!   and `links` (objects with a required `href` and an optional `text`).
//! - `202` means accepted. `400` means the event is invalid (the body says why:
//!   `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`)
//!   and must not be retried. `429` (too many events for the integration key) and `5xx`
//!   must be retried "after some time"; for `429` PagerDuty suggests "a backoff of a few
//!   minutes", or retrying "3 times with each request being 30 seconds apart". Payloads
//!   are limited to 512 KB.
//!
//! How an alert maps:
//!
//! | Events API v2          | authpulse                                                   |
//! | ---------------------- | ----------------------------------------------------------- |
//! | `event_action`         | `trigger` for `firing` (repeats too), `resolve` for `resolved` |
//! | `dedup_key`            | the alert's `fingerprint` (rule + detector + series)        |
//! | `payload.summary`      | the alert's `summary`, cut to 1024 characters               |
//! | `payload.source`       | the sink's `source`, else the series (`client.ipAddress=…`), else the rule |
//! | `payload.severity`     | `critical`, `warning`, `info` (authpulse has no `error`)    |
//! | `payload.timestamp`    | `bin_end`: when the anomalous bin closed                    |
//! | `payload.component`    | the rule                                                    |
//! | `payload.group`        | the detector                                                |
//! | `payload.class`        | the kind (`credential_stuffing`, …), when known             |
//! | `payload.custom_details` | the alert JSON                                            |
//! | `links`                | the CloudWatch Logs Insights console link of an enriched alert |
//!
//! A `resolve` carries only `routing_key`, `event_action` and `dedup_key`, as in
//! PagerDuty's example. On `429` the worker waits at least `rate_limit_wait` (30 s by
//! default, PagerDuty's own suggestion; a `Retry-After` header wins when present) on top
//! of the usual backoff; `5xx`, `408` and network errors follow the usual backoff; `400`
//! (and any other 4xx) is permanent, and PagerDuty's error message becomes the reason
//! logged with the dead letter. The routing key is read from the environment variable
//! named by `routing_key_env` when the daemon starts; it is never logged, never in
//! `Debug` output, and removed from any error text PagerDuty sends back.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Map, Value};

use super::route::SinkRoute;
use super::spec::{read_api_url, read_retry, read_timeout, refuse_secret};
use super::webhook::{classify_status, error_text};
use super::{Redacted, SecretSource, Sink};
use crate::alert::{Alert, Status};
use crate::config_reader::{Problems, Table};
use crate::detect::Severity;
use crate::retry::{BoxFuture, RemoteError, RetryPolicy};

pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// `payload.summary`'s documented limit, in characters.
pub const SUMMARY_MAX_CHARS: usize = 1024;

/// A validated `kind = "pagerduty"` sink.
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDutySpec {
    pub url: String,
    /// The environment variable holding the integration (routing) key.
    pub routing_key_env: String,
    /// `payload.source`; see the module docs for the default.
    pub source: Option<String>,
    pub timeout: Duration,
    /// The least pause after a `429`.
    pub rate_limit_wait: Duration,
    pub retry: RetryPolicy,
    pub route: SinkRoute,
}

impl PagerDutySpec {
    pub(super) fn read(t: &mut Table<'_>, problems: &mut Problems) -> Option<PagerDutySpec> {
        refuse_secret(t, problems, "routing_key", "the integration key");
        let url = read_api_url(t, problems, DEFAULT_URL);
        let source = match t.string("source", problems) {
            Some(s) if s.trim().is_empty() => {
                problems.push(
                    t.key_path("source"),
                    "must not be empty (leave it out for the default)",
                );
                None
            }
            other => other,
        };
        let timeout = read_timeout(t, problems);
        let rate_limit_wait = t
            .duration("rate_limit_wait", problems)
            .unwrap_or(Duration::from_secs(30));
        let retry = read_retry(t, problems);
        let route = SinkRoute::read(t, problems);
        match t.string("routing_key_env", problems) {
            Some(var) if !var.trim().is_empty() => Some(PagerDutySpec {
                url,
                routing_key_env: var,
                source,
                timeout,
                rate_limit_wait,
                retry,
                route,
            }),
            Some(_) => {
                problems.push(
                    t.key_path("routing_key_env"),
                    "must name an environment variable",
                );
                None
            }
            None => {
                problems.push(
                    t.key_path("routing_key_env"),
                    "is required for a pagerduty sink: the environment variable that holds the Events API v2 integration key",
                );
                None
            }
        }
    }
}

/// Cut `s` to at most `max` characters (never inside a character), marking a cut with `…`.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// `payload.source` when the sink sets none: the series, or the rule for an unsplit one.
fn default_source(alert: &Alert) -> String {
    if alert.series.is_empty() {
        alert.rule.clone()
    } else {
        alert
            .series
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The Events API v2 event for `alert`.
pub fn event(alert: &Alert, routing_key: &str, source: Option<&str>) -> Value {
    let mut event = Map::new();
    event.insert("routing_key".into(), json!(routing_key));
    event.insert("dedup_key".into(), json!(alert.fingerprint));
    if alert.status == Status::Resolved {
        event.insert("event_action".into(), json!("resolve"));
        return Value::Object(event);
    }
    event.insert("event_action".into(), json!("trigger"));
    let mut payload = Map::new();
    payload.insert(
        "summary".into(),
        json!(cut(alert.summary.trim(), SUMMARY_MAX_CHARS)),
    );
    let source = source.map_or_else(|| default_source(alert), str::to_string);
    payload.insert("source".into(), json!(source));
    payload.insert("severity".into(), json!(severity(alert.severity)));
    payload.insert("timestamp".into(), json!(alert.bin_end));
    payload.insert("component".into(), json!(alert.rule));
    payload.insert("group".into(), json!(alert.detector));
    payload.insert("class".into(), json!(alert.kind));
    payload.insert(
        "custom_details".into(),
        serde_json::to_value(alert).unwrap_or(Value::Null),
    );
    event.insert("payload".into(), Value::Object(payload));
    event.insert("client".into(), json!("authpulse"));
    if let Some(e) = &alert.enrichment {
        if !e.console_url.is_empty() {
            event.insert(
                "links".into(),
                json!([{
                    "href": e.console_url,
                    "text": "CloudWatch Logs Insights: the rule's query over the incident's window",
                }]),
            );
        }
    }
    Value::Object(event)
}

pub struct PagerDutySink {
    name: String,
    url: String,
    routing_key: Redacted,
    source: Option<String>,
    rate_limit_wait: Duration,
    client: reqwest::Client,
    /// Set by a `429`, read once by the delivery worker.
    retry_after: Mutex<Option<Duration>>,
}

impl PagerDutySink {
    /// Reads the routing key from the environment; `key_path` (`sinks[2]`) names the
    /// config entry in the error when it is missing.
    pub fn new(name: String, key_path: &str, spec: &PagerDutySpec) -> Result<Self, RemoteError> {
        let routing_key = SecretSource::Env(spec.routing_key_env.clone())
            .resolve(&format!("{key_path}.routing_key_env"))?;
        let client = crate::sink::http_client(spec.timeout)?;
        Ok(PagerDutySink {
            name,
            url: spec.url.clone(),
            routing_key: Redacted(routing_key.trim().to_string()),
            source: spec.source.clone(),
            rate_limit_wait: spec.rate_limit_wait,
            client,
            retry_after: Mutex::new(None),
        })
    }

    /// PagerDuty's explanation from an error response, without the routing key.
    fn explain(&self, body: &str) -> String {
        let text = match serde_json::from_str::<Value>(body) {
            Ok(v) => {
                let mut parts: Vec<String> = Vec::new();
                if let Some(m) = v["message"].as_str() {
                    parts.push(m.to_string());
                }
                if let Some(errors) = v["errors"].as_array() {
                    let errors: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
                    if !errors.is_empty() {
                        parts.push(errors.join("; "));
                    }
                }
                parts.join(": ")
            }
            Err(_) => body.trim().to_string(),
        };
        let text = if self.routing_key.0.is_empty() {
            text
        } else {
            text.replace(&self.routing_key.0, "<redacted>")
        };
        cut(&text, 500)
    }

    fn throttled(&self, headers: &reqwest::header::HeaderMap) {
        let asked = crate::sink::retry_after(headers);
        if let Ok(mut slot) = self.retry_after.lock() {
            *slot = Some(asked.unwrap_or(self.rate_limit_wait));
        }
    }
}

impl Sink for PagerDutySink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            let body =
                serde_json::to_vec(&event(alert, &self.routing_key.0, self.source.as_deref()))
                    .map_err(|e| RemoteError::Permanent(format!("cannot encode the event: {e}")))?;
            let resp = self
                .client
                .post(&self.url)
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| RemoteError::Transient(error_text(e)))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            if status.as_u16() == 429 {
                self.throttled(resp.headers());
            }
            let why = self.explain(&resp.text().await.unwrap_or_default());
            let what = if status.as_u16() == 400 {
                "PagerDuty rejected the event"
            } else {
                "PagerDuty did not accept the event"
            };
            match classify_status(status) {
                Ok(()) => Ok(()),
                Err(RemoteError::Transient(s)) => Err(RemoteError::Transient(if why.is_empty() {
                    format!("{what} ({s})")
                } else {
                    format!("{what} ({s}): {why}")
                })),
                Err(RemoteError::Permanent(s)) => Err(RemoteError::Permanent(if why.is_empty() {
                    format!("{what} ({s})")
                } else {
                    format!("{what} ({s}): {why}")
                })),
            }
        })
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after.lock().ok().and_then(|mut s| s.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Enrichment, TopValue};
    use crate::config::from_toml;
    use crate::sink::render::tests::sample_alert;
    use crate::sink::SinkSpec;

    #[test]
    fn a_firing_alert_becomes_a_trigger_with_every_field() {
        let mut a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        a.kind = "credential_stuffing".parse().unwrap();
        let e = event(&a, "k".repeat(32).as_str(), None);
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], "3fa19c0d2b7e4a11");
        let p = &e["payload"];
        assert_eq!(p["summary"], a.summary);
        assert_eq!(p["source"], "client.ipAddress=203.0.113.9");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], "2026-11-25T10:15:00Z");
        assert_eq!(p["component"], "okta-sign-ins");
        assert_eq!(p["group"], "failure_spike");
        assert_eq!(p["class"], "credential_stuffing");
        assert_eq!(p["custom_details"], serde_json::to_value(&a).unwrap());
        assert!(e.get("links").is_none(), "no enrichment, no links: {e}");
        let e = event(&a, "k", Some("okta-prod"));
        assert_eq!(e["payload"]["source"], "okta-prod");
        let mut unsplit = a.clone();
        unsplit.series.clear();
        let e = event(&unsplit, "k", None);
        assert_eq!(e["payload"]["source"], "okta-sign-ins");
    }

    #[test]
    fn an_enriched_alert_links_the_console() {
        let mut a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        a.enrichment = Some(Enrichment {
            top_ips: vec![TopValue {
                value: "203.0.113.9".into(),
                count: 300,
            }],
            top_users: Vec::new(),
            top_countries: Vec::new(),
            top_reasons: Vec::new(),
            console_url: "https://console.aws.amazon.com/cloudwatch/home#logsV2:logs-insights"
                .into(),
        });
        let e = event(&a, "k", None);
        assert_eq!(
            e["links"][0]["href"],
            "https://console.aws.amazon.com/cloudwatch/home#logsV2:logs-insights"
        );
        assert!(e["links"][0]["text"].as_str().is_some());
    }

    #[test]
    fn a_resolved_alert_becomes_a_bare_resolve() {
        let a = sample_alert(Status::Resolved, "2026-11-25T11:15:00Z");
        let e = event(&a, "key", None);
        assert_eq!(
            e,
            json!({"routing_key": "key", "event_action": "resolve", "dedup_key": "3fa19c0d2b7e4a11"})
        );
    }

    #[test]
    fn the_summary_is_cut_to_1024_characters_on_a_character_boundary() {
        let mut a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        a.summary = "é🔥".repeat(700);
        let e = event(&a, "k", None);
        let s = e["payload"]["summary"].as_str().unwrap();
        assert_eq!(s.chars().count(), SUMMARY_MAX_CHARS);
        assert!(s.ends_with('…'));
        assert!(a.summary.starts_with(s.trim_end_matches('…')));
        assert_eq!(cut("short", 1024), "short");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab…");
    }

    #[test]
    fn config_is_read_and_the_key_stays_out_of_it() {
        let c = from_toml(
            r#"
            [[sinks]]
            kind = "pagerduty"
            routing_key_env = "AUTHPULSE_PD_KEY"
            source = "okta-prod"
            rate_limit_wait = "1m"
            retry_initial = "2s"
            route = { min_severity = "critical" }
            "#,
        )
        .unwrap();
        let SinkSpec::PagerDuty(p) = &c.sinks[0] else {
            panic!("{:?}", c.sinks)
        };
        assert_eq!(p.url, DEFAULT_URL);
        assert_eq!(p.routing_key_env, "AUTHPULSE_PD_KEY");
        assert_eq!(p.source.as_deref(), Some("okta-prod"));
        assert_eq!(p.rate_limit_wait, Duration::from_secs(60));
        assert_eq!(p.timeout, Duration::from_secs(10));
        assert_eq!(p.retry.initial, Duration::from_secs(2));
        assert_eq!(p.route.min_severity, Some(Severity::Critical));

        let problems = match from_toml(
            "[[sinks]]\nkind = \"pagerduty\"\nrouting_key = \"R0UT1NGKEY-in-the-file\"\nurl = \"events.pagerduty.com\"\n",
        ) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        };
        for want in [
            "sinks[0].routing_key: the integration key does not belong in the config file",
            "sinks[0].url: must be an http:// or https:// URL",
            "sinks[0].routing_key_env: is required for a pagerduty sink",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{want:?} in {problems:#?}"
            );
        }
        assert!(
            problems.iter().all(|p| !p.contains("R0UT1NGKEY")),
            "{problems:#?}"
        );
    }

    #[test]
    fn errors_explain_without_the_key() {
        let sink = PagerDutySink {
            name: "pagerduty[0]".into(),
            url: DEFAULT_URL.into(),
            routing_key: Redacted("abcdefabcdefabcdefabcdefabcdef12".into()),
            source: None,
            rate_limit_wait: Duration::from_secs(30),
            client: reqwest::Client::new(),
            retry_after: Mutex::new(None),
        };
        let why = sink.explain(
            r#"{"status":"invalid event","message":"Event object is invalid","errors":["Unknown routing key abcdefabcdefabcdefabcdefabcdef12"]}"#,
        );
        assert_eq!(
            why,
            "Event object is invalid: Unknown routing key <redacted>"
        );
        assert_eq!(sink.explain("upstream timed out"), "upstream timed out");
        assert!(!format!("{:?}", sink.routing_key).contains("abcdef"));
        // A 429 leaves a hint for the worker, used once.
        let mut headers = reqwest::header::HeaderMap::new();
        sink.throttled(&headers);
        assert_eq!(sink.retry_after(), Some(Duration::from_secs(30)));
        assert_eq!(sink.retry_after(), None);
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        sink.throttled(&headers);
        assert_eq!(sink.retry_after(), Some(Duration::from_secs(7)));
    }
}
