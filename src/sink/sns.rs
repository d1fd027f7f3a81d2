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

use super::{render, Sink, SnsSpec};
use crate::alert::{Alert, Status};
use crate::aws;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::render::tests::sample_alert;

    #[test]
    fn message_has_default_email_and_sms() {
        let a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        let m: serde_json::Value = serde_json::from_str(&message(&a).unwrap()).unwrap();
        let default: Alert = serde_json::from_str(m["default"].as_str().unwrap()).unwrap();
        assert_eq!(default, a);
        assert!(m["email"].as_str().unwrap().contains("Investigate"));
        assert!(m["sms"].as_str().unwrap().len() <= 140);
    }
}
