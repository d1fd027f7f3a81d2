//! Behavioural tests: the output is valid, sorted and deterministic, the
//! background has the intended shape, and every incident is visible in its
//! window. Populations are small so the suite stays fast in debug builds.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use proptest::prelude::*;
use serde_json::Value;

use super::model::Model;
use super::world::World;
use super::*;

const EVENT_TYPES: [&str; 6] = [
    "user.session.start",
    "security.threat.detected",
    "user.authentication.auth_via_mfa",
    "system.push.send_factor_verify_push",
    "user.mfa.okta_verify.deny_push",
    "user.session.end",
];

/// Monday 2026-11-02, midnight UTC.
fn monday() -> DateTime<Utc> {
    DateTime::from_timestamp(1_793_577_600, 0).unwrap()
}

/// The fields the tests look at, from one line.
#[derive(Clone, Debug)]
struct Row {
    t: DateTime<Utc>,
    kind: String,
    success: bool,
    reason: Option<String>,
    ip: String,
    login: String,
    txn: String,
    city: String,
}

impl Row {
    fn is_start(&self) -> bool {
        self.kind == "user.session.start"
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(*p)
            .unwrap_or_else(|| panic!("missing {path:?} in {v}"));
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v}"))
}

/// Parses one line, asserting the envelope and the Okta fields.
fn check_line(line: &str) -> Row {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(str_at(&v, &["version"]), "0");
    assert_eq!(str_at(&v, &["id"]).len(), 36);
    assert_eq!(str_at(&v, &["detail-type"]), "SystemLog");
    assert!(str_at(&v, &["source"]).starts_with("aws.partner/okta.com/"));
    assert_eq!(str_at(&v, &["account"]), "123456789012");
    assert_eq!(str_at(&v, &["region"]), "us-east-1");
    assert!(v["resources"].as_array().unwrap().is_empty());
    let d = &v["detail"];
    let published = str_at(d, &["published"]);
    let t = DateTime::parse_from_rfc3339(published)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(published.len(), 24, "{published}");
    assert_eq!(str_at(&v, &["time"]), format!("{}Z", &published[..19]));
    assert_eq!(str_at(d, &["uuid"]).len(), 36);
    assert_eq!(str_at(d, &["version"]), "0");
    let kind = str_at(d, &["eventType"]).to_string();
    assert!(EVENT_TYPES.contains(&kind.as_str()), "{kind}");
    assert!(!str_at(d, &["displayMessage"]).is_empty());
    for f in ["id", "type", "alternateId", "displayName"] {
        str_at(d, &["actor", f]);
    }
    for f in ["rawUserAgent", "os", "browser"] {
        str_at(d, &["client", "userAgent", f]);
    }
    assert_eq!(str_at(d, &["client", "zone"]), "null");
    str_at(d, &["client", "device"]);
    let ip = str_at(d, &["client", "ipAddress"]).to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    for f in ["city", "state", "country", "postalCode"] {
        str_at(d, &["client", "geographicalContext", f]);
    }
    let geo = &d["client"]["geographicalContext"]["geolocation"];
    assert!(geo["lat"].is_f64() && geo["lon"].is_f64());
    let result = str_at(d, &["outcome", "result"]);
    let success = match result {
        "SUCCESS" => {
            assert!(d["outcome"]["reason"].is_null());
            assert_eq!(str_at(d, &["severity"]), "INFO");
            true
        }
        "FAILURE" | "DENY" => {
            assert_eq!(str_at(d, &["severity"]), "WARN");
            false
        }
        other => panic!("outcome {other}"),
    };
    let reason = d["outcome"]["reason"].as_str().map(str::to_string);
    assert!(success || reason.is_some());
    assert_eq!(str_at(d, &["transaction", "type"]), "WEB");
    str_at(d, &["transaction", "id"]);
    assert!(str_at(d, &["debugContext", "debugData", "requestUri"]).starts_with('/'));
    assert!(d["authenticationContext"]["authenticationStep"].is_u64());
    str_at(d, &["authenticationContext", "externalSessionId"]);
    assert!(d["securityContext"]["asNumber"].is_u64());
    for f in ["asOrg", "isp", "domain"] {
        str_at(d, &["securityContext", f]);
    }
    assert!(d["securityContext"]["isProxy"].is_boolean());
    assert!(d["target"].is_array());
    Row {
        t,
        kind,
        success,
        reason,
        ip,
        login: str_at(d, &["actor", "alternateId"]).to_string(),
        txn: str_at(d, &["transaction", "id"]).to_string(),
        city: str_at(d, &["client", "geographicalContext", "city"]).to_string(),
    }
}

struct Run {
    cfg: SimConfig,
    events: Vec<u8>,
    labels: Vec<u8>,
    stats: SimStats,
}

fn run(cfg: SimConfig) -> Run {
    let (mut events, mut labels) = (Vec::new(), Vec::new());
    let stats = generate(&cfg, &mut events, &mut labels).unwrap();
    Run {
        cfg,
        events,
        labels,
        stats,
    }
}

/// Checks every line and that they are sorted by `published`.
fn rows(run: &Run) -> Vec<Row> {
    let text = std::str::from_utf8(&run.events).unwrap();
    let rows: Vec<Row> = text.lines().map(check_line).collect();
    assert!(rows.windows(2).all(|w| w[0].t <= w[1].t), "not sorted");
    assert_eq!(rows.len() as u64, run.stats.events);
    assert_eq!(run.events.len() as u64, run.stats.bytes);
    rows
}

/// Two weeks of 300 people with every incident kind, easy.
fn easy() -> &'static (Run, Vec<Row>) {
    static CELL: OnceLock<(Run, Vec<Row>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let r = run(SimConfig::with_default_incidents(
            7,
            monday(),
            14,
            300,
            Difficulty::Easy,
        ));
        let rows = rows(&r);
        (r, rows)
    })
}

/// Two weeks of 300 people and no incidents.
fn quiet() -> &'static (Run, Vec<Row>) {
    static CELL: OnceLock<(Run, Vec<Row>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut cfg = SimConfig::with_default_incidents(11, monday(), 14, 300, Difficulty::Easy);
        cfg.incidents.clear();
        let r = run(cfg);
        let rows = rows(&r);
        (r, rows)
    })
}

fn incident(run: &Run, kind: IncidentKind) -> &Incident {
    run.cfg
        .incidents
        .iter()
        .find(|i| i.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in schedule"))
}

fn within(rows: &[Row], start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<&Row> {
    rows.iter().filter(|r| r.t >= start && r.t < end).collect()
}

/// Rows in the incident's window, and in the same window `days` earlier.
fn window_and_before<'a>(
    rows: &'a [Row],
    inc: &Incident,
    days: i64,
) -> (Vec<&'a Row>, Vec<&'a Row>) {
    let back = Duration::days(days);
    (
        within(rows, inc.start, inc.end),
        within(rows, inc.start - back, inc.end - back),
    )
}

/// Sign-in flows the background model expects in `[start, end)`, without
/// noise: the yardstick for windows (day-to-day factors included).
fn expected_flows(cfg: &SimConfig, start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    let world = World::build(cfg.seed, cfg.users);
    let model = Model::new(cfg.seed);
    let (a, b) = (start.timestamp_millis(), end.timestamp_millis());
    (a..b)
        .step_by(model::MINUTE_MS as usize)
        .map(|t| model.expected_flows(&world, t))
        .sum()
}

/// Distinct sign-in flows (transactions with a password attempt).
fn flows(rows: &[&Row]) -> f64 {
    let txns: HashSet<&str> = rows
        .iter()
        .filter(|r| r.is_start())
        .map(|r| r.txn.as_str())
        .collect();
    txns.len() as f64
}

fn successes(rows: &[&Row]) -> f64 {
    rows.iter().filter(|r| r.is_start() && r.success).count() as f64
}

fn new_york(t: DateTime<Utc>) -> DateTime<Utc> {
    t - Duration::hours(5)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = SimConfig::with_default_incidents(42, monday(), 9, 60, Difficulty::Hard);
    let a = run(cfg.clone());
    let b = run(cfg.clone());
    assert!(a.stats.events > 1000);
    assert_eq!(a.events, b.events);
    assert_eq!(a.labels, b.labels);
    let c = run(SimConfig { seed: 43, ..cfg });
    assert_ne!(a.events, c.events);
}

#[test]
fn lines_are_valid_sorted_and_realistically_sized() {
    let (r, rows) = easy();
    assert!(rows.len() > 20_000, "{}", rows.len());
    let mean = r.events.len() / rows.len();
    assert!((900..1600).contains(&mean), "mean line {mean} bytes");
    let kinds: HashSet<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    // Every type but ThreatInsight's blocks, which only the hard setting makes.
    assert_eq!(kinds.len(), EVENT_TYPES.len() - 1, "{kinds:?}");
}

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

#[test]
fn default_schedule_has_every_kind_after_the_warm_up() {
    let cfg = &easy().0.cfg;
    let kinds: HashSet<IncidentKind> = cfg.incidents.iter().map(|i| i.kind).collect();
    // The easy setting has the first eight kinds; the hard one adds the rest.
    assert_eq!(kinds.len(), 8);
    assert!(kinds.iter().all(|k| IncidentKind::ALL[..8].contains(k)));
    let clean_until = cfg.start + Duration::days(7);
    let end = cfg.start + Duration::days(14);
    for (i, inc) in cfg.incidents.iter().enumerate() {
        assert!(inc.start >= clean_until && inc.end <= end && inc.start < inc.end);
        assert_eq!(inc.expect_page, !inc.kind.as_str().starts_with("benign"));
        assert!(!inc.note.is_empty());
        if let Some(next) = cfg.incidents.get(i + 1) {
            assert!(inc.end <= next.start, "{inc:?} overlaps {next:?}");
        }
        if matches!(
            inc.kind,
            IncidentKind::Outage | IncidentKind::PipelineGap | IncidentKind::BenignBlip
        ) {
            let local = new_york(inc.start);
            assert!(local.weekday().number_from_monday() <= 5, "{inc:?}");
            assert!((9..17).contains(&local.hour()), "{inc:?}");
        }
    }
}

#[test]
fn credential_stuffing_comes_from_many_ips() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::CredentialStuffing);
    let (now, before) = window_and_before(rows, inc, 7);
    let failing_ips = |rows: &[&Row]| -> usize {
        rows.iter()
            .filter(|r| r.is_start() && !r.success)
            .map(|r| &r.ip)
            .collect::<HashSet<_>>()
            .len()
    };
    let (ips_now, ips_before) = (failing_ips(&now), failing_ips(&before));
    assert!(
        ips_now > 100 && ips_now > 10 * ips_before,
        "{ips_now} vs {ips_before}"
    );
    let unknown = now
        .iter()
        .filter(|r| r.is_start() && !r.login.ends_with("@example.com"))
        .count();
    assert!(unknown > 100, "{unknown} unknown-user attempts");
}

#[test]
fn password_spraying_hits_many_users_from_few_ips() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::PasswordSpraying);
    let (now, _) = window_and_before(rows, inc, 7);
    let mut users_by_ip: HashMap<&str, HashSet<&str>> = HashMap::new();
    for row in now.iter().filter(|r| r.is_start() && !r.success) {
        users_by_ip.entry(&row.ip).or_default().insert(&row.login);
    }
    let mut sizes: Vec<usize> = users_by_ip.values().map(HashSet::len).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let top5: usize = sizes.iter().take(5).sum();
    assert!(top5 >= 150, "top five IPs reach {top5} users: {sizes:?}");
    let failures = now.iter().filter(|r| r.is_start() && !r.success).count();
    assert!(failures < 3 * top5, "one or two attempts per user");
}

#[test]
fn push_fatigue_floods_pushes_and_denies() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::MfaPushFatigue);
    let (now, before) = window_and_before(rows, inc, 7);
    let count = |rows: &[&Row], kind: &str| rows.iter().filter(|r| r.kind == kind).count();
    let deny = "user.mfa.okta_verify.deny_push";
    assert!(count(&now, deny) >= 10, "{} denies", count(&now, deny));
    assert!(count(&before, deny) <= 1);
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    for row in now
        .iter()
        .filter(|r| r.kind == "system.push.send_factor_verify_push")
    {
        *per_user.entry(&row.login).or_default() += 1;
    }
    assert!(per_user.values().any(|&n| n >= 10), "{per_user:?}");
}

#[test]
fn outage_collapses_successes() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::Outage);
    let (now, before) = window_and_before(rows, inc, 7);
    let expected = expected_flows(&r.cfg, inc.start, inc.end);
    assert!(expected > 40.0, "{expected}");
    assert!(successes(&before) > 0.6 * expected);
    assert!(
        successes(&now) < 0.35 * expected,
        "{} vs {expected}",
        successes(&now)
    );
}

#[test]
fn pipeline_gap_has_no_events() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::PipelineGap);
    let (now, before) = window_and_before(rows, inc, 7);
    assert!(now.is_empty());
    assert!(before.len() > 50);
}

#[test]
fn benign_incidents_look_benign() {
    let (r, rows) = easy();
    let share = |rows: &[&Row]| {
        let starts = rows.iter().filter(|r| r.is_start()).count() as f64;
        rows.iter().filter(|r| r.is_start() && !r.success).count() as f64 / starts
    };

    let surge = incident(r, IncidentKind::BenignSurge);
    let (now, _) = window_and_before(rows, surge, 7);
    let ratio = flows(&now) / expected_flows(&r.cfg, surge.start, surge.end);
    assert!((1.3..2.4).contains(&ratio), "surge volume x{ratio:.2}");
    assert!(share(&now) < 0.1, "surge failure share {}", share(&now));

    let holiday = incident(r, IncidentKind::BenignHoliday);
    let (now, _) = window_and_before(rows, holiday, 7);
    let ratio = flows(&now) / expected_flows(&r.cfg, holiday.start, holiday.end);
    assert!((0.08..0.35).contains(&ratio), "holiday volume x{ratio:.2}");

    let blip = incident(r, IncidentKind::BenignBlip);
    let (now, _) = window_and_before(rows, blip, 7);
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    for row in now.iter().filter(|r| r.is_start() && !r.success) {
        *per_user.entry(&row.login).or_default() += 1;
    }
    let (worst, _) = per_user.iter().max_by_key(|(_, n)| **n).unwrap();
    let theirs: Vec<&&Row> = now
        .iter()
        .filter(|r| r.login == *worst && !r.success)
        .collect();
    assert!((10..=20).contains(&theirs.len()), "{}", theirs.len());
    assert!(theirs.iter().map(|r| &r.ip).collect::<HashSet<_>>().len() == 1);
    // Okta locks the account after ten failures.
    let locked = theirs
        .iter()
        .filter(|r| r.reason.as_deref() == Some("LOCKED_OUT"))
        .count();
    assert!(
        locked <= 10 && (theirs.len() <= 11 || locked > 0),
        "{locked} of {}",
        theirs.len()
    );
}

#[test]
fn hard_attacks_stay_close_to_the_noise() {
    let r = run(SimConfig::with_default_incidents(
        7,
        monday(),
        14,
        300,
        Difficulty::Hard,
    ));
    let rows = rows(&r);
    let failures = |rows: &[&Row]| rows.iter().filter(|r| r.is_start() && !r.success).count();
    let stuffing = incident(&r, IncidentKind::CredentialStuffing);
    let (now, _) = window_and_before(&rows, stuffing, 7);
    let easy_stuffing = incident(&easy().0, IncidentKind::CredentialStuffing);
    let (easy_now, _) = window_and_before(&easy().1, easy_stuffing, 7);
    assert!(failures(&now) > 0);
    assert!(
        failures(&now) * 20 < failures(&easy_now),
        "{}",
        failures(&now)
    );

    let outage = incident(&r, IncidentKind::Outage);
    let (now, _) = window_and_before(&rows, outage, 7);
    let kept = successes(&now) / expected_flows(&r.cfg, outage.start, outage.end);
    assert!(
        (0.25..0.75).contains(&kept),
        "hard outage keeps {kept:.2} of successes"
    );

    let spraying = incident(&r, IncidentKind::PasswordSpraying);
    let hours = (spraying.end - spraying.start).num_minutes() as f64 / 60.0;
    assert!(hours >= 4.0);
    let (now, _) = window_and_before(&rows, spraying, 7);
    assert!((failures(&now) as f64 / hours) < 40.0, "{}", failures(&now));
}

#[test]
fn incidents_leave_the_background_alone() {
    // Adding an attack changes nothing outside its window.
    let mut cfg = SimConfig::with_default_incidents(5, monday(), 3, 40, Difficulty::Easy);
    let start = cfg.start + Duration::hours(36);
    cfg.incidents = vec![Incident {
        kind: IncidentKind::CredentialStuffing,
        start,
        end: start + Duration::minutes(30),
        expect_page: true,
        note: String::new(),
    }];
    let with = run(cfg.clone());
    cfg.incidents.clear();
    let without = run(cfg);
    let outside = |r: &Run| -> Vec<String> {
        std::str::from_utf8(&r.events)
            .unwrap()
            .lines()
            .filter(|l| {
                let t = check_line(l).t;
                t < start || t >= start + Duration::minutes(35)
            })
            .map(str::to_string)
            .collect()
    };
    assert!(with.stats.events > without.stats.events + 100);
    assert_eq!(outside(&with), outside(&without));
}

#[test]
fn labels_round_trip() {
    let (r, _) = easy();
    let text = std::str::from_utf8(&r.labels).unwrap();
    let parsed: Vec<Incident> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, r.cfg.incidents);
    assert_eq!(r.stats.incidents, parsed.len());
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(IncidentKind::ALL
        .iter()
        .any(|k| first["kind"] == k.as_str()));
    for k in IncidentKind::ALL {
        assert_eq!(k.to_string().parse::<IncidentKind>(), Ok(k));
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
}

#[test]
fn tenant_is_escaped() {
    let mut cfg = SimConfig::with_default_incidents(1, monday(), 1, 5, Difficulty::Easy);
    cfg.tenant = "we\"ird\\tenant\n".to_string();
    let r = run(cfg);
    let line = std::str::from_utf8(&r.events)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        v["source"],
        "aws.partner/okta.com/we\"ird\\tenant\n/okta-logs"
    );
}

#[test]
fn bad_configs_are_rejected() {
    let cfg = SimConfig::with_default_incidents(1, monday(), 1, 5, Difficulty::Easy);
    let err = |cfg: &SimConfig| {
        generate(cfg, &mut io::sink(), &mut io::sink())
            .unwrap_err()
            .kind()
    };
    assert_eq!(
        err(&SimConfig {
            users: 0,
            ..cfg.clone()
        }),
        io::ErrorKind::InvalidInput
    );
    let backwards = Incident {
        kind: IncidentKind::Outage,
        start: monday() + Duration::hours(2),
        end: monday() + Duration::hours(1),
        expect_page: true,
        note: String::new(),
    };
    let cfg = SimConfig {
        incidents: vec![backwards],
        ..cfg
    };
    assert_eq!(err(&cfg), io::ErrorKind::InvalidInput);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn any_small_config_gives_valid_sorted_output(
        seed in any::<u64>(),
        days in 0u32..3,
        users in 1u32..30,
        hard in any::<bool>(),
        offset_min in 0i64..1440,
    ) {
        let difficulty = if hard { Difficulty::Hard } else { Difficulty::Easy };
        let start = monday() + Duration::minutes(offset_min) + Duration::milliseconds(seed as i64 % 1000);
        let r = run(SimConfig::with_default_incidents(seed, start, days, users, difficulty));
        let rows = rows(&r);
        let end = start + Duration::days(i64::from(days));
        prop_assert!(rows.iter().all(|row| row.t >= start && row.t < end));
        prop_assert_eq!(std::str::from_utf8(&r.labels).unwrap().lines().count(), r.cfg.incidents.len());
    }
}

#[test]
fn hard_schedule_has_every_kind_and_labels_the_dst_morning() {
    // Four weeks from Monday 2026-10-19: the US clocks change on Sunday 1 November.
    let start = DateTime::parse_from_rfc3339("2026-10-19T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let cfg = SimConfig::with_default_incidents(3, start, 28, 300, Difficulty::Hard);
    let kinds: HashSet<IncidentKind> = cfg.incidents.iter().map(|i| i.kind).collect();
    assert_eq!(kinds.len(), IncidentKind::ALL.len(), "{kinds:?}");
    let dst = incident_of(&cfg, IncidentKind::BenignDst);
    // Monday 2 November, 06:00 in New York, now on standard time (UTC-5).
    assert_eq!(dst.start.to_rfc3339(), "2026-11-02T11:00:00+00:00");
    assert!(!dst.expect_page);
    for (i, inc) in cfg.incidents.iter().enumerate() {
        assert_eq!(inc.expect_page, inc.kind.alert_kind().is_some());
        if let Some(next) = cfg.incidents.get(i + 1) {
            assert!(inc.end <= next.start, "{inc:?} overlaps {next:?}");
        }
    }
    for (kind, lo, hi) in [
        (IncidentKind::ShortGapPeak, 35, 55),
        (IncidentKind::ShortGapNight, 35, 55),
        (IncidentKind::DistributedSpraying, 180, 240),
        (IncidentKind::QuietStuffing, 75, 105),
    ] {
        let inc = incident_of(&cfg, kind);
        let minutes = (inc.end - inc.start).num_minutes();
        assert!((lo..=hi).contains(&minutes), "{inc:?}");
    }
}

fn incident_of(cfg: &SimConfig, kind: IncidentKind) -> Incident {
    cfg.incidents
        .iter()
        .find(|i| i.kind == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn hard_traffic_speaks_okta_signals() {
    // Unknown usernames, ThreatInsight flags and blocks, OIE push denials, as Okta
    // writes them.
    let start = DateTime::parse_from_rfc3339("2026-10-19T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut cfg = SimConfig::with_default_incidents(3, start, 28, 300, Difficulty::Hard);
    cfg.incidents.retain(|i| {
        matches!(
            i.kind,
            IncidentKind::BlockedStuffing | IncidentKind::OiePushFatigue
        )
    });
    let first = cfg.incidents.iter().map(|i| i.start).min().unwrap();
    let last = cfg.incidents.iter().map(|i| i.end).max().unwrap();
    cfg.start = first - Duration::hours(1);
    cfg.days = 1 + ((last - cfg.start).num_hours() / 24) as u32;
    let r = run(cfg);
    let text = String::from_utf8(r.events.clone()).unwrap();
    let mut blocked = 0;
    let mut oie_denials = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let d = &v["detail"];
        if d["eventType"] == "security.threat.detected" {
            blocked += 1;
            assert_eq!(d["outcome"]["result"], "DENY");
            assert_eq!(d["actor"]["id"], "unknown");
            assert_eq!(d["debugContext"]["debugData"]["threatSuspected"], "true");
        }
        if d["eventType"] == "user.authentication.auth_via_mfa"
            && d["outcome"]["reason"] == "INVALID_CREDENTIALS"
        {
            oie_denials += 1;
        }
    }
    assert!(blocked > 0 && oie_denials > 0, "{blocked} {oie_denials}");
}
