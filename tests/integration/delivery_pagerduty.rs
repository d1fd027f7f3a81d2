//! The `pagerduty` sink through the real daemon (outbox, per-sink worker, backoff)
//! against a local Events API v2 receiver that checks every event against PagerDuty's
//! documented schema (required fields, enums, length limits, no unknown keys) and answers
//! as PagerDuty does: 202, then a 429 once, a 500 once, and 400 for an invalid event.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use serde_json::{json, Value};

use crate::support::traffic::*;
use crate::support::{wait_until, Daemon};

/// A well-formed integration key (32 characters) and a malformed one (31).
const KEY: &str = "R0utingKeyForTheTests0123456789a";
const BAD_KEY: &str = "R0utingKeyThatIsOneCharTooShort";

/// Check an Events API v2 alert event as PagerDuty documents it; the problems found.
fn validate(headers: &HeaderMap, body: &[u8]) -> Result<Value, Vec<String>> {
    let mut errors = Vec::new();
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        errors.push("Content-Type must be application/json".to_string());
    }
    if body.len() > 512 * 1024 {
        errors.push("payload larger than 512 KB".to_string());
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Err(vec![format!("not JSON: {e}")]),
    };
    let Some(event) = v.as_object() else {
        return Err(vec!["the event is not an object".to_string()]);
    };
    let string =
        |o: &serde_json::Map<String, Value>, k: &str, errors: &mut Vec<String>| match o.get(k) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(format!("'{k}' must be a string"));
                None
            }
        };
    for k in event.keys() {
        if ![
            "routing_key",
            "event_action",
            "dedup_key",
            "payload",
            "images",
            "links",
            "client",
            "client_url",
        ]
        .contains(&k.as_str())
        {
            errors.push(format!("unknown property '{k}'"));
        }
    }
    match string(event, "routing_key", &mut errors) {
        Some(k) if k.chars().count() == 32 => {}
        Some(_) => errors
            .push("Length of 'routing_key' is incorrect (should be 32 characters)".to_string()),
        None => errors.push("'routing_key' is missing".to_string()),
    }
    let action = string(event, "event_action", &mut errors);
    match action.as_deref() {
        Some("trigger" | "acknowledge" | "resolve") => {}
        _ => errors.push("'event_action' must be trigger, acknowledge or resolve".to_string()),
    }
    match string(event, "dedup_key", &mut errors) {
        Some(k) if k.is_empty() || k.chars().count() > 255 => {
            errors.push("'dedup_key' must be 1 to 255 characters".to_string())
        }
        None if action.as_deref() != Some("trigger") => {
            errors.push("'dedup_key' is required to acknowledge or resolve".to_string())
        }
        _ => {}
    }
    for k in ["client", "client_url"] {
        string(event, k, &mut errors);
    }
    if let Some(links) = event.get("links") {
        match links.as_array() {
            Some(items) => {
                for l in items {
                    let ok = l.as_object().is_some_and(|o| {
                        o.keys().all(|k| k == "href" || k == "text")
                            && o.get("href").is_some_and(Value::is_string)
                            && o.get("text").is_none_or(Value::is_string)
                    });
                    if !ok {
                        errors.push(format!("bad link {l}"));
                    }
                }
            }
            None => errors.push("'links' must be a list".to_string()),
        }
    }
    match (action.as_deref(), event.get("payload")) {
        (Some("trigger"), None) => errors.push("'payload' is required to trigger".to_string()),
        (_, None) => {}
        (_, Some(Value::Object(p))) => {
            for k in p.keys() {
                if ![
                    "summary",
                    "source",
                    "severity",
                    "timestamp",
                    "component",
                    "group",
                    "class",
                    "custom_details",
                ]
                .contains(&k.as_str())
                {
                    errors.push(format!("unknown payload property '{k}'"));
                }
            }
            match string(p, "summary", &mut errors) {
                Some(s) if !s.is_empty() && s.chars().count() <= 1024 => {}
                _ => errors.push("'payload.summary' must be 1 to 1024 characters".to_string()),
            }
            match string(p, "source", &mut errors) {
                Some(s) if !s.is_empty() => {}
                _ => errors.push("'payload.source' is required".to_string()),
            }
            match string(p, "severity", &mut errors).as_deref() {
                Some("critical" | "error" | "warning" | "info") => {}
                _ => errors.push(
                    "'payload.severity' must be critical, error, warning or info".to_string(),
                ),
            }
            if let Some(t) = string(p, "timestamp", &mut errors) {
                if chrono::DateTime::parse_from_rfc3339(&t).is_err() {
                    errors.push(format!("'payload.timestamp' {t:?} is not ISO 8601"));
                }
            }
            for k in ["component", "group", "class"] {
                string(p, k, &mut errors);
            }
            if p.get("custom_details").is_some_and(|d| !d.is_object()) {
                errors.push("'payload.custom_details' must be an object".to_string());
            }
        }
        (_, Some(_)) => errors.push("'payload' must be an object".to_string()),
    }
    if errors.is_empty() {
        Ok(v)
    } else {
        Err(errors)
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    /// The event, when it was valid.
    event: Option<Value>,
    errors: Vec<String>,
    answered: u16,
}

#[derive(Clone, Default)]
struct Pd {
    /// Answers for the next valid events (202 after these run out).
    plan: Arc<Mutex<VecDeque<u16>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

async fn enqueue(
    State(pd): State<Pd>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let json_type = [("content-type", "application/json")];
    if uri.path() != "/v2/enqueue" {
        return (StatusCode::NOT_FOUND, json_type, String::new());
    }
    let (status, reply, hit) = match validate(&headers, &body) {
        Err(errors) => {
            let reply = json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors});
            (400, reply, (None, errors))
        }
        Ok(event) => {
            let status = pd.plan.lock().unwrap().pop_front().unwrap_or(202);
            let reply = match status {
                202 => {
                    json!({"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]})
                }
                429 => {
                    json!({"status": "throttle exceeded", "message": "Requests for this service are arriving too quickly. Please retry later."})
                }
                _ => json!({"status": "error", "message": "internal error"}),
            };
            (status, reply, (Some(event), Vec::new()))
        }
    };
    pd.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        event: hit.0,
        errors: hit.1,
        answered: status,
    });
    (
        StatusCode::from_u16(status).unwrap(),
        json_type,
        reply.to_string(),
    )
}

impl Pd {
    async fn start(plan: &[u16]) -> (Pd, String) {
        let pd = Pd::default();
        pd.plan.lock().unwrap().extend(plan.iter().copied());
        let app = Router::new()
            .fallback(axum::routing::post(enqueue))
            .with_state(pd.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (pd, format!("http://{addr}"))
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn action(alert: &Value) -> &'static str {
    if alert["status"] == "firing" {
        "trigger"
    } else {
        "resolve"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_valid_through_429_and_500_and_a_bad_key_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let (pd, base) = Pd::start(&[202, 429, 500]).await;
    let sinks = format!(
        r#"
[[sinks]]
kind = "pagerduty"
url = "{base}/v2/enqueue"
routing_key_env = "TEST_PD_KEY"
rate_limit_wait = "1s"
retry_initial = "50ms"
retry_max = "300ms"

[[sinks]]
kind = "pagerduty"
url = "{base}/v2/enqueue"
routing_key_env = "TEST_PD_BAD_KEY"
retry_initial = "50ms"
"#
    );
    let events = dir.path().join("events.ndjson");
    append(&events, &traffic_lines(0..60, 40..44));
    let (config, port) = config(dir.path(), &events, false, &sinks);
    let expected = expected_alerts(&config, &events);
    let n = expected.len();
    assert!(
        expected.iter().any(|a| a["status"] == "firing")
            && expected.iter().any(|a| a["status"] == "resolved")
            && n >= 3,
        "the scenario must fire and resolve: {expected:#?}"
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start(
        &config,
        port,
        &log,
        &[("TEST_PD_KEY", KEY), ("TEST_PD_BAD_KEY", BAD_KEY)],
    );
    daemon.wait_ready(Duration::from_secs(30)).await;

    let good = |h: &Hit| h.event.as_ref().is_some_and(|e| e["routing_key"] == KEY);
    let bad = |h: &Hit| h.errors.iter().any(|e| e.contains("routing_key"));
    assert!(
        wait_until(Duration::from_secs(30), || {
            let hits = pd.hits();
            hits.iter().filter(|h| good(h) && h.answered == 202).count() >= n
                && hits.iter().filter(|h| bad(h)).count() >= n
        })
        .await,
        "hits: {:#?}\nlog:\n{}",
        pd.hits(),
        daemon.log_text()
    );
    // Give a wrongful retry of a 400 time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits = pd.hits();

    // Every request with the good key matched the schema; the bad key only failed on
    // its length.
    for h in &hits {
        assert!(good(h) || bad(h), "an event failed validation: {h:#?}");
        if bad(h) {
            assert_eq!(h.errors.len(), 1, "{h:#?}");
        }
    }

    // What PagerDuty accepted: one event per notification, each as the backtest derives
    // it, a trigger before the resolve of the same dedup_key.
    let accepted: Vec<Value> = hits
        .iter()
        .filter(|h| good(h) && h.answered == 202)
        .filter_map(|h| h.event.clone())
        .collect();
    assert_eq!(accepted.len(), n, "{accepted:#?}");
    let mut want: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for a in &expected {
        *want
            .entry((a["fingerprint"].as_str().unwrap().to_string(), action(a)))
            .or_default() += 1;
    }
    let mut got: BTreeMap<(String, &str), usize> = BTreeMap::new();
    let mut seen: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for e in &accepted {
        let key = e["dedup_key"].as_str().unwrap().to_string();
        let act = if e["event_action"] == "trigger" {
            "trigger"
        } else {
            "resolve"
        };
        *got.entry((key.clone(), act)).or_default() += 1;
        seen.entry(key).or_default().push(act);
        if act == "trigger" {
            let p = &e["payload"];
            let a = expected
                .iter()
                .find(|a| a["idempotency_key"] == p["custom_details"]["idempotency_key"])
                .unwrap_or_else(|| panic!("not an expected alert: {e}"));
            assert_eq!(e["dedup_key"], a["fingerprint"]);
            assert_eq!(p["custom_details"], *a);
            assert_eq!(p["summary"], a["summary"]);
            assert_eq!(p["severity"], a["severity"]);
            assert_eq!(p["component"], "sign-ins");
            assert_eq!(p["group"], a["detector"]);
            assert_eq!(p["class"], a["kind"]);
            assert_eq!(p["timestamp"], a["bin_end"]);
            assert_eq!(
                p["source"], "sign-ins",
                "an unsplit rule: the rule is the source"
            );
            assert_eq!(e["client"], "authpulse");
            assert!(e.get("links").is_none(), "not enriched: no links");
        } else {
            assert!(e.get("payload").is_none(), "{e}");
        }
    }
    assert_eq!(got, want);
    for (key, actions) in &seen {
        assert_eq!(actions.first(), Some(&"trigger"), "{key}: {actions:?}");
    }

    // The 429 and the 500 were retried with the same event; after the 429 the worker
    // waited at least rate_limit_wait.
    let good_hits: Vec<&Hit> = hits.iter().filter(|h| good(h)).collect();
    let answers: Vec<u16> = good_hits.iter().map(|h| h.answered).collect();
    assert_eq!(&answers[..4], &[202, 429, 500, 202], "{answers:?}");
    assert_eq!(good_hits[1].event, good_hits[2].event);
    assert_eq!(good_hits[2].event, good_hits[3].event);
    assert!(
        good_hits[2].at.duration_since(good_hits[1].at) >= Duration::from_secs(1),
        "retried {:?} after a 429",
        good_hits[2].at.duration_since(good_hits[1].at)
    );

    // The bad key: each notification tried once, answered 400, dead-lettered with
    // PagerDuty's reason.
    assert_eq!(
        hits.iter().filter(|h| bad(h)).count(),
        n,
        "a 400 must not be retried"
    );
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains(&format!(
            "authpulse_notifications_failed_total{{sink=\"pagerduty[1]\"}} {n}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "authpulse_notifications_sent_total{{sink=\"pagerduty[0]\"}} {n}"
        )),
        "{metrics}"
    );
    let dead: usize = std::fs::read_dir(dir.path().join("state/outbox"))
        .unwrap()
        .flatten()
        .filter_map(|q| std::fs::read_dir(q.path().join("dead")).ok())
        .map(|d| d.count())
        .sum();
    assert_eq!(dead, n);
    assert!(daemon.terminate().success());
    let text = daemon.log_text();
    assert!(
        text.contains("PagerDuty rejected the event (HTTP 400 Bad Request): Event object is invalid: Length of 'routing_key' is incorrect (should be 32 characters)"),
        "{text}"
    );
    assert!(text.contains("delivery failed permanently"), "{text}");
    assert!(text.contains("PagerDuty did not accept the event (HTTP 429 Too Many Requests): Requests for this service are arriving too quickly"), "{text}");
    assert!(!text.contains(KEY), "the routing key leaked:\n{text}");
    assert!(!text.contains(BAD_KEY), "the routing key leaked:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_routing_key_stops_start_up_with_the_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    append(&events, &traffic_lines(0..2, 0..0));
    let sinks =
        "[[sinks]]\nkind = \"pagerduty\"\nrouting_key_env = \"AUTHPULSE_TEST_UNSET_PD_KEY\"\n";
    let (config, port) = config(dir.path(), &events, false, sinks);
    let log = dir.path().join("daemon.log");
    let mut daemon = Daemon::start(&config, port, &log, &[]);
    let status = daemon.child.wait().unwrap();
    assert!(!status.success());
    let text = daemon.log_text();
    assert!(
        text.contains(
            "sinks[0].routing_key_env: environment variable AUTHPULSE_TEST_UNSET_PD_KEY is not set"
        ),
        "{text}"
    );
}

#[test]
fn the_receiver_rejects_what_pagerduty_rejects() {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    let ok = json!({
        "routing_key": KEY, "event_action": "trigger", "dedup_key": "abc",
        "payload": {"summary": "s", "source": "x", "severity": "info", "timestamp": "2026-11-25T10:15:00Z"},
        "links": [{"href": "https://example.com", "text": "t"}]
    });
    let check = |v: &Value| validate(&headers, v.to_string().as_bytes());
    assert!(check(&ok).is_ok());
    let resolve = json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": "abc"});
    assert!(check(&resolve).is_ok());
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut v = ok.clone();
        f(&mut v);
        check(&v).expect_err(&v.to_string())
    };
    broken(&|v| v["routing_key"] = json!(BAD_KEY));
    broken(&|v| v["event_action"] = json!("open"));
    broken(&|v| v["payload"]["severity"] = json!("high"));
    broken(&|v| v["payload"]["summary"] = json!("x".repeat(1025)));
    broken(&|v| v["payload"]["summary"] = json!(""));
    broken(&|v| v["payload"]["source"] = json!(null));
    broken(&|v| v["payload"]["timestamp"] = json!("yesterday"));
    broken(&|v| v["payload"]["custom_details"] = json!("text"));
    broken(&|v| v["payload"]["colour"] = json!("red"));
    broken(&|v| v["dedup_key"] = json!("k".repeat(256)));
    broken(&|v| v["links"] = json!([{"text": "no href"}]));
    broken(&|v| v["extra"] = json!(1));
    broken(&|v| {
        v.as_object_mut().unwrap().remove("payload");
    });
    let mut no_key = resolve.clone();
    no_key.as_object_mut().unwrap().remove("dedup_key");
    assert!(check(&no_key).is_err());
    assert!(validate(&HeaderMap::new(), ok.to_string().as_bytes()).is_err());
}
