//! Operating the daemon on its production source, CloudWatch Logs Insights (the AWS
//! emulator): poll metrics move with every poll, and SIGTERM while queries run still
//! exits 0 within 10 s.

use std::time::{Duration, Instant};

use crate::support::{self, aws};
use support::Daemon;

fn config(dir: &std::path::Path, group: &str, port: u16) -> std::path::PathBuf {
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
settle = "1s"
revise_after = "3s"
poll_interval = "500ms"
query_timeout = "5s"
backfill = "1h"

[[rules]]
name = "sessions"
bin = "1m"
baseline_window = "1h"
warmup = "30m"

[[sinks]]
kind = "file"
path = "{alerts}"
"#,
        state = dir.join("state").display(),
        alerts = dir.join("alerts.jsonl").display(),
        endpoint = aws::endpoint(),
    );
    let path = dir.join("authpulse.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

async fn metrics(d: &Daemon) -> String {
    d.text("/metrics").await
}

async fn page(d: &Daemon) -> String {
    d.text("/").await
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn poll_metrics_move_and_sigterm_exits_in_time() {
    let sdk = aws::sdk_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let group = aws::unique("/authpulse/test/ops");
    aws::create_log_group(&logs, &group).await;
    let now = aws::now_ms();
    let lines: Vec<(i64, String)> = (0..600)
        .map(|i| {
            let t = now - 3_600_000 + i * 6_000;
            let result = if i % 20 == 0 { "FAILURE" } else { "SUCCESS" };
            let line = support::okta_line(
                t,
                "user.session.start",
                result,
                "198.51.100.4",
                &format!("u{}@example.com", i % 40),
            );
            (t, line)
        })
        .collect();
    aws::put_lines(&logs, &group, lines).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let cfg = config(dir.path(), &group, port);
    let mut d = Daemon::start(&cfg, port, &dir.path().join("daemon.log"), &[]);
    let ready = support::eventually(Duration::from_secs(60), || async {
        (d.get("/readyz").await == Some(200)).then_some(())
    })
    .await;
    assert!(ready.is_some(), "not ready within a minute");

    let polls = "authpulse_polls_total{rule=\"sessions\"}";
    let last_poll = "authpulse_last_successful_poll_timestamp_seconds{rule=\"sessions\"}";
    let scanned = "authpulse_query_bytes_scanned_total{rule=\"sessions\"}";
    let first = metrics(&d).await;
    let backfill_polls = metric(&first, polls).unwrap_or(0.0);
    assert!(backfill_polls >= 1.0, "{first}");
    assert!(metric(&first, scanned).unwrap_or(0.0) > 0.0, "{first}");
    assert!(metric(&first, "authpulse_bins_evaluated_total").unwrap_or(0.0) >= 50.0);

    // Traffic in the bin now open, so the poll that reads it scans something.
    let now = aws::now_ms();
    let fresh: Vec<(i64, String)> = (0..5)
        .map(|i| {
            let t = now - 500 + i * 50;
            let line = support::okta_line(
                t,
                "user.session.start",
                "SUCCESS",
                "198.51.100.4",
                "u1@example.com",
            );
            (t, line)
        })
        .collect();
    aws::put_lines(&logs, &group, fresh).await;

    // The next minute closes and is polled: the poll counters and the last-poll time move.
    let moved = support::eventually(Duration::from_secs(90), || async {
        let text = metrics(&d).await;
        let t = metric(&text, last_poll)?;
        let scanned_more = metric(&text, scanned)? > metric(&first, scanned)?;
        (metric(&text, polls)? > backfill_polls && t > 0.0 && scanned_more)
            .then_some((text.clone(), t))
    })
    .await;
    let (text, t) = moved.unwrap_or_else(|| panic!("no poll after the backfill:\n{first}"));
    let age = aws::now_ms() as f64 / 1000.0 - t;
    assert!((0.0..30.0).contains(&age), "last poll {age} s ago:\n{text}");
    assert!(metric(&text, scanned) > metric(&first, scanned));
    assert_eq!(metric(&text, "authpulse_ready"), Some(1.0));

    // A query that never finishes (the revision of the bin just read, 3 s later) is
    // running: SIGTERM stops it (StopQuery) and the daemon still exits 0 in time.
    aws::faults(&group, serde_json::json!({"hang_queries": 100})).await;
    let hung = support::eventually(Duration::from_secs(90), || async {
        aws::queries(&group)
            .await
            .into_iter()
            .any(|q| q["status"] == "Running")
            .then_some(())
    })
    .await;
    assert!(hung.is_some(), "no query running");
    let started = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status();
    let status = loop {
        if let Ok(Some(s)) = d.child.try_wait() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still running 15 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = started.elapsed();
    println!("SIGTERM to exit with a query running: {took:?}");
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(dir.path().join("state/alert-state.json").is_file());
    let running: Vec<_> = aws::queries(&group)
        .await
        .into_iter()
        .filter(|q| q["status"] == "Running")
        .collect();
    assert!(running.is_empty(), "queries left running: {running:?}");
}

#[tokio::test]
async fn a_blind_daemon_says_so_on_every_surface_across_restarts() {
    let sdk = aws::sdk_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let group = aws::unique("/authpulse/test/blind");
    aws::create_log_group(&logs, &group).await;
    aws::faults(&group, serde_json::json!({"fail_queries": 1000})).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port();
    let cfg = config(dir.path(), &group, port);
    let text = std::fs::read_to_string(&cfg)
        .expect("config")
        .replace(
            "backfill = \"1h\"",
            "backfill = \"5m\"\nunavailable_after = 1",
        )
        .replace("bin = \"1m\"", "bin = \"10s\"");
    std::fs::write(&cfg, text).expect("config");

    let shows_blind = |p: &str| {
        p.contains(">source failing<")
            && p.contains("<td>source_unavailable</td>")
            && p.contains("Open alerts (1)")
    };

    let mut d = Daemon::start(&cfg, port, &dir.path().join("daemon.log"), &[]);
    let blind = support::eventually(Duration::from_secs(30), || async {
        shows_blind(&page(&d).await).then_some(())
    })
    .await;
    assert!(
        blind.is_some(),
        "the page does not say so:\n{}",
        page(&d).await
    );
    assert_eq!(d.get("/readyz").await, Some(503));
    let m = metrics(&d).await;
    assert_eq!(metric(&m, "authpulse_alerts_firing"), Some(1.0), "{m}");
    assert!(metric(&m, "authpulse_ready") == Some(0.0), "{m}");

    // Restarted while still blind: the incident is still open (its `resolved` is owed),
    // and the page lists it from the start, before any poll.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status();
    let _ = d.child.wait();
    drop(d);
    let d = Daemon::start(&cfg, port, &dir.path().join("daemon.log"), &[]);
    let listed = support::eventually(Duration::from_secs(20), || async {
        page(&d)
            .await
            .contains("<td>source_unavailable</td>")
            .then_some(())
    })
    .await;
    assert!(listed.is_some(), "{}", page(&d).await);

    // Readable again: resolved everywhere.
    aws::admin(
        reqwest::Method::DELETE,
        &format!("/_authpulse/faults?log_group={group}"),
        None,
    )
    .await;
    let healthy = support::eventually(Duration::from_secs(60), || async {
        let p = page(&d).await;
        (p.contains("Open alerts (0)") && d.get("/readyz").await == Some(200)).then_some(())
    })
    .await;
    assert!(healthy.is_some(), "{}", page(&d).await);
    let alerts = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap_or_default();
    let notices: Vec<&str> = alerts
        .lines()
        .filter(|l| l.contains("source_unavailable"))
        .collect();
    assert_eq!(notices.len(), 2, "one firing, one resolved: {notices:#?}");
}
