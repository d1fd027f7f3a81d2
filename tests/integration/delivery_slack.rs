//! The `slack` sink through the real daemon, against a local receiver that checks the
//! Web API's shapes: `chat.postMessage` when an incident fires, then — after a restart in
//! between, so the message's `ts` must come from disk — `chat.update` of that message and
//! a reply in its thread when it resolves.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::traffic::*;
use crate::support::{wait_until, Daemon};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

const TOKEN: &str = "xoxb-test-bot-token";
const CHANNEL_ID: &str = "C0SECURITY1";

type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// A fake Slack Web API: `POST /api/chat.postMessage` and `/api/chat.update` with a bearer
/// token and a JSON body. Each answer is what Slack documents; a malformed call gets
/// Slack's error for it.
async fn slack(
    State((calls, next_ts)): State<(Calls, Arc<Mutex<u64>>)>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    if header("authorization") != format!("Bearer {TOKEN}") {
        return (
            StatusCode::OK,
            Json(json!({"ok": false, "error": "invalid_auth"})),
        );
    }
    if !header("content-type").starts_with("application/json") {
        return (
            StatusCode::OK,
            Json(json!({"ok": false, "error": "invalid_form_data"})),
        );
    }
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return (
            StatusCode::OK,
            Json(json!({"ok": false, "error": "invalid_json"})),
        );
    };
    calls.lock().unwrap().push((method.clone(), v.clone()));
    let text_ok = v["text"].as_str().is_some_and(|t| !t.is_empty());
    let blocks_ok = v.get("blocks").is_none_or(|b| b.is_array());
    if !text_ok || !blocks_ok {
        return (
            StatusCode::OK,
            Json(json!({"ok": false, "error": "no_text"})),
        );
    }
    let channel = v["channel"].as_str().unwrap_or("");
    match method.as_str() {
        "chat.postMessage" => {
            if channel != "#security-alerts" && channel != CHANNEL_ID {
                return (
                    StatusCode::OK,
                    Json(json!({"ok": false, "error": "channel_not_found"})),
                );
            }
            let mut n = next_ts.lock().unwrap();
            *n += 1;
            let ts = format!("1795600000.{:06}", *n);
            (
                StatusCode::OK,
                Json(
                    json!({"ok": true, "channel": CHANNEL_ID, "ts": ts, "message": {"text": v["text"]}}),
                ),
            )
        }
        "chat.update" => {
            // chat.update takes the channel's id and the message's ts.
            if channel != CHANNEL_ID {
                return (
                    StatusCode::OK,
                    Json(json!({"ok": false, "error": "channel_not_found"})),
                );
            }
            let Some(ts) = v["ts"].as_str() else {
                return (
                    StatusCode::OK,
                    Json(json!({"ok": false, "error": "message_not_found"})),
                );
            };
            (
                StatusCode::OK,
                Json(json!({"ok": true, "channel": CHANNEL_ID, "ts": ts, "text": v["text"]})),
            )
        }
        _ => (
            StatusCode::OK,
            Json(json!({"ok": false, "error": "unknown_method"})),
        ),
    }
}

fn methods(calls: &Calls) -> Vec<(String, Value)> {
    calls.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incidents_message_is_posted_then_updated_with_a_thread_reply() {
    let calls: Calls = Arc::default();
    let app = axum::Router::new()
        .route("/api/{method}", axum::routing::post(slack))
        .with_state((calls.clone(), Arc::new(Mutex::new(0u64))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    append(&events, &traffic_lines(0..45, 40..44));
    let sinks = format!(
        "[[sinks]]\nkind = \"slack\"\ntoken_env = \"AUTHPULSE_TEST_SLACK_TOKEN\"\nchannel = \"#security-alerts\"\nurl = \"http://{addr}/api\"\nroute = {{ detectors = [\"failure_spike\"] }}\n"
    );
    let (config, port) = config(dir.path(), &events, true, &sinks);
    let log = dir.path().join("daemon.log");
    let env = [("AUTHPULSE_TEST_SLACK_TOKEN", TOKEN)];
    let mut daemon = Daemon::start(&config, port, &log, &env);
    daemon.wait_ready(Duration::from_secs(30)).await;
    let posted = wait_until(Duration::from_secs(30), || {
        methods(&calls)
            .iter()
            .any(|(m, v)| m == "chat.postMessage" && v.get("thread_ts").is_none())
    })
    .await;
    assert!(posted, "no chat.postMessage; log:\n{}", daemon.log_text());
    let (_, first) = methods(&calls)[0].clone();
    assert_eq!(first["channel"], "#security-alerts");
    assert!(
        first["text"].as_str().unwrap().contains(":rotating_light:"),
        "{first}"
    );
    assert!(first["blocks"].as_array().is_some_and(|b| !b.is_empty()));
    // The ts is on disk before the restart.
    assert!(daemon.terminate().success());
    let state = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .flatten()
        .find(|f| {
            f.file_name()
                .to_string_lossy()
                .starts_with("slack-threads-")
        })
        .map(|f| std::fs::read_to_string(f.path()).unwrap())
        .unwrap_or_default();
    assert!(state.contains("1795600000.000001"), "{state}");

    let mut daemon = Daemon::start(&config, port, &log, &env);
    daemon.wait_ready(Duration::from_secs(30)).await;
    append(&events, &traffic_lines(45..70, 0..0));
    let followed = wait_until(Duration::from_secs(30), || {
        methods(&calls)
            .iter()
            .any(|(m, v)| m == "chat.postMessage" && v.get("thread_ts").is_some())
    })
    .await;
    assert!(followed, "no thread reply; log:\n{}", daemon.log_text());
    assert!(daemon.terminate().success());

    let all = methods(&calls);
    let names: Vec<&str> = all.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        names,
        ["chat.postMessage", "chat.update", "chat.postMessage"],
        "{all:#?}"
    );
    let update = &all[1].1;
    assert_eq!(update["channel"], CHANNEL_ID);
    assert_eq!(update["ts"], "1795600000.000001");
    assert!(
        update["text"]
            .as_str()
            .unwrap()
            .contains(":white_check_mark:"),
        "{update}"
    );
    let reply = &all[2].1;
    assert_eq!(reply["channel"], CHANNEL_ID);
    assert_eq!(reply["thread_ts"], "1795600000.000001");
    assert!(
        reply["text"].as_str().unwrap().contains("Resolved"),
        "{reply}"
    );
    assert!(!daemon.log_text().contains(TOKEN));
}
