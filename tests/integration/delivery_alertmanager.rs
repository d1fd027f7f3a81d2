//! The `alertmanager` sink against a real Alertmanager (Debian's
//! `prometheus-alertmanager`, started by `scripts/test.sh`, which passes its URL in
//! `AUTHPULSE_TEST_ALERTMANAGER_URL`): what the daemon posts shows up through
//! Alertmanager's own API with its labels, stays active while re-sent (across a
//! restart too), is suppressed by a silence made in Alertmanager, and ends when the
//! incident resolves.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::support::traffic::*;
use crate::support::{free_port, Daemon};

/// The Alertmanager to test against. Without it the test fails and says how to run it.
fn alertmanager_url() -> String {
    match std::env::var("AUTHPULSE_TEST_ALERTMANAGER_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AUTHPULSE_TEST_ALERTMANAGER_URL is not set: this test needs a real Alertmanager. \
             Run the suite with `bash scripts/test.sh`, which installs Debian's \
             prometheus-alertmanager when it is missing and starts it."
        ),
    }
}

/// The alerts Alertmanager holds for `rule` (active, silenced and inhibited; resolved
/// ones are not listed).
async fn alerts(am: &str, rule: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(
        &format!("{am}/api/v2/alerts"),
        &[
            ("active", "true"),
            ("silenced", "true"),
            ("inhibited", "true"),
            ("filter", &format!("rule=\"{rule}\"")),
        ],
    )
    .expect("URL");
    let resp = reqwest::get(url).await.expect("Alertmanager's API answers");
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json::<Vec<Value>>().await.expect("a list of alerts")
}

/// Poll Alertmanager until `check` finds what it wants.
async fn until<T>(
    am: &str,
    rule: &str,
    what: &str,
    daemon: &Daemon,
    check: impl Fn(&[Value]) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = alerts(am, rule).await;
        if let Some(v) = check(&now) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Alertmanager never showed {what}; it holds {now:#?}\ndaemon log:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// A follow-mode file source with a rule named `rule` (unique, so tests sharing the
/// Alertmanager see only their own alerts).
fn write_config(dir: &Path, events: &Path, rule: &str, sinks: &str) -> (std::path::PathBuf, u16) {
    let port = free_port();
    let text = format!(
        r#"
[daemon]
state_dir = "{state}"
http_listen = "127.0.0.1:{port}"
log_level = "info,authpulse=debug"

[source]
kind = "file"
path = "{events}"
follow = true
settle = "0s"

[[rules]]
name = "{rule}"
bin = "5m"
warmup = "2h"
baseline_window = "1d"
[rules.detectors.failure_spike]

{sinks}
"#,
        state = dir.join("state").display(),
        events = events.display(),
    );
    let path = dir.join("authpulse.toml");
    std::fs::write(&path, text).unwrap();
    (path, port)
}

async fn resolved_received(am: &str) -> f64 {
    let text = reqwest::get(format!("{am}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find(|l| {
            l.starts_with("alertmanager_alerts_received_total")
                && l.contains("status=\"resolved\"")
                && l.contains("version=\"v2\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_stay_alive_across_a_restart_are_silenced_and_resolve_in_alertmanager() {
    let am = alertmanager_url();
    let dir = tempfile::tempdir().unwrap();
    let nanos = Utc::now().timestamp_subsec_nanos();
    let rule = format!("am-test-{}-{nanos}", std::process::id());
    let events = dir.path().join("events.ndjson");
    // History, then a credential-stuffing burst from bin 40 that is still going on.
    append(&events, &traffic_lines(0..44, 40..44));
    let sinks = format!(
        r#"
[[sinks]]
kind = "alertmanager"
url = "{am}"
resend_interval = "1s"
retry_initial = "50ms"
retry_max = "500ms"

[[sinks]]
kind = "file"
path = "{alerts}"
"#,
        alerts = dir.path().join("alerts.jsonl").display()
    );
    let (config, port) = write_config(dir.path(), &events, &rule, &sinks);
    let expected = expected_alerts(&config, &events);
    let firing: Vec<&Value> = expected
        .iter()
        .filter(|a| a["status"] == "firing")
        .collect();
    assert_eq!(firing.len(), 1, "one incident, still firing: {expected:#?}");
    let want = firing[0];
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start(&config, port, &log, &[]);
    daemon.wait_ready(Duration::from_secs(30)).await;

    // 1. The alert is active in Alertmanager, with its labels and annotations.
    let got = until(&am, &rule, "the firing alert", &daemon, |a| {
        a.iter().find(|x| x["status"]["state"] == "active").cloned()
    })
    .await;
    let labels = &got["labels"];
    assert_eq!(labels["alertname"], "authpulse_failure_spike", "{got:#}");
    assert_eq!(labels["rule"], rule.as_str());
    assert_eq!(labels["detector"], "failure_spike");
    assert_eq!(labels["severity"], want["severity"]);
    assert_eq!(labels["kind"], want["kind"]);
    assert_eq!(
        labels.as_object().map(|l| l.len()),
        Some(5),
        "an unsplit rule has no series labels: {got:#}"
    );
    assert_eq!(time(&got["startsAt"]), time(&want["started_at"]));
    assert!(
        time(&got["endsAt"]) > Utc::now(),
        "endsAt lies ahead: {got:#}"
    );
    assert_eq!(got["generatorURL"], format!("http://127.0.0.1:{port}/"));
    let notes = &got["annotations"];
    assert_eq!(notes["description"], want["summary"]);
    assert_eq!(notes["investigate"], want["investigate"]);
    assert_eq!(notes["kind_reason"], want["kind_reason"]);
    assert!(
        notes["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with(&format!("{rule} failure_spike: "))),
        "{got:#}"
    );

    // 2. It is re-sent while firing: endsAt moves on.
    let first_end = time(&got["endsAt"]);
    until(&am, &rule, "a re-sent alert (later endsAt)", &daemon, |a| {
        a.iter().find(|x| time(&x["endsAt"]) > first_end).cloned()
    })
    .await;

    // 3. A silence made in Alertmanager suppresses it.
    let now = Utc::now();
    let silence = json!({
        "matchers": [
            {"name": "alertname", "value": "authpulse_failure_spike", "isRegex": false, "isEqual": true},
            {"name": "rule", "value": rule, "isRegex": false, "isEqual": true}
        ],
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "authpulse tests",
        "comment": "silenced by tests/integration/delivery_alertmanager.rs"
    });
    let resp = reqwest::Client::new()
        .post(format!("{am}/api/v2/silences"))
        .json(&silence)
        .send()
        .await
        .expect("silence");
    assert!(resp.status().is_success(), "{}", resp.status());
    let id = resp.json::<Value>().await.expect("silence id")["silenceID"]
        .as_str()
        .expect("silenceID")
        .to_string();
    let silenced = until(&am, &rule, "the alert suppressed", &daemon, |a| {
        a.iter()
            .find(|x| x["status"]["state"] == "suppressed")
            .cloned()
    })
    .await;
    assert_eq!(silenced["status"]["silencedBy"], json!([id]));

    // 4. Killed and restarted: the new daemon picks the incident up from its state and
    //    re-sends it at once (a post before the kill ends at most 4 × 1s after it).
    daemon.kill();
    let restarted = Utc::now();
    let mut daemon = Daemon::start(&config, port, &log, &[]);
    daemon.wait_ready(Duration::from_secs(30)).await;
    let resumed = until(
        &am,
        &rule,
        "the alert re-sent after the restart",
        &daemon,
        |a| {
            a.iter()
                .find(|x| time(&x["endsAt"]) > restarted + chrono::Duration::seconds(4))
                .cloned()
        },
    )
    .await;
    assert_eq!(resumed["labels"], got["labels"]);
    assert_eq!(resumed["status"]["state"], "suppressed");

    // 5. Traffic goes back to normal: the resolve ends the alert in Alertmanager.
    let resolved_before = resolved_received(&am).await;
    append(&events, &traffic_lines(44..60, 0..0));
    until(
        &am,
        &rule,
        "the alert resolved (no longer listed)",
        &daemon,
        |a| a.is_empty().then_some(()),
    )
    .await;
    assert!(resolved_received(&am).await > resolved_before);
    let delivered: Vec<Value> = std::fs::read_to_string(dir.path().join("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        delivered.iter().any(|a| a["status"] == "resolved"),
        "{delivered:#?}"
    );
    // Stays resolved: the re-send stopped with the resolve (a re-sent firing alert would
    // be listed again).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(alerts(&am, &rule).await, Vec::<Value>::new());

    assert!(daemon.terminate().success());
    let text = daemon.log_text();
    assert!(!text.contains("delivery failed"), "{text}");
    assert!(
        text.contains("re-sending the incidents still firing to Alertmanager"),
        "{text}"
    );
    let _ = reqwest::Client::new()
        .delete(format!("{am}/api/v2/silence/{id}"))
        .send()
        .await;
}
