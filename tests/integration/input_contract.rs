//! The input contract (README, "Input contract"): the same events in any order, in any of
//! the shapes an Okta user has, give the same alerts; what cannot be used is counted with
//! a reason, and a run that dropped events says so in its exit code.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use authpulse::config::Config;
use authpulse::offline::backtest;
use authpulse::rule::RuleSpec;
use authpulse::source::replay::{self as input, ReplayOptions, Source};

const DEMO: &[u8] = include_bytes!("../../samples/demo.ndjson.gz");
const SETTLE: Duration = Duration::from_secs(120);

fn demo_lines() -> Vec<String> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(DEMO)
        .read_to_string(&mut text)
        .expect("the demo sample");
    text.lines().map(String::from).collect()
}

fn alerts_of(sources: &[Source<'_>]) -> (Vec<u8>, input::ReplayStats) {
    let rules = Config::builtin().rules;
    let outcome = backtest::run_sources(sources, &rules, &ReplayOptions::new(SETTLE), None)
        .expect("backtest");
    let mut out = Vec::new();
    backtest::write_alerts(&outcome.alerts, &mut out).expect("write");
    (out, outcome.stats)
}

fn joined(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

/// A fixed permutation of 1,000-line chunks (no randomness in tests).
fn chunk_shuffled(lines: &[String]) -> Vec<String> {
    let chunks: Vec<&[String]> = lines.chunks(1000).collect();
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
        .iter()
        .flat_map(|&i| chunks[i].iter().cloned())
        .collect()
}

#[test]
fn the_demo_sample_gives_the_same_alerts_in_any_order() {
    let lines = demo_lines();
    let (ordered, stats) = alerts_of(&[Source::Bytes {
        name: "demo".into(),
        data: DEMO,
    }]);
    assert!(!ordered.is_empty(), "the demo sample pages");
    assert!(!stats.sorted, "the sample is in time order: no sort");
    assert_eq!(stats.dropped(), 0);

    let mut reversed = lines.clone();
    reversed.reverse();
    let reversed = joined(&reversed);
    let (alerts, stats) = alerts_of(&[Source::Bytes {
        name: "reversed".into(),
        data: &reversed,
    }]);
    assert!(stats.sorted);
    assert_eq!((stats.dropped(), stats.bins.late), (0, 0));
    assert_eq!(
        String::from_utf8_lossy(&alerts),
        String::from_utf8_lossy(&ordered),
        "newest first"
    );

    let shuffled = joined(&chunk_shuffled(&lines));
    let (alerts, stats) = alerts_of(&[Source::Bytes {
        name: "shuffled".into(),
        data: &shuffled,
    }]);
    assert_eq!(stats.dropped(), 0);
    assert_eq!(alerts, ordered, "shuffled in 1,000-line chunks");

    // Three files, given in the wrong order, the middle one without a final newline.
    let thirds: Vec<&[String]> = lines.chunks(lines.len() / 3 + 1).collect();
    let a = joined(thirds[2]);
    let mut b = joined(thirds[0]);
    b.pop();
    let c = joined(thirds[1]);
    let (alerts, stats) = alerts_of(&[
        Source::Bytes {
            name: "a".into(),
            data: &a,
        },
        Source::Bytes {
            name: "b".into(),
            data: &b,
        },
        Source::Bytes {
            name: "c".into(),
            data: &c,
        },
    ]);
    assert_eq!(stats.bins.events as usize, lines.len());
    assert_eq!(alerts, ordered, "several files concatenated");

    // A sort budget far smaller than the sample: sorted runs spill to disk and merge.
    let rules = Config::builtin().rules;
    let opts = ReplayOptions {
        sort_budget: 4 << 20,
        ..ReplayOptions::new(SETTLE)
    };
    let outcome = backtest::run_sources(
        &[Source::Bytes {
            name: "reversed".into(),
            data: &reversed,
        }],
        &rules,
        &opts,
        None,
    )
    .expect("backtest");
    assert!(outcome.stats.spilled_bytes > 0);
    let mut spilled = Vec::new();
    backtest::write_alerts(&outcome.alerts, &mut spilled).expect("write");
    assert_eq!(spilled, ordered, "sorted through temporary files");
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/okta")
        .join(name)
}

fn stats_of(name: &str) -> input::ReplayStats {
    let rules = vec![
        RuleSpec::named("okta-sign-ins"),
        RuleSpec::named("okta-sign-ins-by-source"),
    ];
    backtest::run_sources(
        &[Source::Path(fixture(name))],
        &rules,
        &ReplayOptions::new(SETTLE),
        None,
    )
    .expect("backtest")
    .stats
}

#[test]
fn every_shape_of_okta_export_is_read() {
    for name in [
        "api-page.json",
        "api-page-compact.json",
        "eventbridge.ndjson",
        "cloudwatch-export.ndjson",
    ] {
        let s = stats_of(name);
        assert_eq!(
            (s.bins.events, s.malformed, s.bins.duplicates),
            (3, 0, 0),
            "{name}: {s:?}"
        );
        // Two sign-ins (the third event is an MFA verification), each counted once
        // however many rules count it.
        assert_eq!(s.bins.matched, 2, "{name}");
    }
    let s = stats_of("quirks.ndjson");
    assert_eq!(
        (
            s.bins.events,
            s.bins.matched,
            s.bins.duplicates,
            s.malformed
        ),
        (3, 2, 1, 0),
        "{s:?}"
    );
}

#[test]
fn a_null_address_is_an_unknown_source_never_a_series_called_null() {
    use authpulse::offline::tune::Recorder;
    use authpulse::pipeline::Observer;
    let mut rule = RuleSpec::named("by-source");
    rule.split_by = Some("client.ipAddress".into());
    let rules = vec![rule];
    let mut rec = Recorder::new(&rules);
    backtest::run_sources(
        &[
            Source::Path(fixture("api-page.json")),
            Source::Path(fixture("quirks.ndjson")),
        ],
        &rules,
        &ReplayOptions::new(SETTLE),
        Some(&mut rec as &mut dyn Observer),
    )
    .expect("backtest");
    let values: Vec<&str> = rec
        .series
        .iter()
        .flat_map(|s| s.labels.values().map(String::as_str))
        .collect();
    assert!(values.contains(&"(none)"), "{values:?}");
    assert!(
        !values.iter().any(|v| v.eq_ignore_ascii_case("null")),
        "{values:?}"
    );
}

fn authpulse(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_authpulse"))
        .args(args)
        .output()
        .expect("run authpulse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_line_takes_folders_and_several_files_and_fails_on_dropped_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("pages");
    std::fs::create_dir(&folder).expect("mkdir");
    for name in ["api-page.json", "quirks.ndjson"] {
        std::fs::copy(fixture(name), folder.join(name)).expect("copy");
    }
    let eb = fixture("eventbridge.ndjson").display().to_string();
    let (code, out, err) = authpulse(&[
        "backtest",
        "--events",
        &folder.display().to_string(),
        "--events",
        &eb,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // Seven sign-ins read (two in the API page, three in the quirks file, two in the
    // envelopes), four distinct: the envelopes carry the page's events again (same uuid)
    // and the quirks file repeats one. The MFA approval (`auth_via_mfa` SUCCESS) in the
    // page and again in the envelopes is counted once by the push rule (its approvals).
    assert!(out.contains("events counted by rules: 5"), "{out}");
    assert!(out.contains("duplicates removed: 4"), "{out}");

    // One event dated year 1: refused with its reason, and the run fails unless told.
    let line = |t: &str| {
        format!(
            r#"{{"eventType":"user.session.start","published":"{t}","outcome":{{"result":"SUCCESS"}}}}"#
        )
    };
    let odd = dir.path().join("odd.ndjson");
    std::fs::write(
        &odd,
        format!(
            "{}\n{}\n",
            line("0001-01-01T00:00:00Z"),
            line("2026-03-02T08:00:00Z")
        ),
    )
    .expect("write");
    let odd = odd.display().to_string();
    let (code, out, err) = authpulse(&["backtest", "--events", &odd]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("outside the time window: 1"), "{out}");
    assert!(
        out.contains("line 1: published 0001-01-01T00:00:00Z is outside the time window"),
        "{out}"
    );
    assert!(err.contains("--allow-late"), "{err}");
    let (code, out, err) = authpulse(&["backtest", "--events", &odd, "--allow-late"]);
    assert_eq!(code, 0, "{out}{err}");

    // A line far over --max-line-bytes is skipped and named; the lines after it count.
    let long = dir.path().join("long.ndjson");
    let mut text = line("2026-03-02T08:00:00Z");
    text.push('\n');
    text.push_str(&"x".repeat(200_000));
    text.push('\n');
    text.push_str(&line("2026-03-02T08:01:00Z"));
    text.push('\n');
    std::fs::write(&long, text).expect("write");
    let long = long.display().to_string();
    let (code, out, err) = authpulse(&["backtest", "--events", &long, "--max-line-bytes", "4096"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("events counted by rules: 2"), "{out}");
    assert!(out.contains("malformed input skipped: 1"), "{out}");
    assert!(
        out.contains(
            "line 2: a line of 200000 bytes, over the limit of 4096 (--max-line-bytes): skipped"
        ),
        "{out}"
    );
}
