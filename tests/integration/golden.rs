//! Golden alerts: the backtest alerts of the bundled demo sample and of three simulated
//! sets (easy and hard, different seeds, every built-in rule), byte for byte.
//!
//! Recorded before the architecture step (issue 9) so that a restructuring that claims
//! to change no behaviour is held to it. The files are `tests/golden/*.jsonl` (and the
//! built-in queries in `tests/golden/builtin.queries.txt`). When detection changes on
//! purpose, regenerate them with
//!
//! ```text
//! AUTHPULSE_BLESS=1 cargo test --test integration golden::
//! ```
//!
//! and say why in the commit.

use std::path::PathBuf;
use std::time::Duration;

use authpulse::config::Config;
use authpulse::offline::backtest;
use authpulse::simulate::{self, Difficulty, SimConfig};

/// Seconds of lateness the backtest tolerates: the built-in config's `source.settle`.
const SETTLE: Duration = Duration::from_secs(120);

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.alerts.jsonl"))
}

fn alerts_of(events: &[u8]) -> Vec<u8> {
    let rules = Config::builtin().rules;
    let outcome = backtest::run(events, events.len() as u64, &rules, SETTLE).expect("backtest");
    let mut out = Vec::new();
    backtest::write_alerts(&outcome.alerts, &mut out).expect("write alerts");
    out
}

fn simulated(seed: u64, users: u32, days: u32, difficulty: Difficulty) -> Vec<u8> {
    let start = "2026-11-02T00:00:00Z".parse().expect("start");
    let cfg = SimConfig::with_default_incidents(seed, start, days, users, difficulty);
    let (mut events, mut labels) = (Vec::new(), Vec::new());
    simulate::generate(&cfg, &mut events, &mut labels).expect("simulate");
    events
}

fn check(name: &str, alerts: Vec<u8>) {
    let path = golden_path(name);
    if std::env::var_os("AUTHPULSE_BLESS").is_some() {
        std::fs::write(&path, &alerts).expect("write golden file");
        return;
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (AUTHPULSE_BLESS=1 records it)", path.display()));
    if alerts != want {
        let got = String::from_utf8_lossy(&alerts);
        let want = String::from_utf8_lossy(&want);
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{name}: alerts differ from {} ({} lines now, {} golden); first difference at line {}:\n  now:    {}\n  golden: {}",
            path.display(),
            got.lines().count(),
            want.lines().count(),
            first + 1,
            got.lines().nth(first).unwrap_or("<none>"),
            want.lines().nth(first).unwrap_or("<none>"),
        );
    }
    assert!(
        !alerts.is_empty(),
        "{name}: a golden set with no alert proves nothing"
    );
}

#[test]
fn demo_sample() {
    let gz =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/demo.ndjson.gz"))
            .expect("demo sample");
    let mut events = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut events)
        .expect("gunzip");
    check("demo", alerts_of(&events));
}

#[test]
fn simulated_easy_seed_21() {
    check(
        "easy-21",
        alerts_of(&simulated(21, 400, 14, Difficulty::Easy)),
    );
}

#[test]
fn simulated_hard_seed_22() {
    check(
        "hard-22",
        alerts_of(&simulated(22, 600, 14, Difficulty::Hard)),
    );
}

#[test]
fn simulated_hard_seed_23() {
    check(
        "hard-23",
        alerts_of(&simulated(23, 1500, 14, Difficulty::Hard)),
    );
}

/// The Logs Insights queries of the built-in rules: what the daemon asks CloudWatch.
#[test]
fn builtin_queries() {
    let text: String = Config::builtin()
        .rules
        .iter()
        .map(|r| {
            format!(
                "# {} ({})\n{}\n\n",
                r.name,
                r.bin_literal(),
                r.insights_query()
            )
        })
        .collect();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/builtin.queries.txt");
    if std::env::var_os("AUTHPULSE_BLESS").is_some() {
        std::fs::write(&path, &text).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden queries");
    assert_eq!(text, want, "the built-in rules' queries changed");
}
