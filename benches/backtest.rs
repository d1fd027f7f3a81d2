//! Backtest throughput: parse + bin + detect over a generated export held in memory.
//!
//! Run: `cargo bench --bench backtest`. Criterion reports MiB/s (bytes of NDJSON); the
//! events per second follow from the event count printed first. The export is in time
//! order: the fast path, with no sort.

use std::time::Duration;

use authpulse::offline::backtest;
use authpulse::rule::RuleSpec;
use authpulse::simulate::{generate, Difficulty, SimConfig};
use authpulse::source::replay::{ReplayOptions, Source};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn export() -> Vec<u8> {
    let start = "2026-11-02T00:00:00Z".parse().unwrap_or_default();
    let cfg = SimConfig::with_default_incidents(1, start, 14, 2000, Difficulty::Easy);
    let mut events = Vec::new();
    let stats = generate(&cfg, &mut events, &mut std::io::sink()).unwrap_or_default();
    eprintln!(
        "export: {} events, {:.1} MB",
        stats.events,
        stats.bytes as f64 / 1e6
    );
    events
}

fn bench(c: &mut Criterion) {
    let events = export();
    let rules = RuleSpec::builtin();
    let mut group = c.benchmark_group("backtest");
    group.throughput(Throughput::Bytes(events.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    // One thread: read, parse, bin and detect in turn (the figure to compare with
    // earlier versions); two: the pipeline on its own thread, as `backtest` runs.
    for (name, two_threads) in [
        ("parse_bin_detect_14d_2000_users", false),
        ("parse_bin_detect_14d_2000_users_two_threads", true),
    ] {
        let source = [Source::Bytes {
            name: "bench".into(),
            data: events.as_slice(),
        }];
        let opts = ReplayOptions {
            two_threads,
            ..ReplayOptions::new(Duration::from_secs(120))
        };
        group.bench_function(name, |b| {
            b.iter(|| backtest::run_sources(&source, &rules, &opts, None))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
