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
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
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

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A local webhook receiver that records every JSON body POSTed to it.
pub struct Receiver {
    pub url: String,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        use axum::routing::post;
        let bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
        let store = bodies.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                let store = store.clone();
                async move {
                    if let Ok(mut b) = store.lock() {
                        b.push(v);
                    }
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            bodies,
        }
    }

    pub fn alerts(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

/// A free local port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The authpulse binary running as a child process; killed on drop.
pub struct Daemon {
    pub child: std::process::Child,
    pub http: String,
}

impl Daemon {
    pub fn start(config_path: &std::path::Path, http_port: u16) -> Daemon {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_authpulse"))
            .args(["run", "--config"])
            .arg(config_path)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "authpulse=debug,info")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start authpulse");
        Daemon {
            child,
            http: format!("http://127.0.0.1:{http_port}"),
        }
    }

    /// GET a path on the daemon's HTTP port; the status code, or None if unreachable.
    pub async fn get(&self, path: &str) -> Option<u16> {
        reqwest::get(format!("{}{path}", self.http))
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
