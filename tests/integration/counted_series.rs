//! Any counted series: a CSV of `timestamp,value` from another dashboard (5-minute
//! social-media mention counts, scattered far beyond Poisson) through the built-in
//! rules, as `authpulse backtest --events series.csv` runs it. The volume detectors
//! learn the series' dispersion and seasons, so on quiet traffic they page at about the
//! configured rate — every detector at `p_value = 1e-6` per 15-minute bin, i.e. well
//! under one page a month on traffic that fits the model — and the bursts still page.
//! (The fixture: [`crate::support::counts`].)

use authpulse::alert::{Alert, Status};
use authpulse::offline::backtest;
use authpulse::rule::RuleSpec;

use crate::support::counts::{self, Burst, START_MS};

const BIN_MS: i64 = 15 * 60_000;
/// The dispersion of the fixture's 15-minute bins: like the NAB Twitter series.
const PHI: f64 = 0.3;
/// Mentions per 5 minutes at the busiest hour of a weekday.
const PEAK: f64 = 40.0;

/// The firing alerts, one per bin and detector: a CSV is one series that every
/// built-in rule reads, so `okta-sign-ins` and `okta-sessions` judge the same counts
/// with the same `flatline`, and their pages at one bin are one finding.
fn pages(csv: &str) -> Vec<Alert> {
    let rules = RuleSpec::builtin();
    let outcome = backtest::run_csv(csv.as_bytes(), &rules, None).expect("csv backtest");
    assert_eq!(outcome.csv.as_ref().map(|c| c.bad_count), Some(0));
    let mut seen = std::collections::HashSet::new();
    outcome
        .alerts
        .into_iter()
        .filter(|a| a.status == Status::Firing)
        .filter(|a| seen.insert((a.bin_start.ms(), a.detector, a.observed.to_bits())))
        .collect()
}

fn describe(alerts: &[Alert]) -> String {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} {} observed {} expected {:.1} p {:.1e}\n",
                a.bin_start, a.rule, a.detector, a.observed, a.expected, a.p_value
            )
        })
        .collect()
}

#[test]
fn quiet_overdispersed_counts_page_about_at_the_configured_rate() {
    let days = 42;
    for seed in [1, 2] {
        let csv = counts::csv(seed, days, PEAK, PHI, &[]);
        let fired = pages(&csv);
        // Two days of warm-up are not judged. At 1e-6 per bin and detector the config
        // expects far less than one page in these six weeks; one is tolerated (the
        // baseline's own estimation noise), two a week would be the old behaviour.
        let per_week = fired.len() as f64 * 7.0 / (days - 2) as f64;
        assert!(
            fired.len() <= 1,
            "seed {seed}: {per_week:.2} pages per week on quiet traffic:\n{}",
            describe(&fired)
        );
    }
}

#[test]
fn injected_bursts_page_and_little_else_does() {
    let days = 35;
    let day = 24.0;
    // Bursts like the public series' (a news item: twenty to forty times the usual
    // count within a quarter of an hour, fading over the next).
    let bursts = [
        // A weekday afternoon in the second week.
        Burst::at(8.0 * day + 15.0, 45, 25.0),
        // The middle of a night.
        Burst::at(17.0 * day + 3.0, 30, 30.0),
        // A Saturday afternoon.
        Burst::at(19.0 * day + 14.0, 60, 20.0),
        // A weekday morning in the fourth week.
        Burst::at(22.0 * day + 10.0, 45, 25.0),
        // The fifth week's evening, short and sharp.
        Burst::at(30.0 * day + 20.0, 30, 40.0),
    ];
    let csv = counts::csv(7, days, PEAK, PHI, &bursts);
    let fired = pages(&csv);
    let during = |b: &Burst, a: &Alert| {
        let at = a.bin_start.ms();
        at >= b.start_ms - BIN_MS && at <= b.end_ms() + 2 * BIN_MS
    };
    for (i, b) in bursts.iter().enumerate() {
        assert!(
            fired
                .iter()
                .any(|a| a.detector == "volume_spike" && during(b, a)),
            "burst {i} at +{} h did not page:\n{}",
            (b.start_ms - START_MS) / 3_600_000,
            describe(&fired)
        );
    }
    let others: Vec<Alert> = fired
        .into_iter()
        .filter(|a| !bursts.iter().any(|b| during(b, a)))
        .collect();
    assert!(
        others.len() <= 1,
        "pages outside the bursts:\n{}",
        describe(&others)
    );
}
