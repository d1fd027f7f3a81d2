//! Silences end to end: `authpulse silence add|list|expire` (the CLI binary) against a
//! running daemon's HTTP API. A silence holds back the matching notifications and not the
//! others, survives a restart, ends with `expire`; the resolve of the incident it
//! silenced does not page alone; writes without or with a wrong token are refused; and
//! `/api/notifications` shows delivered, dead-lettered and silenced notices.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::traffic::*;
use crate::support::{wait_until, Daemon, Receiver};
use serde_json::Value;

const TOKEN: &str = "t0k3n-for-the-silence-test";

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `authpulse silence ARGS --url URL`, with `token` in AUTHPULSE_API_TOKEN (or none).
fn silence(url: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authpulse"));
    cmd.arg("silence")
        .args(args)
        .args(["--url", url])
        .env_remove("AUTHPULSE_API_TOKEN")
        .env("USER", "tester");
    if let Some(t) = token {
        cmd.env("AUTHPULSE_API_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn notices(port: u16) -> Vec<Value> {
    let v: Value = reqwest::get(format!("http://127.0.0.1:{port}/api/notifications"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["notifications"].as_array().cloned().unwrap_or_default()
}

/// The notices about `detector` with `status` that a stage held back.
fn held(all: &[Value], detector: &str, status: &str) -> Vec<Value> {
    all.iter()
        .filter(|n| n["detector"] == detector && n["status"] == status && n["held"].is_object())
        .cloned()
        .collect()
}

fn of(alerts: &[Value], detector: &str, status: &str) -> usize {
    alerts
        .iter()
        .filter(|a| a["detector"] == detector && a["status"] == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_from_the_command_line_hold_back_what_they_match() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    // Quiet history; later an attack (bins 40-43) and another (bins 100-103).
    let (history, attack1, after1, attack2) = (
        traffic_lines(0..40, 0..0),
        traffic_lines(40..45, 40..44),
        traffic_lines(45..100, 0..0),
        traffic_lines(100..106, 100..104),
    );
    let out = dir.path().join("alerts.jsonl");
    let receiver = Receiver::start(200).await;
    let sinks = format!(
        "[[sinks]]\nkind = \"file\"\npath = \"{}\"\n\n[[sinks]]\nkind = \"webhook\"\nurl = \"{}\"\nretry_initial = \"50ms\"\n",
        out.display(),
        receiver.url("/reject"),
    );
    // What the whole story derives (a backtest ignores silences).
    let whole = dir.path().join("whole.ndjson");
    append(&whole, &format!("{history}{attack1}{after1}{attack2}"));
    let (whole_config, _) = config(dir.path(), &whole, true, &sinks);
    let expected = expected_alerts(&whole_config, &whole);
    for (detector, status) in [
        ("failure_spike", "firing"),
        ("failure_spike", "resolved"),
        ("volume_spike", "firing"),
    ] {
        assert!(
            of(&expected, detector, status) >= 2,
            "each attack should give a {detector} {status}: {expected:#?}"
        );
    }

    append(&events, &history);
    let (config, port) = config(dir.path(), &events, true, &sinks);
    let url = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("daemon.log");
    let env = [("AUTHPULSE_API_TOKEN", TOKEN)];
    let mut daemon = Daemon::start(&config, port, &log, &env);
    daemon.wait_ready(Duration::from_secs(30)).await;

    let add = [
        "add",
        "--rule",
        "sign-ins",
        "--detector",
        "failure_spike",
        "--for",
        "2h",
        "--reason",
        "pen test from the red team",
        "--by",
        "alice",
    ];
    // Writes without a token, or with a wrong one, are refused.
    let o = silence(&url, None, &add);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("AUTHPULSE_API_TOKEN"), "{}", text(&o));
    let o = silence(&url, Some("not-the-token"), &add);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("HTTP 401: wrong bearer token"),
        "{}",
        text(&o)
    );
    let r = reqwest::Client::new()
        .post(format!("{url}/api/silences"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // An unknown rule is refused, naming the configured ones.
    let mut typo = add;
    typo[2] = "sign-in";
    let o = silence(&url, Some(TOKEN), &typo);
    assert!(
        text(&o).contains("\"sign-in\" is not a configured rule (configured: sign-ins)"),
        "{}",
        text(&o)
    );

    let o = silence(&url, Some(TOKEN), &add);
    assert!(o.status.success(), "{}", text(&o));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(id.len(), 16, "{}", text(&o));
    let o = silence(&url, None, &["list"]);
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        listed.lines().any(|l| l.starts_with(&id)
            && l.contains("active")
            && l.contains("alice")
            && l.contains("rule=sign-ins detector=failure_spike")
            && l.contains("pen test from the red team")),
        "{}",
        text(&o)
    );

    // It survives a restart.
    assert!(daemon.terminate().success());
    let mut daemon = Daemon::start(&config, port, &log, &env);
    daemon.wait_ready(Duration::from_secs(30)).await;
    let o = silence(&url, None, &["list", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_eq!(v["silences"][0]["id"], id.as_str(), "{}", text(&o));
    assert_eq!(v["silences"][0]["state"], "active");
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(page.contains("Silences (1)"), "{page}");
    assert!(page.contains("pen test from the red team"), "{page}");

    // The first attack: volume_spike pages, failure_spike is silenced.
    append(&events, &attack1);
    let silenced = wait_until(Duration::from_secs(30), || {
        of(&lines(&out), "volume_spike", "firing") >= 1
    })
    .await;
    assert!(
        silenced,
        "volume_spike did not page; log:\n{}",
        daemon.log_text()
    );
    let mut all = Vec::new();
    for _ in 0..300 {
        all = notices(port).await;
        if !held(&all, "failure_spike", "firing").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let h = held(&all, "failure_spike", "firing");
    assert!(!h.is_empty(), "{all:#?}");
    assert_eq!(h[0]["held"]["stage"], "silenced");
    assert!(
        h[0]["held"]["by"]
            .as_str()
            .unwrap()
            .starts_with(&format!("silence {id} by alice")),
        "{h:#?}"
    );
    assert_eq!(of(&lines(&out), "failure_spike", "firing"), 0);
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("authpulse_notifications_silenced_total{rule=\"sign-ins\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("authpulse_silences_active 1"), "{metrics}");

    // Expire it while the incident still fires: its resolve does not page alone.
    let o = silence(&url, Some(TOKEN), &["expire", &id, "--by", "bob"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(&format!("expired {id}")));
    let o = silence(&url, None, &["list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("expired")),
        "{}",
        text(&o)
    );
    append(&events, &after1);
    let resolved = wait_until(Duration::from_secs(30), || {
        of(&lines(&out), "volume_spike", "resolved") >= 1
    })
    .await;
    assert!(resolved, "log:\n{}", daemon.log_text());
    for _ in 0..300 {
        all = notices(port).await;
        if !held(&all, "failure_spike", "resolved").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let h = held(&all, "failure_spike", "resolved");
    assert!(!h.is_empty(), "{all:#?}");
    assert!(
        h[0]["held"]["by"].as_str().unwrap().contains(&format!(
            "resolve of an incident whose firing silence {id} held back"
        )),
        "{h:#?}"
    );
    assert_eq!(of(&lines(&out), "failure_spike", "resolved"), 0);

    // With the silence over, the second attack pages on both detectors.
    append(&events, &attack2);
    let paged = wait_until(Duration::from_secs(30), || {
        of(&lines(&out), "failure_spike", "firing") >= 1
    })
    .await;
    assert!(paged, "log:\n{}", daemon.log_text());
    assert!(daemon
        .metrics()
        .await
        .contains("authpulse_silences_active 0"));

    // The history shows delivered (file) and dead-lettered (the webhook answers 400).
    let mut found = None;
    for _ in 0..300 {
        let all = notices(port).await;
        found = all
            .iter()
            .find(|n| {
                n["detector"] == "failure_spike"
                    && n["status"] == "firing"
                    && n["sinks"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["state"] == "dead_lettered"))
                    && n["sinks"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["state"] == "delivered"))
            })
            .cloned();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = found.unwrap_or_else(|| panic!("{:#?}", all));
    let sinks = n["sinks"].as_array().unwrap();
    let file = sinks.iter().find(|s| s["sink"] == "file[0]").unwrap();
    assert_eq!(file["state"], "delivered");
    assert_eq!(file["attempts"], 1);
    let hook = sinks.iter().find(|s| s["sink"] == "webhook[1]").unwrap();
    assert_eq!(hook["state"], "dead_lettered");
    assert!(
        hook["reason"].as_str().unwrap().contains("HTTP 400"),
        "{hook}"
    );
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"notifications\""), "{page}");
    assert!(page.contains("dead-lettered: "), "{page}");
    assert!(page.contains("Silences (0)"), "{page}");
    assert!(daemon.terminate().success());
    // Nothing the token could be seen in.
    assert!(!daemon.log_text().contains(TOKEN));
}
