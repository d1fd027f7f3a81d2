//! Helpers for the delivery tests (`tests/delivery_*.rs`): a deterministic Okta traffic
//! generator, the real `authpulse` binary as a child process, and a webhook receiver
//! whose answer the test controls. Include with
//! `#[path = "common/delivery.rs"] mod delivery;`.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use hmac::{KeyInit, Mac};
use serde_json::Value;

pub const BIN_SECS: i64 = 300;
/// 2026-11-20T00:00:00Z, a Friday.
pub const START_MS: i64 = 1_795_132_800_000;

/// Steady sign-in traffic in 5-minute bins with a credential-stuffing burst in `attack`
/// bins: ~35 attempts and 1-3 failures per bin, plus 300 failures per attack bin.
/// Deterministic: the same bins always give the same lines.
pub fn traffic_lines(bins: std::ops::Range<i64>, attack: std::ops::Range<i64>) -> String {
    let mut out = String::new();
    for b in bins {
        let bin_ms = START_MS + b * BIN_SECS * 1000;
        let n = 30 + (b * 7 % 11);
        let failures = 1 + b % 3;
        let mut events: Vec<(&str, String, &str)> = (0..n)
            .map(|i| {
                let ok = i >= failures;
                (
                    if ok { "SUCCESS" } else { "FAILURE" },
                    format!("user{}@example.com", (b * 13 + i) % 200),
                    if ok { "198.51.100.7" } else { "198.51.100.8" },
                )
            })
            .collect();
        if attack.contains(&b) {
            for i in 0..300 {
                events.push((
                    "FAILURE",
                    format!("victim{}@example.com", i % 97),
                    "203.0.113.9",
                ));
            }
        }
        let step = BIN_SECS * 1000 / events.len() as i64;
        for (i, (result, user, ip)) in events.into_iter().enumerate() {
            let t =
                chrono::DateTime::<chrono::Utc>::from_timestamp_millis(bin_ms + i as i64 * step)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let reason = if result == "FAILURE" {
                r#","reason":"INVALID_CREDENTIALS""#
            } else {
                ""
            };
            out.push_str(&format!(
                r#"{{"published":"{t}","eventType":"user.session.start","outcome":{{"result":"{result}"{reason}}},"actor":{{"alternateId":"{user}"}},"client":{{"ipAddress":"{ip}","geographicalContext":{{"country":"US"}}}}}}"#
            ));
            out.push('\n');
        }
    }
    out
}

pub fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// The rule used by the delivery tests: 5-minute bins, a 2-hour warm-up, two detectors.
pub const RULE: &str = r#"
[[rules]]
name = "sign-ins"
bin = "5m"
warmup = "2h"
baseline_window = "1d"
[rules.detectors.failure_spike]
[rules.detectors.volume_spike]
"#;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon config for a file source; `sinks` is the `[[sinks]]` TOML.
pub fn config(dir: &Path, events: &Path, follow: bool, sinks: &str) -> (PathBuf, u16) {
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
follow = {follow}
settle = "0s"
{RULE}
{sinks}
"#,
        state = dir.join("state").display(),
        events = events.display(),
    );
    let path = dir.join("authpulse.toml");
    std::fs::write(&path, text).unwrap();
    (path, port)
}

/// The alerts `authpulse backtest` derives from the same config and events: what the
/// daemon must deliver.
pub fn expected_alerts(config: &Path, events: &Path) -> Vec<Value> {
    let out = config.with_file_name("expected.jsonl");
    let run = Command::new(env!("CARGO_BIN_EXE_authpulse"))
        .args(["backtest", "--config"])
        .arg(config)
        .arg("--events")
        .arg(events)
        .arg("--alerts-out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "backtest failed: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `authpulse run` child process.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, port: u16, log: &Path, env: &[(&str, &str)]) -> Daemon {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authpulse"));
        cmd.args(["run", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon {
            child: cmd.spawn().unwrap(),
            port,
            log: log.to_path_buf(),
        }
    }

    /// Wait for `/readyz` (the file replayed).
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("daemon exited with {status}; log:\n{}", self.log_text());
            }
            if let Ok(r) = reqwest::get(&url).await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "daemon not ready in {timeout:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status it was answered with.
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

#[derive(Clone)]
struct ReceiverState {
    status: Arc<AtomicU16>,
    log: Arc<Mutex<Vec<Received>>>,
}

/// A webhook receiver on a local port that answers every request with the status the
/// test sets, and records everything.
pub struct Receiver {
    pub addr: SocketAddr,
    state: ReceiverState,
}

async fn receive(
    State(s): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = s.status.load(Ordering::SeqCst);
    // Paths ending in /reject always answer 400 (a permanent failure).
    let status = if uri.path().ends_with("/reject") {
        400
    } else {
        status
    };
    s.log.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body,
        answered: status,
    });
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    pub async fn start(status: u16) -> Receiver {
        let state = ReceiverState {
            status: Arc::new(AtomicU16::new(status)),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let app = Router::new()
            .fallback(axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }
}

/// Check `X-Authpulse-Signature` the way a receiver would.
pub fn signature_ok(r: &Received, secret: &[u8]) -> bool {
    let (Some(ts), Some(sig)) = (
        r.header("x-authpulse-timestamp"),
        r.header("x-authpulse-signature"),
    ) else {
        return false;
    };
    let Some(hex_sig) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let Ok(bytes) = hex::decode(hex_sig) else {
        return false;
    };
    mac.verify_slice(&bytes).is_ok()
}

/// Poll `check` every 100 ms until it is true or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pending outbox records (all queues) under `state_dir`.
pub fn outbox_files(state_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(queues) = std::fs::read_dir(state_dir.join("outbox")) else {
        return out;
    };
    for q in queues.flatten() {
        if let Ok(files) = std::fs::read_dir(q.path()) {
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if f.path().is_file() && name.ends_with(".json") && !name.starts_with('.') {
                    out.push(f.path());
                }
            }
        }
    }
    out
}
