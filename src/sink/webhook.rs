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

use serde_json::Value;

use super::spec::read_retry;
use super::{render, Redacted, SecretSource, Sink, SinkRoute};
use crate::alert::Alert;
use crate::config_reader::{Problems, Table};
use crate::retry::RetryPolicy;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The alert JSON itself.
    Json,
    /// A Slack incoming-webhook message (`text` plus Block Kit `blocks`).
    Slack,
    /// The payload Alertmanager *sends* to its webhook receivers (version 4), so
    /// receivers built for Alertmanager accept authpulse directly. (To feed an
    /// Alertmanager, use the `alertmanager` sink kind.)
    AlertmanagerReceiver,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    pub url: Redacted,
    pub timeout: Duration,
    pub format: WebhookFormat,
    /// HMAC-SHA256 key (`secret` or `secret_env`).
    pub secret: Option<SecretSource>,
    /// Extra headers: `headers` (inline values) and `headers_env` (values from the
    /// environment), in config order.
    pub headers: Vec<(String, SecretSource)>,
    pub retry: RetryPolicy,
    pub route: SinkRoute,
}

impl WebhookSpec {
    pub(super) fn read(t: &mut Table<'_>, problems: &mut Problems) -> Option<WebhookSpec> {
        let timeout = match t.duration("timeout", problems) {
            Some(d) if d.is_zero() => {
                problems.push(t.key_path("timeout"), "must be greater than 0");
                None
            }
            other => other,
        }
        .unwrap_or(Duration::from_secs(10));
        let format = read_format(t, problems);
        let secret = read_secret(t, problems);
        let mut headers = Vec::new();
        read_headers(t, "headers", false, problems, &mut headers);
        read_headers(t, "headers_env", true, problems, &mut headers);
        let retry = read_retry(t, problems);
        let route = SinkRoute::read(t, problems);
        match t.string("url", problems) {
            Some(url)
                if (url.starts_with("http://") || url.starts_with("https://"))
                    && reqwest::Url::parse(&url).is_ok() =>
            {
                Some(WebhookSpec {
                    url: Redacted(url),
                    timeout,
                    format,
                    secret,
                    headers,
                    retry,
                    route,
                })
            }
            // Never echo the URL: it may carry a token.
            Some(_) => {
                problems.push(
                    t.key_path("url"),
                    "must be an http:// or https:// URL (value not shown: it may hold a token)",
                );
                None
            }
            None => {
                problems.push(t.key_path("url"), "is required for a webhook sink");
                None
            }
        }
    }
}

/// A webhook's `format` (the old name `alertmanager` is refused with a pointer).
fn read_format(t: &mut Table<'_>, problems: &mut Problems) -> WebhookFormat {
    match t.string("format", problems).as_deref() {
        None | Some("json") => WebhookFormat::Json,
        Some("slack") => WebhookFormat::Slack,
        Some("alertmanager_receiver") => WebhookFormat::AlertmanagerReceiver,
        Some("alertmanager") => {
            problems.push(
                t.key_path("format"),
                "\"alertmanager\" was renamed: write format = \"alertmanager_receiver\" for the payload Alertmanager sends to its webhook receivers (what this format always was), or use a sink with kind = \"alertmanager\" to post alerts to an Alertmanager",
            );
            WebhookFormat::AlertmanagerReceiver
        }
        Some(other) => {
            problems.push(
                t.key_path("format"),
                format!("{other:?} is not one of \"json\", \"slack\", \"alertmanager_receiver\""),
            );
            WebhookFormat::Json
        }
    }
}

/// A webhook's HMAC key: `secret` or `secret_env`, not both.
fn read_secret(t: &mut Table<'_>, problems: &mut Problems) -> Option<SecretSource> {
    match (
        t.string("secret", problems),
        t.string("secret_env", problems),
    ) {
        (Some(_), Some(_)) => {
            problems.push(
                t.key_path("secret"),
                "give either secret or secret_env, not both",
            );
            None
        }
        (Some(s), None) if s.is_empty() => {
            problems.push(t.key_path("secret"), "must not be empty");
            None
        }
        (Some(s), None) => Some(SecretSource::Inline(Redacted(s))),
        (None, Some(var)) if var.trim().is_empty() => {
            problems.push(
                t.key_path("secret_env"),
                "must name an environment variable",
            );
            None
        }
        (None, Some(var)) => Some(SecretSource::Env(var)),
        (None, None) => None,
    }
}

/// `headers = { Name = "value" }` or `headers_env = { Name = "ENV_VAR" }`.
fn read_headers(
    t: &mut Table<'_>,
    key: &'static str,
    from_env: bool,
    problems: &mut Problems,
    out: &mut Vec<(String, SecretSource)>,
) {
    let base = t.key_path(key);
    for (name, value) in t.entries(key, problems) {
        let path = crate::config_reader::join(&base, name);
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(&path, "is not a valid HTTP header name");
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if ["content-type", "idempotency-key", "content-length", "host"].contains(&lower.as_str())
            || lower.starts_with("x-authpulse-")
        {
            problems.push(&path, "is set by authpulse itself and cannot be overridden");
            continue;
        }
        match value {
            Value::String(v) if from_env => {
                if v.trim().is_empty() {
                    problems.push(&path, "must name an environment variable");
                } else {
                    out.push((name.to_string(), SecretSource::Env(v.clone())));
                }
            }
            Value::String(v) => {
                if reqwest::header::HeaderValue::from_str(v).is_err() {
                    // Never echo the value: it may be a token.
                    problems.push(&path, "is not a valid HTTP header value");
                } else {
                    out.push((name.to_string(), SecretSource::Inline(Redacted(v.clone()))));
                }
            }
            _ => problems.push(&path, "expected a string"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;
    use crate::config::tests::problems;
    use crate::sink::SinkSpec;

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

    #[test]
    fn webhook_keys_are_read() {
        let c = from_toml(
            r#"
            [[sinks]]
            kind = "webhook"
            url = "https://hooks.example.com/T000/secret-token"
            format = "alertmanager_receiver"
            secret_env = "MY_SECRET"
            timeout = "3s"
            retry_initial = "100ms"
            retry_max = "2s"
            give_up_after = "1h"
            headers = { "X-Team" = "security" }
            headers_env = { Authorization = "AUTHPULSE_WEBHOOK_AUTH" }
            "#,
        )
        .unwrap();
        let SinkSpec::Webhook(w) = &c.sinks[0] else {
            panic!("{:?}", c.sinks)
        };
        assert_eq!(w.format, WebhookFormat::AlertmanagerReceiver);
        assert_eq!(w.secret, Some(SecretSource::Env("MY_SECRET".into())));
        assert_eq!(w.timeout, Duration::from_secs(3));
        assert_eq!(w.retry.initial, Duration::from_millis(100));
        assert_eq!(w.retry.max, Duration::from_secs(2));
        assert_eq!(w.headers.len(), 2);
        assert_eq!(
            w.headers[1],
            (
                "Authorization".to_string(),
                SecretSource::Env("AUTHPULSE_WEBHOOK_AUTH".into())
            )
        );
        // Nothing secret in Debug output, which may end up in a log.
        let debug = format!("{:?}", c.sinks);
        assert!(!debug.contains("secret-token"), "{debug}");
        assert!(!debug.contains("security"), "{debug}");
    }

    #[test]
    fn webhook_problems_name_their_key_and_hide_values() {
        let p = problems(
            r#"
            [[sinks]]
            kind = "webhook"
            url = "ftp://user:hunter2@example.com"
            format = "teams"
            secret = "a"
            secret_env = "B"
            retry_initial = "10s"
            retry_max = "1s"
            headers = { "Bad Header" = "x", "Content-Type" = "text/plain" }
            colour = "red"
            "#,
        );
        let expect = [
            "sinks[0].format: \"teams\" is not one of",
            "sinks[0].secret: give either secret or secret_env",
            "sinks[0].headers.Bad Header: is not a valid HTTP header name",
            "sinks[0].headers.Content-Type: is set by authpulse itself",
            "sinks[0].retry_max: must be at least retry_initial",
            "sinks[0].url: must be an http:// or https:// URL",
        ];
        for e in expect {
            assert!(
                p.iter().any(|l| l.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert!(p.iter().all(|l| !l.contains("hunter2")), "{p:#?}");
        // `colour` is not reported because the sink itself failed to read; fix the url
        // and it is.
        let p = problems(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"https://x.example\"\ncolour = \"red\"\n",
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("sinks[0].colour: unknown key")),
            "{p:#?}"
        );
    }

    #[test]
    fn the_old_alertmanager_format_name_points_at_both_new_ones() {
        let p = problems(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"https://x.example\"\nformat = \"alertmanager\"\n",
        );
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("sinks[0].format: \"alertmanager\" was renamed"),
            "{p:#?}"
        );
        assert!(
            p[0].contains("format = \"alertmanager_receiver\""),
            "{p:#?}"
        );
        assert!(p[0].contains("kind = \"alertmanager\""), "{p:#?}");
        let c = from_toml(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"https://x.example\"\nformat = \"alertmanager_receiver\"\n",
        )
        .unwrap();
        assert!(matches!(
            &c.sinks[0],
            SinkSpec::Webhook(w) if w.format == WebhookFormat::AlertmanagerReceiver
        ));
    }
}
