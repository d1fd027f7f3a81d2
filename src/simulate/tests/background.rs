//! The background traffic has the intended shape: busy weekday hours, quiet nights,
//! over-dispersed counts, realistic failures.

use std::collections::HashMap;

use chrono::{Datelike, Timelike};

use super::*;

#[test]
fn busy_weekday_hours_quiet_nights_and_weekends() {
    // One office's clock: mixing timezones smears the curve.
    let (_, rows) = quiet();
    let mut by_hour = [0u32; 24];
    let mut by_day: HashMap<u32, (u32, bool)> = HashMap::new();
    for r in rows.iter().filter(|r| r.is_start() && r.city == "New York") {
        let local = new_york(r.t);
        let weekend = local.weekday().number_from_monday() > 5;
        if !weekend {
            by_hour[local.hour() as usize] += 1;
        }
        by_day.entry(local.ordinal()).or_insert((0, weekend)).0 += 1;
    }
    let business = by_hour[9..17].iter().sum::<u32>() / 8;
    let night = by_hour[0..5].iter().sum::<u32>() / 5;
    assert!(
        business > 10 * night.max(1),
        "business {business}/h vs night {night}/h"
    );
    // Lunch dips below the morning peak.
    assert!(
        f64::from(by_hour[12]) < 0.9 * f64::from(by_hour[10]),
        "{by_hour:?}"
    );
    let mean = |weekend: bool| {
        let v: Vec<u32> = by_day
            .values()
            .filter(|(n, w)| *w == weekend && *n > 0)
            .map(|(n, _)| *n)
            .collect();
        f64::from(v.iter().sum::<u32>()) / v.len() as f64
    };
    let ratio = mean(true) / mean(false);
    assert!((0.08..0.25).contains(&ratio), "weekend/weekday {ratio:.3}");
}

#[test]
fn counts_are_over_dispersed() {
    // Per-minute counts at one fixed busy minute: Poisson would give a
    // variance equal to the mean; the wandering and Gamma factors add more.
    let world = World::build(3, 2000);
    let mut bg = model::Background::new(3);
    let ten_am_new_york = monday().timestamp_millis() + 15 * model::HOUR_MS + model::DAY_MS;
    let counts: Vec<f64> = (0..20_000)
        .map(|_| {
            let lambda = bg.site_lambda(&world, 0, ten_am_new_york);
            model::poisson(&mut bg.rng, lambda) as f64
        })
        .collect();
    let n = counts.len() as f64;
    let mean = counts.iter().sum::<f64>() / n;
    let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / n;
    assert!(mean > 2.0, "mean {mean:.2}");
    assert!(var > 1.3 * mean, "variance {var:.2} vs mean {mean:.2}");
}

#[test]
fn background_failure_share_and_reasons_are_realistic() {
    let (_, rows) = quiet();
    let starts: Vec<&Row> = rows.iter().filter(|r| r.is_start()).collect();
    let failed: Vec<&Row> = starts.iter().copied().filter(|r| !r.success).collect();
    let share = failed.len() as f64 / starts.len() as f64;
    assert!((0.03..0.08).contains(&share), "failure share {share:.3}");
    let invalid = failed
        .iter()
        .filter(|r| r.reason.as_deref() == Some("INVALID_CREDENTIALS"))
        .count();
    assert!(invalid as f64 > 0.7 * failed.len() as f64);
    for reason in ["VERIFICATION_ERROR", "LOCKED_OUT"] {
        assert!(
            failed.iter().any(|r| r.reason.as_deref() == Some(reason)),
            "{reason}"
        );
    }
    // Username typos are logged against the typed string.
    assert!(failed.iter().any(|r| !r.login.ends_with("@example.com")));
    // Pushes follow sessions; denies are rare.
    let count = |k: &str| rows.iter().filter(|r| r.kind == k).count() as f64;
    let pushes = count("system.push.send_factor_verify_push");
    assert!(pushes > 0.6 * starts.len() as f64);
    assert!(count("user.mfa.okta_verify.deny_push") < 0.01 * pushes);
}
