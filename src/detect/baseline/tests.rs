//! The seasonal baseline's tests: tiers, trimmed means, outliers, level, time zones and
//! the copies a window's expectation rests on.

use super::*;

const BIN: i64 = 15 * 60_000;

fn rec(total: u32, failure: u32) -> BinRecord {
    BinRecord {
        total,
        success: total - failure,
        failure,
        known: true,
        anomalous: false,
        failed_users: 0,
        failed_ips: 0,
        seasonal_total: 0.0,
        expected_total: 0.0,
        expected_failure: -1.0,
        ..BinRecord::default()
    }
}

/// A week-periodic series: busy during the day, quiet at night.
fn diurnal(bin: i64) -> u32 {
    let hour = (bin * BIN / 3_600_000) % 24;
    if (8..18).contains(&hour) {
        100
    } else {
        5
    }
}

#[test]
fn too_little_history_means_no_expectation() {
    let b = Seasonal::new(BIN, 14 * 96);
    let mut h = History::new(14 * 96);
    h.push(0, rec(10, 1));
    assert_eq!(b.expected(&h, 1), None);
}

#[test]
fn recent_level_then_time_of_day_then_hour_of_week() {
    let b = Seasonal::new(BIN, 14 * 96);
    let mut h = History::new(14 * 96);
    // Start on a Monday (1970-01-05 is day 4).
    let start = 4 * 96;
    for i in 0..4 {
        h.push(start + i, rec(diurnal(start + i), 2));
    }
    assert_eq!(b.expected(&h, start + 4).unwrap().basis, Basis::RecentLevel);
    for i in 4..(2 * 96) {
        let bin = start + i;
        let mut r = rec(diurnal(bin), 2);
        r.seasonal_total = diurnal(bin) as f32;
        h.push(bin, r);
    }
    // Tuesday 10:00, one weekday behind it.
    let tue10 = start + 96 + 40;
    let e = b.expected(&h, tue10 + 96).unwrap();
    assert_eq!(e.basis, Basis::TimeOfDay);
    assert!((e.total - 100.0).abs() < 10.0, "{e:?}");
    let night = start + 2 * 96 + 8;
    assert!(b.expected(&h, night).unwrap().total < 10.0);
    for i in (2 * 96)..(8 * 96) {
        let bin = start + i;
        let mut r = rec(diurnal(bin), 2);
        r.seasonal_total = diurnal(bin) as f32;
        h.push(bin, r);
    }
    let e = b.expected(&h, start + 8 * 96 + 40).unwrap();
    assert_eq!(e.basis, Basis::HourOfWeek);
    assert!((e.total - 100.0).abs() < 10.0, "{e:?}");
}

#[test]
fn anomalous_and_unknown_bins_are_not_learned() {
    let b = Seasonal::new(BIN, 14 * 96);
    let mut h = History::new(14 * 96);
    for i in 0..10 {
        h.push(i, rec(10, 1));
    }
    let mut attack = rec(5000, 4900);
    attack.anomalous = true;
    h.push(10, attack);
    h.push(11, BinRecord::default());
    let e = b.expected(&h, 12).unwrap();
    assert!((e.total - 10.0).abs() < 1e-9, "{e:?}");
}

proptest::proptest! {
    /// The trimmed mean lies between the smallest and largest sample, and matches a
    /// plain sort-and-drop, however many samples there are.
    #[test]
    fn trimmed_mean_is_bounded(totals in proptest::collection::vec(0u32..10_000, 1..200)) {
        let recs: Vec<BinRecord> = totals.iter().map(|&t| rec(t, 0)).collect();
        let (mean, _, _) = trimmed(&recs);
        let mut v: Vec<f64> = totals.iter().map(|&t| f64::from(t)).collect();
        v.sort_by(f64::total_cmp);
        let plain = v.iter().sum::<f64>() / v.len() as f64;
        let cut = usize::from(v.len() >= 5 && plain >= SPARSE_MEAN);
        let kept = &v[cut..v.len() - cut];
        let want = kept.iter().sum::<f64>() / kept.len() as f64;
        proptest::prop_assert!((mean - want).abs() < 1e-9);
    }
}

/// A signal that holds an event every few bins keeps its rate: the one bin of five
/// that held something is its mass, not an outlier to drop.
#[test]
fn a_sparse_series_is_not_trimmed_to_zero() {
    let recs: Vec<BinRecord> = [0, 0, 2, 0, 1, 0].map(|f| rec(f, f)).to_vec();
    let (total, _, failure) = trimmed(&recs);
    assert!((total - 0.5).abs() < 1e-12 && (failure - 0.5).abs() < 1e-12);
    // A busy one still drops its extremes.
    let recs: Vec<BinRecord> = [100, 90, 500, 110, 0].map(|t| rec(t, 0)).to_vec();
    assert!((trimmed(&recs).0 - 100.0).abs() < 1e-12);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
    /// Sparse Poisson samples (a fraction of an event a bin): the expectation is their
    /// mean, unbiased, where the trimmed mean sat far below the rate.
    #[test]
    fn sparse_poisson_samples_keep_their_rate(rate in 0.05f64..1.0, seed in 0u64..1000) {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Poisson};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let poisson = Poisson::new(rate).unwrap();
        let (mut sum, mut want) = (0.0, 0.0);
        for _ in 0..400 {
            let recs: Vec<BinRecord> = (0..6).map(|_| { let f = poisson.sample(&mut rng) as u32; rec(f, f) }).collect();
            sum += trimmed(&recs).2;
            want += rate;
        }
        proptest::prop_assert!((sum / want - 1.0).abs() < 0.2, "mean {} for rate {}", sum / 400.0, rate);
    }
}

#[test]
fn level_follows_a_quiet_day() {
    let b = Seasonal::new(BIN, 14 * 96);
    let mut h = History::new(14 * 96);
    for bin in 0..(8 * 96) {
        let mut r = rec(100, 5);
        r.seasonal_total = 100.0;
        h.push(bin, r);
    }
    // A holiday: a few hours at a fifth of the usual volume.
    for bin in (8 * 96)..(8 * 96 + 8) {
        let mut r = rec(20, 1);
        r.seasonal_total = 100.0;
        h.push(bin, r);
    }
    let e = b.expected(&h, 8 * 96 + 8).unwrap();
    assert!(e.total < 40.0 && e.seasonal_total > 90.0, "{e:?}");
}

#[test]
fn a_holiday_is_not_averaged_into_the_same_day_next_week() {
    let b = Seasonal::new(BIN, 14 * 96);
    let mut h = History::new(14 * 96);
    let week = 7 * 96;
    // Two weeks of the diurnal pattern; the second week's Wednesday a holiday at a
    // fifth of the volume (each bin remembers what its season expected).
    let wednesday = |w: i64| 4 * 96 + w * week + 2 * 96;
    for bin in (4 * 96)..(4 * 96 + 2 * week) {
        let normal = diurnal(bin);
        let total = if (wednesday(1)..wednesday(1) + 96).contains(&bin) {
            normal / 5
        } else {
            normal
        };
        let mut r = rec(total, 1);
        r.seasonal_total = normal as f32;
        h.push(bin, r);
    }
    // The third Wednesday at 10:00 expects a normal day, not the mean with the holiday.
    let e = b.expected(&h, wednesday(2) + 40).unwrap();
    assert_eq!(e.basis, Basis::HourOfWeek);
    assert!((e.total - 100.0).abs() < 5.0, "{e:?}");
    // When every sample is off (the normal itself moved), they are all kept.
    let mut h = History::new(14 * 96);
    for bin in 0..(2 * week) {
        let mut r = rec(30, 1);
        r.seasonal_total = 100.0;
        h.push(bin, r);
    }
    let e = b.expected(&h, 2 * week + 40).unwrap();
    assert!((e.seasonal_total - 30.0).abs() < 1e-9, "{e:?}");
}

proptest::proptest! {
    /// Only bins far off their own expectation are left out, and never so many that
    /// fewer than `MIN_SAMPLES` remain.
    #[test]
    fn outliers_are_dropped_only_while_enough_remain(
        levels in proptest::collection::vec((0u32..300, 0u32..300), 1..12),
    ) {
        let week = 7 * 96;
        let b = Seasonal::new(BIN, 12 * week as usize);
        let mut h = History::new(13 * week as usize);
        for (k, (total, seasonal)) in levels.iter().enumerate() {
            let mut r = rec(*total, 0);
            r.seasonal_total = *seasonal as f32;
            h.push(k as i64 * week, r);
        }
        let mut out = Samples::default();
        let at = levels.len() as i64 * week;
        b.samples(&h, at, week, |_| true, &mut out);
        let clean = levels.len();
        let typical: Vec<u32> = levels
            .iter()
            .filter(|(t, e)| is_typical(&BinRecord { seasonal_total: *e as f32, ..rec(*t, 0) }))
            .map(|(t, _)| *t)
            .collect();
        proptest::prop_assert!(out.n >= clean.min(MIN_SAMPLES));
        let dropped = typical.len() >= MIN_SAMPLES && typical.len() < clean;
        proptest::prop_assert_eq!(out.n, if dropped { typical.len() } else { clean });
        if dropped {
            // What was kept is exactly the typical bins.
            let kept: f64 = typical.iter().map(|&t| f64::from(t)).sum();
            proptest::prop_assert_eq!(out.sum[0], kept);
        }
    }
}

#[test]
fn window_samples_count_the_past_copies_of_a_window() {
    let mut e = Expected {
        total: 1.0,
        success: 0.0,
        failure: 1.0,
        seasonal_total: 1.0,
        basis: Basis::HourOfWeek,
        samples: 6,
    };
    // One bin: six samples; a long window: about one copy per past week.
    assert!((e.window_samples(1) - 6.0).abs() < 1e-12);
    assert!((e.window_samples(2) - 2.0 * 18.0 / 10.0).abs() < 1e-12);
    assert!((e.window_samples(16) - 2.0 * 144.0 / 136.0).abs() < 1e-12);
    e.basis = Basis::RecentLevel;
    e.samples = 8;
    assert!((e.window_samples(4) - 2.0).abs() < 1e-12);
    e.samples = 0;
    assert_eq!(e.window_samples(4), 0.0);
}

#[test]
fn seasons_in_the_organisations_time_zone_survive_a_dst_change() {
    // Traffic that follows New York's clock: 100 per bin from 09:00 to 10:00 local,
    // 5 otherwise, for two weeks up to Monday 2 November 2026 (clocks went back on
    // Sunday 1 November).
    let tz: Tz = "America/New_York".parse().unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-10-19T00:00:00Z")
        .unwrap()
        .timestamp_millis()
        / BIN;
    let local_nine = |bin: i64| {
        let t = chrono::DateTime::from_timestamp_millis(bin * BIN).unwrap();
        let h = t.with_timezone(&tz).format("%H").to_string();
        h == "09"
    };
    let mut h = History::new(14 * 96);
    for bin in start..(start + 14 * 96) {
        let total = if local_nine(bin) { 100 } else { 5 };
        let mut r = rec(total, 1);
        r.seasonal_total = total as f32;
        h.push(bin, r);
    }
    // Monday 2 November 09:15 New York (EST) = 14:15 UTC.
    let monday_nine = chrono::DateTime::parse_from_rfc3339("2026-11-02T14:15:00Z")
        .unwrap()
        .timestamp_millis()
        / BIN;
    assert!(local_nine(monday_nine));
    let utc = Seasonal::new(BIN, 14 * 96);
    let local = Seasonal::new(BIN, 14 * 96).with_local_time(LocalTime::new(BIN, Some(tz)));
    let e_utc = utc.expected(&h, monday_nine).unwrap();
    let e_local = local.expected(&h, monday_nine).unwrap();
    assert_eq!(e_local.basis, Basis::HourOfWeek);
    assert!(e_local.seasonal_total > 80.0, "{e_local:?}");
    assert!(e_utc.seasonal_total < 40.0, "{e_utc:?}");
}

/// The oldest week of the window counts whole or not at all: a history that keeps a few
/// bins past the window (`RuleSpec::history_bins`) still gives the season only the
/// window's, and a week whose earlier neighbour fell out of it is left out rather than
/// read by its later neighbour alone — before a morning's step that one bin is already
/// the step, and the season read half the morning into the quiet bin before it.
#[test]
fn the_oldest_week_counts_whole_or_not_at_all() {
    let b = Seasonal::new(BIN, 14 * 96);
    let bin = 20 * 96 + 20;
    let step_after = |b: i64| (b - bin).rem_euclid(7 * 96) == 1;
    let mut h = History::new(14 * 96 + 40);
    for x in (bin - 14 * 96 - 20)..bin {
        let total = if step_after(x) { 80 } else { 20 };
        let mut r = rec(total, 1);
        r.seasonal_total = total as f32;
        h.push(x, r);
    }
    let e = b.expected(&h, bin).unwrap(); // ok: a test
                                          // Last week's three bins only: two weeks back sits on the window's edge.
    assert_eq!(e.samples, 3, "{e:?}");
    // With a week more of window both weeks count whole, each with its step.
    let wider = Seasonal::new(BIN, 14 * 96 + 2).expected(&h, bin).unwrap(); // ok: a test
    assert_eq!(wider.samples, 6, "{wider:?}");
}

proptest::proptest! {
    /// `expected` skips the seasonal tiers when the window is shorter than a day: they
    /// find nothing in such a window, whatever the history (clean or not, known or not,
    /// any counts).
    #[test]
    fn a_window_shorter_than_a_day_has_only_the_recent_level(
        window in 1usize..96,
        bins in proptest::collection::vec((0u32..50, 0u32..50, proptest::bool::ANY, proptest::bool::ANY), 0..120),
        at in 0i64..200,
    ) {
        let b = Seasonal::new(BIN, window);
        let mut h = History::new(window.max(8));
        for (k, (total, failure, known, anomalous)) in bins.iter().enumerate() {
            let mut r = rec(total + failure, *failure);
            (r.known, r.anomalous) = (*known, *anomalous);
            h.push(k as i64, r);
        }
        let bin = bins.len() as i64 + at % 3;
        proptest::prop_assert_eq!(b.seasonal(&h, bin), None);
    }
}
