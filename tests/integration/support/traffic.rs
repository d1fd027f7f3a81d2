//! Deterministic Okta traffic for the daemon tests, a file-source config over it, and
//! the alerts `authpulse backtest` derives from the same config and events: what the
//! daemon must deliver.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::free_port;

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
