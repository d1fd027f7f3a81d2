//! Many series in one bin: how long one bin takes to evaluate for 10,000 split series
//! (e.g. source addresses), and how much memory a series costs.
//!
//! Run: `cargo bench --bench series`. Before the timings it prints the memory figures:
//! resident memory added per series once 10,000 series hold a full history, and the
//! process's peak RSS (`VmHWM`).
//!
//! Two rules, each with 10,000 series: the built-in `password-spraying` rule
//! (`distinct_users` over 4 hours) and a generic split rule with the default split
//! detectors (`failure_spike`, `volume_spike`, and the default short split history).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use authpulse::pipeline::Pipeline;
use authpulse::rule::RuleSpec;
use authpulse::series::{BinIndex, Counts, Labels, RuleId};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const SERIES: usize = 10_000;

/// The system allocator, counting the bytes currently allocated: what the series hold,
/// without what the allocator keeps around after transient work (which RSS shows).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is
// updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn labels(field: &str) -> Vec<Labels> {
    (0..SERIES)
        .map(|i| {
            let mut l = Labels::new();
            l.insert(
                field.to_string(),
                format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256),
            );
            l
        })
        .collect()
}

/// Some traffic for series `i` in bin `b`: a few attempts, the odd failure.
fn counts(i: usize, b: i64) -> Counts {
    let total = 1 + ((i as i64 * 7 + b * 13) % 5) as u64;
    let failure = u64::from((i as i64 + b) % 9 == 0);
    Counts {
        total,
        success: total - failure,
        failure,
        failed_users: failure,
        failed_ips: failure,
        // Events spread over the bin, as the local binner reports them.
        span: Some(authpulse::series::Span {
            first_ms: b * 900_000 + 1_000,
            last_ms: b * 900_000 + 899_000,
        }),
        ..Counts::default()
    }
}

fn rules() -> Vec<(&'static str, RuleSpec)> {
    let mut spraying = RuleSpec::password_spraying();
    spraying.top_k = None;
    spraying.max_series = 2 * SERIES;
    let mut generic = authpulse::config::from_toml(
        "[[rules]]\nname = \"per-ip\"\nsplit_by = \"client.ipAddress\"\nwarmup = \"1h\"\nmax_series = 20000\n",
    )
    .map(|c| c.rules)
    .unwrap_or_default();
    let generic = generic.pop().unwrap_or_else(|| RuleSpec::named("per-ip"));
    vec![("password_spraying", spraying), ("generic_split", generic)]
}

/// A pipeline whose one rule holds 10,000 series with a full history; returns it and
/// the next bin to close.
fn warmed(rule: &RuleSpec, labels: &[Labels]) -> (Pipeline, i64) {
    let mut p = Pipeline::new(vec![rule.clone()]);
    let mut out = Vec::new();
    let bins = rule.window_bins().max(rule.warmup_bins()) as i64 + 2;
    for b in 0..bins {
        for (i, l) in labels.iter().enumerate() {
            p.observe(RuleId(0), BinIndex(b), l.clone(), counts(i, b));
        }
        p.close_through(RuleId(0), BinIndex(b + 1), &mut out);
    }
    (p, bins)
}

/// (resident, peak resident) in bytes, from /proc (Linux).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_bin_10k_series");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (name, rule) in rules() {
        let field = rule.split_by.clone().unwrap_or_default();
        let labels = labels(&field);
        let (rss_before, _) = rss();
        let live_before = LIVE.load(Ordering::Relaxed);
        let (pipeline, next) = warmed(&rule, &labels);
        let live = LIVE.load(Ordering::Relaxed) - live_before;
        let (rss_after, peak) = rss();
        eprintln!(
            "{name}: {SERIES} series with {} bins of history each: {:.0} bytes allocated per series (heap in use, allocator overhead excluded); RSS grew {:.0} bytes per series; peak RSS so far {:.1} MiB",
            rule.window_bins(),
            live as f64 / SERIES as f64,
            rss_after.saturating_sub(rss_before) as f64 / SERIES as f64,
            peak as f64 / (1 << 20) as f64
        );
        let mut pipeline = pipeline;
        let next = std::cell::Cell::new(next);
        let mut out = Vec::new();
        group.bench_function(name, |b| {
            b.iter_batched(
                // The observations of one bin, as a source hands them over (not timed).
                || {
                    labels
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (l.clone(), counts(i, next.get())))
                        .collect::<Vec<_>>()
                },
                // Timed: record them and evaluate every series for the bin.
                |obs| {
                    let bin = next.get();
                    for (l, c) in obs {
                        pipeline.observe(RuleId(0), BinIndex(bin), l, c);
                    }
                    pipeline.close_through(RuleId(0), BinIndex(bin + 1), &mut out);
                    next.set(bin + 1);
                    out.clear();
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
