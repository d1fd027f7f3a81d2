//! Per-sink routing through the real daemon: each sink's outbox gets exactly the alerts
//! its `route` takes ("PagerDuty critical only, Slack everything").

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::traffic::*;
use crate::support::{wait_until, Daemon};

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sink_gets_what_its_route_takes() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    append(&events, &traffic_lines(0..60, 40..44));
    let (critical, spikes, all) = (
        dir.path().join("critical.jsonl"),
        dir.path().join("spikes.jsonl"),
        dir.path().join("all.jsonl"),
    );
    let sinks = format!(
        r#"
[[sinks]]
kind = "file"
path = "{critical}"
[sinks.route]
min_severity = "critical"

[[sinks]]
kind = "file"
path = "{spikes}"
route = {{ detectors = ["volume_spike"], statuses = ["firing"] }}

[[sinks]]
kind = "file"
path = "{all}"
"#,
        critical = critical.display(),
        spikes = spikes.display(),
        all = all.display(),
    );
    let (config, port) = config(dir.path(), &events, false, &sinks);
    let expected = expected_alerts(&config, &events);
    let want_critical: Vec<Value> = expected
        .iter()
        .filter(|a| a["status"] == "resolved" || a["severity"] == "critical")
        .cloned()
        .collect();
    let want_spikes: Vec<Value> = expected
        .iter()
        .filter(|a| a["detector"] == "volume_spike" && a["status"] == "firing")
        .cloned()
        .collect();
    assert!(
        !want_spikes.is_empty() && want_spikes.len() < expected.len(),
        "the scenario must route some alerts and not others: {expected:#?}"
    );
    // The critical-only sink still hears how its incidents end: their resolves carry
    // the normal bin's lower severity.
    assert!(
        want_critical
            .iter()
            .any(|a| a["status"] == "resolved" && a["severity"] != "critical"),
        "{expected:#?}"
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start(&config, port, &log, &[]);
    daemon.wait_ready(Duration::from_secs(30)).await;
    assert!(
        wait_until(Duration::from_secs(20), || lines(&all).len()
            == expected.len()
            && lines(&critical).len() == want_critical.len()
            && lines(&spikes).len() == want_spikes.len())
        .await,
        "critical {:#?}\nspikes {:#?}\nlog:\n{}",
        lines(&critical),
        lines(&spikes),
        daemon.log_text()
    );
    assert!(daemon.terminate().success());
    assert_eq!(lines(&all), expected);
    assert_eq!(lines(&critical), want_critical);
    assert_eq!(lines(&spikes), want_spikes);
    // Nothing was queued for a sink that does not take it.
    assert!(outbox_files(&dir.path().join("state")).is_empty());
    assert!(daemon.log_text().contains("not routed to this sink"));
}
