//! The AWS emulator that `scripts/test.sh` starts: moto with authpulse's Logs Insights
//! engine (`tests/aws_emulator/`), serving CloudWatch Logs, SNS and SQS. Only with the
//! `aws-emulator` feature; the tests that use it fail loudly when it is not running.

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
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Call the emulator's admin API (`/_authpulse/...`).
pub async fn admin(
    method: reqwest::Method,
    path_and_query: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("{}{path_and_query}", endpoint()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("emulator admin API reachable");
    assert!(
        resp.status().is_success(),
        "admin call {path_and_query} failed: {}",
        resp.status()
    );
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
    let v = admin(
        reqwest::Method::GET,
        &format!("/_authpulse/queries?log_group={log_group}"),
        None,
    )
    .await;
    v.as_array().cloned().unwrap_or_default()
}

/// Create a log group (and one stream) in the emulator.
pub async fn create_log_group(client: &aws_sdk_cloudwatchlogs::Client, group: &str) {
    client
        .create_log_group()
        .log_group_name(group)
        .send()
        .await
        .expect("create log group");
    client
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name("okta")
        .send()
        .await
        .expect("create log stream");
}

/// PutLogEvents in time order, in batches, with the event time as the log timestamp
/// (what the EventBridge → CloudWatch Logs target does).
pub async fn put_lines(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    mut lines: Vec<(i64, String)>,
) {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    lines.sort_by_key(|(t, _)| *t);
    for batch in lines.chunks(5000) {
        let events: Vec<InputLogEvent> = batch
            .iter()
            .map(|(t, m)| {
                InputLogEvent::builder()
                    .timestamp(*t)
                    .message(m.clone())
                    .build()
                    .expect("log event")
            })
            .collect();
        client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name("okta")
            .set_log_events(Some(events))
            .send()
            .await
            .expect("put log events");
    }
}

/// A CloudWatch Logs client for the emulator and a new log group (with its stream) named
/// from `prefix`: the set-up of every test that reads a log group.
pub async fn log_group(prefix: &str) -> (aws_sdk_cloudwatchlogs::Client, String) {
    let client = aws_sdk_cloudwatchlogs::Client::new(&sdk_config().await);
    let group = unique(prefix);
    create_log_group(&client, &group).await;
    (client, group)
}
