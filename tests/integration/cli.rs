//! The command line as an operator uses it: exit codes and messages.

use std::process::Command;

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

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

#[test]
fn check_config_accepts_the_shipped_configs() {
    for f in [
        "config/authpulse.example.toml",
        "config/demo.toml",
        "deploy/authpulse.toml",
    ] {
        let (code, out, err) = authpulse(&["check-config", f]);
        assert_eq!(code, 0, "{f}: {out}{err}");
        assert!(out.contains("ok"), "{out}");
    }
}

#[test]
fn check_config_names_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        &dir,
        "bad.toml",
        r#"
[source]
kind = "cloudwatch"
log_groups = []
[[rules]]
name = "a"
bin = "banana"
[rules.detectors.failure_spike]
p_value = 1.5
[[rules]]
name = "b"
bin = "7m"
colour = "red"
[[sinks]]
kind = "webhook"
"#,
    );
    let (code, out, err) = authpulse(&["check-config", &bad]);
    assert_eq!(code, 2, "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    for want in [
        "source.log_groups:",
        "rules[0].bin: \"banana\" is not a duration",
        "rules[0].detectors.failure_spike.p_value: must be between 0 and 1",
        "rules[1].bin: 7m does not divide an hour",
        "rules[1].colour: unknown key",
        "sinks[0].url: is required for a webhook sink",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in:\n{err}"
        );
    }
    assert_eq!(lines.len(), 6, "one line per problem:\n{err}");
}

#[test]
fn run_refuses_a_bad_config_with_the_same_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        &dir,
        "bad.toml",
        "[[rules]]\nname = \"a\"\nbin = \"banana\"\n",
    );
    let (code, _, err) = authpulse(&["run", "--config", &bad]);
    assert_eq!(code, 2);
    assert!(
        err.contains("rules[0].bin: \"banana\" is not a duration"),
        "{err}"
    );
    let (code, _, err) = authpulse(&[
        "check-config",
        &dir.path().join("missing.toml").display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn environment_overrides_are_validated_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(
        &dir,
        "good.toml",
        "[source]\nkind = \"cloudwatch\"\nlog_groups = [\"/aws/events/okta\"]\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_authpulse"))
        .args(["check-config", &good])
        .env("AUTHPULSE__SOURCE__SETTLE", "soon")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("source.settle: \"soon\" is not a duration")
    );
}

#[test]
fn query_prints_each_rules_insights_query() {
    let (code, out, _) = authpulse(&["query"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("filter detail.eventType in [\"user.session.start\"]"),
        "{out}"
    );
    assert!(
        out.contains("stats count(*) as n, count_distinct(detail.actor.alternateId) as users, count_distinct(detail.client.ipAddress) as ips, min(@timestamp) as first, max(@timestamp) as last by bin(15m), detail.outcome.result\n"),
        "{out}"
    );
    // The built-in per-source and per-user rules.
    assert!(
        out.contains("by bin(15m), detail.outcome.result, detail.client.ipAddress"),
        "{out}"
    );
    assert!(
        out.contains(
            "[\"system.push.send_factor_verify_push\", \"user.mfa.okta_verify.deny_push\"]"
        ),
        "{out}"
    );
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in [
        "demo",
        "backtest",
        "check-config",
        "query",
        "run",
        "healthcheck",
        "evaluate",
        "silence",
    ] {
        let (code, out, _) = authpulse(&[sub, "--help"]);
        assert_eq!(code, 0, "{sub}");
        assert!(
            out.contains("Example"),
            "{sub} --help has no example:\n{out}"
        );
    }
    for sub in ["add", "list", "expire"] {
        let (code, out, _) = authpulse(&["silence", sub, "--help"]);
        assert_eq!(code, 0, "silence {sub}");
        assert!(
            out.contains("Example"),
            "silence {sub} --help has no example:\n{out}"
        );
    }
}

#[test]
fn explain_keeps_stdout_for_the_explanation() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/demo.ndjson.gz");
    let span = "2026-11-14T17:00:00Z..2026-11-14T17:15:00Z";
    let (code, out, err) = authpulse(&["backtest", "--events", sample, "--explain", span]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.lines().any(|l| l.starts_with('{')),
        "alert JSON mixed into the explanation:\n{out}"
    );
    assert!(out.contains("Sat 14 Nov 17:00 okta-sign-ins"), "{out}");
    assert!(
        out.contains("alerts not written (give --alerts-out FILE"),
        "{out}"
    );
    // With --alerts-out the alerts are kept, in the file.
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts.jsonl");
    let path = alerts.display().to_string();
    let (code, out, err) = authpulse(&[
        "backtest",
        "--events",
        sample,
        "--explain",
        span,
        "--alerts-out",
        &path,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.lines().any(|l| l.starts_with('{')), "{out}");
    let written = std::fs::read_to_string(&alerts).expect("the alerts file");
    assert!(written.lines().count() > 0 && written.lines().all(|l| l.starts_with('{')));
}
