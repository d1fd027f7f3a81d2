//! `webhook` sink: HTTP POST of the alert in one of three shapes (`json`, `slack`,
//! `alertmanager_receiver`), optionally signed.
//!
//! Every request carries:
//! - `Idempotency-Key`: the alert's `idempotency_key`; a receiver drops repeats with it
//!   (delivery is at-least-once: a retry after a lost response sends the same key).
//! - `X-Authpulse-Timestamp`: Unix seconds when this attempt was signed.
//! - `X-Authpulse-Signature: sha256=<hex>` when a secret is configured: HMAC-SHA256 over
//!   `timestamp + "." + body`. A receiver recomputes it, compares in constant time, and
//!   rejects timestamps older than a few minutes (so a captured request cannot be
//!   replayed later). Each retry is signed afresh.
//! - the configured extra headers (`headers`, `headers_env`).
//!
//! The URL often carries a token, so it is never logged or put in an error: errors name
//! the sink (`webhook[0]`) and the HTTP status only. Header values and the secret are
//! never logged either.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use sha2::Sha256;

use super::{render, Sink, WebhookFormat, WebhookSpec};
use crate::alert::Alert;
use crate::retry::{BoxFuture, RemoteError};

pub const TIMESTAMP_HEADER: &str = "X-Authpulse-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Authpulse-Signature";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

pub struct WebhookSink {
    name: String,
    url: String,
    format: WebhookFormat,
    secret: Option<Vec<u8>>,
    headers: HeaderMap,
    client: reqwest::Client,
}

/// `sha256=<hex>`: HMAC-SHA256 of `timestamp.body` under `secret`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty
    // signature rather than panic.
    let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl WebhookSink {
    /// `key_path` (`sinks[2]`) names the config entry in errors about secrets and headers.
    pub fn new(name: String, key_path: &str, spec: &WebhookSpec) -> Result<Self, RemoteError> {
        let secret = match &spec.secret {
            Some(s) => {
                let key = match s {
                    super::SecretSource::Inline(_) => "secret",
                    super::SecretSource::Env(_) => "secret_env",
                };
                Some(s.resolve(&format!("{key_path}.{key}"))?.into_bytes())
            }
            None => None,
        };
        let mut headers = HeaderMap::new();
        for (header, source) in &spec.headers {
            let table = match source {
                super::SecretSource::Inline(_) => "headers",
                super::SecretSource::Env(_) => "headers_env",
            };
            let path = format!("{key_path}.{table}.{header}");
            let value = source.resolve(&path)?;
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| RemoteError::Permanent(format!("{path}: invalid header name")))?;
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                RemoteError::Permanent(format!("{path}: the value is not a valid header value"))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("authpulse/", env!("CARGO_PKG_VERSION")))
            // A webhook that redirects is misconfigured: following it would re-send the
            // signed body and the extra headers to wherever the redirect points. A 3xx
            // is reported as a permanent failure instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RemoteError::Permanent(format!("cannot build HTTP client: {e}")))?;
        Ok(WebhookSink {
            name,
            url: spec.url.0.clone(),
            format: spec.format,
            secret,
            headers,
            client,
        })
    }

    /// The request body for this sink's format.
    pub fn body(&self, alert: &Alert) -> Result<Vec<u8>, RemoteError> {
        let result = match self.format {
            WebhookFormat::Json => serde_json::to_vec(alert),
            WebhookFormat::Slack => serde_json::to_vec(&render::slack(alert)),
            WebhookFormat::AlertmanagerReceiver => {
                serde_json::to_vec(&render::alertmanager_receiver(alert))
            }
        };
        result.map_err(|e| RemoteError::Permanent(format!("cannot encode the alert: {e}")))
    }
}

/// Classify an HTTP status: 408, 429 and 5xx are worth retrying, other 4xx are not.
pub(crate) fn classify_status(status: reqwest::StatusCode) -> Result<(), RemoteError> {
    if status.is_success() {
        Ok(())
    } else if matches!(status.as_u16(), 408 | 429) || status.is_server_error() {
        Err(RemoteError::Transient(format!("HTTP {status}")))
    } else {
        Err(RemoteError::Permanent(format!("HTTP {status}")))
    }
}

/// The error chain of a reqwest error without the URL (reqwest puts the URL in its
/// `Display`; its sources — hyper and io errors — do not carry it).
pub(crate) fn error_text(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = kind.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            let body = self.body(alert)?;
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut req = self
                .client
                .post(&self.url)
                .headers(self.headers.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(IDEMPOTENCY_HEADER, &alert.idempotency_key)
                .header(TIMESTAMP_HEADER, timestamp.to_string());
            if let Some(secret) = &self.secret {
                req = req.header(SIGNATURE_HEADER, sign(secret, timestamp, &body));
            }
            let resp = req.body(body).send().await.map_err(|e| {
                // Anything before a status (connect, TLS, timeout) is worth retrying.
                RemoteError::Transient(error_text(e))
            })?;
            classify_status(resp.status())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"s3cret",
        //   b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"s3cret", 1_700_000_000, br#"{"a":1}"#),
            "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }

    #[test]
    fn statuses_are_classified() {
        use reqwest::StatusCode as S;
        assert!(classify_status(S::OK).is_ok());
        assert!(classify_status(S::ACCEPTED).is_ok());
        for s in [
            S::SERVICE_UNAVAILABLE,
            S::TOO_MANY_REQUESTS,
            S::BAD_GATEWAY,
            S::REQUEST_TIMEOUT,
        ] {
            assert!(matches!(classify_status(s), Err(RemoteError::Transient(_))));
        }
        // Redirects are not followed: a 3xx is permanent too.
        for s in [
            S::FOUND,
            S::BAD_REQUEST,
            S::UNAUTHORIZED,
            S::NOT_FOUND,
            S::GONE,
        ] {
            assert!(matches!(classify_status(s), Err(RemoteError::Permanent(_))));
        }
    }
}
