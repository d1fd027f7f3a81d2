//! `sns` sink: Publish the alert JSON to an SNS topic, with a human-readable Subject and
//! message attributes subscribers can filter on.

use aws_sdk_sns::types::MessageAttributeValue;

use super::{BoxFuture, Sink, SinkError};
use crate::alert::{Alert, Status};
use crate::aws;

pub struct SnsSink {
    name: String,
    topic_arn: String,
    client: aws_sdk_sns::Client,
}

impl SnsSink {
    pub async fn new(
        name: String,
        topic_arn: String,
        region: Option<String>,
        endpoint_url: Option<String>,
    ) -> Self {
        let conf = aws::sdk_config(region, endpoint_url).await;
        SnsSink {
            name,
            topic_arn,
            client: aws_sdk_sns::Client::new(&conf),
        }
    }
}

/// An SNS Subject: at most 100 characters, printable ASCII, no line breaks.
pub(crate) fn subject(alert: &Alert) -> String {
    let status = match alert.status {
        Status::Firing => "FIRING",
        Status::Resolved => "RESOLVED",
    };
    let raw = format!(
        "[{status} {}] {} {}",
        alert.severity, alert.rule, alert.detector
    );
    raw.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(100)
        .collect()
}

fn attr(value: &str) -> Result<MessageAttributeValue, SinkError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| SinkError::Permanent(e.to_string()))
}

impl Sink for SnsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let body =
                serde_json::to_string(alert).map_err(|e| SinkError::Permanent(e.to_string()))?;
            let status = match alert.status {
                Status::Firing => "firing",
                Status::Resolved => "resolved",
            };
            let result = self
                .client
                .publish()
                .topic_arn(&self.topic_arn)
                .subject(subject(alert))
                .message(body)
                .message_attributes("status", attr(status)?)
                .message_attributes("severity", attr(&alert.severity.to_string())?)
                .message_attributes("rule", attr(&alert.rule)?)
                .message_attributes("detector", attr(&alert.detector)?)
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(e) => Err(aws::classify_error(&e)),
            }
        })
    }
}
