//! Durability across SIGKILL: the real daemon binary on a file source (which replays its
//! file from the first line on every start), killed with no chance to clean up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::traffic::*;
use crate::support::{free_port, wait_until, Daemon, Received, Receiver};

fn key(v: &Value) -> String {
    v["idempotency_key"].as_str().unwrap().to_string()
}

/// What a receiver keeps after dropping repeats by idempotency key, in arrival order.
fn deduplicated(receiver: &Receiver) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    receiver
        .accepted()
        .iter()
        .map(Received::json)
        .filter(|v| seen.insert(key(v)))
        .collect()
}

/// Per fingerprint, the statuses received (after dropping repeats).
fn per_incident(notes: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in notes {
        m.entry(v["fingerprint"].as_str().unwrap().to_string())
            .or_default()
            .push(v["status"].as_str().unwrap().to_string());
    }
    m
}

fn webhook(receiver: &Receiver) -> String {
    format!(
        r#"
[[sinks]]
kind = "webhook"
url = "{}"
retry_initial = "50ms"
retry_max = "300ms"
"#,
        receiver.url("/hook")
    )
}

fn state_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_undelivered_items_then_restarted_delivers_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(503).await;
    let events = dir.path().join("events.ndjson");
    append(&events, &traffic_lines(0..60, 40..44));
    let (config, port) = config(dir.path(), &events, false, &webhook(&receiver));
    let expected = expected_alerts(&config, &events);
    let want: BTreeSet<String> = expected.iter().map(key).collect();
    assert!(want.len() >= 2, "{expected:#?}");
    let log = dir.path().join("daemon.log");

    // Run 1: the receiver is down. Everything is persisted, nothing delivered: kill.
    let mut d1 = Daemon::start(&config, port, &log, &[]);
    d1.wait_ready(Duration::from_secs(30)).await;
    assert!(
        wait_until(Duration::from_secs(20), || {
            outbox_files(&state_dir(dir.path())).len() == expected.len()
                && !receiver.requests().is_empty()
        })
        .await,
        "log:\n{}",
        d1.log_text()
    );
    d1.kill();
    assert!(receiver.accepted().is_empty());
    assert_eq!(outbox_files(&state_dir(dir.path())).len(), expected.len());

    // Run 2: the receiver is back. The outbox is delivered; the replayed file must not
    // page again.
    receiver.set_status(200);
    let mut d2 = Daemon::start(&config, port, &log, &[]);
    d2.wait_ready(Duration::from_secs(30)).await;
    assert!(
        wait_until(Duration::from_secs(20), || {
            deduplicated(&receiver)
                .iter()
                .map(key)
                .collect::<BTreeSet<_>>()
                == want
        })
        .await,
        "got {:#?}\nlog:\n{}",
        deduplicated(&receiver),
        d2.log_text()
    );
    // Give a wrongly regenerated notification time to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let notes = deduplicated(&receiver);
    assert_eq!(notes.len(), want.len(), "{notes:#?}");
    for (fp, statuses) in per_incident(&notes) {
        assert_eq!(
            statuses,
            ["firing", "resolved"],
            "incident {fp}: {notes:#?}"
        );
    }
    assert!(outbox_files(&state_dir(dir.path())).is_empty());
    let text = d2.log_text();
    assert!(
        text.contains("undelivered notifications from an earlier run"),
        "{text}"
    );
    assert!(text.contains("history replayed"), "{text}");

    // Run 3: killed again after everything was delivered. Nothing at all is sent.
    d2.kill();
    let before = receiver.requests().len();
    let mut d3 = Daemon::start(&config, port, &log, &[]);
    d3.wait_ready(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.requests().len(),
        before,
        "a restart re-sent notifications: {:#?}",
        receiver.requests()[before..]
            .iter()
            .map(Received::json)
            .collect::<Vec<_>>()
    );
    assert!(d3.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_an_incident_fires_resolves_once_and_never_pages_again() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(200).await;
    let events = dir.path().join("events.ndjson");
    // The file ends in the middle of the attack.
    append(&events, &traffic_lines(0..42, 40..44));
    let (config, port) = config(dir.path(), &events, false, &webhook(&receiver));
    let log = dir.path().join("daemon.log");

    let mut d1 = Daemon::start(&config, port, &log, &[]);
    d1.wait_ready(Duration::from_secs(30)).await;
    assert!(
        wait_until(Duration::from_secs(20), || !receiver.accepted().is_empty()
            && outbox_files(&state_dir(dir.path())).is_empty())
        .await,
        "log:\n{}",
        d1.log_text()
    );
    let first = deduplicated(&receiver);
    assert!(first.iter().all(|v| v["status"] == "firing"), "{first:#?}");
    d1.kill();

    // The attack goes on for two more bins, then traffic is normal again.
    append(&events, &traffic_lines(42..60, 40..44));
    let expected = expected_alerts(&config, &events);
    let mut d2 = Daemon::start(&config, port, &log, &[]);
    d2.wait_ready(Duration::from_secs(30)).await;
    let resolved_expected = expected
        .iter()
        .filter(|a| a["status"] == "resolved")
        .count();
    assert!(resolved_expected >= 1, "{expected:#?}");
    assert!(
        wait_until(Duration::from_secs(20), || {
            deduplicated(&receiver)
                .iter()
                .filter(|v| v["status"] == "resolved")
                .count()
                == resolved_expected
        })
        .await,
        "log:\n{}",
        d2.log_text()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let notes = deduplicated(&receiver);
    for (fp, statuses) in per_incident(&notes) {
        let firing = statuses.iter().filter(|s| *s == "firing").count();
        let resolved = statuses.iter().filter(|s| *s == "resolved").count();
        assert_eq!(firing, 1, "incident {fp} paged twice: {notes:#?}");
        assert_eq!(resolved, 1, "incident {fp}: {notes:#?}");
        assert_eq!(statuses.last().map(String::as_str), Some("resolved"));
    }
    // Exactly what a single uninterrupted run over the whole file sends.
    let sent: BTreeSet<String> = notes.iter().map(key).collect();
    let all: BTreeSet<String> = expected.iter().map(key).collect();
    assert_eq!(sent, all);
    assert!(d2.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_is_moved_aside_and_the_daemon_starts() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(200).await;
    let events = dir.path().join("events.ndjson");
    append(&events, &traffic_lines(0..60, 40..44));
    let (config, port) = config(dir.path(), &events, false, &webhook(&receiver));
    let expected = expected_alerts(&config, &events);
    std::fs::create_dir_all(state_dir(dir.path())).unwrap();
    let state_file = state_dir(dir.path()).join("alert-state.json");
    // A partly written file: a valid header, half a body.
    std::fs::write(
        &state_file,
        "authpulse-alert-state v1 sha256=00ff\n{\"watermarks\": {\"sign-ins\": 17",
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let mut d = Daemon::start(&config, port, &log, &[]);
    d.wait_ready(Duration::from_secs(30)).await;
    // It rebuilds from the replay and delivers.
    assert!(
        wait_until(Duration::from_secs(20), || deduplicated(&receiver).len()
            == expected.len())
        .await,
        "log:\n{}",
        d.log_text()
    );
    let text = d.log_text();
    assert!(
        text.contains("alert state file is corrupt; moved it aside"),
        "{text}"
    );
    let aside: Vec<_> = std::fs::read_dir(state_dir(dir.path()))
        .unwrap()
        .flatten()
        .filter(|f| {
            f.file_name()
                .to_string_lossy()
                .starts_with("alert-state.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    // A fresh, valid state file replaced it.
    assert!(d.terminate().success());
    let saved = std::fs::read_to_string(&state_file).unwrap();
    assert!(
        saved.starts_with("authpulse-alert-state v1 sha256="),
        "{saved}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_state_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(200).await;
    let events = dir.path().join("events.ndjson");
    append(&events, &traffic_lines(0..4, 0..0));
    let (config, port) = config(dir.path(), &events, false, &webhook(&receiver));
    let log = dir.path().join("daemon.log");
    let mut first = Daemon::start(&config, port, &log, &[]);
    first.wait_ready(Duration::from_secs(30)).await;

    let other_port = free_port();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("127.0.0.1:{port}"),
        &format!("127.0.0.1:{other_port}"),
    );
    let config2 = dir.path().join("second.toml");
    std::fs::write(&config2, text).unwrap();
    let log2 = dir.path().join("second.log");
    let mut second = Daemon::start(&config2, other_port, &log2, &[]);
    let status = second.child.wait().unwrap();
    assert!(!status.success());
    assert!(
        second.log_text().contains("is in use by another authpulse"),
        "{}",
        second.log_text()
    );
    assert!(first.terminate().success());
}
