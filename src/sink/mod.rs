//! Sinks: where alerts go. Each sink is a small struct behind the [`Sink`] trait;
//! [`SinkSpec`] is its validated `[[sinks]]` table, and its optional `route` table
//! ([`route::SinkRoute`]) says which alerts it gets.
//!
//! A sink reports failure as transient (worth retrying: connect errors, timeouts, 5xx,
//! 429, throttling) or permanent (retrying cannot help: other 4xx, a missing topic).
//! Sink names and errors never contain webhook URLs, secrets or header values: they are
//! safe to log. The config types hold those in [`Redacted`], whose `Debug` hides them.
//!
//! Sinks are never called directly by the daemon: `notify::delivery::Delivery` writes every
//! notification to the durable outbox (`notify::outbox`) first and retries it per sink with
//! backoff until the sink accepts it.

mod alertmanager;
mod lines;
mod pagerduty;
pub mod render;
pub mod route;
mod slack;
mod sns;
mod spec;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use crate::alert::Alert;
use crate::clock::SharedClock;
use crate::retry::{BoxFuture, RemoteError};

pub use alertmanager::{AlertmanagerSink, AlertmanagerSpec};
pub use lines::{FileSink, StdoutSink};
pub use pagerduty::{PagerDutySink, PagerDutySpec};
pub use route::SinkRoute;
pub use slack::{threads_file, SlackSink, SlackSpec};
pub use sns::{SnsSink, SnsSpec};
pub use spec::SinkSpec;
pub use webhook::{sign, WebhookFormat, WebhookSink, WebhookSpec};

pub trait Sink: Send + Sync {
    /// A name for logs and metrics, e.g. `webhook[1]` — never the URL.
    fn name(&self) -> &str;
    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), RemoteError>>;

    /// After a transient failure: the least pause before the next attempt, when the
    /// receiver asked for one (PagerDuty's 429). The delivery worker reads it once per
    /// failure and waits the longer of it and its own backoff.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// At start: the incidents the alert state records as firing (routed to this sink),
    /// for a sink that keeps firing alerts alive at its receiver (Alertmanager).
    fn resume<'a>(&'a self, _firing: Vec<Alert>) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// A string that must never be printed: a webhook URL (it often carries a token), a
/// secret, a header value. `Debug` shows `<redacted>`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret comes from: the config itself, or an environment variable named there
/// (read when the daemon starts, so the value never sits in the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(Redacted),
    Env(String),
}

impl SecretSource {
    /// The secret's value; `key_path` names the config key in the error.
    pub fn resolve(&self, key_path: &str) -> Result<String, RemoteError> {
        match self {
            SecretSource::Inline(v) => Ok(v.0.clone()),
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                Ok(_) => Err(RemoteError::Permanent(format!(
                    "{key_path}: environment variable {var} is empty"
                ))),
                Err(_) => Err(RemoteError::Permanent(format!(
                    "{key_path}: environment variable {var} is not set"
                ))),
            },
        }
    }
}

/// An HTTP client for a sink: `timeout` per request (connecting within 5 s at most), no
/// redirects (a receiver that redirects is misconfigured: following it would re-send the
/// body and its headers elsewhere; a 3xx is reported as a permanent failure instead).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, RemoteError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("authpulse/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| RemoteError::Permanent(format!("cannot build HTTP client: {e}")))
}

/// A longer `Retry-After` than this is not trusted.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(15 * 60);

/// A receiver's `Retry-After` in seconds, capped at 15 minutes.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP))
}

/// Build every configured sink.
pub async fn build_all(
    specs: &[SinkSpec],
    clock: &SharedClock,
) -> Result<Vec<Arc<dyn Sink>>, RemoteError> {
    let mut sinks = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        sinks.push(s.build(i, clock.clone()).await?);
    }
    Ok(sinks)
}
