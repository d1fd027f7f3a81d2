//! The CloudWatch source against the emulator: what it reads back equals what was put.

use std::collections::BTreeMap;
use std::time::Duration;

use authpulse::event::Event;
use authpulse::rule::RuleSpec;
use authpulse::series::{BinIndex, Counts, Labels, RuleId, Span, Update};
use authpulse::source::binner::Binner;
use authpulse::source::cloudwatch::CloudWatchSource;
use authpulse::source::config::SourceConfig;
use authpulse::source::insights::Querier;
use authpulse::source::{Source, SourceEvent};
use tokio::sync::{mpsc, watch};

use crate::support::{self, aws};

fn rule(name: &str, bin_s: u64, split: Option<&str>) -> RuleSpec {
    let mut r = RuleSpec::named(name);
    r.bin = Duration::from_secs(bin_s);
    r.split_by = split.map(str::to_string);
    r.baseline_window = Duration::from_secs(4 * 3600);
    r
}

/// Counts per (rule, bin, labels) the way the file source computes them locally.
fn local_counts(
    rules: &[RuleSpec],
    lines: &[(i64, String)],
) -> BTreeMap<(usize, i64, Labels), Counts> {
    let mut b = Binner::new(rules, Duration::ZERO);
    for (_, l) in lines {
        b.add(&Event::parse(l).expect("test events parse"));
    }
    let mut updates = Vec::new();
    b.flush_all(&mut updates);
    let mut out = BTreeMap::new();
    for u in updates {
        if let Update::Observe {
            rule: RuleId(rule),
            bin: BinIndex(bin),
            labels,
            counts,
        } = u
        {
            out.insert((rule, bin, labels), counts);
        }
    }
    out
}

/// Run the source until it reports itself caught up (or `stop_after` passes), collecting
/// the latest absolute counts per (rule, bin, labels).
async fn run_source(
    source: CloudWatchSource,
    stop_after: Duration,
    until_caught_up: bool,
) -> (BTreeMap<(usize, i64, Labels), Counts>, Vec<Update>) {
    let (tx, mut rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(Box::new(source).run(tx, stop_rx));
    let mut latest = BTreeMap::new();
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + stop_after;
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = tokio::time::sleep_until(deadline) => None,
        };
        match ev {
            Some(SourceEvent::Updates(us)) => {
                for u in us {
                    if let Update::Observe {
                        rule: RuleId(rule),
                        bin: BinIndex(bin),
                        labels,
                        counts,
                    } = &u
                    {
                        latest.insert((*rule, *bin, labels.clone()), *counts);
                    }
                    all.push(u);
                }
            }
            Some(SourceEvent::CaughtUp) if until_caught_up => break,
            Some(_) => {}
            None => break,
        }
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    (latest, all)
}

async fn source_for(group: &str, rules: Vec<RuleSpec>, config: SourceConfig) -> CloudWatchSource {
    let sdk = aws::sdk_config().await;
    let client = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    CloudWatchSource {
        querier: Querier::new(client, vec![group.to_string()], 4, Duration::from_secs(30)),
        rules,
        config,
        clock: authpulse::clock::system(),
        exchange: None,
    }
}

#[tokio::test]
async fn backfilled_bins_equal_counts_computed_from_the_events() {
    let (logs, group) = aws::log_group("/authpulse/test/backfill").await;

    // Two hours of events over 5-minute bins: outcomes, three IPs, some other event types.
    let now = aws::now_ms();
    let start = now - 2 * 3600 * 1000;
    let mut lines = Vec::new();
    let mut i = 0i64;
    let mut t = start;
    while t < now - 60_000 {
        let result = match i % 7 {
            0 => "FAILURE",
            5 => "CHALLENGE",
            _ => "SUCCESS",
        };
        let ip = ["198.51.100.1", "198.51.100.2", "203.0.113.77"][(i % 3) as usize];
        let kind = if i % 11 == 0 {
            "user.session.end"
        } else if i % 9 == 4 {
            "user.mfa.okta_verify.deny_push"
        } else if i % 9 == 5 {
            "system.push.send_factor_verify_push"
        } else if i % 9 == 6 {
            // A push approved (SUCCESS), denied on Identity Engine (FAILURE), or not
            // counted (CHALLENGE).
            "user.authentication.auth_via_mfa"
        } else {
            "user.session.start"
        };
        let mut line =
            support::okta_line(t, kind, result, ip, &format!("user{}@example.com", i % 13));
        if kind == "user.session.start" {
            // Okta's user id (or `unknown`) and ThreatInsight's flag (or none), which the
            // spraying rule's query reads at each bin's first and last failed attempt.
            line = with_signals(&line, i);
        }
        lines.push((t, line));
        i += 1;
        t += 7_000 + (i % 5) * 1_000;
    }
    aws::put_lines(&logs, &group, lines.clone()).await;

    // The built-in rules' shapes: totals, per source address, per user over push events.
    let mut pushes = rule("per-user-push", 300, Some("actor.alternateId"));
    pushes.event_types = authpulse::rule::PUSH_EVENT_TYPES
        .iter()
        .map(|s| s.to_string())
        .collect();
    // Approvals counted in the total only: the query groups by type too.
    let builtin = RuleSpec::mfa_push_fatigue();
    pushes.when = builtin.when;
    pushes.approvals = builtin.approvals;
    let mut spraying = RuleSpec::password_spraying();
    spraying.bin = Duration::from_secs(300);
    let rules = vec![
        rule("sessions", 300, None),
        rule("per-ip", 300, Some("client.ipAddress")),
        pushes,
        spraying,
    ];
    let config = SourceConfig {
        log_groups: vec![group.clone()],
        settle: Duration::from_secs(1),
        backfill: Some(Duration::from_secs(3 * 3600)),
        ..SourceConfig::default()
    };
    let source = source_for(&group, rules.clone(), config).await;
    let read_at = aws::now_ms();
    let (got, _) = run_source(source, Duration::from_secs(60), true).await;

    let want = local_counts(&rules, &lines);
    let mut compared = 0;
    // Only bins that had closed (and settled) when the source started are read.
    let closed = |bin: i64| (bin + 1) * 300_000 <= read_at - 1_000;
    for (key, counts) in want.iter().filter(|((_, bin, _), _)| closed(*bin)) {
        assert_eq!(got.get(key), Some(counts), "bin {key:?}");
        compared += 1;
    }
    assert!(compared > 40, "compared only {compared} bins");
    // The distinct counts were compared too, and were not trivially zero.
    assert!(
        want.values()
            .any(|c| c.failed_users > 1 && c.failed_ips > 1),
        "no bin with several failing users and addresses"
    );
    assert!(
        want.keys().any(|(r, _, _)| *r == 2),
        "no push events were counted"
    );
    // The spraying rule's accounts and flags were compared, both ways round.
    let spray = || {
        want.iter()
            .filter(|((r, _, _), c)| *r == 3 && c.failure > 0)
    };
    assert!(
        spray().any(|(_, c)| c.failed_flagged) && spray().any(|(_, c)| !c.failed_flagged),
        "no bin with and without ThreatInsight's flag"
    );
    assert!(
        spray().any(|(_, c)| c.failed_accounts.unresolved_among(c.failure))
            && spray().any(|(_, c)| c.failed_accounts.keys().count() == 2),
        "no bin with an unresolved username and none with two accounts"
    );
    // Approvals and denials were each counted (and compared) in the push rule.
    let pushed = || want.iter().filter(|((r, _, _), _)| *r == 2);
    assert!(
        pushed().any(|(_, c)| c.other() > 0),
        "no approval was counted"
    );
    assert!(
        pushed().any(|(_, c)| c.failure > 0),
        "no denial was counted"
    );
    // Bins with no events read back as explicit zeros for the unsplit rule, never missing.
    let zeros = got
        .iter()
        .filter(|((r, _, _), c)| *r == 0 && c.total == 0)
        .count();
    assert!(
        zeros > 0,
        "expected explicit zero bins before the data starts"
    );
    // Nothing in the future was queried.
    for q in aws::queries(&group).await {
        let end = q["endTime"].as_i64().unwrap_or(i64::MAX);
        assert!(
            end * 1000 <= aws::now_ms(),
            "a query reached into the future: {q}"
        );
    }
}

/// An Okta line with `actor.id` (a user id, or `unknown` on one line in four) and, on two
/// of every three, ThreatInsight's `threatSuspected` (`"true"` on one of those). `i / 3`:
/// the test's addresses take turns by `i % 3`.
fn with_signals(line: &str, i: i64) -> String {
    let i = i / 3;
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let detail = &mut v["detail"];
    detail["actor"]["id"] = if i % 4 == 0 {
        "unknown".into()
    } else {
        format!("00u{}", i % 5).into()
    };
    match i % 3 {
        0 => {}
        1 => detail["debugContext"] = serde_json::json!({"debugData": {"threatSuspected": "true"}}),
        _ => {
            detail["debugContext"] = serde_json::json!({"debugData": {"threatSuspected": "false"}})
        }
    }
    v.to_string()
}

/// Found building the soak (`soak/`): a daemon restarted while Logs Insights failed a query
/// or two gave up its whole history as unknown (one backfill chunk holds up to 1,666
/// bins, 17 days of 15-minute bins), so it could not judge for a warm-up and resolved
/// incidents still under way. A failed backfill chunk is tried again, like a poll, until
/// `unavailable_after` failures in a row.
#[tokio::test]
async fn a_backfill_query_that_fails_is_tried_again_not_given_up_as_unknown() {
    let sdk = aws::sdk_config().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let group = aws::unique("/authpulse/test/backfill-retry");
    aws::create_log_group(&logs, &group).await;
    let now = aws::now_ms();
    let lines: Vec<(i64, String)> = (0..120)
        .map(|i| {
            let t = now - 3_600_000 + i * 25_000;
            let line = support::okta_line(
                t,
                "user.session.start",
                "SUCCESS",
                "198.51.100.1",
                "u@example.com",
            );
            (t, line)
        })
        .collect();
    aws::put_lines(&logs, &group, lines.clone()).await;
    // The first two queries fail (after the SDK's retries, for the GetQueryResults 500s).
    aws::faults(
        &group,
        serde_json::json!({"fail_queries": 1, "error_get_results": 3}),
    )
    .await;
    let rules = vec![rule("sessions", 300, None)];
    let config = SourceConfig {
        log_groups: vec![group.clone()],
        settle: Duration::from_secs(1),
        poll_interval: Duration::from_millis(200),
        backfill: Some(Duration::from_secs(3600)),
        unavailable_after: 3,
        ..SourceConfig::default()
    };
    let source = source_for(&group, rules.clone(), config).await;
    let read_at = aws::now_ms();
    let (got, all) = run_source(source, Duration::from_secs(60), true).await;
    let unknown: Vec<&Update> = all
        .iter()
        .filter(|u| matches!(u, Update::Unknown { .. }))
        .collect();
    assert!(unknown.is_empty(), "bins given up as unknown: {unknown:?}");
    let want = local_counts(&rules, &lines);
    let closed = |bin: i64| (bin + 1) * 300_000 <= read_at - 1_000;
    let mut compared = 0;
    for (key, counts) in want.iter().filter(|((_, bin, _), _)| closed(*bin)) {
        assert_eq!(got.get(key), Some(counts), "bin {key:?}");
        compared += 1;
    }
    assert!(compared >= 10, "compared only {compared} bins");
    let statuses: Vec<String> = aws::queries(&group)
        .await
        .iter()
        .map(|q| q["status"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(statuses.iter().any(|s| s == "Failed"), "{statuses:?}");
}

#[tokio::test]
async fn late_events_are_revised_without_double_counting() {
    let (logs, group) = aws::log_group("/authpulse/test/late").await;

    // 5-second bins; settle 2 s; revision 3 s after the first read.
    let rules = vec![rule("sessions", 5, None)];
    let config = SourceConfig {
        log_groups: vec![group.clone()],
        settle: Duration::from_secs(2),
        revise_after: Duration::from_secs(3),
        poll_interval: Duration::from_millis(250),
        backfill: Some(Duration::from_secs(60)),
        ..SourceConfig::default()
    };
    let source = source_for(&group, rules, config).await;

    let (tx, mut rx) = mpsc::channel(256);
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(Box::new(source).run(tx, stop_rx));

    // Wait for the backfill to finish, then write events into the bin that is open now.
    loop {
        match rx.recv().await {
            Some(SourceEvent::CaughtUp) => break,
            Some(_) => {}
            None => panic!("source ended before catching up"),
        }
    }
    let bin_ms = 5_000;
    let now = aws::now_ms();
    let bin = now / bin_ms;
    let inside = |k: i64| bin * bin_ms + 100 + k * 10;
    // Three events now, one "late" event inside settle (written after the bin ended but
    // before it was read), and two after the first read.
    let first: Vec<_> = (0..3)
        .map(|k| {
            (
                inside(k),
                support::okta_line(
                    inside(k),
                    "user.session.start",
                    "SUCCESS",
                    "192.0.2.1",
                    "a@example.com",
                ),
            )
        })
        .collect();
    aws::put_lines(&logs, &group, first).await;
    let bin_end = (bin + 1) * bin_ms;
    tokio::time::sleep(Duration::from_millis(
        (bin_end - aws::now_ms() + 500).max(0) as u64,
    ))
    .await;
    aws::put_lines(
        &logs,
        &group,
        vec![(
            inside(3),
            support::okta_line(
                inside(3),
                "user.session.start",
                "FAILURE",
                "192.0.2.1",
                "a@example.com",
            ),
        )],
    )
    .await;

    let mut observed = Vec::new();
    let mut late_written = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
        };
        if let Some(SourceEvent::Updates(us)) = ev {
            for u in us {
                if let Update::Observe {
                    bin: BinIndex(b),
                    counts,
                    ..
                } = u
                {
                    if b == bin {
                        observed.push(counts);
                        if !late_written {
                            // The bin has been read once: now write two more events into it.
                            late_written = true;
                            let later: Vec<_> = (4..6)
                                .map(|k| {
                                    (
                                        inside(k),
                                        support::okta_line(
                                            inside(k),
                                            "user.session.start",
                                            "FAILURE",
                                            "192.0.2.1",
                                            "b@example.com",
                                        ),
                                    )
                                })
                                .collect();
                            aws::put_lines(&logs, &group, later).await;
                        }
                    }
                }
            }
        }
        if observed.len() >= 2 {
            break;
        }
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    assert!(
        observed.len() >= 2,
        "bin read {} times: {observed:?}",
        observed.len()
    );
    // First read: the three on-time events plus the one that arrived within settle,
    // and when the first and the last of them happened (`min/max(@timestamp)`).
    assert_eq!(
        observed[0],
        Counts {
            total: 4,
            success: 3,
            failure: 1,
            failed_users: 1,
            failed_ips: 1,
            span: Some(Span {
                first_ms: inside(0),
                last_ms: inside(3),
            }),
            ..Counts::default()
        }
    );
    // Revision: absolute counts including the two later events — not 4 + 6.
    assert_eq!(
        observed[1],
        Counts {
            total: 6,
            success: 3,
            failure: 3,
            failed_users: 2,
            failed_ips: 1,
            span: Some(Span {
                first_ms: inside(0),
                last_ms: inside(5),
            }),
            ..Counts::default()
        }
    );
}

/// Bytes scanned by the live polls (after the backfill), against the bytes ingested in
/// the bins they covered, for a rule of `bin_s`-second bins. New bins are read once and
/// each bin is revised once more, so the ratio is about 2 with revision on and about 1
/// with it off, whatever the bin width.
async fn scan_ratio(revise_after: Duration, bin_s: u64) -> f64 {
    let (logs, group) = aws::log_group("/authpulse/test/scan").await;
    let rules = vec![rule("sessions", bin_s, None)];
    let config = SourceConfig {
        log_groups: vec![group.clone()],
        settle: Duration::from_millis(500),
        revise_after,
        poll_interval: Duration::from_millis(200),
        backfill: Some(Duration::from_secs(10)),
        ..SourceConfig::default()
    };
    let source = source_for(&group, rules, config).await;
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(Box::new(source).run(tx, stop_rx));
    while let Some(ev) = rx.recv().await {
        if matches!(ev, SourceEvent::CaughtUp) {
            break;
        }
    }
    let backfill_queries = aws::queries(&group).await.len();
    let started = aws::now_ms();
    // A steady feed for 12 seconds: 20 events a second.
    let mut ingested: Vec<(i64, usize)> = Vec::new();
    while aws::now_ms() - started < 12_000 {
        let t = aws::now_ms() - 50;
        let batch: Vec<_> = (0..4)
            .map(|k| {
                (
                    t + k,
                    support::okta_line(
                        t + k,
                        "user.session.start",
                        "SUCCESS",
                        "192.0.2.7",
                        "s@example.com",
                    ),
                )
            })
            .collect();
        ingested.extend(batch.iter().map(|(t, l)| (*t, l.len())));
        aws::put_lines(&logs, &group, batch).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        while rx.try_recv().is_ok() {}
    }
    // Let the last polls and revisions run.
    let drain_until = tokio::time::Instant::now() + revise_after + Duration::from_secs(3);
    while tokio::time::Instant::now() < drain_until {
        tokio::select! {
            _ = rx.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    let queries = aws::queries(&group).await;
    let live = &queries[backfill_queries..];
    let scanned: f64 = live
        .iter()
        .map(|q| q["statistics"]["bytesScanned"].as_f64().unwrap_or(0.0))
        .sum();
    // Ingested bytes inside the range the live polls covered.
    let lo = live
        .iter()
        .filter_map(|q| q["startTime"].as_i64())
        .min()
        .unwrap_or(0)
        * 1000;
    let hi = (live
        .iter()
        .filter_map(|q| q["endTime"].as_i64())
        .max()
        .unwrap_or(0)
        + 1)
        * 1000;
    let bytes: usize = ingested
        .iter()
        .filter(|(t, _)| *t >= lo && *t < hi)
        .map(|(_, n)| n)
        .sum();
    assert!(
        bytes > 0 && live.len() >= 3,
        "too little was polled: {} queries",
        live.len()
    );
    scanned / bytes as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_polls_scan_each_bin_once_plus_one_revision() {
    let (with_revision, without) = tokio::join!(
        scan_ratio(Duration::from_secs(2), 2),
        scan_ratio(Duration::ZERO, 2)
    );
    println!(
        "bytes scanned / bytes ingested: {with_revision:.2} with revision, {without:.2} without"
    );
    assert!(
        (0.9..=1.1).contains(&without),
        "without revision: {without:.2}"
    );
    assert!(
        (1.8..=2.2).contains(&with_revision),
        "with revision: {with_revision:.2}"
    );
}

/// Finer bins cost no more: Logs Insights bills the bytes a query scans, each event lies
/// in one bin whatever the width, so a rule of bins half as wide (the built-in
/// `okta-availability` rule's 5 minutes beside `okta-sign-ins`' 15, here 1 s beside 2 s)
/// scans the same bytes per byte ingested, in more queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finer_bins_scan_the_same_bytes() {
    let (coarse, fine) = tokio::join!(
        scan_ratio(Duration::from_secs(2), 2),
        scan_ratio(Duration::from_secs(2), 1)
    );
    println!("bytes scanned / bytes ingested: {coarse:.2} with 2 s bins, {fine:.2} with 1 s bins");
    for ratio in [coarse, fine] {
        assert!((1.8..=2.2).contains(&ratio), "{coarse:.2} / {fine:.2}");
    }
}
