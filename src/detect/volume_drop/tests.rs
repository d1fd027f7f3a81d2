use super::super::test_support::*;
use super::*;
use crate::detect::baseline::LocalTime;
use crate::series::{BinRecord, History};
use proptest::prelude::*;

fn det() -> VolumeDrop {
    let mut p = Problems::default();
    let mut t = Table::new("", None, &mut p);
    VolumeDrop::read(&mut t, &mut p)
}

/// A past bin that held `total` attempts (nine in ten successes) where the season
/// expected `season`.
fn record(total: u32, season: f32) -> BinRecord {
    BinRecord {
        total,
        success: total * 9 / 10,
        known: true,
        seasonal_total: season,
        expected_total: season,
        expected_failure: -1.0,
        ..BinRecord::default()
    }
}

/// Four bins before `at` that held `ratio` of a seasonal 400.
fn history(at: i64, ratio: f64) -> History {
    let mut h = History::new(16);
    for b in (at - 4)..at {
        let total = (400.0 * ratio) as u32;
        h.push(b, record(total, 400.0));
    }
    h
}

#[test]
fn a_cliff_after_a_normal_hour_is_flagged() {
    let h = history(100, 1.0);
    let f = det()
        .evaluate(&ctx(
            &h,
            counts(90, 85, 5),
            Some(expected(400.0, 370.0, 30.0)),
        ))
        .unwrap();
    assert!(f.anomalous, "{f:?}");
    assert_eq!(f.severity, Severity::Critical);
}

#[test]
fn with_min_peak_share_only_the_busy_hours_are_judged() {
    // A week of history whose busiest bin expected 1,200: a bin expecting 400 is a
    // third of it.
    let mut h = History::new(700);
    for b in (100 - 672)..100 {
        let season = if b == 50 { 1200.0 } else { 400.0 };
        h.push(b, record(season as u32, season));
    }
    let cx = ctx(&h, counts(90, 85, 5), Some(expected(400.0, 370.0, 30.0)));
    let judged = |share: f64| {
        VolumeDrop {
            min_peak_share: share,
            ..det()
        }
        .evaluate(&cx)
    };
    assert!(
        judged(0.0).is_some_and(|f| f.anomalous),
        "the cliff pages without the floor"
    );
    assert!(
        judged(0.3).is_some_and(|f| f.anomalous),
        "a third of the peak is judged at 0.3"
    );
    assert_eq!(judged(0.5), None, "below half the peak, not judged at 0.5");
}

#[test]
fn a_holiday_is_quiet_all_along_and_is_not() {
    // The hour before was already at a fifth of the season.
    let h = history(100, 0.2);
    let f = det()
        .evaluate(&ctx(
            &h,
            counts(70, 65, 5),
            Some(expected(400.0, 370.0, 30.0)),
        ))
        .unwrap();
    assert!(!f.anomalous, "{f:?}");
}

#[test]
fn an_hour_before_short_of_three_quarters_of_its_season_is_no_normal_hour() {
    // One continent on holiday: the hour before holds the other's traffic only, 0.6
    // of the season, and the window where the absent continent's morning was due
    // falls far below it. Not judged a drop; the same cliff after an hour at 0.8 is.
    let judge = |ratio: f64| {
        let h = history(100, ratio);
        det()
            .evaluate(&ctx(
                &h,
                counts(40, 36, 4),
                Some(expected(400.0, 370.0, 30.0)),
            ))
            .unwrap()
    };
    let f = judge(0.6);
    assert!(f.p_value < 1e-6 && !f.anomalous, "{f:?}");
    assert!(judge(0.8).anomalous);
}

#[test]
fn the_end_of_a_surge_is_not_a_drop() {
    // The level factor expects 1.8x the season; the season itself is met.
    let h = history(100, 1.8);
    let mut e = expected(720.0, 670.0, 50.0);
    e.seasonal_total = 400.0;
    // Poisson noise between bins: the p-value alone would call it a drop.
    let mut cx = ctx(&h, counts(390, 360, 30), Some(e));
    cx.dispersion.busy_step = 0.0;
    let f = det().evaluate(&cx).unwrap();
    assert!(f.p_value < 1e-6, "a drop from the surge level: {f:?}");
    assert!(!f.anomalous, "{f:?}");
}

#[test]
fn a_scattered_series_at_half_its_level_is_no_cliff() {
    // Half the level of a normal hour: a cliff for Poisson noise, not for a series
    // whose bins scatter like social-media mentions (step dispersion 0.3).
    let h = history(100, 1.0);
    let e = Some(expected(400.0, 370.0, 30.0));
    let judge = |phi: f64| {
        let mut cx = ctx(&h, counts(200, 185, 15), e);
        cx.dispersion.busy_step = phi;
        det().evaluate(&cx).unwrap()
    };
    let poisson = judge(0.0);
    assert!(poisson.anomalous, "{poisson:?}");
    let scattered = judge(0.3);
    assert!(
        !scattered.anomalous && scattered.p_value > 0.01,
        "{scattered:?}"
    );
}

/// A normal hour at the season's 120, then bins at 70 (an outage that keeps four in
/// ten from reaching Okta): `before` normal bins then `after` dropped ones.
fn half_outage(before: i64, after: i64) -> History {
    let mut h = History::new(16);
    for b in 0..before + after {
        let total = if b < before { 120 } else { 70 };
        h.push(100 + b, record(total, 120.0));
    }
    h
}

#[test]
fn a_drop_no_single_bin_proves_pages_over_a_window() {
    let e = Some(expected(120.0, 108.0, 12.0));
    let cx = |h: &History| {
        let mut c = ctx(h, counts(70, 63, 7), e);
        c.dispersion.busy_step = 0.0;
        det().evaluate(&c).unwrap()
    };
    // The first dropped bin alone: one in about 10^5, short of 1e-6.
    let first = cx(&half_outage(6, 0));
    assert!(!first.anomalous && first.p_value > 1e-6, "{first:?}");
    // Three such bins in a row (the two before taken as clean: unflagged): the
    // window's 210 where the hour before says 360 pages, and says so.
    let third = cx(&half_outage(6, 2));
    assert!(third.anomalous, "{third:?}");
    assert!(third.window_bins >= 2, "{third:?}");
    assert_eq!(third.observed, 70.0 * f64::from(third.window_bins));
    // The attempts fell from 120 to 70 a bin (58 %, under `max_fraction`): the
    // window stands for all its bins in the lifecycle.
    assert_eq!(third.evidence_bins, third.window_bins, "{third:?}");
    assert_eq!(first.evidence_bins, 1, "{first:?}");
    // Without the longer windows, the same bins never page.
    let mut one = det();
    one.windows = vec![1];
    let h = half_outage(6, 2);
    let mut c = ctx(&h, counts(70, 63, 7), e);
    c.dispersion.busy_step = 0.0;
    assert!(!one.evaluate(&c).unwrap().anomalous);
}

/// The hour before at 120 a bin, then the window at `during` a bin where the season
/// says 220 (a past week's attack or surge in it): the finding on the last bin.
fn after_a_season_that_rose(during: u32) -> Finding {
    let mut h = History::new(16);
    for b in 0..7 {
        let (total, season) = if b < 4 { (120, 120.0) } else { (during, 220.0) };
        h.push(100 + b, record(total, season));
    }
    let mut c = ctx(
        &h,
        counts(u64::from(during), 0, 0),
        Some(expected(220.0, 198.0, 22.0)),
    );
    c.dispersion.busy_step = 0.0;
    det().evaluate(&c).unwrap()
}

/// A window low only against the season while the attempts go on at about the hour
/// before's (110 a bin after 120) is no drop, however sure the test against the
/// season; when they fell to 90 a bin (three quarters, above `max_fraction`) it may be
/// anomalous, but it stands for one bin only.
#[test]
fn a_window_low_only_against_the_season_is_no_drop_or_one_bin_of_proof() {
    let flat = after_a_season_that_rose(110);
    assert!(flat.p_value <= 1e-6 && !flat.anomalous, "{flat:?}");
    let fell = after_a_season_that_rose(90);
    assert!(fell.anomalous && fell.window_bins >= 2, "{fell:?}");
    assert_eq!(fell.evidence_bins, 1, "{fell:?}");
}

#[test]
fn silence_and_quiet_hours_are_left_alone() {
    let h = history(100, 1.0);
    let e = Some(expected(400.0, 370.0, 30.0));
    assert_eq!(det().evaluate(&ctx(&h, counts(0, 0, 0), e)), None);
    let night = Some(expected(8.0, 7.0, 1.0));
    assert_eq!(det().evaluate(&ctx(&h, counts(1, 1, 0), night)), None);
}

/// Two weeks and a bit of 15-minute bins at 200 (season 200) before bin 2000; in
/// each past week the bin at the time of bin 2000 held 340 when `surged` says so
/// (a surge that week, or a rise that is truly the season's).
fn past_weeks_history(surged: [bool; 2]) -> History {
    let week = 672;
    let mut h = History::new(1400);
    for b in (2000 - 2 * week - 8)..2000 {
        let k = (2000 - b) / week;
        let at_window = (2000 - b) % week == 0;
        let surge = at_window && (k == 1 && surged[0] || k == 2 && surged[1]);
        h.push(b, record(if surge { 340 } else { 200 }, 200.0));
    }
    h
}

#[test]
fn a_drop_against_a_season_one_odd_week_made_must_be_one_against_each_week() {
    // The season averaged last week's surge in: 340 where the hour before says 200
    // a bin. 150 is a cliff against that, and against every week that rose too.
    let judge = |h: &History, x: u64| {
        let mut e = expected(340.0, 310.0, 30.0);
        e.seasonal_total = 340.0;
        let mut cx = ctx(h, counts(x, x * 9 / 10, x / 10), Some(e));
        cx.dispersion.busy_step = 0.0;
        det().evaluate(&cx).unwrap()
    };
    let risen = judge(&past_weeks_history([true, true]), 150);
    assert!(risen.anomalous, "{risen:?}");
    // Last week did not rise: in its proportion the bin should hold 200, and 150
    // is more than `max_fraction` of that. The season's p-value is unchanged (it
    // would page), the floor says no.
    let flat = judge(&past_weeks_history([false, true]), 150);
    assert!(flat.p_value < 1e-6, "{flat:?}");
    assert_eq!(flat.lower, (0.65f64 * 200.0).floor(), "{flat:?}");
    assert!(!flat.anomalous, "{flat:?}");
    // A real cliff is one against that week too.
    assert!(judge(&past_weeks_history([false, true]), 60).anomalous);
    // Without any past week in the history the season alone decides (and pages).
    let mut h = History::new(16);
    for b in 1996..2000 {
        h.push(b, record(200, 200.0));
    }
    assert!(judge(&h, 150).anomalous);
}

#[test]
fn a_week_across_a_clock_change_is_also_asked_at_the_same_local_time() {
    // Monday 2 November 2026 09:15 New York (EST, the day after the change), 14:15 UTC.
    let bin_ms = 15 * 60_000;
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-02T14:15:00Z")
        .unwrap() // ok: a test
        .timestamp_millis()
        / bin_ms;
    let week = 672;
    // Both past weeks were on EDT: their 09:15 was 13:15 UTC, four bins earlier. At
    // the same UTC bins (10:15 then) each held a morning peak of 340; at 09:15 200,
    // like every other bin.
    let mut h = History::new(2 * 672 + 16);
    for b in (at - 2 * week - 12)..at {
        let utc_copy = (at - b) % week == 0;
        h.push(b, record(if utc_copy { 340 } else { 200 }, 200.0));
    }
    let judge = |local: LocalTime| {
        let mut e = expected(340.0, 310.0, 30.0);
        e.seasonal_total = 340.0;
        let mut cx = ctx(&h, counts(150, 135, 15), Some(e));
        (cx.dispersion.busy_step, cx.local) = (0.0, local);
        det().evaluate(&cx).unwrap() // ok: a test
    };
    // Read at the same UTC bins only (a season in UTC), the weeks agree with the
    // season: 150 is a drop.
    let utc = judge(LocalTime::new(bin_ms, None));
    assert!(utc.anomalous, "{utc:?}");
    // At the same New York time both weeks held 200 after 200: 150 is more than
    // `max_fraction` of that, no drop.
    let local = judge(LocalTime::new(bin_ms, Some(chrono_tz::America::New_York)));
    assert_eq!(local.lower, (0.65f64 * 200.0).floor(), "{local:?}");
    assert!(!local.anomalous, "{local:?}");
}

proptest! {
    /// Whatever the counts, a bin at or above its expectation is never a drop, and a
    /// finding's band is ordered.
    #[test]
    fn never_flags_normal_or_high_volume(total in 400u64..5000, ratio in 0.0f64..3.0) {
        // (Expected 400 per bin at the season's level.)
        let h = history(100, ratio);
        if let Some(f) = det().evaluate(&ctx(&h, counts(total, total, 0), Some(expected(400.0, 380.0, 20.0)))) {
            prop_assert!(!f.anomalous);
            prop_assert!(f.lower <= f.upper);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        // A rate estimated from a few dozen pages: fixed draws, see
        // `detect::spike::tests::quiet_traffic_pages_at_about_the_configured_rate`.
        rng_seed: proptest::test_runner::RngSeed::Fixed(15),
        ..ProptestConfig::default()
    })]
    /// Quiet traffic drawn from the baseline's own distribution — a daily curve
    /// scaled by the level of the day (busy and quiet days, one drifting into the
    /// next over the day, not in a step at midnight), each bin negative
    /// binomial around it with the learned step dispersion — pages at about the
    /// configured `p_value` once the floors are off: at most it (both tests must
    /// reject), and not orders of magnitude below (the step test does not make the
    /// detector blind on scattered series).
    #[test]
    fn quiet_traffic_pages_at_about_the_configured_rate(level in 30.0f64..400.0, phi in 0.0f64..0.15, seed in 0u64..1000) {
        let p_value = 0.01;
        let d = VolumeDrop { p_value, max_fraction: 1.0, min_expected: 5.0, lookback: 4, min_recent_ratio: 0.0, max_step_fraction: f64::INFINITY, windows: vec![1, 2, 3, 4], min_peak_share: 0.0 };
        let mut h = History::new(64);
        let (mut pages, mut judged) = (0u32, 0u32);
        for q in quiet_days(seed, level, phi, 8000) {
            let mut cx = ctx(&h, counts(q.count, q.count, 0), Some(expected(q.season, q.season, 0.0)));
            cx.bin = q.bin;
            cx.dispersion.busy_step = phi;
            let f = d.evaluate(&cx);
            let anomalous = f.as_ref().is_some_and(|f| f.anomalous);
            if q.bin >= 8 && f.is_some() {
                judged += 1;
                pages += u32::from(anomalous);
            }
            h.push(q.bin, quiet_record(&q, anomalous));
        }
        let rate = f64::from(pages) / f64::from(judged);
        prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
        prop_assert!(rate >= p_value / 20.0, "rate {rate} far below {p_value}");
    }
}

/// `hours` of bins before `at` at `busy` of a seasonal 400 a bin, after bins at the
/// season itself (16 bins in all: the four hours `day_level` reads).
fn busy_history(at: i64, hours: i64, busy: f64) -> History {
    let mut h = History::new(32);
    for b in (at - 16)..at {
        let ratio = if b >= at - hours * 4 { busy } else { 1.0 };
        h.push(b, record((400.0 * ratio) as u32, 400.0));
    }
    h
}

/// Half the day's attempts, where the day has run at 1.5x its season: 300 attempts,
/// 75 % of the season (hard seed 2's outage, "A day busier than its season").
fn half_a_busy_day(h: &History) -> Finding {
    let mut e = expected(600.0, 560.0, 40.0);
    e.seasonal_total = 400.0;
    let mut cx = ctx(h, counts(300, 280, 20), Some(e));
    cx.dispersion.busy_step = 0.0;
    det().evaluate(&cx).unwrap()
}

#[test]
fn half_of_a_day_busier_than_its_season_is_a_drop() {
    let f = half_a_busy_day(&busy_history(100, 4, 1.5));
    assert!(f.anomalous, "{f:?}");
    assert_eq!(f.lower, 390.0, "the season at the day's level: {f:?}");
}

#[test]
fn a_surge_shorter_than_the_day_level_hours_keeps_the_season() {
    // Three hours at 1.5x after a normal one: the end of a surge, judged against the
    // season (0.65 x 400).
    let f = half_a_busy_day(&busy_history(100, 3, 1.5));
    assert!(!f.anomalous, "{f:?}");
    assert_eq!(f.lower, 260.0, "{f:?}");
}
