//! `sns` sink: Publish to an SNS topic.
//!
//! - Subject: a human headline of at most 100 ASCII characters ([`render::subject`]).
//! - Message: per-protocol (`MessageStructure=json`): `default` is the alert JSON, which
//!   SQS, HTTP(S) and Lambda subscribers receive; `email` is a readable text and `sms` a
//!   one-line headline.
//! - MessageAttributes `status`, `severity`, `rule`, `detector` (and `idempotency_key`),
//!   so subscriptions can route with filter policies (e.g. only `severity = critical` to
//!   the SMS subscription).
//! - FIFO topics (`.fifo`): the idempotency key is the deduplication id and the
//!   fingerprint the message group, so SNS itself drops a retried duplicate and keeps one
//!   incident's notifications in order.
//!
//! Credentials and region come from the AWS default chain; `endpoint_url` (or the SDK's
//! `AWS_ENDPOINT_URL`) points at an emulator.

use aws_sdk_sns::config::timeout::TimeoutConfig;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::json;

use std::time::Duration;

use super::spec::read_retry;
use super::{render, Sink, SinkRoute};
use crate::alert::{Alert, Status};
use crate::aws;
use crate::config_reader::{Problems, Table};
use crate::retry::RetryPolicy;
use crate::retry::{BoxFuture, RemoteError};

pub struct SnsSink {
    name: String,
    topic_arn: String,
    fifo: bool,
    client: aws_sdk_sns::Client,
}

impl SnsSink {
    pub async fn new(name: String, spec: &SnsSpec) -> Self {
        let sdk = aws::sdk_config(spec.region.clone(), spec.endpoint_url.clone()).await;
        let conf = aws_sdk_sns::config::Builder::from(&sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(spec.timeout)
                    .build(),
            )
            .build();
        SnsSink {
            name,
            topic_arn: spec.topic_arn.clone(),
            fifo: spec.topic_arn.ends_with(".fifo"),
            client: aws_sdk_sns::Client::from_conf(conf),
        }
    }
}

fn attr(value: &str) -> Result<MessageAttributeValue, RemoteError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| RemoteError::Permanent(e.to_string()))
}

/// The per-protocol message (`MessageStructure=json`): a JSON object of strings.
pub fn message(alert: &Alert) -> Result<String, RemoteError> {
    let default =
        serde_json::to_string(alert).map_err(|e| RemoteError::Permanent(e.to_string()))?;
    serde_json::to_string(&json!({
        "default": default,
        "email": render::email(alert),
        "sms": render::sms(alert),
    }))
    .map_err(|e| RemoteError::Permanent(e.to_string()))
}

impl Sink for SnsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            let status = match alert.status {
                Status::Firing => "firing",
                Status::Resolved => "resolved",
            };
            let mut req = self
                .client
                .publish()
                .topic_arn(&self.topic_arn)
                .subject(render::subject(alert))
                .message_structure("json")
                .message(message(alert)?)
                .message_attributes("status", attr(status)?)
                .message_attributes("severity", attr(&alert.severity.to_string())?)
                .message_attributes("rule", attr(&alert.rule)?)
                .message_attributes("detector", attr(alert.detector.name())?)
                .message_attributes("kind", attr(alert.kind.as_str())?)
                .message_attributes("idempotency_key", attr(&alert.idempotency_key)?);
            if self.fifo {
                req = req
                    .message_group_id(&alert.fingerprint)
                    .message_deduplication_id(&alert.idempotency_key);
            }
            match req.send().await {
                Ok(_) => Ok(()),
                Err(e) => Err(aws::classify_error(&e)),
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SnsSpec {
    pub topic_arn: String,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Per attempt, including the SDK's own retries.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub route: SinkRoute,
}

impl SnsSpec {
    pub(super) fn read(t: &mut Table<'_>, problems: &mut Problems) -> Option<SnsSpec> {
        let region = t.string("region", problems);
        let endpoint_url = t.string("endpoint_url", problems);
        if let Some(u) = &endpoint_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push(
                    t.key_path("endpoint_url"),
                    "must start with http:// or https://",
                );
            }
        }
        let timeout = t
            .duration("timeout", problems)
            .unwrap_or(Duration::from_secs(20));
        let retry = read_retry(t, problems);
        let route = SinkRoute::read(t, problems);
        match t.string("topic_arn", problems) {
            Some(arn) if arn.starts_with("arn:") && arn.split(':').count() >= 6 => Some(SnsSpec {
                topic_arn: arn,
                region,
                endpoint_url,
                timeout,
                retry,
                route,
            }),
            Some(arn) => {
                problems.push(
                    t.key_path("topic_arn"),
                    format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
                );
                None
            }
            None => {
                problems.push(t.key_path("topic_arn"), "is required for an sns sink");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;
    use crate::config::tests::problems;
    use crate::sink::render::tests::sample_alert;
    use crate::sink::SinkSpec;

    #[test]
    fn message_has_default_email_and_sms() {
        let a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        let m: serde_json::Value = serde_json::from_str(&message(&a).unwrap()).unwrap();
        let default: Alert = serde_json::from_str(m["default"].as_str().unwrap()).unwrap();
        assert_eq!(default, a);
        assert!(m["email"].as_str().unwrap().contains("Investigate"));
        assert!(m["sms"].as_str().unwrap().len() <= 140);
    }

    #[test]
    fn sns_keys_are_read() {
        let c = from_toml(
            r#"
            [[sinks]]
            kind = "sns"
            topic_arn = "arn:aws:sns:us-east-1:123456789012:alerts"
            endpoint_url = "http://127.0.0.1:5055"
            region = "us-east-1"
            "#,
        )
        .unwrap();
        let SinkSpec::Sns(s) = &c.sinks[0] else {
            panic!("{:?}", c.sinks)
        };
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:5055"));
        assert_eq!(s.timeout, Duration::from_secs(20));
        let p = problems("[[sinks]]\nkind = \"sns\"\ntopic_arn = \"alerts\"\n");
        assert!(p[0].starts_with("sinks[0].topic_arn: \"alerts\" is not an SNS topic ARN"));
    }
}
