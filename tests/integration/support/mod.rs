//! What the integration tests share:
//!
//! - [`counts`]: a counted series from another dashboard (negative binomial 5-minute
//!   counts with daily and weekly seasons) with bursts injected at known times.
//! - [`daemon`]: THE way a test starts `authpulse run` as a child process ([`Daemon`]);
//!   the in-process daemon needs no harness (see `daemon_in_process.rs`).
//! - [`receiver`]: a local webhook receiver whose answer the test controls.
//! - [`traffic`]: deterministic Okta traffic, a file-source daemon config over it and
//!   the alerts `authpulse backtest` derives from the same (what the daemon must send).
//! - [`aws`] (feature `aws-emulator`): the AWS emulator that `scripts/test.sh` starts
//!   (moto with authpulse's Logs Insights engine, `tests/aws_emulator/`).
//! - [`replicas`] (feature `aws-emulator`): several `[ha]` replicas over one source and
//!   one table, and the exactly-once checks of what they deliver.
//! - [`exactly_once`] (feature `aws-emulator`): those checks as figures (lost,
//!   duplicates, extra), for the soak's report.

pub mod counts;
pub mod daemon;
pub mod receiver;
pub mod traffic;

#[cfg(feature = "aws-emulator")]
pub mod aws;
#[cfg(feature = "aws-emulator")]
pub mod exactly_once;
#[cfg(feature = "aws-emulator")]
pub mod replicas;

use std::time::Duration;

pub use daemon::Daemon;
pub use receiver::{Received, Receiver};

/// Poll `check` until it returns Some or `timeout` passes.
pub async fn eventually<T>(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Poll `check` every 100 ms until it is true or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One EventBridge-wrapped Okta event, as the EventBridge rule writes it to CloudWatch.
pub fn okta_line(ts_ms: i64, event_type: &str, result: &str, ip: &str, user: &str) -> String {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ts_ms).unwrap_or_default();
    serde_json::json!({
        "version": "0",
        "id": format!("{ts_ms}-{user}-{ip}"),
        "detail-type": "SystemLog",
        "source": "aws.partner/okta.com/acme/okta-logs",
        "account": "123456789012",
        "time": t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventType": event_type,
            "published": t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "outcome": {"result": result, "reason": if result == "FAILURE" { "INVALID_CREDENTIALS" } else { "" }},
            "actor": {"alternateId": user, "type": "User"},
            "client": {"ipAddress": ip, "geographicalContext": {"country": "United States"}}
        }
    })
    .to_string()
}

/// A free local port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The JSON lines of a file (a file sink's alerts); none while it does not exist.
pub fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
