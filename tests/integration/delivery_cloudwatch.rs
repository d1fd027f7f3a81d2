//! Delivery with the CloudWatch source, against the emulator:
//! - enrichment: a failure_spike alert from the daemon carries the top IPs, users,
//!   countries and reasons of its bin; when the follow-up query fails or is too slow,
//!   the alert still goes out, without them;
//! - restarts: the backfill after a SIGKILL re-derives the alerts already sent, and
//!   none of them pages again.

use std::time::Duration;

use serde_json::Value;

use crate::support::{self, aws};

const ATTACKER: &str = "203.0.113.9";

/// A log group with 3 hours of quiet sign-ins and a credential-stuffing burst in the two
/// newest closed 1-minute bins, mostly from one IP.
async fn attack_group() -> String {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws::sdk_config().await);
    let group = aws::unique("/authpulse/test/enrich");
    aws::create_log_group(&logs, &group).await;
    let now = aws::now_ms();
    let minute = 60_000;
    let this_bin = now / minute * minute;
    let mut lines = Vec::new();
    let mut t = now - 3 * 3600 * 1000;
    let mut i = 0i64;
    while t < now - 1000 {
        let result = if i % 19 == 7 { "FAILURE" } else { "SUCCESS" };
        let user = format!("u{}@example.com", i % 50);
        lines.push((
            t,
            support::okta_line(t, "user.session.start", result, "198.51.100.10", &user),
        ));
        i += 1;
        t += 2_700 + (i * 7919 % 900);
    }
    for k in 0..600 {
        let t = this_bin - 2 * minute + k * 200;
        let ip = if k % 10 < 7 {
            ATTACKER.to_string()
        } else {
            format!("192.0.2.{}", k % 50)
        };
        let user = format!("victim{}@example.com", k % 40);
        lines.push((
            t,
            support::okta_line(t, "user.session.start", "FAILURE", &ip, &user),
        ));
    }
    aws::put_lines(&logs, &group, lines).await;
    group
}

fn config(
    dir: &std::path::Path,
    group: &str,
    hook: &str,
    port: u16,
    enrichment: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"
[daemon]
state_dir = "{state}"
http_listen = "127.0.0.1:{port}"
log_level = "info"

[source]
kind = "cloudwatch"
log_groups = ["{group}"]
region = "us-east-1"
endpoint_url = "{endpoint}"
settle = "2s"
poll_interval = "500ms"
query_timeout = "3s"
backfill = "3h"

[[rules]]
name = "sessions"
bin = "1m"
baseline_window = "3h"
warmup = "1h"

[[sinks]]
kind = "webhook"
url = "{hook}"
timeout = "5s"

[enrichment]
{enrichment}
"#,
        state = dir.join("state").display(),
        endpoint = aws::endpoint(),
    );
    let path = dir.join("authpulse.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Run the daemon on an attack and return the first failure_spike firing alert.
async fn first_spike(enrichment: &str) -> (Value, String) {
    let group = attack_group().await;
    let receiver = support::Receiver::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let cfg = config(dir.path(), &group, &receiver.url("/hook"), port, enrichment);
    let log = dir.path().join("daemon.log");
    let mut d = support::Daemon::start(&cfg, port, &log, &[]);
    let find = || {
        receiver
            .accepted()
            .iter()
            .map(support::Received::json)
            .find(|a| a["detector"] == "failure_spike" && a["status"] == "firing")
    };
    assert!(
        support::wait_until(Duration::from_secs(60), || find().is_some()).await,
        "no failure_spike alert; log:\n{}",
        d.log_text()
    );
    let alert = find().unwrap();
    assert!(d.terminate().success());
    (alert, d.log_text())
}

fn values(list: &Value) -> Vec<(String, u64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["value"].as_str().unwrap().to_string(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_spike_carries_who_is_behind_it() {
    let (alert, _) = first_spike("top = 3").await;
    let e = &alert["enrichment"];
    assert!(e.is_object(), "no enrichment: {alert:#}");
    let ips = values(&e["top_ips"]);
    assert_eq!(ips.len(), 3, "{e:#}");
    assert_eq!(ips[0].0, ATTACKER, "{e:#}");
    assert!(ips[0].1 >= 100 && ips[0].1 > ips[1].1, "{e:#}");
    let users = values(&e["top_users"]);
    assert_eq!(users.len(), 3);
    assert!(users.iter().all(|(u, _)| u.starts_with("victim")), "{e:#}");
    assert_eq!(values(&e["top_countries"])[0].0, "United States");
    assert_eq!(values(&e["top_reasons"])[0].0, "INVALID_CREDENTIALS");
    let url = e["console_url"].as_str().unwrap();
    assert!(
        url.starts_with("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights$3FqueryDetail$3D~(end~'"),
        "{url}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_goes_out_when_the_enrichment_query_fails() {
    let missing = aws::unique("/authpulse/test/no-such-group");
    let (alert, log) = first_spike(&format!("log_groups = [\"{missing}\"]")).await;
    assert!(alert.get("enrichment").is_none(), "{alert:#}");
    assert!(
        log.contains("enrichment query failed; sending the alert without it"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_does_not_wait_for_a_slow_enrichment() {
    let (alert, log) = first_spike("timeout = \"1ms\"").await;
    assert!(alert.get("enrichment").is_none(), "{alert:#}");
    assert!(
        log.contains("enrichment too slow; sending the alert without it"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_page_again_for_what_the_backfill_re_derives() {
    let group = attack_group().await;
    let receiver = support::Receiver::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let cfg = config(dir.path(), &group, &receiver.url("/hook"), port, "");
    let log = dir.path().join("daemon.log");
    let firing = || {
        receiver
            .accepted()
            .iter()
            .map(support::Received::json)
            .filter(|a| a["status"] == "firing")
            .collect::<Vec<_>>()
    };
    let mut d1 = support::Daemon::start(&cfg, port, &log, &[]);
    assert!(
        support::wait_until(Duration::from_secs(60), || firing()
            .iter()
            .any(|a| a["detector"] == "failure_spike"))
        .await,
        "log:\n{}",
        d1.log_text()
    );
    d1.wait_ready(Duration::from_secs(30)).await;
    // Let the state catch up with the last bins, then kill without warning.
    tokio::time::sleep(Duration::from_secs(1)).await;
    d1.kill();
    let before: Vec<String> = firing()
        .iter()
        .map(|a| a["idempotency_key"].as_str().unwrap().to_string())
        .collect();

    let mut d2 = support::Daemon::start(&cfg, port, &log, &[]);
    d2.wait_ready(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: Vec<String> = firing()
        .iter()
        .map(|a| a["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    // The live bins go on while the daemon restarts: a minute boundary may pass between
    // the two, and the newest bin may page for the first time (new notices for a later
    // bin are not repeats). What must not happen: a notice sent twice, or one for a bin
    // the first daemon had already paged again under another key.
    let bin_of = |key: &String| key.rsplit('-').next().unwrap_or_default().to_string();
    let newest_before = before.iter().map(bin_of).max().unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    assert!(
        after.starts_with(&before)
            && after.iter().all(|k| seen.insert(k.clone()))
            && after[before.len()..]
                .iter()
                .all(|k| bin_of(k) > newest_before),
        "the restart paged again: before {before:?}, after {after:?}; log:\n{}",
        d2.log_text()
    );
    assert!(
        d2.log_text().contains("history replayed"),
        "{}",
        d2.log_text()
    );
    assert!(d2.terminate().success());
}
