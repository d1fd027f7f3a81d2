//! `failure_spike` and `volume_spike`'s tests: single bins, windows, the floors and the
//! spread tests, and calibration on quiet traffic (known and learned expectations).

use super::super::test_support::*;
use super::super::{DetectorSpec, Severity};
use super::*;
use crate::series::History;

fn spike() -> CountSpike {
    let spec = DetectorSpec::default_for(DetectorKind::FailureSpike);
    assert_eq!(spec.detector.kind(), DetectorKind::FailureSpike);
    CountSpike {
        metric: SpikeMetric::Failure,
        p_value: 1e-6,
        min_count: 20,
        min_ratio: 3.0,
        window_min_ratio: 3.0,
        windows: vec![1],
        spread: true,
        spread_sources: false,
        pooled: false,
        count_sources: false,
    }
}

#[test]
fn quiet_without_baseline() {
    let h = History::new(10);
    assert_eq!(spike().evaluate(&ctx(&h, counts(900, 0, 900), None)), None);
}

#[test]
fn a_stuffing_burst_is_flagged_and_critical() {
    let h = History::new(10);
    let f = spike()
        .evaluate(&ctx(
            &h,
            counts(1400, 400, 1000),
            Some(expected(420.0, 400.0, 20.0)),
        ))
        .unwrap();
    assert!(f.anomalous);
    assert!(f.p_value < 1e-12);
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.upper > 20.0 && f.upper < 1000.0);
}

#[test]
fn ordinary_noise_is_not() {
    let h = History::new(10);
    let f = spike()
        .evaluate(&ctx(
            &h,
            counts(440, 410, 30),
            Some(expected(420.0, 400.0, 20.0)),
        ))
        .unwrap();
    assert!(!f.anomalous, "{f:?}");
}

proptest::proptest! {
    /// The shortcut gives the same band as the full bound: max(bound, floors).
    #[test]
    fn upper_is_the_bound_or_the_floor(mean in 0.0f64..500.0, phi in 0.0f64..0.5, min_count in 0u64..100) {
        let d = CountSpike { metric: SpikeMetric::Failure, p_value: 1e-6, min_count, min_ratio: 3.0, window_min_ratio: 3.0, windows: vec![1], spread: true, spread_sources: false, pooled: false, count_sources: false };
        let h = History::new(4);
        let mut e = expected(mean * 2.0, mean, mean);
        e.samples = 0; // taken as exact: the model is the negative binomial itself
        let mut c = ctx(&h, counts(10, 0, 10), Some(e));
        c.dispersion.failure = phi;
        let f = d.evaluate(&c).unwrap();
        let model = CountModel::new(mean, phi);
        let want = (model.upper_bound(1e-6) as f64)
            .max(min_count as f64)
            .max((3.0 * mean.max(MIN_MEAN)).ceil());
        proptest::prop_assert_eq!(f.upper, want);
    }
}

#[test]
fn one_person_failing_twenty_times_is_not_a_spike() {
    let h = History::new(10);
    let mut c = counts(440, 400, 40);
    c.failed_users = 6;
    let e = Some(expected(407.0, 400.0, 7.0));
    assert!(!spike().evaluate(&ctx(&h, c, e)).unwrap().anomalous);
    c.failed_users = 38;
    assert!(spike().evaluate(&ctx(&h, c, e)).unwrap().anomalous);
}

#[test]
fn floors_stop_tiny_spikes_at_night() {
    let h = History::new(10);
    // 12 failures where 0.5 were expected is "unlikely" but far below min_count.
    let f = spike()
        .evaluate(&ctx(&h, counts(12, 0, 12), Some(expected(1.0, 0.5, 0.5))))
        .unwrap();
    assert!(f.p_value < 1e-6 && !f.anomalous);
}

fn windowed() -> CountSpike {
    CountSpike {
        metric: SpikeMetric::Failure,
        p_value: 1e-6,
        min_count: 20,
        min_ratio: 3.0,
        window_min_ratio: 3.0,
        windows: DEFAULT_WINDOWS.to_vec(),
        spread: true,
        spread_sources: false,
        pooled: false,
        count_sources: false,
    }
}

/// A history of `bins` bins ending just before `next`, each holding `failures`
/// failures (from as many users) where `expected` were expected.
fn steady(next: i64, bins: i64, failures: u32, expected: f32) -> History {
    let mut h = History::new(64);
    for b in (next - bins)..next {
        h.push(
            b,
            crate::series::BinRecord {
                total: 100 + failures,
                success: 100,
                failure: failures,
                failed_users: failures,
                known: true,
                expected_total: 100.0 + expected,
                expected_failure: expected,
                ..Default::default()
            },
        );
    }
    h
}

#[test]
fn a_quiet_evening_run_pages_on_its_window_total() {
    // Twelve failures per bin where two are expected: below every bin's floor of
    // 20, beyond doubt over an hour and a half.
    let h = steady(100, 5, 12, 2.0);
    let mut c = counts(112, 100, 12);
    c.failed_users = 12;
    let mut cx = ctx(&h, c, Some(expected(102.0, 100.0, 2.0)));
    cx.bin = 100;
    let single = spike().evaluate(&cx).unwrap();
    assert!(!single.anomalous, "{single:?}");
    let f = windowed().evaluate(&cx).unwrap();
    assert!(f.anomalous, "{f:?}");
    assert!(f.window_bins >= 4, "{f:?}");
    assert!(f.observed >= 48.0 && f.expected <= 4.0 * f.window_bins as f64);
}

#[test]
fn one_account_failing_all_evening_is_not_a_run() {
    // A service account with a stale password: four failures per bin, always the
    // same account.
    let mut h = History::new(64);
    for b in 84..100 {
        h.push(
            b,
            crate::series::BinRecord {
                total: 6,
                success: 2,
                failure: 4,
                failed_users: 1,
                known: true,
                expected_total: 2.5,
                expected_failure: 0.5,
                ..Default::default()
            },
        );
    }
    let mut c = counts(6, 2, 4);
    c.failed_users = 1;
    let mut cx = ctx(&h, c, Some(expected(2.5, 2.0, 0.5)));
    cx.bin = 100;
    assert!(!windowed().evaluate(&cx).unwrap().anomalous);
}

#[test]
fn windows_stop_at_unknown_or_warm_up_bins() {
    let mut h = steady(100, 5, 12, 2.0);
    h.push(97, crate::series::BinRecord::default());
    let mut c = counts(112, 100, 12);
    c.failed_users = 12;
    let mut cx = ctx(&h, c, Some(expected(102.0, 100.0, 2.0)));
    cx.bin = 100;
    // Only bins 98, 99 and 100 are usable: 36 failures in 3 bins fit the window of 2.
    let f = windowed().evaluate(&cx).unwrap();
    assert!(f.window_bins <= 2, "{f:?}");
}

/// A sparse signal (unknown usernames) whose expectation rests on three past bins
/// that held nothing: eleven events in two hours, one to three a bin.
fn sparse_two_hours(
    samples: usize,
) -> (
    History,
    crate::series::Counts,
    super::super::baseline::Expected,
) {
    let mut h = History::new(64);
    for (k, n) in [1u32, 3, 1, 1, 0, 1, 1].into_iter().enumerate() {
        h.push(
            93 + k as i64,
            crate::series::BinRecord {
                total: n,
                failure: n,
                failed_users: n,
                failed_ips: n,
                known: true,
                expected_failure: 0.0,
                ..Default::default()
            },
        );
    }
    let mut c = counts(3, 0, 3);
    c.failed_users = 3;
    c.failed_ips = 3;
    let mut e = expected(0.0, 0.0, 0.0);
    e.samples = samples;
    (h, c, e)
}

#[test]
fn chance_events_where_three_empty_past_bins_expect_none_do_not_page() {
    let (h, c, e) = sparse_two_hours(3);
    let mut cx = ctx(&h, c, Some(e));
    cx.bin = 100;
    cx.dispersion.failure = 0.1;
    let d = CountSpike {
        min_count: 10,
        ..windowed()
    };
    let f = d.evaluate(&cx).unwrap();
    assert!(!f.anomalous, "{f:?}");
    // Taken as exact (no past bin behind it), the same expectation pages: 11 events
    // where none were expected.
    let (h, c, e) = sparse_two_hours(0);
    let mut cx = ctx(&h, c, Some(e));
    cx.bin = 100;
    cx.dispersion.failure = 0.1;
    let f = d.evaluate(&cx).unwrap();
    assert!(f.anomalous && f.observed == 11.0, "{f:?}");
}

#[test]
fn an_attack_still_pages_against_an_uncertain_expectation() {
    // Thirty unknown usernames in one bin where three past bins held one in all.
    let h = History::new(64);
    let mut c = counts(30, 0, 30);
    c.failed_users = 30;
    c.failed_ips = 30;
    let mut e = expected(0.33, 0.0, 0.33);
    e.samples = 3;
    let f = windowed().evaluate(&ctx(&h, c, Some(e))).unwrap();
    assert!(f.anomalous && f.p_value < 1e-9, "{f:?}");
}

#[test]
fn the_predictive_model_widens_with_fewer_past_events() {
    // Exact: the model itself. Resting on past events: the mean moves by ½ / copies,
    // and the dispersion grows by about 1 / events.
    assert_eq!(predictive(4.0, 0.1, 0.0, 4.0), CountModel::new(4.0, 0.1));
    let few = predictive(4.0, 0.0, 1.0, 4.0);
    let many = predictive(4.0, 0.0, 100.0, 4.0);
    assert!((few.mean - 4.0).abs() < 1e-12 && (few.phi - 1.0 / 5.0).abs() < 1e-12);
    assert!(many.phi < 0.003 && (many.mean - 4.0).abs() < 1e-12);
    // An expectation of 0 from three empty past bins is pulled towards the rate of
    // the bins before the window.
    let zero = predictive(0.0, 0.0, 1.0, 2.0);
    assert!((zero.mean - 1.0 / 1.5).abs() < 1e-12 && (zero.phi - 1.0).abs() < 1e-12);
    assert!(few.upper_tail(20) > 100.0 * many.upper_tail(20));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    /// Sparse quiet traffic (Poisson, a fifth of an event to three a bin at the
    /// day's peak, as Okta's signals are) judged against what the real seasonal
    /// baseline learns of it from its first weeks (three samples a bin in the second
    /// week, six from the third): with every window judged and the floors off, the
    /// share of bins that page stays about the configured `p_value`. Taken as exact,
    /// an expectation of three empty past bins paged such traffic many times over.
    /// The same with `pooled_rate`, for a flat signal and a seasonal one.
    #[test]
    fn sparse_traffic_against_a_learned_baseline_pages_at_about_the_configured_rate(level in 0.2f64..3.0, flat in proptest::bool::ANY, pooled in proptest::bool::ANY, seed in 0u64..1000) {
        use crate::detect::baseline::{Baseline, Seasonal};
        use rand::SeedableRng;
        use rand_distr::{Distribution, Poisson};
        const BIN: i64 = 15 * 60_000;
        let p_value = 0.01;
        let d = CountSpike { metric: SpikeMetric::Failure, p_value, min_count: 0, min_ratio: 1e-9, window_min_ratio: 1e-9, windows: DEFAULT_WINDOWS.to_vec(), spread: true, spread_sources: false, pooled, count_sources: false };
        let baseline = Seasonal::new(BIN, 14 * 96);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut h = History::new(14 * 96);
        let (mut pages, mut judged) = (0u32, 0u32);
        for b in 0..(4 * 7 * 96i64) {
            let hour = (b % 96) as f64 / 4.0;
            // A signal at every hour alike (ThreatInsight's blocks) or one that peaks
            // in the afternoon (unknown usernames: people's typos).
            let mu = if flat { level * 0.4 } else { level * (0.1 + (-(hour - 14.0).powi(2) / 18.0).exp()) };
            let n = Poisson::new(mu).unwrap().sample(&mut rng) as u64;
            let mut c = counts(n, 0, n);
            c.failed_users = n;
            c.failed_ips = n;
            let e = baseline.expected(&h, b);
            if let (Some(e), true) = (e, b >= 7 * 96) {
                let mut cx = ctx(&h, c, Some(e));
                cx.bin = b;
                cx.dispersion.failure = 0.1;
                judged += 1;
                pages += u32::from(d.evaluate(&cx).unwrap().anomalous);
            }
            let mut r = crate::series::BinRecord::from_counts(c, b, BIN);
            r.expected_failure = e.map_or(-1.0, |e| e.failure as f32);
            r.expected_total = e.map_or(0.0, |e| e.total as f32);
            r.seasonal_total = e.map_or(0.0, |e| e.seasonal_total as f32);
            h.push(b, r);
        }
        let rate = f64::from(pages) / f64::from(judged);
        proptest::prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
    }
}

#[test]
fn windows_are_read_sorted_with_one() {
    let mut p = Problems::default();
    let v = serde_json::json!({"windows": [8, 4, 4]});
    let mut t = Table::new("d", Some(&v), &mut p);
    let d = CountSpike::read(SpikeMetric::Failure, &mut t, &mut p);
    assert!(p.0.is_empty(), "{p:?}");
    assert_eq!(d.windows, vec![1, 4, 8]);
    assert_eq!(d.window_bins(), 8);
    let v = serde_json::json!({"windows": [0]});
    let mut t = Table::new("d", Some(&v), &mut p);
    CountSpike::read(SpikeMetric::Failure, &mut t, &mut p);
    assert_eq!(p.0.len(), 1);
}

/// The share of judged bins that page over `bins` bins of quiet traffic drawn from the
/// baseline's own distribution: a negative binomial (`phi`) around a daily curve of
/// `level`, the expectation known, every window judged and the floors off.
fn quiet_page_rate(level: f64, phi: f64, seed: u64, bins: i64, p_value: f64) -> f64 {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Gamma, Poisson};
    let d = CountSpike {
        metric: SpikeMetric::Failure,
        p_value,
        min_count: 0,
        min_ratio: 1e-9,
        window_min_ratio: 1e-9,
        windows: DEFAULT_WINDOWS.to_vec(),
        spread: true,
        spread_sources: false,
        pooled: false,
        count_sources: false,
    };
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut h = History::new(64);
    let (mut pages, mut judged) = (0u32, 0u32);
    for b in 0..bins {
        let hour = (b % 96) as f64 / 4.0;
        let mu = level * (0.2 + (-(hour - 12.0).powi(2) / 18.0).exp());
        let lambda = if phi > 0.0 {
            Gamma::new(1.0 / phi, mu * phi).unwrap().sample(&mut rng)
        } else {
            mu
        };
        let n = if lambda > 0.0 {
            Poisson::new(lambda).unwrap().sample(&mut rng) as u64
        } else {
            0
        };
        let mut c = counts(n + 100, 100, n);
        c.failed_users = n;
        let mut cx = ctx(&h, c, Some(expected(mu + 100.0, 100.0, mu)));
        cx.bin = b;
        cx.dispersion.failure = phi;
        let f = d.evaluate(&cx).unwrap();
        if b >= 16 {
            judged += 1;
            pages += u32::from(f.anomalous);
        }
        let mut r = crate::series::BinRecord::from_counts(c, b, 900_000);
        r.expected_failure = mu as f32;
        r.expected_total = (mu + 100.0) as f32;
        h.push(b, r);
    }
    f64::from(pages) / f64::from(judged)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 8,
        rng_seed: proptest::test_runner::RngSeed::Fixed(15),
        ..proptest::prelude::ProptestConfig::default()
    })]
    /// Quiet traffic drawn from the baseline's own distribution pages at about the
    /// configured `p_value`: at most it (Bonferroni), and not orders of magnitude below
    /// (the windows are not made blind by the split). The true share is about a tenth of
    /// `p_value` (the predictive distribution is conservative), so 24,000 bins: at 6,000
    /// a run held as few as one page (level 30.5, phi 0.005, seed 421) and failed the
    /// lower bound by chance. Its cases are drawn from a fixed seed: a rate estimated
    /// from two dozen clustered pages still falls short by chance now and then (a
    /// fresh-clone CI run drew level 38.8, phi 0.002, seed 76: 10 pages where seven
    /// other seeds at that point held 22–28), and a check that fails by chance is no
    /// check.
    #[test]
    fn quiet_traffic_pages_at_about_the_configured_rate(level in 2.0f64..40.0, phi in 0.0f64..0.2, seed in 0u64..1000) {
        let p_value = 0.01;
        let rate = quiet_page_rate(level, phi, seed, 24_000, p_value);
        proptest::prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
        proptest::prop_assert!(rate >= p_value / 20.0, "rate {rate} far below {p_value}");
    }
}

#[test]
fn a_burst_of_a_flat_sparse_signal_pages_against_its_pooled_rate() {
    // Ten days of ThreatInsight's blocks, one every fourth bin at any hour, then twelve
    // in half an hour where the same hours of past weeks held none.
    let mut h = History::new(14 * 96);
    for b in 0..10 * 96 {
        let n = u32::from(b % 4 == 0);
        let mut r =
            crate::series::BinRecord::from_counts(counts(n.into(), 0, n.into()), b, 900_000);
        r.expected_failure = 0.0;
        h.push(b, r);
    }
    let mut burst = crate::series::BinRecord::from_counts(counts(6, 0, 6), 10 * 96, 900_000);
    burst.expected_failure = 0.0;
    burst.failed_ips = 6;
    h.push(10 * 96, burst);
    let mut c = counts(6, 0, 6);
    c.failed_ips = 6;
    let mut e = expected(0.0, 0.0, 0.0);
    e.samples = 3;
    let d = CountSpike {
        min_count: 10,
        spread: false,
        spread_sources: true,
        ..windowed()
    };
    let mut cx = ctx(&h, c, Some(e));
    cx.bin = 10 * 96 + 1;
    let seasonal = d.evaluate(&cx).unwrap();
    assert!(!seasonal.anomalous, "{seasonal:?}");
    let pooled = CountSpike { pooled: true, ..d }.evaluate(&cx).unwrap();
    assert!(pooled.anomalous && pooled.window_bins == 2, "{pooled:?}");
    assert!(
        pooled.p_value < 1e-9 && seasonal.p_value > 1e-6,
        "{pooled:?} {seasonal:?}"
    );
}

#[test]
fn a_reset_wave_passes_ten_times_the_failures_without_paging() {
    // Forty failures where two are usual, from 24 people failing about twice each:
    // while most sign-ins succeed it is people retrying (a help-desk reset wave), not
    // spread enough for an attack; when most attempts fail it pages.
    let h = History::new(10);
    let e = Some(expected(46.0, 44.0, 2.0));
    let mut wave = counts(100, 60, 40);
    wave.failed_users = 24;
    let f = spike().evaluate(&ctx(&h, wave, e)).unwrap();
    assert!(!f.anomalous && f.p_value < 1e-6, "{f:?}");
    let mut failing = counts(55, 15, 40);
    failing.failed_users = 24;
    let f = spike().evaluate(&ctx(&h, failing, e)).unwrap();
    assert!(f.anomalous, "{f:?}");
}

#[test]
fn a_small_cohort_behind_one_nat_does_not_spread_over_enough_sources() {
    // Hard seed 4 at 600 people: ten unknown usernames in three bins where 1.65 were due,
    // from six addresses counted bin by bin (one office NAT in every bin). Rotating
    // proxies bring about one address per attempt, and page.
    let d = CountSpike {
        p_value: 1e-4,
        min_count: 10,
        spread_sources: true,
        ..spike()
    };
    let h = History::new(10);
    let e = Some(expected(1.65, 0.0, 1.65));
    let judge = |ips: u64| {
        let mut c = counts(10, 0, 10);
        c.failed_users = 10;
        c.failed_ips = ips;
        d.evaluate(&ctx(&h, c, e)).unwrap()
    };
    let nat = judge(6);
    assert!(!nat.anomalous && nat.p_value < 1e-4, "{nat:?}");
    let proxies = judge(9);
    assert!(proxies.anomalous, "{proxies:?}");
}

mod addresses;
