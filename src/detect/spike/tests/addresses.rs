//! `count_sources`: the addresses that failed, judged beside the failures.

use super::super::super::test_support::*;
use super::super::*;
use super::{spike, windowed};
use crate::config_reader::{Problems, Table};
use crate::series::History;

/// Ten days of a signal: a stray failure from an address of its own in three bins of
/// ten, and every twentieth bin a scanner trying ten names from one address. Then
/// `run` bins of four failures from four addresses each, judged at the last.
fn signal_run(d: &CountSpike, run: i64) -> Finding {
    let record = |b: i64, failures: u32, ips: u32| {
        let mut c = counts(failures.into(), 0, failures.into());
        c.failed_ips = ips.into();
        c.failed_users = failures.into();
        let mut r = crate::series::BinRecord::from_counts(c, b, 900_000);
        r.expected_failure = 0.8;
        r
    };
    let mut h = History::new(14 * 96);
    let end = 10 * 96;
    for b in 0..end {
        let stray = u32::from(b % 10 < 3);
        let scanner = if b % 20 == 7 { 10 } else { 0 };
        h.push(
            b,
            record(b, stray + scanner, stray + u32::from(scanner > 0)),
        );
    }
    for b in end..end + run - 1 {
        h.push(b, record(b, 4, 4));
    }
    let mut c = counts(4, 0, 4);
    c.failed_ips = 4;
    c.failed_users = 4;
    let mut e = expected(0.8, 0.0, 0.8);
    e.samples = 3;
    let mut cx = ctx(&h, c, Some(e));
    cx.bin = end + run - 1;
    d.evaluate(&cx).unwrap() // ok: a test
}

#[test]
fn addresses_page_a_run_that_a_scanners_bursts_hide_in_the_failures() {
    let d = CountSpike {
        min_count: 10,
        windows: vec![1, 3],
        spread_sources: true,
        pooled: true,
        ..windowed()
    };
    // Twelve failures in three bins where 2.4 are usual: the scanner's bursts make
    // that about one in 10⁵, short of proof.
    let failures = signal_run(&d, 3);
    assert!(!failures.anomalous, "{failures:?}");
    // Counted by address the scanner is one address a burst: the history holds about
    // 0.35 addresses a bin, and twelve in three bins are far beyond chance.
    let both = CountSpike {
        count_sources: true,
        ..d.clone()
    };
    let f = signal_run(&both, 3);
    assert!(f.anomalous && f.window_bins == 3, "{f:?}");
    assert_eq!(f.measure, "addresses that failed");
    assert!(
        f.p_value < 1e-8 && failures.p_value > 1e-6,
        "{f:?} {failures:?}"
    );
    // Neither pages on the quiet bins before the run, scanner bursts included.
    assert!(!signal_run(&both, 1).anomalous);
}

#[test]
fn a_scanner_alone_is_one_address() {
    // Twelve failures from one address in a bin where the failures' floor is ten: the
    // failures page as before (the count of failures is still judged), the address
    // count holds one.
    let h = History::new(10);
    let mut c = counts(12, 0, 12);
    c.failed_ips = 1;
    c.failed_users = 12;
    let e = expected(0.5, 0.0, 0.5);
    let d = CountSpike {
        min_count: 10,
        count_sources: true,
        ..spike()
    };
    let f = d.evaluate(&ctx(&h, c, Some(e))).unwrap(); // ok: a test
    assert!(f.anomalous && f.measure == "failed sign-ins", "{f:?}");
    let sources = d
        .evaluate_as(
            &ctx(&h, c, Some(e)),
            SpikeMetric::FailingSources,
            1e-6,
            None,
        )
        .unwrap(); // ok: a test
    assert!(!sources.anomalous && sources.observed == 1.0, "{sources:?}");
}

#[test]
fn without_addresses_the_failures_are_counted() {
    // A CSV of counts carries no addresses: counting them must not read zero.
    assert_eq!(SpikeMetric::FailingSources.count(30, 12, 0), 12);
    assert_eq!(SpikeMetric::FailingSources.count(30, 12, 5), 5);
    assert_eq!(SpikeMetric::Failure.count(30, 12, 5), 12);
    assert_eq!(SpikeMetric::Total.count(30, 12, 5), 30);
}

#[test]
fn count_sources_is_read_for_failures_only() {
    let read = |metric, table: serde_json::Value| {
        let mut p = Problems::default();
        let mut t = Table::new("d", Some(&table), &mut p);
        let d = CountSpike::read(metric, &mut t, &mut p);
        (
            d.count_sources,
            p.0.iter().map(|x| x.to_string()).collect::<String>(),
        )
    };
    let on = serde_json::json!({ "count_sources": true });
    assert_eq!(
        read(SpikeMetric::Failure, on.clone()),
        (true, String::new())
    );
    let (set, problems) = read(SpikeMetric::Total, on);
    assert!(!set && problems.contains("count_sources"), "{problems}");
    let (_, problems) = read(
        SpikeMetric::Failure,
        serde_json::json!({ "count_sources": "yes" }),
    );
    assert!(problems.contains("count_sources"), "{problems}");
}
