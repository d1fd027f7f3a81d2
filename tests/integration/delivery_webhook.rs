//! Webhook delivery through the real daemon: retries until a failing receiver recovers,
//! HMAC signatures, idempotency keys, formats, extra headers, permanent failures, and no
//! URL or secret in the logs.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;

use crate::support::receiver::signature_ok;
use crate::support::traffic::*;
use crate::support::{free_port, wait_until, Daemon, Received, Receiver};

const SECRET: &str = "whsec-test-5f1d8a";
const TOKEN: &str = "T0KEN-in-the-url-9c2b";

fn keys(alerts: &[Value]) -> BTreeSet<String> {
    alerts
        .iter()
        .map(|a| a["idempotency_key"].as_str().unwrap().to_string())
        .collect()
}

/// Events with an attack in bins 40..44 of 60, and the alerts they must produce.
fn scenario(dir: &std::path::Path, sinks: &str) -> (std::path::PathBuf, u16, Vec<Value>) {
    let events = dir.join("events.ndjson");
    append(&events, &traffic_lines(0..60, 40..44));
    let (config, port) = config(dir, &events, false, sinks);
    let expected = expected_alerts(&config, &events);
    let statuses: BTreeSet<&str> = expected
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains("firing") && statuses.contains("resolved"),
        "the scenario must fire and resolve: {expected:#?}"
    );
    (config, port, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_arrives_signed_once_a_failing_receiver_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(503).await;
    let sinks = format!(
        r#"
[[sinks]]
kind = "webhook"
url = "{}"
secret_env = "TEST_WEBHOOK_SECRET"
retry_initial = "50ms"
retry_max = "400ms"
timeout = "2s"
"#,
        receiver.url(&format!("/hook/{TOKEN}"))
    );
    let (config, port, expected) = scenario(dir.path(), &sinks);
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start(&config, port, &log, &[("TEST_WEBHOOK_SECRET", SECRET)]);
    daemon.wait_ready(Duration::from_secs(30)).await;

    // The receiver is down: attempts are made, rejected, and retried.
    assert!(
        wait_until(Duration::from_secs(20), || receiver.requests().len() >= 5).await,
        "no retries seen; log:\n{}",
        daemon.log_text()
    );
    assert!(receiver.accepted().is_empty());
    assert_eq!(
        outbox_files(&dir.path().join("state")).len(),
        expected.len(),
        "every notification waits in the outbox while the receiver is down"
    );

    // It recovers: everything arrives.
    receiver.set_status(200);
    let want = keys(&expected);
    assert!(
        wait_until(Duration::from_secs(30), || {
            let got: BTreeSet<String> = receiver
                .accepted()
                .iter()
                .map(|r| r.json()["idempotency_key"].as_str().unwrap().to_string())
                .collect();
            got == want
        })
        .await,
        "not all alerts arrived; got {:#?}\nlog:\n{}",
        receiver
            .accepted()
            .iter()
            .map(Received::json)
            .collect::<Vec<_>>(),
        daemon.log_text()
    );

    let accepted = receiver.accepted();
    for r in &accepted {
        assert!(signature_ok(r, SECRET.as_bytes()), "bad signature: {r:?}");
        assert!(!signature_ok(r, b"another secret"));
        let body = r.json();
        assert_eq!(
            r.header("idempotency-key").as_deref(),
            body["idempotency_key"].as_str(),
            "the header and the body carry the same key"
        );
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json")
        );
        // The alert JSON itself, as backtest writes it.
        let same = expected
            .iter()
            .find(|e| e["idempotency_key"] == body["idempotency_key"])
            .unwrap();
        assert_eq!(&body, same);
    }
    // Per incident, firing is delivered before resolved (one FIFO queue per sink).
    let mut last_status: HashMap<String, String> = HashMap::new();
    for r in &accepted {
        let b = r.json();
        let fp = b["fingerprint"].as_str().unwrap().to_string();
        let status = b["status"].as_str().unwrap().to_string();
        if status == "resolved" {
            assert_eq!(last_status.get(&fp).map(String::as_str), Some("firing"));
        }
        last_status.insert(fp, status);
    }

    // The outbox is empty once everything was accepted, and the metrics say so.
    assert!(
        wait_until(Duration::from_secs(5), || outbox_files(
            &dir.path().join("state")
        )
        .is_empty())
        .await
    );
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains(&format!(
            "authpulse_notifications_sent_total{{sink=\"webhook[0]\"}} {}",
            expected.len()
        )),
        "{metrics}"
    );
    assert!(metrics.contains("authpulse_outbox_depth 0"), "{metrics}");
    assert!(
        metrics.contains("authpulse_notification_retries_total{sink=\"webhook[0]\"}"),
        "{metrics}"
    );

    assert!(daemon.terminate().success());
    let text = daemon.log_text();
    assert!(text.contains("delivery failed; will retry"), "{text}");
    assert!(
        !text.contains(TOKEN),
        "the webhook URL leaked into the log:\n{text}"
    );
    assert!(
        !text.contains(SECRET),
        "the secret leaked into the log:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_headers_and_permanent_failures() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(200).await;
    let sinks = format!(
        r#"
[[sinks]]
kind = "webhook"
url = "{slack}"
format = "slack"

[[sinks]]
kind = "webhook"
url = "{am}"
format = "alertmanager_receiver"
secret = "{SECRET}"
headers = {{ "X-Team" = "security" }}
headers_env = {{ Authorization = "TEST_WEBHOOK_AUTH" }}

[[sinks]]
kind = "webhook"
url = "{reject}"
retry_initial = "50ms"
"#,
        slack = receiver.url("/slack"),
        am = receiver.url("/am"),
        reject = receiver.url("/reject"),
    );
    let (config, port, expected) = scenario(dir.path(), &sinks);
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start(
        &config,
        port,
        &log,
        &[("TEST_WEBHOOK_AUTH", "Bearer abc.def.ghi")],
    );
    daemon.wait_ready(Duration::from_secs(30)).await;
    let n = expected.len();
    let by_path = |p: &str| {
        receiver
            .requests()
            .into_iter()
            .filter(|r| r.path == p)
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(Duration::from_secs(20), || {
            by_path("/slack").len() == n
                && by_path("/am").len() == n
                && by_path("/reject").len() == n
        })
        .await,
        "log:\n{}",
        daemon.log_text()
    );

    for r in by_path("/slack") {
        let v = r.json();
        assert!(v["text"].as_str().unwrap().contains("sign-ins"), "{v}");
        assert_eq!(v["blocks"][0]["type"], "header");
        assert!(
            r.header("x-authpulse-signature").is_none(),
            "no secret, no signature"
        );
        assert!(r.header("idempotency-key").is_some());
    }
    for r in by_path("/am") {
        let v = r.json();
        assert_eq!(v["version"], "4");
        let a = &v["alerts"][0];
        assert_eq!(a["status"], v["status"]);
        assert_eq!(a["labels"]["rule"], "sign-ins");
        assert!(a["labels"]["alertname"]
            .as_str()
            .unwrap()
            .starts_with("authpulse_"));
        assert!(a["startsAt"].as_str().is_some() && a["endsAt"].as_str().is_some());
        assert!(signature_ok(&r, SECRET.as_bytes()));
        assert_eq!(r.header("x-team").as_deref(), Some("security"));
        assert_eq!(
            r.header("authorization").as_deref(),
            Some("Bearer abc.def.ghi")
        );
    }

    // 400 is permanent: one attempt per alert, then dead-lettered and counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(by_path("/reject").len(), n, "a 4xx must not be retried");
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains(&format!(
            "authpulse_notifications_failed_total{{sink=\"webhook[2]\"}} {n}"
        )),
        "{metrics}"
    );
    let dead: Vec<_> = std::fs::read_dir(dir.path().join("state/outbox"))
        .unwrap()
        .flatten()
        .filter_map(|q| std::fs::read_dir(q.path().join("dead")).ok())
        .flat_map(|d| d.flatten())
        .collect();
    assert_eq!(dead.len(), n);
    assert!(daemon.terminate().success());
    let text = daemon.log_text();
    assert!(text.contains("delivery failed permanently"), "{text}");
    assert!(
        !text.contains("abc.def.ghi"),
        "a header value leaked:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_env_stops_start_up_with_the_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    append(&events, &traffic_lines(0..2, 0..0));
    let sinks = r#"
[[sinks]]
kind = "webhook"
url = "http://127.0.0.1:9/hook"
secret_env = "AUTHPULSE_TEST_UNSET_SECRET"
"#;
    let (config, port) = config(dir.path(), &events, false, sinks);
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start(&config, port, &log, &[]);
    let status = daemon.child.wait().unwrap();
    assert!(!status.success());
    let text = daemon.log_text();
    assert!(
        text.contains(
            "sinks[0].secret_env: environment variable AUTHPULSE_TEST_UNSET_SECRET is not set"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_are_retried_and_never_show_the_url() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens here.
    let closed = free_port();
    let sinks = format!(
        r#"
[[sinks]]
kind = "webhook"
url = "http://127.0.0.1:{closed}/hook/{TOKEN}?key={SECRET}"
retry_initial = "50ms"
retry_max = "200ms"
"#
    );
    let (config, port, _) = scenario(dir.path(), &sinks);
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start(&config, port, &log, &[]);
    daemon.wait_ready(Duration::from_secs(30)).await;
    assert!(
        wait_until(Duration::from_secs(20), || daemon
            .log_text()
            .matches("cannot connect")
            .count()
            >= 3)
        .await,
        "{}",
        daemon.log_text()
    );
    assert!(daemon.terminate().success());
    let text = daemon.log_text();
    assert!(!text.contains(TOKEN), "the URL leaked:\n{text}");
    assert!(!text.contains(SECRET), "the URL leaked:\n{text}");
    assert!(
        !text.contains(&format!("127.0.0.1:{closed}")),
        "the URL leaked:\n{text}"
    );
    // Undelivered notifications stay queued for the next start.
    assert!(!outbox_files(&dir.path().join("state")).is_empty());
}
