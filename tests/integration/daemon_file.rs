//! `authpulse run` with the file source: replay, then follow appended lines.

use std::io::Write;
use std::time::Duration;

use authpulse::simulate::{generate, Difficulty, SimConfig};

use crate::support;

#[tokio::test]
async fn follows_appended_lines_and_pages_on_a_new_attack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("okta.ndjson");
    // Nine quiet days of history.
    let start = "2026-11-02T00:00:00Z".parse().expect("start");
    let cfg = SimConfig {
        incidents: Vec::new(),
        ..SimConfig::with_default_incidents(3, start, 9, 600, Difficulty::Easy)
    };
    let mut history = Vec::new();
    generate(&cfg, &mut history, &mut std::io::sink()).expect("simulate");
    std::fs::write(&input, &history).expect("write history");

    let out = dir.path().join("alerts.jsonl");
    let port = support::free_port();
    let config = dir.path().join("authpulse.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nstate_dir = \"{}\"\nhttp_listen = \"127.0.0.1:{port}\"\n[source]\nkind = \"file\"\npath = \"{}\"\nsettle = \"2m\"\n[[sinks]]\nkind = \"file\"\npath = \"{}\"\n",
            dir.path().join("state").display(),
            input.display(),
            out.display()
        ),
    )
    .expect("write config");
    let daemon = support::Daemon::start(&config, port, &dir.path().join("daemon.log"), &[]);
    let ready = support::eventually(Duration::from_secs(60), || async {
        (daemon.get("/readyz").await == Some(200)).then_some(())
    })
    .await;
    assert!(ready.is_some(), "not ready after replaying the history");
    assert!(
        std::fs::read_to_string(&out).unwrap_or_default().is_empty(),
        "quiet history paged"
    );

    // Append, in two writes (the second starts mid-line): a burst of failures on the
    // morning after the history, then quiet traffic that moves the file's clock on.
    let day10 = chrono::DateTime::parse_from_rfc3339("2026-11-11T14:00:00Z")
        .expect("t")
        .timestamp_millis();
    let mut text = String::new();
    for k in 0..600 {
        let t = day10 + k * 1_000;
        text.push_str(&support::okta_line(
            t,
            "user.session.start",
            "FAILURE",
            &format!("203.0.113.{}", k % 200),
            &format!("x{k}@example.com"),
        ));
        text.push('\n');
    }
    for k in 0..40 {
        let t = day10 + 15 * 60_000 + k * 60_000;
        text.push_str(&support::okta_line(
            t,
            "user.session.start",
            "SUCCESS",
            "198.51.100.4",
            "a@example.com",
        ));
        text.push('\n');
    }
    let (first, second) = text.split_at(text.len() / 2);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .expect("open for append");
    f.write_all(first.as_bytes()).expect("append");
    f.flush().expect("flush");
    tokio::time::sleep(Duration::from_millis(700)).await;
    f.write_all(second.as_bytes()).expect("append");
    f.flush().expect("flush");

    let alert = support::eventually(Duration::from_secs(30), || async {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|a| a["detector"] == "failure_spike" && a["status"] == "firing")
    })
    .await
    .expect("the appended attack pages");
    assert_eq!(alert["bin_start"], "2026-11-11T14:00:00Z", "{alert}");
    assert!(
        alert["observed"].as_f64().unwrap_or(0.0) >= 590.0,
        "a line split across writes was lost: {alert}"
    );
}
