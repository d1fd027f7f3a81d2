//! Slack's Web API: one call (`POST <url>/<method>` with the bot token), what its error
//! codes mean for a retry, and the messages' bodies.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{json, Value};

use crate::alert::{Alert, Status};
use crate::retry::RemoteError;
use crate::sink::webhook::error_text;
use crate::sink::{render, Redacted};

/// A `Retry-After` longer than this is not trusted.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(15 * 60);

/// What Slack's `error` code means for a retry, with a hint for a human.
pub fn classify(code: &str) -> RemoteError {
    match code {
        "ratelimited"
        | "rate_limited"
        | "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout" => RemoteError::Transient(format!("Slack answered {code}")),
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive"
        | "missing_scope" => RemoteError::Permanent(format!(
            "Slack answered {code}: the bot token (token_env) is not valid or lacks chat:write"
        )),
        "channel_not_found" | "not_in_channel" | "is_archived" => RemoteError::Permanent(format!(
            "Slack answered {code}: check channel and invite the bot to it"
        )),
        other => RemoteError::Permanent(format!("Slack answered {other}")),
    }
}

/// `chat.update` failed because the message is gone or frozen: post anew instead.
pub(super) fn message_gone(code: &str) -> bool {
    matches!(
        code,
        "message_not_found" | "cant_update_message" | "edit_window_closed"
    )
}

/// A failed Web API call.
pub(super) enum CallError {
    /// Slack's `error` code (HTTP 200, `ok: false`).
    Slack(String),
    Other(RemoteError),
}

impl CallError {
    pub(super) fn into_remote(self) -> RemoteError {
        match self {
            CallError::Slack(code) => classify(&code),
            CallError::Other(e) => e,
        }
    }
}

/// A message's body: `channel`, `text` (the notification fallback) and `blocks`.
pub fn message(alert: &Alert, channel: &str) -> Value {
    let mut m = render::slack(alert);
    m["channel"] = json!(channel);
    m["unfurl_links"] = json!(false);
    m
}

/// The thread reply of a later notice.
pub fn reply(alert: &Alert, channel: &str, thread_ts: &str) -> Value {
    let text = match alert.status {
        Status::Resolved => format!(
            ":white_check_mark: Resolved (bin {}): {}",
            alert.bin_start, alert.summary
        ),
        Status::Firing => format!(
            ":rotating_light: Still firing (bin {}): {}",
            alert.bin_start, alert.summary
        ),
    };
    json!({"channel": channel, "thread_ts": thread_ts, "text": text, "unfurl_links": false})
}

/// The Web API as one bot sees it.
pub(super) struct WebApi {
    url: String,
    token: Redacted,
    rate_limit_wait: Duration,
    client: reqwest::Client,
    /// Set by a rate limit, read once by the delivery worker.
    retry_after: Mutex<Option<Duration>>,
}

impl WebApi {
    /// `url` the API's base; `rate_limit_wait` the least pause after `ratelimited`
    /// without a `Retry-After`.
    pub(super) fn new(
        url: &str,
        token: &str,
        timeout: Duration,
        rate_limit_wait: Duration,
    ) -> Result<WebApi, RemoteError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("authpulse/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RemoteError::Permanent(format!("cannot build HTTP client: {e}")))?;
        Ok(WebApi {
            url: url.trim_end_matches('/').to_string(),
            token: Redacted(token.trim().to_string()),
            rate_limit_wait,
            client,
            retry_after: Mutex::new(None),
        })
    }

    fn throttled(&self, headers: &reqwest::header::HeaderMap) {
        let asked = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP));
        if let Ok(mut slot) = self.retry_after.lock() {
            *slot = Some(asked.unwrap_or(self.rate_limit_wait));
        }
    }

    /// POST one Web API method; its answer when `ok`.
    pub(super) async fn call(&self, method: &str, body: &Value) -> Result<Value, CallError> {
        let resp = self
            .client
            .post(format!("{}/{method}", self.url))
            .header(AUTHORIZATION, format!("Bearer {}", self.token.0))
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| CallError::Other(RemoteError::Transient(error_text(e))))?;
        let status = resp.status();
        if status.as_u16() == 429 {
            self.throttled(resp.headers());
            return Err(CallError::Other(RemoteError::Transient(format!(
                "{method}: Slack rate limit (HTTP 429)"
            ))));
        }
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let e = crate::sink::webhook::classify_status(status)
                .err()
                .unwrap_or_else(|| RemoteError::Transient(format!("HTTP {status}")));
            return Err(CallError::Other(match e {
                RemoteError::Transient(s) => RemoteError::Transient(format!("{method}: {s}")),
                RemoteError::Permanent(s) => RemoteError::Permanent(format!("{method}: {s}")),
            }));
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| {
            CallError::Other(RemoteError::Transient(format!(
                "{method}: the answer is not JSON"
            )))
        })?;
        if v["ok"] == json!(true) {
            return Ok(v);
        }
        let code = v["error"].as_str().unwrap_or("unknown_error").to_string();
        if code == "ratelimited" || code == "rate_limited" {
            self.throttled(&headers);
        }
        Err(CallError::Slack(code))
    }

    /// The pause a rate limit asked for, once.
    pub(super) fn take_retry_after(&self) -> Option<Duration> {
        self.retry_after.lock().ok().and_then(|mut s| s.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_error_codes_are_classified() {
        for code in [
            "ratelimited",
            "rate_limited",
            "internal_error",
            "service_unavailable",
        ] {
            assert!(
                matches!(classify(code), RemoteError::Transient(_)),
                "{code}"
            );
        }
        for code in [
            "invalid_auth",
            "channel_not_found",
            "not_in_channel",
            "msg_too_long",
        ] {
            let e = classify(code);
            assert!(matches!(e, RemoteError::Permanent(_)), "{code}");
            assert!(e.to_string().contains(code));
        }
        assert!(classify("channel_not_found")
            .to_string()
            .contains("invite the bot"));
    }
}
