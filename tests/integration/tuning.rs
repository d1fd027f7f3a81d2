//! The tuning tools on the bundled demo sample: the HTML report is well-formed, has one
//! chart per series with a panel per detector and a marker per notice; `--suggest`
//! reproduces the backtest's pages at the configured thresholds; CSV input reaches the
//! same pipeline. (`scripts/check-report.sh` also renders the page in a real browser.)

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;
use std::time::Duration;

use authpulse::alert::{Alert, Status};
use authpulse::offline::backtest;
use authpulse::offline::tune::{report, suggest, Recorder};
use authpulse::rule::RuleSpec;

const DEMO: &[u8] = include_bytes!("../../samples/demo.ndjson.gz");

fn demo() -> (Vec<Alert>, Recorder, RuleSpec) {
    // The totals rule: one series, so one chart (the built-in split rules add a series
    // per source address and per user).
    let rules = vec![RuleSpec::named("okta-sign-ins")];
    let mut rec = Recorder::new(&rules);
    let reader = flate2::read::MultiGzDecoder::new(DEMO);
    let outcome =
        backtest::run_observed(reader, 0, &rules, Duration::from_secs(120), Some(&mut rec))
            .expect("backtest");
    let rule = rules.into_iter().next().expect("a built-in rule");
    (outcome.alerts, rec, rule)
}

fn class_has(n: &roxmltree::Node<'_, '_>, class: &str) -> bool {
    n.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|x| x == class))
}

#[test]
fn the_report_is_well_formed_with_a_chart_per_series_and_a_marker_per_notice() {
    let (alerts, rec, rule) = demo();
    assert!(!alerts.is_empty(), "the demo sample pages");
    let html = report::render(&rec, &alerts, "demo", "summary <text> & more");

    // Self-contained: nothing fetched, nothing run.
    for banned in ["http:", "https:", "<script", "url(", "@import", " src="] {
        assert!(!html.contains(banned), "the page contains {banned:?}");
    }

    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, opts)
        .unwrap_or_else(|e| panic!("the report is not well-formed: {e}"));
    let charts: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("svg") && class_has(n, "chart"))
        .collect();
    assert_eq!(charts.len(), rec.series.len(), "one chart per series");
    let chart = charts[0];
    assert!(chart.attribute("viewBox").is_some());
    let panels: Vec<String> = chart
        .descendants()
        .filter(|n| class_has(n, "panel"))
        .filter_map(|n| n.attribute("data-detector").map(String::from))
        .collect();
    let kinds: Vec<String> = rule
        .detectors
        .iter()
        .map(|d| d.detector.kind().name().to_string())
        .collect();
    assert_eq!(panels, kinds, "a panel per detector, in config order");

    // Every notice has its marker, in its detector's panel.
    let markers = |class: &str| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for panel in chart.descendants().filter(|n| class_has(n, "panel")) {
            let det = panel.attribute("data-detector").unwrap_or_default();
            let n = panel
                .descendants()
                .filter(|n| class_has(n, "marker") && class_has(n, class))
                .count();
            if n > 0 {
                m.insert(det.to_string(), n);
            }
        }
        m
    };
    let notices = |status: Status| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for a in alerts.iter().filter(|a| a.status == status) {
            *m.entry(a.detector.to_string()).or_default() += 1;
        }
        m
    };
    let mut fired = markers("fire");
    for (det, n) in markers("repeat") {
        *fired.entry(det).or_default() += n;
    }
    assert_eq!(fired, notices(Status::Firing));
    assert_eq!(markers("resolve"), notices(Status::Resolved));
    for panel in chart.descendants().filter(|n| class_has(n, "panel")) {
        for class in ["band", "expected", "observed"] {
            let path = panel
                .descendants()
                .find(|n| class_has(n, class))
                .and_then(|n| n.attribute("d"))
                .unwrap_or_default();
            assert!(path.starts_with('M'), "{class} is drawn");
        }
    }

    // The table: a row per alert, text escaped.
    let rows = doc
        .descendants()
        .filter(|n| n.has_tag_name("tr") && (class_has(n, "firing") || class_has(n, "resolved")))
        .count();
    assert_eq!(rows, alerts.len());
    assert!(html.contains("summary &lt;text&gt; &amp; more"));
}

#[test]
fn suggest_replays_the_backtest_exactly_at_the_configured_thresholds() {
    let (alerts, rec, rule) = demo();
    // A budget so large nothing needs changing.
    let all = suggest::suggest(&rec, 1e9);
    assert_eq!(all.items.len(), rule.detectors.len());
    for s in &all.items {
        let want: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.status == Status::Firing && a.detector == s.detector.name())
            .collect();
        assert_eq!(
            s.current.notices(),
            want.len(),
            "{}: the replay at the configured threshold pages as the backtest did",
            s.detector.name()
        );
        // A repeat carries its incident's start: one page per distinct start.
        let mut starts: Vec<i64> = want.iter().map(|a| a.started_at.ms()).collect();
        starts.dedup();
        assert_eq!(s.current.pages.len(), starts.len(), "{}", s.detector.name());
        // The configured value is a candidate, so the pick pages at least as often.
        assert!(s
            .by_p_value
            .as_ref()
            .is_some_and(|r| r.notices() >= s.current.notices()));
    }

    // A budget of zero: whatever is suggested pages at most that, and says so.
    let none = suggest::suggest(&rec, 0.0);
    for s in &none.items {
        if let Some(r) = &s.by_p_value {
            assert_eq!(r.notices(), 0, "{}", s.detector.name());
        }
        if let Some(r) = &s.by_min_count {
            assert_eq!(r.notices(), 0, "{}", s.detector.name());
            assert!(r.min_count > s.current.min_count);
        }
    }
    let table = none.table(&[]);
    assert!(table.contains("[rules.detectors.failure_spike]"), "{table}");
    assert!(table.contains("p_value = "), "{table}");
}

#[test]
fn with_labels_each_page_names_its_incident() {
    let (_, rec, _) = demo();
    let incidents =
        authpulse::offline::evaluate::read_labels(include_str!("../../samples/demo.labels.jsonl"))
            .expect("demo labels");
    let table = suggest::suggest(&rec, 0.5).table(&incidents);
    for kind in [
        "[credential_stuffing]",
        "[password_spraying]",
        "[pipeline_gap]",
    ] {
        assert!(table.contains(kind), "{kind} missing from\n{table}");
    }
    assert!(
        table.contains("catches 3 of 5 incidents, 0 false"),
        "{table}"
    );
    assert!(
        !table.contains("[no incident]"),
        "the demo has no false page\n{table}"
    );
}

/// The demo sample binned as a dashboard would export it: `timestamp,total,failure`.
fn demo_as_csv() -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(DEMO)
        .read_to_string(&mut text)
        .expect("demo sample");
    let mut bins: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let e = authpulse::event::Event::parse(line).expect("demo events parse");
        if e.event_type == "user.session.start" {
            let b = bins.entry(e.published_ms.div_euclid(900_000)).or_default();
            b.0 += 1;
            b.1 += u64::from(e.result == "FAILURE");
        }
    }
    let mut csv = String::from("timestamp,total,failure\n");
    for (bin, (total, failure)) in bins {
        let t = chrono::DateTime::from_timestamp_millis(bin * 900_000).unwrap_or_default();
        csv.push_str(&format!(
            "{},{total},{failure}\n",
            t.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    csv
}

#[test]
fn a_csv_of_counts_pages_where_the_events_did() {
    let rules = vec![RuleSpec::named("okta-sign-ins")];
    let csv = demo_as_csv();
    let from_csv = backtest::run_csv(csv.as_bytes(), &rules, None).expect("csv backtest");
    assert_eq!(from_csv.csv.as_ref().map(|c| c.bad_count), Some(0));
    let (from_events, _, _) = demo();
    // Same counts, same pipeline: the same failure pages at the same bins. (Successes in
    // the CSV are total - failure, so outcome-neutral events count as successes there.)
    let firing = |alerts: &[Alert], det: &str| -> Vec<String> {
        alerts
            .iter()
            .filter(|a| a.status == Status::Firing && a.detector == det)
            .map(|a| a.bin_start.to_string())
            .collect()
    };
    assert_eq!(
        firing(&from_csv.alerts, "volume_spike"),
        firing(&from_events, "volume_spike")
    );
    // A CSV of counts does not say when inside a bin the events stopped, so a silence
    // that starts mid-bin pages a bin later than from the events: the same gaps page,
    // the events' never later.
    let (csv, events) = (
        firing(&from_csv.alerts, "flatline"),
        firing(&from_events, "flatline"),
    );
    assert_eq!(csv.len(), events.len(), "{csv:?} {events:?}");
    for (c, e) in csv.iter().zip(&events) {
        assert!(e <= c, "{csv:?} {events:?}");
    }
    // A CSV of counts does not say who failed, so failure_spike cannot hold back a spike
    // of failures concentrated on a few accounts (it does with events): the same
    // incidents page, the CSV's never later.
    let (csv, events) = (
        firing(&from_csv.alerts, "failure_spike"),
        firing(&from_events, "failure_spike"),
    );
    assert_eq!(csv.len(), events.len(), "{csv:?} {events:?}");
    for (c, e) in csv.iter().zip(&events) {
        assert!(c <= e, "{csv:?} {events:?}");
    }
}

#[test]
fn the_command_line_reads_csv_reports_bad_rows_and_writes_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut csv = demo_as_csv();
    csv.push_str("not a time,1,1\n2026-11-16 00:00:00,5,9\n");
    let lines = csv.lines().count();
    let csv_path = dir.path().join("dashboard.csv");
    std::fs::write(&csv_path, &csv).expect("write csv");
    let html_path = dir.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_authpulse"))
        .args(["backtest", "--events"])
        .arg(&csv_path)
        .arg("--report")
        .arg(&html_path)
        .args(["--suggest", "--pages-per-week", "2"])
        .output()
        .expect("run authpulse");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("CSV of binned counts"), "{stdout}");
    assert!(stdout.contains("2 bad rows skipped"), "{stdout}");
    assert!(
        stdout.contains(&format!("bad row, line {}:", lines - 1))
            && stdout.contains(&format!("bad row, line {}: 9 failures out of 5", lines)),
        "{stdout}"
    );
    assert!(
        stdout.contains("Threshold suggestions: at most 2 pages per week"),
        "{stdout}"
    );
    let html = std::fs::read_to_string(&html_path).expect("report written");
    assert!(html.contains("<svg class=\"chart\""));

    // --format csv for a file without the extension.
    let txt = dir.path().join("counts.txt");
    std::fs::write(&txt, "2026-11-25T10:15:00Z,10,1\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_authpulse"))
        .args(["backtest", "--format", "csv", "--events"])
        .arg(&txt)
        .output()
        .expect("run authpulse");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 rows of counts"),
        "{stdout}"
    );
}

#[test]
fn a_split_rule_charts_the_most_eventful_series_first_and_caps_the_count() {
    use authpulse::pipeline::Pipeline;
    use authpulse::series::{BinIndex, Counts, Labels, RuleId, Update};

    let mut rule = RuleSpec::named("per-ip");
    rule.split_by = Some("client.ipAddress".into());
    rule.detectors.retain(|d| {
        matches!(
            d.detector.kind(),
            authpulse::detect::DetectorKind::FailureSpike
                | authpulse::detect::DetectorKind::VolumeSpike
        )
    });
    rule.warmup = Duration::from_secs(86_400);
    let rules = vec![rule];
    let mut pipeline = Pipeline::new(rules.clone());
    let mut rec = Recorder::new(&rules);
    let mut alerts = Vec::new();
    let ips = report::MAX_SERIES + 10;
    let attacker = 37;
    let attack_bin = 2 * 96 + 40;
    for bin in 0..(3 * 96) {
        for ip in 0..ips {
            let mut labels = Labels::new();
            labels.insert("client.ipAddress".into(), format!("10.0.0.{ip}"));
            let failure = if ip == attacker && bin == attack_bin {
                500
            } else {
                (bin as u64 + ip as u64) % 2
            };
            let counts = Counts {
                total: 4 + failure,
                success: 4,
                failure,
                ..Counts::default()
            };
            let u = Update::Observe {
                rule: RuleId(0),
                bin: BinIndex(bin),
                labels,
                counts,
            };
            pipeline.apply_observed(u, &mut alerts, &mut rec);
        }
        pipeline.apply_observed(
            Update::Close {
                rule: RuleId(0),
                end_bin: BinIndex(bin + 1),
            },
            &mut alerts,
            &mut rec,
        );
    }
    assert!(alerts
        .iter()
        .any(|a| a.series.get("client.ipAddress").map(String::as_str) == Some("10.0.0.37")));
    let html = report::render(&rec, &alerts, "split", "");
    assert_eq!(
        html.matches("<svg class=\"chart\"").count(),
        report::MAX_SERIES
    );
    let first = html
        .find("<svg class=\"chart\"")
        .and_then(|i| html[i..].find("data-series=\"").map(|j| i + j));
    assert!(
        first.is_some_and(
            |i| html[i..].starts_with("data-series=\"per-ip {client.ipAddress=10.0.0.37}\"")
        ),
        "the attacked IP comes first"
    );
    assert!(html.contains(&format!(
        "{} series evaluated; the {} most eventful",
        ips,
        report::MAX_SERIES
    )));
}

#[test]
fn explain_tells_the_bins_of_a_span_and_flags_the_one_that_paged() {
    use authpulse::offline::tune::explain::{Explainer, Span};
    let rules = vec![RuleSpec::named("okta-sign-ins")];
    let (alerts, _, _) = demo();
    let first = alerts
        .iter()
        .find(|a| a.status == Status::Firing)
        .expect("the demo sample pages");
    let authpulse::alert::AlertDetector::Pipeline(kind) = first.detector else {
        panic!("a pipeline page: {first:?}");
    };
    // The paging bin and the bin before it, nothing else.
    let span: Span = format!("{}..{}", first.bin_start, first.bin_end)
        .parse()
        .expect("a span");
    let span = Span {
        from_ms: span.from_ms - 15 * 60_000,
        ..span
    };
    // The demo through `rules`, told bin by bin over `span`.
    let explain = |span: Span| {
        let mut explainer = Explainer::new(&rules, span);
        let reader = flate2::read::MultiGzDecoder::new(DEMO);
        backtest::run_observed(
            reader,
            0,
            &rules,
            Duration::from_secs(120),
            Some(&mut explainer),
        )
        .expect("backtest");
        explainer.text()
    };
    let text = explain(span);
    let bins: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(bins.len(), 2, "two bins of one series: {text}");
    assert!(bins.iter().all(|l| l.contains("okta-sign-ins: ")), "{text}");
    // The dispersion and every detector of the rule have their line in each bin, and
    // the one that paged is flagged in the paging bin.
    let per_bin = rules[0].detectors.len() + 2;
    assert_eq!(text.lines().count(), 2 * per_bin, "{text}");
    let paging_bin: Vec<&str> = text.lines().skip(per_bin).collect();
    let line = paging_bin
        .iter()
        .find(|l| l.trim_start().starts_with(kind.name()))
        .unwrap_or_else(|| panic!("{} judged: {text}", kind.name()));
    assert!(line.ends_with("FLAGGED"), "{line}");

    // A span with nothing judged says so.
    let empty = explain(
        "2001-01-01T00:00:00Z..2001-01-02T00:00:00Z"
            .parse()
            .expect("a span"),
    );
    assert!(empty.contains("no bin of any rule was judged"), "{empty}");
}
