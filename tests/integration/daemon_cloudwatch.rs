//! `authpulse run` against the AWS emulator, as a process: backfill, detection, faults.

use std::time::Duration;

use crate::support::{self, aws};
use support::{Daemon, Receiver};

/// Write a daemon config for one log group and one webhook.
fn config(
    dir: &std::path::Path,
    group: &str,
    hook: &str,
    port: u16,
    bin: &str,
    extra_source: &str,
    rule_extra: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"
[daemon]
state_dir = "{state}"
http_listen = "127.0.0.1:{port}"

[source]
kind = "cloudwatch"
log_groups = ["{group}"]
region = "us-east-1"
endpoint_url = "{endpoint}"
settle = "2s"
poll_interval = "500ms"
query_timeout = "3s"
{extra_source}

[[rules]]
name = "sessions"
bin = "{bin}"
{rule_extra}

[[sinks]]
kind = "webhook"
url = "{hook}"
timeout = "5s"
"#,
        state = dir.join("state").display(),
        endpoint = aws::endpoint(),
    );
    let path = dir.join("authpulse.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Quiet traffic: per minute ~20 successes and ~1 failure, from `start` to `end`.
fn quiet_minutes(start: i64, end: i64) -> Vec<(i64, String)> {
    let mut lines = Vec::new();
    let mut t = start;
    let mut i = 0i64;
    while t < end {
        let result = if i % 19 == 7 { "FAILURE" } else { "SUCCESS" };
        lines.push((
            t,
            support::okta_line(
                t,
                "user.session.start",
                result,
                "198.51.100.10",
                &format!("u{}@example.com", i % 50),
            ),
        ));
        i += 1;
        t += 2_700 + (i * 7919 % 900);
    }
    lines
}

#[tokio::test]
async fn backfills_then_pages_on_an_attack_in_the_newest_bins() {
    let (logs, group) = aws::log_group("/authpulse/test/attack").await;
    let now = aws::now_ms();
    let minute = 60_000;
    let this_bin = now / minute * minute;
    let mut lines = quiet_minutes(now - 3 * 3600 * 1000, now - 1000);
    // Credential stuffing in the two newest closed bins: 300 failures a minute from many IPs.
    for k in 0..600 {
        let t = this_bin - 2 * minute + k * 200;
        lines.push((
            t,
            support::okta_line(
                t,
                "user.session.start",
                "FAILURE",
                &format!("203.0.113.{}", k % 250),
                &format!("victim{k}@example.com"),
            ),
        ));
    }
    aws::put_lines(&logs, &group, lines).await;

    let hook = Receiver::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let cfg = config(
        dir.path(),
        &group,
        &hook.url("/hook"),
        port,
        "1m",
        "backfill = \"3h\"",
        "baseline_window = \"3h\"\nwarmup = \"1h\"",
    );
    let started = std::time::Instant::now();
    let d = Daemon::start(&cfg, port, &dir.path().join("daemon.log"), &[]);

    let alert = support::eventually(Duration::from_secs(60), || async {
        hook.alerts()
            .into_iter()
            .find(|a| a["detector"] == "failure_spike" && a["status"] == "firing")
    })
    .await
    .expect("a failure_spike alert within a minute of start");
    println!("paged after {:?}: {}", started.elapsed(), alert["summary"]);
    let bin_start = chrono::DateTime::parse_from_rfc3339(alert["bin_start"].as_str().unwrap_or(""))
        .expect("bin_start is RFC 3339");
    let attack_bins = [this_bin - 2 * minute, this_bin - minute];
    assert!(
        attack_bins.contains(&bin_start.timestamp_millis()),
        "alert for the wrong bin: {alert}"
    );
    assert!(
        alert["observed"].as_f64().unwrap_or(0.0) >= 250.0,
        "{alert}"
    );
    assert!(alert["expected"].as_f64().unwrap_or(99.0) < 10.0, "{alert}");
    assert_eq!(d.get("/healthz").await, Some(200));
    assert_eq!(d.get("/readyz").await, Some(200));
    // Nothing else pages: no flatline or drop from the backfilled history.
    let others: Vec<_> = hook
        .alerts()
        .into_iter()
        .filter(|a| {
            !["failure_spike", "failure_ratio", "volume_spike"]
                .contains(&a["detector"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(others.is_empty(), "unexpected alerts: {others:#?}");
}

#[tokio::test]
async fn quiet_history_does_not_page() {
    let (logs, group) = aws::log_group("/authpulse/test/quiet").await;
    let now = aws::now_ms();
    aws::put_lines(
        &logs,
        &group,
        quiet_minutes(now - 3 * 3600 * 1000, now - 1000),
    )
    .await;

    let hook = Receiver::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let cfg = config(
        dir.path(),
        &group,
        &hook.url("/hook"),
        port,
        "1m",
        "backfill = \"3h\"",
        "baseline_window = \"3h\"\nwarmup = \"1h\"",
    );
    let mut d = Daemon::start(&cfg, port, &dir.path().join("daemon.log"), &[]);
    d.wait_ready(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        hook.alerts().is_empty(),
        "quiet history paged: {:#?}",
        hook.alerts()
    );
    assert!(
        !aws::queries(&group).await.is_empty(),
        "the daemon never queried"
    );
}

#[tokio::test]
async fn faults_make_bins_unknown_page_source_unavailable_and_recover() {
    let (logs, group) = aws::log_group("/authpulse/test/faults").await;
    let now = aws::now_ms();
    aws::put_lines(&logs, &group, quiet_minutes(now - 1800 * 1000, now - 500)).await;

    // Keep traffic flowing in real time so that silence would be real silence.
    let feeder_logs = logs.clone();
    let feeder_group = group.clone();
    let feeder = tokio::spawn(async move {
        loop {
            let t = aws::now_ms() - 200;
            let batch: Vec<_> = (0..3)
                .map(|k| {
                    (
                        t + k,
                        support::okta_line(
                            t + k,
                            "user.session.start",
                            "SUCCESS",
                            "198.51.100.10",
                            "u@example.com",
                        ),
                    )
                })
                .collect();
            aws::put_lines(&feeder_logs, &feeder_group, batch).await;
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    });

    let hook = Receiver::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let cfg = config(
        dir.path(),
        &group,
        &hook.url("/hook"),
        port,
        "10s",
        "backfill = \"30m\"\nrevise_after = \"0s\"\nunavailable_after = 2",
        "baseline_window = \"30m\"\nwarmup = \"10m\"",
    );
    let mut d = Daemon::start(&cfg, port, &dir.path().join("daemon.log"), &[]);
    d.wait_ready(Duration::from_secs(60)).await;

    // Throttling below the retry budget: absorbed, no page.
    let before = aws::queries(&group).await.len();
    aws::faults(&group, serde_json::json!({"throttle_start_query": 4})).await;
    let progressed = support::eventually(Duration::from_secs(40), || async {
        (aws::queries(&group).await.len() > before).then_some(())
    })
    .await;
    assert!(progressed.is_some(), "no query succeeded after throttling");

    // A failed query, a hung one (stopped at the deadline), a failed one: three bad polls.
    aws::faults(
        &group,
        serde_json::json!({"fail_queries": 1, "hang_queries": 1}),
    )
    .await;
    let fired = support::eventually(Duration::from_secs(60), || async {
        hook.alerts()
            .into_iter()
            .find(|a| a["detector"] == "source_unavailable" && a["status"] == "firing")
    })
    .await;
    assert!(
        fired.is_some(),
        "no source_unavailable page: {:#?}",
        hook.alerts()
    );
    assert_eq!(
        d.get("/readyz").await,
        Some(503),
        "not ready while polls fail"
    );
    let resolved = support::eventually(Duration::from_secs(60), || async {
        hook.alerts()
            .into_iter()
            .find(|a| a["detector"] == "source_unavailable" && a["status"] == "resolved")
    })
    .await;
    assert!(
        resolved.is_some(),
        "source_unavailable never resolved: {:#?}",
        hook.alerts()
    );
    d.wait_ready(Duration::from_secs(20)).await;
    feeder.abort();

    let statuses: Vec<String> = aws::queries(&group)
        .await
        .iter()
        .map(|q| q["status"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(statuses.iter().any(|s| s == "Failed"), "{statuses:?}");
    assert!(
        statuses.iter().any(|s| s == "Cancelled"),
        "the hung query was not stopped: {statuses:?}"
    );
    let false_pages: Vec<_> = hook
        .alerts()
        .into_iter()
        .filter(|a| a["detector"] != "source_unavailable")
        .collect();
    assert!(
        false_pages.is_empty(),
        "unknown bins caused pages: {false_pages:#?}"
    );
}

#[tokio::test]
async fn a_first_start_pages_for_ongoing_incidents_not_for_history() {
    let (logs, group) = aws::log_group("/authpulse/test/history").await;
    let now = aws::now_ms();
    let minute = 60_000;
    let this_bin = now / minute * minute;
    let mut lines = quiet_minutes(now - 4 * 3600 * 1000, now - 1000);
    let burst = |lines: &mut Vec<(i64, String)>, from: i64, minutes: i64, ip: &str| {
        for k in 0..minutes * 100 {
            let t = from + k * 600;
            lines.push((
                t,
                support::okta_line(
                    t,
                    "user.session.start",
                    "FAILURE",
                    ip,
                    &format!("v{k}@example.com"),
                ),
            ));
        }
    };
    // Over long ago: 10 minutes, two and a half hours before the start.
    let old_start = this_bin - 150 * minute;
    burst(&mut lines, old_start, 10, "203.0.113.1");
    // Still under way: started 75 minutes ago and going on.
    let ongoing_start = this_bin - 75 * minute;
    burst(&mut lines, ongoing_start, 75, "203.0.113.2");
    aws::put_lines(&logs, &group, lines).await;

    let hook = Receiver::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let cfg = config(
        dir.path(),
        &group,
        &hook.url("/hook"),
        port,
        "1m",
        "backfill = \"4h\"",
        "baseline_window = \"4h\"\nwarmup = \"1h\"",
    );
    let mut d = Daemon::start(&cfg, port, &dir.path().join("daemon.log"), &[]);
    d.wait_ready(Duration::from_secs(60)).await;
    let paged = support::eventually(Duration::from_secs(20), || async {
        hook.alerts()
            .into_iter()
            .find(|a| a["detector"] == "failure_spike")
    })
    .await
    .expect("the ongoing attack pages");
    assert_eq!(paged["status"], "firing");
    let started = chrono::DateTime::parse_from_rfc3339(paged["started_at"].as_str().unwrap_or(""))
        .expect("started_at");
    assert_eq!(started.timestamp_millis(), ongoing_start, "{paged}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for a in hook.alerts() {
        let s = chrono::DateTime::parse_from_rfc3339(a["started_at"].as_str().unwrap_or(""))
            .map_or(0, |t| t.timestamp_millis());
        assert!(s >= ongoing_start, "paged for history: {a}");
    }
    let spikes = hook
        .alerts()
        .into_iter()
        .filter(|a| a["detector"] == "failure_spike")
        .count();
    assert_eq!(spikes, 1, "{:#?}", hook.alerts());
}
