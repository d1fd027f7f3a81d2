//! Shared helpers for integration tests that talk to the AWS emulator started by
//! `scripts/test.sh` (moto with authpulse's Logs Insights engine).
#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

/// The emulator's URL. Tests that need it fail loudly when it is missing: run them
/// through `bash scripts/test.sh`.
pub fn endpoint() -> String {
    match std::env::var("AUTHPULSE_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AUTHPULSE_TEST_AWS_ENDPOINT is not set: run the suite with `bash scripts/test.sh`, \
             which starts the AWS emulator"
        ),
    }
}

/// An SDK config for the emulator with dummy credentials.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_cloudwatchlogs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

/// A name no other test uses (tests share one emulator and run in parallel).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Call the emulator's admin API (`/_authpulse/...`).
pub async fn admin(method: reqwest::Method, path_and_query: &str, body: Option<serde_json::Value>) -> serde_json::Value {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("{}{path_and_query}", endpoint()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("emulator admin API reachable");
    assert!(resp.status().is_success(), "admin call {path_and_query} failed: {}", resp.status());
    resp.json().await.unwrap_or(serde_json::Value::Null)
}

/// Inject faults for one log group.
pub async fn faults(log_group: &str, faults: serde_json::Value) {
    let mut body = faults;
    body["log_group"] = serde_json::Value::String(log_group.to_string());
    admin(reqwest::Method::POST, "/_authpulse/faults", Some(body)).await;
}

/// The queries the emulator saw for a log group.
pub async fn queries(log_group: &str) -> Vec<serde_json::Value> {
    let v = admin(reqwest::Method::GET, &format!("/_authpulse/queries?log_group={log_group}"), None).await;
    v.as_array().cloned().unwrap_or_default()
}

/// Poll `check` until it returns Some or `timeout` passes.
pub async fn eventually<T>(timeout: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
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
