//! `webhook` sink: HTTP POST of the alert JSON.
//!
//! The URL often carries a token, so it is never logged or put in an error: errors name
//! the sink (`webhook[0]`) and the HTTP status only.

use std::time::Duration;

use super::{BoxFuture, Sink, SinkError};
use crate::alert::Alert;

pub struct WebhookSink {
    name: String,
    url: String,
    client: reqwest::Client,
}

impl WebhookSink {
    pub fn new(name: String, url: String, timeout: Duration) -> Result<Self, SinkError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("authpulse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SinkError::Permanent(format!("cannot build HTTP client: {e}")))?;
        Ok(WebhookSink { name, url, client })
    }
}

/// Classify an HTTP status: 429 and 5xx are worth retrying, other 4xx are not.
pub(crate) fn classify_status(status: reqwest::StatusCode) -> Result<(), SinkError> {
    if status.is_success() {
        Ok(())
    } else if status.as_u16() == 429 || status.is_server_error() {
        Err(SinkError::Transient(format!("HTTP {status}")))
    } else {
        Err(SinkError::Permanent(format!("HTTP {status}")))
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let resp = self
                .client
                .post(&self.url)
                .json(alert)
                .send()
                .await
                // reqwest errors include the URL: strip it.
                .map_err(|e| SinkError::Transient(e.without_url().to_string()))?;
            classify_status(resp.status())
        })
    }
}
